#!/usr/bin/env bash
# Thirty-first session, third call: branches of several convolutions (YOLOv8n's heads), overlapping branches (an event each) and 1x1 products as
# branch steps. kiln compare against the CPU, which branches run beside (debug log), GPU compute medians with
# and without (KILN_CUDA_BRANCHES=0 at run time), three alternating rounds, ncu's breakdown of ResNet-50 b1.
#   run(command="OUT=$OUT bash bench/gpu/call31c.sh 2>&1 | tail -100", carry=["build-gpu/wt", ".gpu/libs"])
set -uo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
python3 models/export.py --models resnet50,yolov8n,resnet18,efficientnet_b0 >$L/export.log 2>&1
say "exported ($((SECONDS-T0)) s): $(grep -c done $L/export.log) models"
compare resnet50 1x3x224x224; compare yolov8n 1x3x640x640; compare yolov8n 2x3x640x640; compare resnet18 2x3x224x224
b() { timeout 150 $K build models/out/$1.onnx -o /tmp/$2.kiln --fp16 --shapes input:$3 >$L/b_$2.txt 2>&1 || say "$2 build failed: $(tail -2 $L/b_$2.txt)"; }
b resnet50 r1 1x3x224x224; b yolov8n y1 1x3x640x640; b resnet18 s1 1x3x224x224; b efficientnet_b0 e1 1x3x224x224
say "built ($((SECONDS-T0)) s)"
for n in r1 y1 s1 e1; do KILN_LOG=debug timeout 60 $K run /tmp/$n.kiln --random >$L/dbg_$n.txt 2>&1
  say "$n: $(grep -oE 'cuda plan: [0-9]+ branch.*' $L/dbg_$n.txt | head -1) | in order: $(grep -c 'stays in order' $L/dbg_$n.txt)"; done
grep -h 'stays in order' $L/dbg_*.txt | head -8 | cut -c1-200 | tee -a $S
# outputs with and without branches, the same engine: identical bytes expected (same kernels, same order per stream)
for n in r1 y1; do for v in 0 1; do KILN_CUDA_BRANCHES=$v timeout 60 $K run /tmp/$n.kiln --random --output $L/o_${n}_$v >/dev/null 2>&1; done
  diff -rq $L/o_${n}_0 $L/o_${n}_1 >/dev/null && [ -n "$(ls $L/o_${n}_1)" ] && say "$n: outputs identical with and without branches" || say "$n: OUTPUTS DIFFER with and without branches"; done
declare -A r=()
t() { local n=$1 it=$2 wu=$3 e=$4
  timeout 60 env $e $K trtexec --loadEngine=/tmp/$n.kiln --noDataTransfers --useCudaGraph --iterations=$it --duration=0 --warmUp=$wu >$L/t.txt 2>&1; r[$n$e]+=" $(gpu $L/t.txt)"; }
for i in 1 2 3; do
  for n in r1 y1 s1 e1; do t $n 3000 300 KILN_CUDA_BRANCHES=1; t $n 3000 300 KILN_CUDA_BRANCHES=0; done
done
for k in "${!r[@]}"; do say "$k ms:${r[$k]}"; done | sort
kb /tmp/r1.kiln resnet50_b1
timeout 90 $K profile /tmp/y1.kiln --top 40 --iterations 20 >$L/prof_y1.txt 2>&1; head -50 $L/prof_y1.txt | cut -c1-230 > $OUT/prof_y1.txt
tar -C $L -czf $OUT/logs.tgz . 2>/dev/null
say "done ($((SECONDS-T0)) s)"
