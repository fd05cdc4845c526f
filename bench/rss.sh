#!/usr/bin/env bash
# Peak memory side by side: kiln (engine file: load + context + one run;
# and a session built from the .onnx + one run) against ONNX Runtime 1.30
# (session creation + one run, all graph optimizations, one thread), on the
# zoo's first reference input, peak RSS of each process (/usr/bin/time %M).
# The files are copied to /dev/shm first: on ext4 a mapped file's touched
# large page-cache folios count whole in RSS (kiln maps the weights, ORT
# reads them into its heap), on tmpfs both count the bytes they touch.
# ORT's row also carries node's own RSS (node + onnxruntime-node loaded,
# no model), given apart.
#   bench/rss.sh [MODEL...]        (default: the zoo in models/out)
# Env: KILN (the kiln binary, default build/kiln).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
. scripts/lib.sh
kiln=${KILN:-build/kiln}
models=("$@")
[ ${#models[@]} -gt 0 ] || models=(resnet18 resnet50 mobilenet_v2 efficientnet_b0 vit_b_16 text_encoder yolov8n
                                   ssdlite320_mobilenet_v3_large)
kiln_need_ort || { echo "rss: no ONNX Runtime: $kiln_ort_why" >&2; exit 1; }
tmp=$(mktemp -d /dev/shm/kiln-rss.XXXX)
trap 'rm -rf "$tmp"' EXIT
peak() { /usr/bin/time -f %M -o "$tmp/t" "$@" >/dev/null 2>"$tmp/err" || { echo "?"; return; }; cat "$tmp/t"; }
cat >"$tmp/ort.js" <<'EOF'
const ort = require('onnxruntime-node');
const fs = require('fs');
function npy(p) {
    const b = fs.readFileSync(p), hl = b.readUInt16LE(8), h = b.toString('latin1', 10, 10 + hl);
    const shape = h.match(/'shape': \(([^)]*)\)/)[1].split(',').filter(s => s.trim()).map(Number);
    const d = h.match(/'descr': '([^']*)'/)[1], off = 10 + hl, raw = b.buffer.slice(b.byteOffset + off, b.byteOffset + b.length);
    const T = { '<f4': ['float32', Float32Array], '<i8': ['int64', BigInt64Array] }[d];
    return new ort.Tensor(T[0], new T[1](raw), shape);
}
(async () => {
    if (process.argv[2] === '-') return; /* node + ORT loaded, no model */
    const s = await ort.InferenceSession.create(process.argv[2], { graphOptimizationLevel: 'all',
        intraOpNumThreads: 1, interOpNumThreads: 1, logSeverityLevel: 3 });
    const feeds = {}; feeds[s.inputNames[0]] = npy(process.argv[3]);
    await s.run(feeds);
})();
EOF
base=$(cd "$tmp" && NODE_PATH=$NODE_PATH peak node ort.js -)
printf '%s\n' "CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'), $(nproc) cores; node + onnxruntime-node alone: $((base / 1024)) MB"
printf '| model | input | kiln engine (MB) | kiln session (MB) | ORT (MB) | ORT less node alone (MB) | (ORT less node) / kiln engine |\n|---|---|---:|---:|---:|---:|---:|\n'
for name in "${models[@]}"; do
    m=models/out/$name.onnx x=models/out/${name}_ref/test_data_set_0/input_0.npy
    [ -f "$m" ] && [ -f "$x" ] || continue
    cp "$m" "$tmp/$name.onnx"
    [ -f "$m.data" ] && cp "$m.data" "$tmp/"
    "$kiln" build "$tmp/$name.onnx" -o "$tmp/$name.kiln" --threads 1 >/dev/null 2>&1 || { echo "| $name | build failed |"; continue; }
    ke=$(peak "$kiln" run "$tmp/$name.kiln" --input "$x")
    ks=$(peak "$kiln" run "$tmp/$name.onnx" --input "$x" --threads 1)
    o=$(cd "$tmp" && NODE_PATH=$NODE_PATH peak node ort.js "$tmp/$name.onnx" "$OLDPWD/$x")
    shape=$(/usr/bin/python3 -c "import sys,numpy as n; print('x'.join(map(str, n.load(sys.argv[1], mmap_mode='r').shape)))" "$x" 2>/dev/null ||
            echo "?")
    awk -v n="$name" -v s="$shape" -v ke="$ke" -v ks="$ks" -v o="$o" -v b="$base" 'BEGIN {
        printf "| %s | %s | %.0f | %.0f | %.0f | %.0f | %s |\n", n, s, ke / 1024, ks / 1024, o / 1024, (o - b) / 1024,
               (ke + 0 > 0 && o + 0 > 0) ? sprintf("%.2f", (o - b) / ke) : "?" }'
    rm -f "$tmp/$name.onnx" "$tmp/$name.onnx.data" "$tmp/$name.kiln"
done
