#!/usr/bin/env bash
# Twenty-first session, fifth GPU call: the SE kernels issue their constant loads (w1's first round, w2's row,
# the first weight row to scale) before the values they wait for (KILN_CUDA_SE_EARLY A/B, one engine).
#                                                                                      OUT=... bench/gpu/call21e.sh
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
OUT=${OUT:-/tmp/o}; mkdir -p "$OUT"; T0=$SECONDS
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
python3 models/export.py --models efficientnet_b0 >"$OUT/export.log" 2>&1 &
B=bg; gen=(); command -v ninja >/dev/null && gen=(-G Ninja)
cmake -S . -B $B "${gen[@]}" -DCMAKE_BUILD_TYPE=Release -DKILN_CUDA=ON >"$OUT/cmake.log" 2>&1 || { tail -5 "$OUT/cmake.log"; exit 1; }
cmake --build $B -j 16 --target kiln test_cuda_kernels >"$OUT/build.log" 2>&1 || { grep error "$OUT/build.log" | head; exit 1; }
echo "built ($((SECONDS-T0)) s)"
timeout 100 $B/tests/test_cuda_kernels >"$OUT/kern.log" 2>&1; echo "test_cuda_kernels: exit $? $(tail -1 "$OUT/kern.log")"; grep -E "^FAIL" "$OUT/kern.log" | cut -c1-200 | head -6
wait
K=$B/kiln
gpu() { grep -oE 'GPU Compute Time: .*median = [0-9.e+-]+' "$1" | grep -oE '[0-9.e+-]+$'; }
timeout 100 $K compare models/out/efficientnet_b0.onnx --providers cpu,cuda --precisions fp16 --shapes input:2x3x224x224 --iterations 1 >"$OUT/acc.txt" 2>&1
echo "effnet acc b2 fp16 (exit $?): $(grep -E '^cuda' "$OUT/acc.txt" | awk '{print $2, $5, $6, $7, $8}' | tr '\n' ';')"
for b in 1 8; do
  timeout 100 $K build models/out/efficientnet_b0.onnx -o /tmp/e$b.kiln --fp16 --shapes input:${b}x3x224x224 >"$OUT/b.txt" 2>&1 || echo "build failed: $(tail -2 "$OUT/b.txt")"
  declare -A r=()
  for i in 1 2 3; do for e in 1 0; do
    KILN_CUDA_SE_EARLY=$e timeout 30 $K trtexec --loadEngine=/tmp/e$b.kiln --noDataTransfers --iterations=1000 --duration=0 --warmUp=200 >"$OUT/t.txt" 2>&1
    r[$e]+=" $(gpu "$OUT/t.txt")"
  done; done
  echo "effnet fp16 b$b: early${r[1]} | in order${r[0]}"
done
echo "done ($((SECONDS-T0)) s)"
