#!/usr/bin/env bash
# The builder's acceptance checks on the exported model zoo (after cli.zoo
# has exported it): every model through kiln_build -> save -> load -> run
# against PyTorch and the unoptimized session; the ResNet-50 arena at
# batch 8; text_encoder with one profile (grid, flat RSS, refusal outside).
#   tests/cli/engine_zoo.sh KILN   (env: KILN_SOURCE_DIR, KILN_BUILD_DIR, KILN_TEST_QUICK)
set -uo pipefail
src=${KILN_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
build=${KILN_BUILD_DIR:-$src/build}
check=$build/tests/engine_check
models=$src/models/out
[ -x "$check" ] || { echo "engine_zoo: $check is not built"; exit 1; }
if [ ! -f "$models/resnet50.onnx" ] || [ ! -f "$models/text_encoder.onnx" ]; then
    echo "engine_zoo: SKIP: the zoo is not exported (tests/cli/zoo.sh exports it)"
    exit 77
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0
# Sanitizer builds (KILN_TEST_QUICK) leave the three largest models to the
# plain build, as tests/cli/zoo.sh does: under ASan they take tens of minutes.
big=" vit_b_16 ssdlite320_mobilenet_v3_large sam_vit_b_encoder "
for f in "$models"/*.onnx; do
    m=$(basename "$f" .onnx)
    data=$models/${m}_ref/test_data_set_0
    [ -d "$data" ] || continue
    if [ -n "${KILN_TEST_QUICK:-}" ] && [[ "$big" == *" $m "* ]]; then
        echo "skip $m: sanitizer build (checked by the plain build)"
        continue
    fi
    "$check" roundtrip "$f" "$data" "$tmp/$m.kiln" || fail=1
done
"$check" arena "$models/resnet50.onnx" 8 0.40 || fail=1
runs=1000
[ -n "${KILN_TEST_QUICK:-}" ] && runs=100
"$check" grid "$models/text_encoder.onnx" "$runs" || fail=1
# An engine whose tactics need an ISA level this CPU (as KILN_ISA=ref makes
# it look) lacks is refused, naming the tactic and asking for a rebuild.
kiln=${1:-$build/kiln}
if "$kiln" build "$models/resnet18.onnx" -o "$tmp/r18.kiln" >/dev/null 2>&1; then
    if grep -q avx2 /proc/cpuinfo; then
        out=$(KILN_ISA=ref "$kiln" info "$tmp/r18.kiln" 2>&1)
        rc=$?
        if [ "$rc" = 1 ] && echo "$out" | grep -q "needs avx2" && echo "$out" | grep -q "rebuild the engine" &&
            [ "$(echo "$out" | wc -l)" = 1 ]; then
            echo "ok ISA mismatch refused: $out"
        else
            echo "FAIL ISA mismatch (rc $rc): $out"
            fail=1
        fi
    fi
else
    echo "FAIL kiln build resnet18"
    fail=1
fi
[ "$fail" = 0 ] && echo "engine_zoo: all passed"
exit "$fail"
