#!/usr/bin/env bash
# Compare kiln with a second implementation, ONNX Runtime 1.30 (CPU), on
# seeded random single-operator models the ONNX suite does not have:
#   tests/peer/run.sh [BUILD_DIR]
# 1. gen_cases.py writes the models and inputs (in $TMPDIR, then copied to
#    BUILD_DIR/peer_cases);
# 2. run_ort.js runs them with onnxruntime-node and gen_cases.py stores ORT's
#    outputs as the expected ones (1 and 2 are skipped while the stamp
#    BUILD_DIR/peer_cases/.stamp matches the generator, the runner and ORT);
# 3. BUILD_DIR/tests/kiln-conformance runs kiln on them, with the cases
#    listed in tests/peer/known_differences.txt (ORT does not follow the ONNX
#    spec there) expected to differ.
# onnxruntime-node@1.30.0 comes from kiln_need_ort (scripts/lib.sh): the
# one copy shared by every script ($KILN_ORT_NODE_MODULES, <source>/node_modules
# or <source>/.ort, installed there once under a lock).  Exits 77 (CTest:
# skipped) with a SKIP line when python3 with onnx + numpy, node or the
# package cannot be had.
# Env: KILN_BUILD_DIR (default <source>/build), KILN_PEER_FILTER (a substring
# of the case names, passed to --filter), KILN_PEER_REGEN=1 (regenerate).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
src=$(cd "$here/../.." && pwd)
build=${1:-${KILN_BUILD_DIR:-$src/build}}
build=$(cd "$build" && pwd)
runner=$build/tests/kiln-conformance
cases=$build/peer_cases
# shellcheck source=../../scripts/lib.sh
source "$src/scripts/lib.sh"
ort_version=$KILN_ORT_VERSION
skip() { echo "peer: SKIP: $*"; exit 77; }

[ -x "$runner" ] || { echo "peer: no conformance runner at $runner (build the kiln-conformance target)" >&2; exit 1; }
py=/usr/bin/python3
[ -x "$py" ] || py=$(command -v python3) || skip "no python3"
"$py" -c 'import onnx, numpy' 2>/dev/null || skip "$py lacks the onnx and numpy modules (apt-get install python3-onnx)"
command -v node >/dev/null || skip "no node (apt-get install nodejs npm)"

kiln_need_ort || skip "$kiln_ort_why"
mods=$KILN_ORT_MODULES

stamp=$( { cat "$here/gen_cases.py" "$here/run_ort.js"; echo "ort $ort_version";
           "$py" -c 'import onnx, numpy; print(onnx.__version__, numpy.__version__)'; } | sha256sum | cut -c1-16)
if [ "${KILN_PEER_REGEN:-0}" = 1 ] || [ "$(cat "$cases/.stamp" 2>/dev/null)" != "$stamp" ]; then
    # Work in $TMPDIR (many small files: often much faster than the build
    # folder's file system), then copy the cases less their raw/ files.
    tmp=$(mktemp -d "${TMPDIR:-/tmp}/kiln-peer.XXXXXX")
    trap 'rm -rf "$tmp"' EXIT
    "$py" "$here/gen_cases.py" gen "$tmp/cases"
    node "$here/run_ort.js" "$tmp/cases" "$mods"
    "$py" "$here/gen_cases.py" outputs "$tmp/cases"
    find "$tmp/cases" -mindepth 2 -maxdepth 2 -name raw -type d -exec rm -rf {} +
    echo "$stamp" >"$tmp/cases/.stamp"
    rm -rf "$cases" "$cases.tmp"
    cp -r "$tmp/cases" "$cases.tmp"
    mv "$cases.tmp" "$cases"
else
    echo "peer: using the cases in $cases (generated with ORT $ort_version)"
fi

args=(--root "$cases" --known "$here/known_differences.txt" --table "$build/peer_ops.txt")
[ -n "${KILN_PEER_FILTER:-}" ] && args+=(--filter "$KILN_PEER_FILTER")
rc=0
"$runner" "${args[@]}" || rc=$?
echo "peer: per-operator results in $build/peer_ops.txt"
exit $rc
