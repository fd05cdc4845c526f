#!/usr/bin/env bash
# Twentieth session, last GPU call: the session's final code (tap-major depthwise kernel, LayerNorm scale/bias
# loaded before the row, 16 cuBLASLt candidates; the early-constants form was reverted) checked once more, and
# its batch-1 figures.        OUT=... bench/gpu/call20e.sh
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
OUT=${OUT:-/tmp/o}; mkdir -p "$OUT"; T0=$SECONDS
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
python3 models/export.py --models vit_b_16,efficientnet_b0,mobilenet_v2 >"$OUT/export.log" 2>&1 &
B=bg; gen=(); command -v ninja >/dev/null && gen=(-G Ninja)
cmake -S . -B $B "${gen[@]}" -DCMAKE_BUILD_TYPE=Release -DKILN_CUDA=ON >"$OUT/cmake.log" 2>&1 || { tail -5 "$OUT/cmake.log"; exit 1; }
cmake --build $B -j 16 --target kiln test_cuda_kernels test_cuda_dnn >"$OUT/build.log" 2>&1 || { grep error "$OUT/build.log" | head; exit 1; }
echo "built ($((SECONDS-T0)) s)"
timeout 150 $B/tests/test_cuda_kernels >"$OUT/kern.log" 2>&1; echo "test_cuda_kernels: exit $? $(tail -1 "$OUT/kern.log")"; grep -E "^FAIL" "$OUT/kern.log" | head -5
timeout 120 $B/tests/test_cuda_dnn >"$OUT/dnn.log" 2>&1; echo "test_cuda_dnn: exit $? $(tail -1 "$OUT/dnn.log")"; grep -E "^FAIL" "$OUT/dnn.log" | cut -c1-300 | head -5
wait
K=$B/kiln
gpu() { grep -oE 'GPU Compute Time: .*median = [0-9.e+-]+' "$1" | grep -oE '[0-9.e+-]+$'; }
for m in efficientnet_b0 mobilenet_v2 vit_b_16; do
  timeout 120 $K compare models/out/$m.onnx --providers cpu,cuda --precisions fp16 --shapes input:2x3x224x224 --iterations 1 >"$OUT/acc.txt" 2>&1
  echo -n "$m acc b2 fp16 (exit $?): $(grep -E '^cuda' "$OUT/acc.txt" | awk '{print $2, $5, $6, $7, $8}' | tr '\n' ';') b1:"
  timeout 200 $K build models/out/$m.onnx -o /tmp/m.kiln --fp16 --shapes input:1x3x224x224 >"$OUT/b.txt" 2>&1 || echo "build failed: $(tail -2 "$OUT/b.txt")"
  for r in 1 2; do timeout 60 $K trtexec --loadEngine=/tmp/m.kiln --noDataTransfers --iterations=1000 --duration=0 --warmUp=300 >"$OUT/t.txt" 2>&1; echo -n " $(gpu "$OUT/t.txt")"; done; echo
done
echo "done ($((SECONDS-T0)) s)"
