#!/usr/bin/env bash
# Thirty-first session, first call: the thirtieth session's code on a GPU. call30a.sh (tests, compare at b8, the
# depthwise tiles A/B at b1/b256, ncu breakdown) and then the profiles of the b1 engines that miss their targets
# (ResNet-50, ViT-B/16, YOLOv8n, EfficientNet-B0) with the kernel each layer ran (kiln_context_layer_kernel).
#   run(command="OUT=$OUT bash bench/gpu/call31a.sh 2>&1 | tail -100", carry=["build-gpu/wt", ".gpu/libs"])
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
python3 models/export.py --models resnet50,vit_b_16,yolov8n >/tmp/export2.log 2>&1 &
bash bench/gpu/call30a.sh
wait
. bench/gpu/lib.sh
say "exported 2: $(tail -1 /tmp/export2.log)"
p() { [ $((SECONDS-T0)) -gt 500 ] && { say "skip profile $1"; return; }
  timeout 90 $K profile models/out/$1.onnx --fp16 --shapes $2 --top 40 --export $OUT/prof_$3.json >$L/prof_$3.txt 2>&1 || say "profile $3 failed: $(tail -2 $L/prof_$3.txt)"
  head -55 $L/prof_$3.txt | cut -c1-220 > $OUT/prof_$3.txt; say "profile $3: $(grep -iE 'total|median' $L/prof_$3.txt | head -2 | tr '\n' ' ')"; }
p resnet50 input:1x3x224x224 r1
p vit_b_16 input:1x3x224x224 v1
p yolov8n input:1x3x640x640 y1
p efficientnet_b0 input:1x3x224x224 e1
say "all done ($((SECONDS-T0)) s)"
