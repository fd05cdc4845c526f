#!/usr/bin/env bash
# Twenty-ninth session, final check on the final code: test_cuda_kernels and test_cuda_dnn (their large depthwise
# cases now on the one-pixel taps form), kiln compare at batch 8 (EfficientNet-B0, MobileNet-V2) and ResNet-50 b1,
# and GPU compute medians (two alternating rounds) of every target engine at b1 and b256.
#   OUT=... bench/gpu/call29k.sh   (build-gpu/wt: kiln, test_cuda_kernels, test_cuda_dnn from a CUDA build)
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
OUT=${OUT:-/tmp/o}; mkdir -p "$OUT"; T0=$SECONDS; S=$OUT/summary.txt; L=/tmp/logs; mkdir -p $L
export LD_LIBRARY_PATH=$PWD/.gpu/libs:${LD_LIBRARY_PATH:-}
say() { echo "$*" | tee -a $S; }
K=build-gpu/wt/kiln; T=build-gpu/wt
say "$(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader)"
python3 models/export.py --models resnet50,efficientnet_b0,mobilenet_v2,yolov8n,vit_b_16 >$L/export.log 2>&1 &
timeout 150 $T/test_cuda_kernels >$L/k.log 2>&1; say "test_cuda_kernels: exit $? $(tail -1 $L/k.log)"
grep -E "^FAIL" $L/k.log | cut -c1-200 | head -6 | tee -a $S
timeout 240 $T/test_cuda_dnn >$L/d.log 2>&1; say "test_cuda_dnn: exit $? $(tail -1 $L/d.log)"
grep -E "^FAIL" $L/d.log | cut -c1-200 | head -6 | tee -a $S
wait; say "exported ($((SECONDS-T0)) s)"
cmp() { timeout 150 $K compare models/out/$1.onnx --providers cpu,cuda --precisions fp32,fp16 --shapes input:$2 --iterations 1 >$L/cmp_$1.txt 2>&1
  say "$1 $2 compare exit $?: $(grep -E '^cuda' $L/cmp_$1.txt | tr -s ' ' | tr '\n' ';')"; }
cmp efficientnet_b0 8x3x224x224; cmp mobilenet_v2 8x3x224x224; cmp resnet50 1x3x224x224
gpu() { grep -oE 'GPU Compute Time: .*median = [0-9.e+-]+' "$1" | grep -oE '[0-9.e+-]+$'; }
b() { timeout 150 $K build models/out/$1.onnx -o /tmp/$2.kiln --fp16 --shapes input:$3 >$L/b_$2.txt 2>&1 || say "$2 build failed: $(tail -2 $L/b_$2.txt)"; }
b resnet50 r1 1x3x224x224; b efficientnet_b0 e1 1x3x224x224; b mobilenet_v2 m1 1x3x224x224
b yolov8n y1 1x3x640x640; b vit_b_16 v1 1x3x224x224
b resnet50 r256 256x3x224x224; b efficientnet_b0 e256 256x3x224x224; b mobilenet_v2 m256 256x3x224x224
b vit_b_16 v256 256x3x224x224
say "built ($((SECONDS-T0)) s)"
declare -A r=()
t() { local n=$1 it=$2 wu=$3
  timeout 60 $K trtexec --loadEngine=/tmp/$n.kiln --noDataTransfers --useCudaGraph --iterations=$it --duration=0 --warmUp=$wu >$L/t.txt 2>&1; r[$n]+=" $(gpu $L/t.txt)"; }
for i in 1 2; do
  for n in r1 e1 m1 y1 v1; do t $n 2000 300; done
  for n in r256 e256 m256; do t $n 50 150; done
  t v256 30 40
done
for n in r1 e1 m1 y1 v1 r256 e256 m256 v256; do say "$n ms:${r[$n]}"; done
tar -C $L -czf $OUT/logs.tgz .
say "done ($((SECONDS-T0)) s)"
