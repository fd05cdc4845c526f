#!/usr/bin/env bash
# Twenty-first session: why `kiln trtexec --onnx` (built in the process) timed ResNet-50 b1 0.333 ms where the
# same engine loaded from a file had timed 0.311: in-process and loaded runs of one engine, alternating.
#                                                                                      OUT=... bench/gpu/call21d.sh
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
OUT=${OUT:-/tmp/o}; mkdir -p "$OUT"; T0=$SECONDS
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
python3 models/export.py --models resnet50,efficientnet_b0 >"$OUT/export.log" 2>&1 &
B=bg; gen=(); command -v ninja >/dev/null && gen=(-G Ninja)
cmake -S . -B $B "${gen[@]}" -DCMAKE_BUILD_TYPE=Release -DKILN_CUDA=ON >"$OUT/cmake.log" 2>&1 || { tail -5 "$OUT/cmake.log"; exit 1; }
cmake --build $B -j 16 --target kiln >"$OUT/build.log" 2>&1 || { grep error "$OUT/build.log" | head; exit 1; }
echo "built ($((SECONDS-T0)) s)"
wait
K=$B/kiln
gpu() { grep -oE 'GPU Compute Time: .*median = [0-9.e+-]+' "$1" | grep -oE '[0-9.e+-]+$'; }
for m in resnet50 efficientnet_b0; do
  for i in 1 2; do
    timeout 120 $K trtexec --onnx=models/out/$m.onnx --fp16 --shapes=input:1x3x224x224 --saveEngine=/tmp/$m.$i.kiln --noDataTransfers --iterations=1000 --duration=0 --warmUp=300 >"$OUT/a.txt" 2>&1
    a=$(gpu "$OUT/a.txt"); bt=$(grep -oE 'Engine built in [0-9.]+ sec' "$OUT/a.txt")
    timeout 60 $K trtexec --loadEngine=/tmp/$m.$i.kiln --noDataTransfers --iterations=1000 --duration=0 --warmUp=300 >"$OUT/b.txt" 2>&1
    b=$(gpu "$OUT/b.txt")
    timeout 60 $K trtexec --loadEngine=/tmp/$m.$i.kiln --noDataTransfers --iterations=1000 --duration=0 --warmUp=300 --useCudaGraph >"$OUT/c.txt" 2>&1
    echo "$m b1 build $i ($bt): in process $a | loaded $b | loaded --useCudaGraph $(gpu "$OUT/c.txt")"
  done
done
grep -E 'Timing cache|Warmup|CUDA Graph' "$OUT/a.txt" "$OUT/b.txt" | head
echo "done ($((SECONDS-T0)) s)"
