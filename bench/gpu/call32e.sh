#!/usr/bin/env bash
# Not yet run (the thirty-second session ran out of device time): apply bench/gpu/next/gemv_unroll.patch, build, then
# the few-row kernels that load their rows before using them checked (test_cuda_dnn) and timed: ViT-B/16 and
# EfficientNet-B0 FP16 b1 engines built with them among the candidates and with KILN_CUDA_NO_GEMV=1, three
# alternating rounds; kiln compare of ViT-B/16 b1 against the CPU.
#   run(command="OUT=$OUT bash bench/gpu/call32e.sh 2>&1 | tail -40", carry=["build-gpu/wt", ".gpu/libs"])
set -uo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
timeout 200 $T/test_cuda_dnn >$L/d.log 2>&1; say "test_cuda_dnn: exit $? $(tail -1 $L/d.log)"
grep -E "^FAIL" $L/d.log | cut -c1-220 | head -8 | tee -a $S
grep -E "gemm (1x|2x264|3x40|4x|5x64)" $L/d.log | grep f16 | cut -c1-110 | tee -a $S
python3 models/export.py --models vit_b_16,efficientnet_b0 >$L/export.log 2>&1
say "exported ($((SECONDS-T0)) s)"
b() { timeout 150 env $4 $K build models/out/$1.onnx -o /tmp/$2.kiln --fp16 --shapes input:$3 >$L/b_$2.txt 2>&1 || say "$2 build failed: $(tail -2 $L/b_$2.txt)"; }
for m in vit_b_16:v efficientnet_b0:e; do
  b ${m%%:*} ${m##*:}1 1x3x224x224 X=0; b ${m%%:*} ${m##*:}0 1x3x224x224 KILN_CUDA_NO_GEMV=1
  timeout 60 $K profile /tmp/${m##*:}1.kiln --iterations 2 >$L/p_${m##*:}.txt 2>&1
  say "${m%%:*} b1: $(grep -c 'few-row' $L/p_${m##*:}.txt) layers on kiln's few-row product: $(grep 'few-row' $L/p_${m##*:}.txt | awk '{print $NF}' | cut -c1-60 | tr '\n' ' ')"
done
say "built ($((SECONDS-T0)) s)"
declare -A r=()
t() { timeout 60 $K trtexec --loadEngine=/tmp/$1.kiln --noDataTransfers --useCudaGraph --iterations=2000 --duration=0 --warmUp=200 >$L/t.txt 2>&1; r[$1]+=" $(gpu $L/t.txt)"; }
for i in 1 2 3; do for e in v1 v0 e1 e0; do t $e; done; done
for k in v1 v0 e1 e0; do say "$k (1: with the few-row product, 0: KILN_CUDA_NO_GEMV=1) ms:${r[$k]}"; done
say "timed ($((SECONDS-T0)) s)"
compare vit_b_16 1x3x224x224
say "done ($((SECONDS-T0)) s)"
