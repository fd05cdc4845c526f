#!/usr/bin/env bash
# Quick start: install what is missing, build kiln, export ResNet-18 with
# seeded random weights, and show `kiln info` and `kiln check` on it.
#   ./scripts/quickstart.sh
# Env: BUILD_DIR (default build/).
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
build=${BUILD_DIR:-$kiln_root/build}

kiln_need "${KILN_BUILD_DEPS[@]}" "${KILN_PYTHON_DEPS[@]}"
kiln_build "$build"
/usr/bin/python3 "$kiln_root/models/export.py" --models resnet18
model=$kiln_root/models/out/resnet18.onnx
echo
echo "\$ kiln info ${model#"$kiln_root"/}"
"$build/kiln" info "$model"
echo
echo "\$ kiln check ${model#"$kiln_root"/}"
"$build/kiln" check "$model"
