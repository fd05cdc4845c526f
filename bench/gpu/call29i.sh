#!/usr/bin/env bash
# Twenty-ninth session: kiln against PyTorch 2.11 side by side in one run on this session's code
# (bench/gpu/bench_gpu.py: kiln trtexec --onnx --fp16 --noDataTransfers with CUDA graphs; PyTorch eager and
# torch.compile(mode="reduce-overhead") FP16 channels_last): ResNet-50 and EfficientNet-B0 at batch 1 and 256,
# MobileNet-V2 at 1 and 256 (eager peer only).
#   OUT=... bench/gpu/call29i.sh   (build-gpu/wt/kiln from a CUDA build)
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
OUT=${OUT:-/tmp/o}; mkdir -p "$OUT"; T0=$SECONDS
export LD_LIBRARY_PATH=$PWD/.gpu/libs:${LD_LIBRARY_PATH:-}
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee $OUT/summary.txt
python3 models/export.py --models resnet50,efficientnet_b0,mobilenet_v2 >/tmp/export.log 2>&1
timeout 330 python3 bench/gpu/bench_gpu.py --kiln build-gpu/wt/kiln --out /tmp/a --models resnet50,efficientnet_b0 \
  --batches 1,256 --compiled resnet50,efficientnet_b0 --fp32-batch 0 --budget 260 --iters 200 2>&1 | grep -vE '^\{' | tail -8 | tee -a $OUT/summary.txt
left=$((520 - (SECONDS - T0)))
[ $left -gt 40 ] && timeout $left python3 bench/gpu/bench_gpu.py --kiln build-gpu/wt/kiln --out /tmp/b --models mobilenet_v2 \
  --batches 1,256 --compiled "" --fp32-batch 0 --iters 200 2>&1 | grep -vE '^\{' | tail -5 | tee -a $OUT/summary.txt
cp /tmp/a/bench_gpu.json $OUT/bench_gpu_a.json 2>/dev/null; cp /tmp/b/bench_gpu.json $OUT/bench_gpu_b.json 2>/dev/null
echo "done ($((SECONDS-T0)) s)" | tee -a $OUT/summary.txt
