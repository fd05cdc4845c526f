#!/usr/bin/env bash
# Thirty-second session, first call: Gathers of one index read in place (kl_gather_view) checked
# (tests/cuda/gather_view.sh, kiln compare of ViT-B/16 at b1 and b2) and timed on ViT-B/16 b1 (one engine,
# KILN_CUDA_GATHER_VIEW=0/1, three rounds); YOLOv8n b1 branches over 1, 2 or 3 side streams, with and without
# early launch within a branch (outputs against branches off); ncu's kernel breakdown of ViT-B/16 b1.
#   run(command="OUT=$OUT bash bench/gpu/call32a.sh 2>&1 | tail -60", carry=["build-gpu/wt", ".gpu/libs"])
set -uo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
tests/cuda/gather_view.sh $K python3 >$L/gv.log 2>&1; say "gather_view.sh: exit $? $(tail -1 $L/gv.log)"
grep -E "FAIL" $L/gv.log | head -12 | tee -a $S; cp $L/gv.log $OUT/
python3 models/export.py --models vit_b_16,yolov8n >$L/export.log 2>&1
say "exported ($((SECONDS-T0)) s)"
compare vit_b_16 1x3x224x224
compare vit_b_16 2x3x224x224
b() { timeout 150 $K build models/out/$1.onnx -o /tmp/$2.kiln --fp16 --shapes input:$3 ${4:-} >$L/b_$2.txt 2>&1 || say "$2 build failed: $(tail -2 $L/b_$2.txt)"; }
b vit_b_16 v1 1x3x224x224; b yolov8n y1 1x3x640x640
say "built ($((SECONDS-T0)) s)"
KILN_CUDA_GATHER_VIEW=0 timeout 60 $K run /tmp/v1.kiln --random --output $L/v_off >/dev/null 2>&1
timeout 60 $K run /tmp/v1.kiln --random --output $L/v_on >/dev/null 2>&1
diff -rq $L/v_off $L/v_on >/dev/null && [ -n "$(ls $L/v_on)" ] && say "v1: same outputs with and without Gather views" || say "v1: OUTPUTS DIFFER"
KILN_CUDA_BRANCHES=0 timeout 60 $K run /tmp/y1.kiln --random --output $L/o_off >/dev/null 2>&1
for e in KILN_CUDA_SIDE_STREAMS=2 KILN_CUDA_SIDE_STREAMS=3 "KILN_CUDA_SIDE_STREAMS=2 KILN_CUDA_SIDE_PDL=1"; do
  rm -rf $L/o_on; env $e timeout 60 $K run /tmp/y1.kiln --random --output $L/o_on >/dev/null 2>&1
  diff -rq $L/o_off $L/o_on >/dev/null && [ -n "$(ls $L/o_on)" ] && say "y1 $e: same outputs as branches off" || say "y1 $e: OUTPUTS DIFFER"
done
declare -A r=()
t() { local n=$1 e=$2
  timeout 60 env $e $K trtexec --loadEngine=/tmp/$n.kiln --noDataTransfers --useCudaGraph --iterations=2000 --duration=0 --warmUp=200 >$L/t.txt 2>&1; r[$n $e]+=" $(gpu $L/t.txt)"; }
for i in 1 2 3; do
  t v1 KILN_CUDA_GATHER_VIEW=0; t v1 KILN_X=0
  t y1 KILN_X=0; t y1 KILN_CUDA_SIDE_STREAMS=2; t y1 KILN_CUDA_SIDE_STREAMS=3; t y1 "KILN_CUDA_SIDE_STREAMS=2 KILN_CUDA_SIDE_PDL=1"
done
for k in "${!r[@]}"; do say "$k ms:${r[$k]}"; done | sort
say "timed ($((SECONDS-T0)) s)"
kb /tmp/v1.kiln vit_b1
say "done ($((SECONDS-T0)) s)"
