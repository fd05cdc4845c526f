#!/usr/bin/env bash
# Not yet run: the thirty-third session found no machine (every start failed until its device time was spent).
# Checks and times, after `git apply bench/gpu/next/gemv_unroll.patch` and a CUDA build stripped into build-gpu/wt:
#  - the sink_gather_attention pass (ViT-B/16's last attention, its output projection and its query projection
#    on the class token only; landed, CPU-checked, never run on a GPU);
#  - the few-row kernels with their loads issued first and one shared epilogue (the patch).
# Order, most important first, the summary written as it goes:
#  1. ViT-B/16 FP16 b1 engines: everything (v1), --disable-pass sink_gather_attention (vs), KILN_CUDA_NO_GEMV=1 (v0);
#     three alternating rounds; kiln compare against the CPU at b1 and b2;
#  2. test_cuda_dnn (the few-row kernels forced on every product they take), tests/cuda/gather_view.sh;
#  3. ResNet-50 FP16 b1 with and without the few-row product, three alternating rounds.
#   run(command="OUT=$OUT bash bench/gpu/call33a.sh 2>&1 | tail -40", carry=["build-gpu/wt", ".gpu/libs"])
set -uo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
python3 models/export.py --models vit_b_16,resnet50 >$L/export.log 2>&1
say "exported ($((SECONDS-T0)) s)"
b() { timeout 150 env $4 $K build models/out/$1.onnx -o /tmp/$2.kiln --fp16 --shapes input:$3 $5 >$L/b_$2.txt 2>&1 || say "$2 build failed: $(tail -2 $L/b_$2.txt)"; }
b vit_b_16 v1 1x3x224x224 X=0; b vit_b_16 vs 1x3x224x224 X=0 "--disable-pass sink_gather_attention"; b vit_b_16 v0 1x3x224x224 KILN_CUDA_NO_GEMV=1
say "built ($((SECONDS-T0)) s)"
declare -A r=()
t() { timeout 60 $K trtexec --loadEngine=/tmp/$1.kiln --noDataTransfers --useCudaGraph --iterations=2000 --duration=0 --warmUp=200 >$L/t.txt 2>&1; r[$1]+=" $(gpu $L/t.txt)"; }
for i in 1 2 3; do for e in v1 vs v0; do t $e; done; done
for k in v1 vs v0; do say "$k ms:${r[$k]}"; done
compare vit_b_16 1x3x224x224
compare vit_b_16 2x3x224x224
timeout 60 $K profile /tmp/v1.kiln --iterations 2 >$OUT/p_v1.txt 2>&1
say "v1: $(grep -c 'few-row' $OUT/p_v1.txt) layers on kiln's few-row product ($((SECONDS-T0)) s)"
tests 200
timeout 120 tests/cuda/gather_view.sh $K python3 >$L/gv.log 2>&1; say "gather_view: exit $? $(tail -1 $L/gv.log)"; grep FAIL $L/gv.log | head -5 | tee -a $S
b resnet50 r1 1x3x224x224 X=0; b resnet50 r0 1x3x224x224 KILN_CUDA_NO_GEMV=1
for i in 1 2 3; do for e in r1 r0; do t $e; done; done
for k in r1 r0; do say "$k ms:${r[$k]}"; done
say "done ($((SECONDS-T0)) s)"
