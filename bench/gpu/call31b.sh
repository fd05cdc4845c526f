#!/usr/bin/env bash
# Thirty-first session, second call: branch concurrency (a convolution beside the steps before its reader on a
# second stream; KILN_CUDA_BRANCHES=0 turns it off at run time, so one engine serves both sides of the A/B).
# kiln compare against the CPU (ResNet-50 b1/b4, YOLOv8n b1, ResNet-18 b1), GPU compute medians with and without,
# three alternating rounds, and the FP16 b1 profiles of the models that miss their targets, with kernel names.
#   run(command="OUT=$OUT bash bench/gpu/call31b.sh 2>&1 | tail -100", carry=["build-gpu/wt", ".gpu/libs"])
set -uo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
python3 models/export.py --models resnet50,yolov8n,resnet18,vit_b_16,efficientnet_b0 >$L/export.log 2>&1
say "exported ($((SECONDS-T0)) s): $(grep -c done $L/export.log) models"
compare resnet50 1x3x224x224; compare resnet50 4x3x224x224; compare yolov8n 1x3x640x640; compare resnet18 1x3x224x224
b() { timeout 150 $K build models/out/$1.onnx -o /tmp/$2.kiln --fp16 --shapes input:$3 >$L/b_$2.txt 2>&1 || say "$2 build failed: $(tail -2 $L/b_$2.txt)"; }
b resnet50 r1 1x3x224x224; b yolov8n y1 1x3x640x640; b resnet18 s1 1x3x224x224; b resnet50 r8 8x3x224x224
say "built ($((SECONDS-T0)) s)"
for n in r1 y1; do KILN_LOG=debug timeout 60 $K run /tmp/$n.kiln --random >$L/dbg_$n.txt 2>&1; say "$n: $(grep -o 'cuda plan: [0-9]* convolution.*' $L/dbg_$n.txt | head -1)"; done
declare -A r=()
t() { local n=$1 it=$2 wu=$3 e=$4
  timeout 60 env $e $K trtexec --loadEngine=/tmp/$n.kiln --noDataTransfers --useCudaGraph --iterations=$it --duration=0 --warmUp=$wu >$L/t.txt 2>&1; r[$n$e]+=" $(gpu $L/t.txt)"; }
for i in 1 2 3; do
  for n in r1 y1 s1; do t $n 3000 300 KILN_CUDA_BRANCHES=1; t $n 3000 300 KILN_CUDA_BRANCHES=0; done
  t r8 1000 300 KILN_CUDA_BRANCHES=1; t r8 1000 300 KILN_CUDA_BRANCHES=0
done
for k in "${!r[@]}"; do say "$k ms:${r[$k]}"; done | sort
p() { [ $((SECONDS-T0)) -gt 480 ] && { say "skip profile $1"; return; }
  timeout 90 $K profile models/out/$1.onnx --fp16 --shapes $2 --top 60 --iterations 20 --export $OUT/prof_$3.json >$L/prof_$3.txt 2>&1 || say "profile $3 failed: $(tail -2 $L/prof_$3.txt)"
  head -75 $L/prof_$3.txt | cut -c1-240 > $OUT/prof_$3.txt; say "profile $3: $(grep -E 'Profiled' $L/prof_$3.txt)"; }
p resnet50 input:1x3x224x224 r1; p vit_b_16 input:1x3x224x224 v1; p yolov8n input:1x3x640x640 y1; p efficientnet_b0 input:1x3x224x224 e1
tar -C $L -czf $OUT/logs.tgz . 2>/dev/null
say "done ($((SECONDS-T0)) s)"
