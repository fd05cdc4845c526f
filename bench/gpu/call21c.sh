#!/usr/bin/env bash
# Twenty-first session, last GPU call: the session's final code (the depthwise kernel's SE pool; no early
# trigger) against PyTorch 2.11 eager and torch.compile(mode="reduce-overhead") FP16 channels_last, side by
# side (bench/gpu/bench_gpu.py, batch 1), and kiln's batch-256 throughput.        OUT=... bench/gpu/call21c.sh
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
OUT=${OUT:-/tmp/o}; mkdir -p "$OUT"; T0=$SECONDS
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
python3 models/export.py --models efficientnet_b0,resnet50,vit_b_16 >"$OUT/export.log" 2>&1 &
B=bg; gen=(); command -v ninja >/dev/null && gen=(-G Ninja)
cmake -S . -B $B "${gen[@]}" -DCMAKE_BUILD_TYPE=Release -DKILN_CUDA=ON >"$OUT/cmake.log" 2>&1 || { tail -5 "$OUT/cmake.log"; exit 1; }
cmake --build $B -j 16 --target kiln >"$OUT/build.log" 2>&1 || { grep error "$OUT/build.log" | head; exit 1; }
echo "built ($((SECONDS-T0)) s)"
wait
timeout 330 python3 bench/gpu/bench_gpu.py --kiln $B/kiln --out "$OUT" --models resnet50,efficientnet_b0,vit_b_16 \
  --batches 1 --fp32-batch 0 --budget 300 --iters 200 2>&1 | grep -vE '^\{' | tail -12
echo "($((SECONDS-T0)) s)"
gpu() { grep -oE 'GPU Compute Time: .*median = [0-9.e+-]+' "$1" | grep -oE '[0-9.e+-]+$'; }
for m in efficientnet_b0 vit_b_16; do
  [ $((SECONDS-T0)) -gt 470 ] && break
  timeout 120 $B/kiln trtexec --onnx=models/out/$m.onnx --fp16 --shapes=input:256x3x224x224 --noDataTransfers --iterations=100 --duration=0 --warmUp=50 >"$OUT/t.txt" 2>&1
  echo "$m fp16 b256 kiln: $(gpu "$OUT/t.txt") ms"
done
echo "done ($((SECONDS-T0)) s)"
