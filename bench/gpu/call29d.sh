#!/usr/bin/env bash
# Twenty-ninth session: the depthwise taps form at every size (now the default) and kiln's implicit GEMM timed
# for every float16 convolution (KILN_CUDA_IGEMM_ALL=1) at batch 256, with the builds' debug logs (every
# convolution's timed candidates and choice); b1 engines as a check.  Logs in $OUT/logs.tgz.
#   OUT=... bench/gpu/call29d.sh   (build-gpu/wt/kiln from a CUDA build)
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
OUT=${OUT:-/tmp/o}; mkdir -p "$OUT"; T0=$SECONDS; S=$OUT/summary.txt; L=/tmp/logs; mkdir -p $L
export LD_LIBRARY_PATH=$PWD/.gpu/libs:${LD_LIBRARY_PATH:-}
say() { echo "$*" | tee -a $S; }
K=build-gpu/wt/kiln
say "$(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader)"
python3 models/export.py --models resnet50,efficientnet_b0,yolov8n >$L/export.log 2>&1
gpu() { grep -oE 'GPU Compute Time: .*median = [0-9.e+-]+' "$1" | grep -oE '[0-9.e+-]+$'; }
b() { env KILN_LOG=debug ${4:-X=0} timeout 150 $K build models/out/$1.onnx -o /tmp/$2.kiln --fp16 --verbose --shapes input:$3 >$L/b_$2.txt 2>&1 || say "$2 build failed: $(tail -2 $L/b_$2.txt)"; }
b resnet50 r1 1x3x224x224; b efficientnet_b0 e1 1x3x224x224; b yolov8n y1 1x3x640x640
b resnet50 r256 256x3x224x224; b resnet50 r256ig 256x3x224x224 KILN_CUDA_IGEMM_ALL=1
b efficientnet_b0 e256 256x3x224x224; b efficientnet_b0 e256ig 256x3x224x224 KILN_CUDA_IGEMM_ALL=1
say "built ($((SECONDS-T0)) s)"
declare -A r=()
t() { local n=$1 it=$2 wu=$3
  timeout 60 $K trtexec --loadEngine=/tmp/$n.kiln --noDataTransfers --useCudaGraph --iterations=$it --duration=0 --warmUp=$wu >$L/t.txt 2>&1; r[$n]+=" $(gpu $L/t.txt)"; }
for i in 1 2 3; do
  t r1 2000 300; t e1 2000 300; t y1 2000 300
  t r256 60 500; t r256ig 60 500; t e256 60 500; t e256ig 60 500
done
for n in r1 e1 y1 r256 r256ig e256 e256ig; do say "$n ms:${r[$n]}"; done
for n in r256 r256ig e256 e256ig; do
  say "--- $n: choices (first 12) and the 1x1 product-vs-igemm lines (first 8)"
  grep -E "conv .*: chose" $L/b_$n.txt | head -12 | cut -c1-200 | tee -a $S
  grep -E "1x1 as a cuBLASLt product" $L/b_$n.txt | head -8 | cut -c1-220 | tee -a $S
done
tar -C $L -czf $OUT/logs.tgz .
say "done ($((SECONDS-T0)) s)"
