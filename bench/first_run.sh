#!/usr/bin/env bash
# Time to the first result, side by side, fresh processes: kiln engine load + context + the first run
# (where CPU layers pack their weights unless the engine was built with --prepack) against ONNX Runtime
# 1.30's session creation (which packs its weights) + its first run, one thread each, medians of N.
#   bench/first_run.sh [MODEL...]     (default: the image models of the zoo in models/out)
# Env: KILN (the kiln binary, default build/kiln), N (processes per side, default 5), PREPACK=1 (build
# the engines with --prepack).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
. scripts/lib.sh
kiln=${KILN:-build/kiln}
n=${N:-5}
models=("$@")
[ ${#models[@]} -gt 0 ] || models=(resnet18 resnet50 mobilenet_v2 efficientnet_b0 vit_b_16 yolov8n)
kiln_need_ort || { echo "first_run: no ONNX Runtime: $kiln_ort_why" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
med() { sort -g | awk '{a[NR] = $1} END { if (NR) printf "%.1f", (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2; else print "?" }'; }
printf '%s\n' "CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'), $(nproc) cores; load average $(cut -d' ' -f1-3 /proc/loadavg)"
printf '| model | kiln load + context ms | kiln first run ms | kiln total | ORT session ms | ORT first run ms | ORT total | ORT/kiln |\n'
printf '|---|---:|---:|---:|---:|---:|---:|---:|\n'
for name in "${models[@]}"; do
    m=models/out/$name.onnx
    [ -f "$m" ] || { echo "first_run: $m is missing (models/export.py --models $name)" >&2; continue; }
    shape=1x3x224x224; [ "$name" = yolov8n ] && shape=1x3x640x640
    "$kiln" build "$m" -o "$tmp/$name.kiln" --threads 1 ${PREPACK:+--prepack} >/dev/null
    : >"$tmp/kl"; : >"$tmp/kr"; : >"$tmp/ol"; : >"$tmp/or"
    for i in $(seq "$n"); do
        "$kiln" bench "$tmp/$name.kiln" --iterations 1 --warmup 1 --json "$tmp/j.json" >/dev/null 2>&1
        /usr/bin/python3 -c 'import json, sys; j = json.load(open(sys.argv[1]));
print(j["engine_load_ms"] + j.get("context_create_ms", 0), file=open(sys.argv[2], "a")); print(j["warmup"]["ms"], file=open(sys.argv[3], "a"))' \
            "$tmp/j.json" "$tmp/kl" "$tmp/kr"
        node -e '
          const ort = require("onnxruntime-node"); const dims = process.argv[2].split("x").map(Number);
          (async () => { const a = process.hrtime.bigint();
            const s = await ort.InferenceSession.create(process.argv[1], {intraOpNumThreads: 1});
            const b = process.hrtime.bigint();
            const x = new ort.Tensor("float32", Float32Array.from({length: dims.reduce((p, q) => p * q)}, () => Math.random()), dims);
            const c = process.hrtime.bigint(); await s.run({[s.inputNames[0]]: x}); const d = process.hrtime.bigint();
            console.log(Number(b - a) / 1e6, Number(d - c) / 1e6); })();' "$m" "$shape" >"$tmp/o.txt"
        cut -d' ' -f1 "$tmp/o.txt" >>"$tmp/ol"; cut -d' ' -f2 "$tmp/o.txt" >>"$tmp/or"
    done
    kl=$(med <"$tmp/kl"); kr=$(med <"$tmp/kr"); ol=$(med <"$tmp/ol"); or=$(med <"$tmp/or")
    awk -v n="$name" -v a="$kl" -v b="$kr" -v c="$ol" -v d="$or" \
        'BEGIN { printf "| %s | %.1f | %.1f | %.1f | %.1f | %.1f | %.1f | %.2f |\n", n, a, b, a + b, c, d, c + d, (c + d) / (a + b) }'
done
