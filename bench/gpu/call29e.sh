#!/usr/bin/env bash
# Twenty-ninth session: the implicit GEMM with as many shared-memory stages as a block has K-tiles (a 1x1 layer of
# <= 32 channels: one), checked (test_cuda_dnn) and timed; why it loses to cuBLASLt + a SiLU pass on
# EfficientNet-B0's memory-bound 1x1 expansions at batch 256: its debug timings per tile shape and ncu's launch,
# occupancy and throughput sections for the 16->96 expansion (the engine built with KILN_CUDA_NO_GEMM_CONV=1,
# so that the layer runs kiln's kernel).  Logs in $OUT/logs.tgz.
#   OUT=... bench/gpu/call29e.sh   (build-gpu/wt: kiln, test_cuda_dnn from a CUDA build)
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
OUT=${OUT:-/tmp/o}; mkdir -p "$OUT"; T0=$SECONDS; S=$OUT/summary.txt; L=/tmp/logs; mkdir -p $L
export LD_LIBRARY_PATH=$PWD/.gpu/libs:${LD_LIBRARY_PATH:-}
say() { echo "$*" | tee -a $S; }
K=build-gpu/wt/kiln
say "$(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader)"
python3 models/export.py --models resnet50,efficientnet_b0,yolov8n >$L/export.log 2>&1 &
timeout 200 build-gpu/wt/test_cuda_dnn >$L/d.log 2>&1; say "test_cuda_dnn: exit $? $(tail -1 $L/d.log)"
grep -E "^FAIL" $L/d.log | cut -c1-200 | head -5 | tee -a $S
wait
gpu() { grep -oE 'GPU Compute Time: .*median = [0-9.e+-]+' "$1" | grep -oE '[0-9.e+-]+$'; }
b() { env KILN_LOG=debug ${4:-X=0} timeout 150 $K build models/out/$1.onnx -o /tmp/$2.kiln --fp16 --verbose --shapes input:$3 >$L/b_$2.txt 2>&1 || say "$2 build failed: $(tail -2 $L/b_$2.txt)"; }
b resnet50 r1 1x3x224x224; b efficientnet_b0 e1 1x3x224x224; b yolov8n y1 1x3x640x640
b efficientnet_b0 e256 256x3x224x224; b efficientnet_b0 e256c 256x3x224x224 KILN_CUDA_NO_GEMM_CONV=1
say "built ($((SECONDS-T0)) s)"
declare -A r=()
t() { local n=$1 it=$2 wu=$3
  timeout 60 $K trtexec --loadEngine=/tmp/$n.kiln --noDataTransfers --useCudaGraph --iterations=$it --duration=0 --warmUp=$wu >$L/t.txt 2>&1; r[$n]+=" $(gpu $L/t.txt)"; }
for i in 1 2 3; do t r1 2000 300; t e1 2000 300; t y1 2000 300; t e256 60 500; t e256c 60 500; done
for n in r1 e1 y1 e256 e256c; do say "$n ms:${r[$n]}"; done
say "--- e256: the 16->96 expansion's implicit-GEMM tile shapes, and the 1x1 product-vs-igemm lines (first 6)"
grep -E "c 16 112x112 k 96 1x1" $L/b_e256.txt | cut -c1-160 | tee -a $S
grep -E "1x1 as a cuBLASLt product" $L/b_e256.txt | sed 's/.*: 1x1/1x1/' | head -6 | tee -a $S
say "--- e256c: the expansions' choices"
grep -E "k (96|144|240) 1x1/1 .*chose" $L/b_e256c.txt | cut -c1-160 | head -6 | tee -a $S
timeout 200 ncu --section LaunchStats --section Occupancy --section SpeedOfLight -k regex:k_igemm --launch-count 1 \
  $K trtexec --loadEngine=/tmp/e256c.kiln --noCudaGraph --noDataTransfers --iterations=1 --duration=0 --warmUp=0 >$L/ncu.txt 2>&1
grep -E "k_igemm|Registers Per Thread|Shared Memory Configuration Size|Dynamic Shared Memory Per Block|Achieved Occupancy|Theoretical Occupancy|Block Limit|DRAM Throughput|Memory Throughput|Duration|Compute \(SM\) Throughput|Grid Size|Waves Per SM" $L/ncu.txt | head -30 | tee -a $S
tar -C $L -czf $OUT/logs.tgz .
say "done ($((SECONDS-T0)) s)"
