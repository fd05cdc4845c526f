#!/usr/bin/env bash
# engine build time (cold / with the timing cache) and load + context, ResNet-50 and ViT-B/16 FP16 b1.
set -uo pipefail
OUT=${OUT:-$PWD/gpu-out}; mkdir -p "$OUT"
B=build-gpu
[ -x $B/kiln ] || OUT=$OUT/b timeout 240 scripts/gpu-check.sh build 2>&1 | grep -E "built|error" | head -5
MODELS=resnet50,vit_b_16 OUT=$OUT/m timeout 120 scripts/gpu-check.sh models 2>&1 | tail -2
for m in resnet50 vit_b_16; do
  rm -f /tmp/tc_$m
  for k in cold cached; do
    s=$(date +%s.%N)
    timeout 120 $B/kiln build models/out/$m.onnx -o /tmp/$m.kiln --fp16 --shapes input:1x3x224x224 --timing-cache /tmp/tc_$m >/tmp/b.txt 2>&1 || echo "$m build failed: $(tail -2 /tmp/b.txt)"
    e=$(date +%s.%N)
    echo "$m fp16 b1 build $k: $(python3 -c "print(round($e - $s, 2))") s wall; $(grep -E 'Build time' /tmp/b.txt)"
  done
  timeout 60 $B/kiln bench /tmp/$m.kiln --iterations 200 2>&1 | grep -E "Engine load|First engine|Latency" | cut -c1-160
done
