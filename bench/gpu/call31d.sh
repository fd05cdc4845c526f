#!/usr/bin/env bash
# Thirty-first session, fourth call: ViT-B/16 b1 with and without the sink_gather pass (class token only through
# the last MLP); branches over 1, 2 or 3 side streams (KILN_CUDA_SIDE_STREAMS, read at run time),
# later steps of a branch launched early (PDL) after its first (KILN_CUDA_SIDE_PDL=1). Outputs against branches off (same bytes expected),
# kiln compare of YOLOv8n, GPU compute medians, three alternating rounds.
#   run(command="OUT=$OUT bash bench/gpu/call31d.sh 2>&1 | tail -60", carry=["build-gpu/wt", ".gpu/libs"])
set -uo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
python3 models/export.py --models resnet50,yolov8n,resnet18,vit_b_16 >$L/export.log 2>&1
say "exported ($((SECONDS-T0)) s)"
compare yolov8n 1x3x640x640; compare vit_b_16 2x3x224x224
b() { timeout 150 $K build models/out/$1.onnx -o /tmp/$2.kiln --fp16 --shapes input:$3 >$L/b_$2.txt 2>&1 || say "$2 build failed: $(tail -2 $L/b_$2.txt)"; }
b resnet50 r1 1x3x224x224; b yolov8n y1 1x3x640x640; b resnet18 s1 1x3x224x224; b vit_b_16 v1 1x3x224x224
timeout 150 $K build models/out/vit_b_16.onnx -o /tmp/v1n.kiln --fp16 --shapes input:1x3x224x224 --disable-pass sink_gather >$L/b_v1n.txt 2>&1 || say "v1n build failed"
say "built ($((SECONDS-T0)) s)"
for n in r1 y1; do KILN_CUDA_BRANCHES=0 timeout 60 $K run /tmp/$n.kiln --random --output $L/o_${n}_off >/dev/null 2>&1
  for q in 1 2 3; do KILN_CUDA_SIDE_PDL=1 KILN_CUDA_SIDE_STREAMS=$q timeout 60 $K run /tmp/$n.kiln --random --output $L/o_${n}_$q >/dev/null 2>&1
    diff -rq $L/o_${n}_off $L/o_${n}_$q >/dev/null && [ -n "$(ls $L/o_${n}_$q)" ] && say "$n streams $q: same outputs as branches off" || say "$n streams $q: OUTPUTS DIFFER"; done; done
declare -A r=()
t() { local n=$1 e=$2
  timeout 60 env $e $K trtexec --loadEngine=/tmp/$n.kiln --noDataTransfers --useCudaGraph --iterations=2000 --duration=0 --warmUp=200 >$L/t.txt 2>&1; r[$n $e]+=" $(gpu $L/t.txt)"; }
for i in 1 2 3; do for n in y1 r1 s1; do
  t $n KILN_CUDA_BRANCHES=0; t $n KILN_CUDA_SIDE_STREAMS=1; t $n KILN_CUDA_SIDE_STREAMS=2
  t $n KILN_CUDA_SIDE_PDL=1; t $n "KILN_CUDA_SIDE_STREAMS=2 KILN_CUDA_SIDE_PDL=1"; done; done
for i in 1 2 3; do t v1 KILN_X=0; t v1n KILN_X=0; done
for k in "${!r[@]}"; do say "$k ms:${r[$k]}"; done | sort
say "done ($((SECONDS-T0)) s)"
