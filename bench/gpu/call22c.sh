#!/usr/bin/env bash
# Twenty-second session, third GPU call: im2col with 32-bit indices (eight 64-bit divisions per element before),
# checked by test_cuda_dnn (im2col + product cases) and kiln compare, A/B on one engine per model
# (KILN_CUDA_IM2COL64=1 restores the 64-bit kernel).                  OUT=... bench/gpu/call22c.sh
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
OUT=${OUT:-/tmp/o}; mkdir -p "$OUT"; T0=$SECONDS
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
python3 models/export.py --models resnet50 >"$OUT/export.log" 2>&1 &
B=bg; gen=(); command -v ninja >/dev/null && gen=(-G Ninja)
cmake -S . -B $B "${gen[@]}" -DCMAKE_BUILD_TYPE=Release -DKILN_CUDA=ON >"$OUT/cmake.log" 2>&1 || { tail -5 "$OUT/cmake.log"; exit 1; }
cmake --build $B -j 16 --target kiln test_cuda_dnn >"$OUT/build.log" 2>&1 || { grep error "$OUT/build.log" | head; exit 1; }
echo "built ($((SECONDS-T0)) s)"
timeout 120 $B/tests/test_cuda_dnn >"$OUT/dnn.log" 2>&1; echo "test_cuda_dnn: exit $? $(tail -1 "$OUT/dnn.log")"; grep -E "^FAIL" "$OUT/dnn.log" | cut -c1-200 | head -5
wait
K=$B/kiln
gpu() { grep -oE 'GPU Compute Time: .*median = [0-9.e+-]+' "$1" | grep -oE '[0-9.e+-]+$'; }
timeout 100 $K compare models/out/resnet50.onnx --providers cpu,cuda --precisions fp16,fp32 --shapes input:2x3x224x224 --iterations 1 >"$OUT/acc.txt" 2>&1
echo "resnet50 acc b2 (exit $?): $(grep -E '^cuda' "$OUT/acc.txt" | awk '{print $2, $5, $6, $7, $8}' | tr '\n' ';')"
for m in resnet50:input:224x224:1; do
  IFS=: read -r mm nm sz b <<<"$m"; x=${sz%x*}; y=${sz#*x}
  timeout 200 $K build models/out/$mm.onnx -o /tmp/$mm$b.kiln --fp16 --shapes $nm:${b}x3x${x}x${y} >"$OUT/b.txt" 2>&1 || { echo "build $mm failed: $(tail -2 "$OUT/b.txt")"; continue; }
  declare -A r=()
  for i in 1 2 3; do for e in 32 64; do
    if [ $e = 64 ]; then export KILN_CUDA_IM2COL64=1; else unset KILN_CUDA_IM2COL64; fi
    timeout 30 $K trtexec --loadEngine=/tmp/$mm$b.kiln --noDataTransfers --iterations=1000 --duration=0 --warmUp=200 >"$OUT/t.txt" 2>&1
    r[$e]+=" $(gpu "$OUT/t.txt")"
  done; done
  unset KILN_CUDA_IM2COL64
  echo "$mm fp16 b$b: int32${r[32]} | int64${r[64]}   ($((SECONDS-T0)) s)"
done
echo "done ($((SECONDS-T0)) s)"
