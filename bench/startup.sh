#!/usr/bin/env bash
# Start-up time side by side, in one run: kiln engine load + context
# creation (the engine built once beforehand) against ONNX Runtime 1.30's
# session creation on the same model, medians of N.
#   bench/startup.sh [MODEL...]      (default: the zoo in models/out)
# Env: KILN (the kiln binary, default build/kiln), N (runs, default 21).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
. scripts/lib.sh
kiln=${KILN:-build/kiln}
n=${N:-21}
models=("$@")
[ ${#models[@]} -gt 0 ] || models=(models/out/resnet50.onnx models/out/mobilenet_v2.onnx models/out/efficientnet_b0.onnx
                                   models/out/vit_b_16.onnx models/out/text_encoder.onnx)
kiln_need_ort || { echo "startup: no ONNX Runtime: $kiln_ort_why" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
check=${ENGINE_CHECK:-build/tests/engine_check}
printf '%s\n' "CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'), $(nproc) cores; load average $(cut -d' ' -f1-3 /proc/loadavg)"
printf '| model | kiln engine load + context (ms) | ORT session creation (ms) | ORT/kiln |\n|---|---:|---:|---:|\n'
for m in "${models[@]}"; do
    [ -f "$m" ] || continue
    name=$(basename "$m" .onnx)
    "$kiln" build "$m" -o "$tmp/$name.kiln" >/dev/null
    extra=(); [ "$name" = text_encoder ] && extra=(--shapes input:1x128) # dynamic sequence length
    k=$("$kiln" bench "$tmp/$name.kiln" --iterations 1 "${extra[@]}" --json - 2>/dev/null |
        node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{let v;try{const j=JSON.parse(s);
          v=j.engine_load_context_ms ? j.engine_load_context_ms.median : undefined;}catch(e){}
          console.log(v===undefined?"?":v.toFixed(2));})')
    o=$(node -e '
      const ort = require("onnxruntime-node"); const n = +process.argv[2];
      (async () => { const t = [];
        for (let i = 0; i < n; i++) { const a = process.hrtime.bigint();
          const s = await ort.InferenceSession.create(process.argv[1], {intraOpNumThreads: 1});
          t.push(Number(process.hrtime.bigint() - a) / 1e6); await s.release(); }
        t.sort((x, y) => x - y); console.log(t[n >> 1].toFixed(2)); })();' "$m" "$n")
    ratio=$(awk -v a="$k" -v b="$o" 'BEGIN { if (a + 0 > 0) printf "%.1f", b / a; else print "?" }')
    printf '| %s | %s | %s | %s |\n' "$name" "$k" "$o" "$ratio"
done
