#!/usr/bin/env bash
# Build kiln and run the whole test suite with CTest: unit tests, the kiln
# command on the model zoo and on the ONNX conformance suite (../shared).
#   ./scripts/test.sh [--sanitize] [CTEST ARGS...]
# --sanitize builds with clang, AddressSanitizer and UBSan (in build-san/).
# Env: BUILD_DIR (default build/ or build-san/).
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

cmake_args=()
deps=("${KILN_BUILD_DEPS[@]}" "${KILN_PYTHON_DEPS[@]}" "${KILN_TEST_DEPS[@]}")
build=${BUILD_DIR:-$kiln_root/build}
if [ "${1:-}" = --sanitize ]; then
    shift
    deps+=(clang)
    build=${BUILD_DIR:-$kiln_root/build-san}
    cmake_args+=(-DKILN_SANITIZE=ON -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=RelWithDebInfo)
fi
kiln_need "${deps[@]}"
kiln_need_node || echo "test: no node/npm: the ONNX Runtime comparisons will be skipped" >&2
[ -d "$kiln_root/../shared/onnx-backend-tests" ] ||
    echo "test: warning: no ../shared/onnx-backend-tests beside the repository: the conformance test will fail" >&2
kiln_build "$build" "${cmake_args[@]}"
cd "$build"
ctest --output-on-failure -j "${KILN_TEST_JOBS:-2}" "$@"
