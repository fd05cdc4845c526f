#!/usr/bin/env bash
# kiln against a second implementation (ONNX Runtime 1.30, CPU) on random
# single-operator models: see tests/peer/run.sh.
#   bash tests/cli/peer_ort.sh /path/to/kiln
# Env (set by CTest): KILN_SOURCE_DIR, KILN_BUILD_DIR (holds tests/kiln-conformance).
# Exits 77 (skipped) when python3-onnx, node or onnxruntime-node cannot be had.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
src=${KILN_SOURCE_DIR:-$(cd "$here/../.." && pwd)}
kiln=${1:?usage: peer_ort.sh /path/to/kiln}
build=${KILN_BUILD_DIR:-$(cd "$(dirname "$kiln")" && pwd)}
exec bash "$src/tests/peer/run.sh" "$build"
