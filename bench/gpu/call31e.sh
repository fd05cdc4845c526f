#!/usr/bin/env bash
# Thirty-first session, fifth call (call31d cut to the device time left): ViT-B/16 b1 with and without sink_gather
# (kiln compare at b2, GPU compute medians, three rounds), and YOLOv8n b1 branches over 1 or 2 side streams, with
# and without early launch within a branch (outputs against branches off, medians, three rounds).
#   run(command="OUT=$OUT bash bench/gpu/call31e.sh 2>&1 | tail -40", carry=["build-gpu/wt", ".gpu/libs"])
set -uo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
python3 models/export.py --models vit_b_16,yolov8n >$L/export.log 2>&1
say "exported ($((SECONDS-T0)) s)"
compare vit_b_16 2x3x224x224
b() { timeout 150 $K build models/out/$1.onnx -o /tmp/$2.kiln --fp16 --shapes input:$3 $4 >$L/b_$2.txt 2>&1 || say "$2 build failed: $(tail -2 $L/b_$2.txt)"; }
b vit_b_16 v1 1x3x224x224; b vit_b_16 v1n 1x3x224x224 "--disable-pass sink_gather"; b yolov8n y1 1x3x640x640
say "built ($((SECONDS-T0)) s)"
KILN_CUDA_BRANCHES=0 timeout 60 $K run /tmp/y1.kiln --random --output $L/o_off >/dev/null 2>&1
KILN_CUDA_SIDE_STREAMS=2 KILN_CUDA_SIDE_PDL=1 timeout 60 $K run /tmp/y1.kiln --random --output $L/o_on >/dev/null 2>&1
diff -rq $L/o_off $L/o_on >/dev/null && [ -n "$(ls $L/o_on)" ] && say "y1 2 streams + PDL: same outputs as branches off" || say "y1: OUTPUTS DIFFER"
declare -A r=()
t() { local n=$1 e=$2
  timeout 60 env $e $K trtexec --loadEngine=/tmp/$n.kiln --noDataTransfers --useCudaGraph --iterations=2000 --duration=0 --warmUp=200 >$L/t.txt 2>&1; r[$n $e]+=" $(gpu $L/t.txt)"; }
for i in 1 2 3; do
  t v1 KILN_X=0; t v1n KILN_X=0
  t y1 KILN_CUDA_BRANCHES=0; t y1 KILN_X=0; t y1 KILN_CUDA_SIDE_STREAMS=2; t y1 "KILN_CUDA_SIDE_STREAMS=2 KILN_CUDA_SIDE_PDL=1"
done
for k in "${!r[@]}"; do say "$k ms:${r[$k]}"; done | sort
say "done ($((SECONDS-T0)) s)"
