#!/usr/bin/env bash
# Twenty-ninth session: call28b.sh (the check of the two GPU defaults and the timings), then the
# per-layer profiles of ResNet-50 and EfficientNet-B0 FP16 at batch 256 (the throughput misses).
#   OUT=... bench/gpu/call29a.sh   (build-gpu/wt holding kiln and test_cuda_kernels from a CUDA build)
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
OUT=${OUT:-/tmp/o}; mkdir -p "$OUT"
bash bench/gpu/call28b.sh
export LD_LIBRARY_PATH=$PWD/.gpu/libs:${LD_LIBRARY_PATH:-}
K=${KILN:-build-gpu/wt/kiln}
for m in resnet50 efficientnet_b0; do
  timeout 120 $K build models/out/$m.onnx -o /tmp/${m}_256.kiln --fp16 --shapes input:256x3x224x224 >/tmp/logs/pb_$m.txt 2>&1 || { echo "$m b256 build failed" | tee -a $OUT/summary.txt; continue; }
  timeout 90 $K profile /tmp/${m}_256.kiln --iterations 10 --top 40 --export $OUT/prof_${m}_b256.json >$OUT/prof_${m}_b256.txt 2>&1
  echo "$m b256 profile exit $?" | tee -a $OUT/summary.txt
done
which nsys ncu 2>&1 | tee -a $OUT/summary.txt
