#!/usr/bin/env bash
# Quick start: kiln's main job on CPU, from a fresh clone.
#   ./scripts/quickstart.sh
# Installs what is missing (apt-get), builds kiln, exports ResNet-50 from
# PyTorch (seeded random weights: no download), then
#   kiln check   the model,
#   kiln build   an optimized engine (passes, tactics, memory plan, profile batch 1..8),
#   kiln run     the engine on a picture with ImageNet preprocessing and top-5,
#   kiln bench   it (engine load, latency percentiles, throughput),
# and times kiln, ONNX Runtime and PyTorch side by side (bench/run.sh).
# Env: BUILD_DIR (default build/); KILN_QUICK_NO_PEERS=1 skips the peers.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
build=${BUILD_DIR:-$kiln_root/build}
out=$kiln_root/models/out

kiln_need "${KILN_BUILD_DEPS[@]}" "${KILN_PYTHON_DEPS[@]}" desktop-base
kiln_build "$build"
kiln="$build/kiln"
/usr/bin/python3 "$kiln_root/models/export.py" --models resnet50
model=$out/resnet50.onnx
labels=$out/imagenet_labels.txt
[ -s "$labels" ] || /usr/bin/python3 -c \
    "from torchvision.models._meta import _IMAGENET_CATEGORIES as c; print('\n'.join(c))" >"$labels"
picture=$(find /usr/share/desktop-base -name '*.jpg' | sort | head -n 1)

show() { echo; echo "\$ kiln $*" | sed "s|$kiln_root/||g"; "$kiln" "$@"; }
show check "$model"
show info "$model"
engine=$out/resnet50.kiln
show build "$model" -o "$engine" --minShapes input:1x3x224x224 --optShapes input:1x3x224x224 \
    --maxShapes input:8x3x224x224 --timing-cache "$out/kiln.timing"
show info "$engine"
show run "$engine" --input "$picture" --topk 5 --labels "$labels"
echo "(the weights are random, so the classes are too: the point is the pipeline)"
show bench "$engine" --duration 5
if [ "${KILN_QUICK_NO_PEERS:-0}" != 1 ]; then
    echo
    echo "\$ bench/run.sh --models resnet50 --batches 1 --threads 1   # kiln vs ONNX Runtime vs PyTorch"
    kiln_need libopenblas0-pthread
    kiln_need_node || echo "quickstart: no node/npm: the ONNX Runtime column will be missing" >&2
    "$kiln_root/bench/run.sh" --models resnet50 --batches 1 --threads 1 --rounds 3 --build "$build-bench"
fi
