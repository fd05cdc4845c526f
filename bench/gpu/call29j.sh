#!/usr/bin/env bash
# Twenty-ninth session: the depthwise run form for large layers (dw_run_item: 4 pixels of a row a thread, one
# kernel row at a time), checked and timed.
# 1. test_cuda_kernels (four pooled cases over 2^18 items) and test_cuda_dnn (two depthwise cases over 2^18);
# 2. kiln compare FP32/FP16 against the CPU at batch 8 (over 2^18 items): EfficientNet-B0, MobileNet-V2;
# 3. GPU compute medians, three alternating rounds: EfficientNet-B0 and MobileNet-V2 FP16 b256 with the run form
#    and without (KILN_CUDA_DW_RUN=0, engines built so), EfficientNet-B0 b1.
#   OUT=... bench/gpu/call29j.sh   (build-gpu/wt: kiln, test_cuda_kernels, test_cuda_dnn from a CUDA build)
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
OUT=${OUT:-/tmp/o}; mkdir -p "$OUT"; T0=$SECONDS; S=$OUT/summary.txt; L=/tmp/logs; mkdir -p $L
export LD_LIBRARY_PATH=$PWD/.gpu/libs:${LD_LIBRARY_PATH:-}
say() { echo "$*" | tee -a $S; }
K=build-gpu/wt/kiln; T=build-gpu/wt
say "$(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader)"
python3 models/export.py --models efficientnet_b0,mobilenet_v2 >$L/export.log 2>&1 &
timeout 150 $T/test_cuda_kernels >$L/k.log 2>&1; say "test_cuda_kernels: exit $? $(tail -1 $L/k.log)"
grep -E "^FAIL" $L/k.log | cut -c1-200 | head -6 | tee -a $S
timeout 240 $T/test_cuda_dnn >$L/d.log 2>&1; say "test_cuda_dnn: exit $? $(tail -1 $L/d.log)"
grep -E "^FAIL" $L/d.log | cut -c1-200 | head -6 | tee -a $S
grep -E "large" $L/d.log | cut -c1-150 | tee -a $S
wait; say "exported ($((SECONDS-T0)) s)"
cmp() { timeout 150 $K compare models/out/$1.onnx --providers cpu,cuda --precisions fp32,fp16 --shapes input:$2 --iterations 1 >$L/cmp_$1.txt 2>&1
  say "$1 compare exit $?: $(grep -E '^cuda' $L/cmp_$1.txt | tr -s ' ' | tr '\n' ';')"; }
cmp efficientnet_b0 8x3x224x224; cmp mobilenet_v2 8x3x224x224
gpu() { grep -oE 'GPU Compute Time: .*median = [0-9.e+-]+' "$1" | grep -oE '[0-9.e+-]+$'; }
b() { env KILN_LOG=debug ${4:-X=0} timeout 150 $K build models/out/$1.onnx -o /tmp/$2.kiln --fp16 --verbose --shapes input:$3 >$L/b_$2.txt 2>&1 || say "$2 build failed: $(tail -2 $L/b_$2.txt)"; }
b efficientnet_b0 e1 1x3x224x224
b efficientnet_b0 e256 256x3x224x224; b efficientnet_b0 e256o 256x3x224x224 KILN_CUDA_DW_RUN=0
b mobilenet_v2 m256 256x3x224x224; b mobilenet_v2 m256o 256x3x224x224 KILN_CUDA_DW_RUN=0
say "built ($((SECONDS-T0)) s)"
declare -A r=()
t() { local n=$1 it=$2 wu=$3; shift 3
  env "$@" timeout 60 $K trtexec --loadEngine=/tmp/$n.kiln --noDataTransfers --useCudaGraph --iterations=$it --duration=0 --warmUp=$wu >$L/t.txt 2>&1; r[$n]+=" $(gpu $L/t.txt)"; }
for i in 1 2 3; do t e1 2000 300 X=0; t e256 60 500 X=0; t e256o 60 500 KILN_CUDA_DW_RUN=0; t m256 60 500 X=0; t m256o 60 500 KILN_CUDA_DW_RUN=0; done
for n in e1 e256 e256o m256 m256o; do say "$n ms:${r[$n]}"; done
say "--- e256: kiln depthwise against cuDNN (chose 1000 = kiln)"
grep -E "g (32|96|144|240|480|672|1152) act .*(kiln depthwise|chose)" $L/b_e256.txt | cut -c14-150 | head -40 | tee -a $S
tar -C $L -czf $OUT/logs.tgz .
say "done ($((SECONDS-T0)) s)"
