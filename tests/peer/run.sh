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
# onnxruntime-node@1.30.0 is taken from $KILN_ORT_NODE_MODULES (a
# node_modules folder), <source>/node_modules, or BUILD_DIR/peer_ort, where
# it is installed with npm when missing (the package ships its CPU binaries:
# no install script needed).  Exits 77 (CTest: skipped) with a SKIP line when
# python3 with onnx + numpy, node or the package cannot be had.
# Env: KILN_BUILD_DIR (default <source>/build), KILN_PEER_FILTER (a substring
# of the case names, passed to --filter), KILN_PEER_REGEN=1 (regenerate).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
src=$(cd "$here/../.." && pwd)
build=${1:-${KILN_BUILD_DIR:-$src/build}}
build=$(cd "$build" && pwd)
runner=$build/tests/kiln-conformance
cases=$build/peer_cases
ort_version=1.30.0
skip() { echo "peer: SKIP: $*"; exit 77; }

[ -x "$runner" ] || { echo "peer: no conformance runner at $runner (build the kiln-conformance target)" >&2; exit 1; }
py=/usr/bin/python3
[ -x "$py" ] || py=$(command -v python3) || skip "no python3"
"$py" -c 'import onnx, numpy' 2>/dev/null || skip "$py lacks the onnx and numpy modules (apt-get install python3-onnx)"
command -v node >/dev/null || skip "no node (apt-get install nodejs npm)"

# A node_modules folder holding onnxruntime-node $ort_version, or nothing.
ort_ok() {
    [ -d "$1/onnxruntime-node" ] &&
        node -e "const o = require(process.argv[1] + '/onnxruntime-node');
                 if (!o.env.versions || o.env.versions.node !== process.argv[2]) process.exit(1);" \
            "$1" "$ort_version" >/dev/null 2>&1
}
mods=
for d in "${KILN_ORT_NODE_MODULES:-}" "$src/node_modules" "$build/peer_ort/node_modules"; do
    if [ -n "$d" ] && ort_ok "$d"; then mods=$d; break; fi
done
if [ -z "$mods" ]; then
    command -v npm >/dev/null || skip "onnxruntime-node@$ort_version is not installed and there is no npm (apt-get install npm)"
    echo "peer: installing onnxruntime-node@$ort_version into $build/peer_ort (npm)..."
    mkdir -p "$build/peer_ort"
    [ -f "$build/peer_ort/package.json" ] || echo '{"name": "kiln-peer-ort", "private": true}' >"$build/peer_ort/package.json"
    # --ignore-scripts: the package's install script only fetches GPU providers;
    # the CPU binaries for linux/x64 are inside the package.
    if ! (cd "$build/peer_ort" && timeout 900 npm install --ignore-scripts --prefer-offline --no-audit --no-fund \
            --loglevel=error "onnxruntime-node@$ort_version" >install.log 2>&1); then
        tail -5 "$build/peer_ort/install.log" | sed 's/^/peer:   /'
        skip "npm could not install onnxruntime-node@$ort_version (log: $build/peer_ort/install.log)"
    fi
    ort_ok "$build/peer_ort/node_modules" ||
        skip "onnxruntime-node@$ort_version does not load here (node $(node --version), $(uname -m))"
    mods=$build/peer_ort/node_modules
fi

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
