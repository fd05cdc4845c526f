#!/usr/bin/env bash
# Twenty-second session, first GPU call: part of the weights kept resident in L2 across runs (an access policy
# window over the engine's weight block on the stream and on every captured kernel node; KILN_CUDA_L2_PERSIST=R,
# KILN_CUDA_L2_WINDOW=krsc), A/B on one engine per model, b1 FP16.        OUT=... bench/gpu/call22a.sh
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
OUT=${OUT:-/tmp/o}; mkdir -p "$OUT"; T0=$SECONDS
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
python3 models/export.py --models resnet50,efficientnet_b0,vit_b_16,yolov8n >"$OUT/export.log" 2>&1 &
B=bg; gen=(); command -v ninja >/dev/null && gen=(-G Ninja)
cmake -S . -B $B "${gen[@]}" -DCMAKE_BUILD_TYPE=Release -DKILN_CUDA=ON >"$OUT/cmake.log" 2>&1 || { tail -5 "$OUT/cmake.log"; exit 1; }
cmake --build $B -j 16 --target kiln >"$OUT/build.log" 2>&1 || { grep error "$OUT/build.log" | head; exit 1; }
echo "built ($((SECONDS-T0)) s)"
wait
echo "exported ($((SECONDS-T0)) s)"
K=$B/kiln
gpu() { grep -oE 'GPU Compute Time: .*median = [0-9.e+-]+' "$1" | grep -oE '[0-9.e+-]+$'; }
KILN_LOG=debug KILN_CUDA_L2_PERSIST=1 timeout 60 $K trtexec --onnx=models/out/efficientnet_b0.onnx --fp16 --iterations=10 --duration=0 --warmUp=0 2>&1 | grep -iE "persist|error" | head -3
for m in resnet50:input:224x224:1 efficientnet_b0:input:224x224:1 vit_b_16:input:224x224:1 yolov8n:input:640x640:1 resnet50:input:224x224:32; do
  IFS=: read -r mm nm sz b <<<"$m"; x=${sz%x*}; y=${sz#*x}
  timeout 200 $K build models/out/$mm.onnx -o /tmp/$mm$b.kiln --fp16 --shapes $nm:${b}x3x${x}x${y} >"$OUT/b.txt" 2>&1 || { echo "build $mm failed: $(tail -2 "$OUT/b.txt")"; continue; }
  declare -A r=()
  for i in 1 2 3; do for e in 0 0.5 1 k; do
    unset KILN_CUDA_L2_WINDOW; p=$e; [ $e = k ] && { p=1; export KILN_CUDA_L2_WINDOW=krsc; }
    KILN_CUDA_L2_PERSIST=$p timeout 30 $K trtexec --loadEngine=/tmp/$mm$b.kiln --noDataTransfers --iterations=1000 --duration=0 --warmUp=200 >"$OUT/t.txt" 2>&1
    r[$e]+=" $(gpu "$OUT/t.txt")"
  done; done
  unset KILN_CUDA_L2_WINDOW
  echo "$mm fp16 b$b: off${r[0]} | 0.5${r[0.5]} | 1${r[1]} | 1 krsc${r[k]}   ($((SECONDS-T0)) s)"
done
echo "done ($((SECONDS-T0)) s)"
