#!/usr/bin/env bash
# Correctness on the model zoo:
#   bash tests/cli/zoo.sh /path/to/kiln
# Exports the zoo models that models/out lacks (models/export.py, seeded
# weights), then runs each with kiln through tests/models/zoo_check (public C
# API) on each of its data sets (NAME_ref/test_data_set_N: the traced batch,
# and another batch size / sequence length) and compares its outputs with
# PyTorch's on the same input and, when onnxruntime-node 1.30 loads, with
# ONNX Runtime's (tests/models/ort_run.js): relative L2 error <= 1e-5 and max
# abs error <= 1e-4 x max|reference| (float64 metrics), the same top-5
# classes for classifiers, integer outputs identical, outputs finite and not
# near zero; yolov8n's [batch, 84, 8400] output also box and class-score parts
# on their own (zoo_check --split).  A model kiln cannot run fails the test
# with kiln's message, which names the node.  Prints the export, load and run
# times.
# SAM's image encoder at 1024x1024 (~490 G MACs, one image: ~85 s in kiln
# in Release, ~20 s in ONNX Runtime) runs in builds without sanitizers; a
# sanitizer build (KILN_SANITIZE in CMakeCache.txt; there it takes ~4.5 min
# and ~4 GB) runs sam_vit_b_encoder_256 instead, the same graph at 256x256
# (~20 s for both of its data sets), and says so.  Both builds run the
# 256x256 variant for its batch-2 data set.  unet_decoder (three
# ConvTranspose upsamplings, models/export.py) is there for the convt.gemm
# tactic with constant weights, packed once: no zoo model has a
# ConvTranspose (the node tests give their weights as graph inputs).
# Env:
#   KILN_SOURCE_DIR, KILN_BUILD_DIR (scratch; where zoo_check is looked for)
#   KILN_MODELS_DIR      default <source>/models/out
#   KILN_ZOO_MODELS      comma-separated models (default: all but the big ones
#                        unless KILN_ZOO_BIG=1, see below)
#   KILN_ZOO_BIG         1: also vit_b_16, ssdlite320_mobilenet_v3_large and
#                        sam_vit_b_encoder (default 1; 0 runs them only when
#                        already exported)
#   KILN_ZOO_CHECK       the zoo_check executable (default: <build>/tests/zoo_check,
#                        else compiled here against <build>/libkiln.a)
#   KILN_ORT_NODE_MODULES  a node_modules folder holding onnxruntime-node
#                        1.30.0 (else <source>/node_modules or <source>/.ort,
#                        installed there once: kiln_need_ort in scripts/lib.sh)
# Exits 77 (skip) when no model is there and python3-torch/-onnx are missing.
set -euo pipefail

kiln=${1:?usage: zoo.sh /path/to/kiln}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
src=${KILN_SOURCE_DIR:-$(cd "$here/../.." && pwd)}
build=${KILN_BUILD_DIR:-$(cd "$(dirname "$kiln")" && pwd)}
models=${KILN_MODELS_DIR:-$src/models/out}
py=/usr/bin/python3
work=$(mktemp -d "${TMPDIR:-/tmp}/zoo-test.XXXXXX")
trap 'rm -rf "$work"' EXIT
fails=0
failed=()

classifiers="resnet18 resnet18_ext resnet50 mobilenet_v2 efficientnet_b0 vit_b_16"
small="resnet18,resnet18_ext,resnet50,mobilenet_v2,efficientnet_b0,text_encoder,yolov8n,sam_vit_b_encoder_256,unet_decoder"
big="vit_b_16,ssdlite320_mobilenet_v3_large,sam_vit_b_encoder"
if grep -q '^KILN_SANITIZE:BOOL=ON' "$build/CMakeCache.txt" 2>/dev/null && [ -z "${KILN_ZOO_MODELS:-}" ]; then
    echo "zoo: sanitizer build: sam_vit_b_encoder (1024x1024, ~490 G MACs, ~4.5 min under ASan+UBSan)" \
        "skipped; sam_vit_b_encoder_256 (the same graph at 256x256) is checked instead"
    big=${big/,sam_vit_b_encoder/}
fi
if [ -n "${KILN_ZOO_MODELS:-}" ]; then
    list=$KILN_ZOO_MODELS
elif [ "${KILN_ZOO_BIG:-1}" = 1 ]; then
    list=$small,$big
else
    list=$small
    for m in ${big//,/ }; do [ -f "$models/$m.onnx" ] && list=$list,$m; done
fi

# 1. Export what is missing (the script skips complete models).
if "$py" -c 'import onnx, torch, torchvision' 2>/dev/null; then
    mkdir -p "$models"
    t0=$(date +%s)
    # export.py takes a lock: other tests may export into the same folder.
    if ! "$py" "$src/models/export.py" --models "$list" --out "$models" >"$work/export.log" 2>&1; then
        grep -v -i warning "$work/export.log" | tail -20 >&2
        echo "FAIL: models/export.py failed" >&2
        exit 1
    fi
    grep -E ': (done|exists|torch.onnx.export took|data set)' "$work/export.log" || true
    echo "zoo: export step took $(($(date +%s) - t0)) s"
else
    echo "zoo: $py lacks onnx/torch/torchvision: only models already in $models are checked"
fi
names=()
for m in ${list//,/ }; do
    if [ -f "$models/$m.onnx" ] && [ -f "$models/${m}_ref/test_data_set_0/output_0.npy" ]; then
        names+=("$m")
    else
        echo "zoo: $m not exported, skipped"
    fi
done
if [ ${#names[@]} -eq 0 ]; then
    echo "zoo: SKIP: no zoo model exported (needs python3-torch, python3-torchvision, python3-onnx)"
    exit 77
fi

# 2. zoo_check: built by CMake, or compiled here against the static library
#    with the build's compiler and sanitizer flags.
check=${KILN_ZOO_CHECK:-$build/tests/zoo_check}
if [ ! -x "$check" ]; then
    cache=$build/CMakeCache.txt
    cc=$(sed -n 's/^CMAKE_C_COMPILER:[A-Z]*=//p' "$cache" 2>/dev/null || true)
    flags=(-std=c11 -D_GNU_SOURCE -O2 -g -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes
        -Wmissing-prototypes -Wno-unused-parameter)
    if grep -q '^KILN_SANITIZE:BOOL=ON' "$cache" 2>/dev/null; then
        flags+=("-fsanitize=address,undefined" -fno-sanitize-recover=all -fno-omit-frame-pointer)
    fi
    check=$work/zoo_check
    "${cc:-cc}" "${flags[@]}" -I"$src/include" "$src/tests/models/zoo_check.c" "$build/libkiln.a" \
        -lm -lpthread -o "$check"
fi

# 3. ONNX Runtime: onnxruntime-node 1.30.0 through kiln_need_ort
#    (scripts/lib.sh: $KILN_ORT_NODE_MODULES, <source>/node_modules or the one
#    shared copy in <source>/.ort, installed there once under a lock);
#    skipped with a SKIP line when it cannot be had.
# shellcheck source=../../scripts/lib.sh
source "$src/scripts/lib.sh"
ort_version=$KILN_ORT_VERSION
ort_mods=
if kiln_need_ort; then
    ort_mods=$KILN_ORT_MODULES
else
    echo "zoo: $kiln_ort_why"
fi
if [ -z "$ort_mods" ]; then
    echo "zoo: SKIP onnxruntime comparison: onnxruntime-node@$ort_version cannot be loaded or installed" \
        "(node, npm; or set KILN_ORT_NODE_MODULES to a node_modules folder holding it)"
else
    echo "zoo: onnxruntime-node@$ort_version from $ort_mods"
fi

# 4. Each model, on each of its data sets.
for m in "${names[@]}"; do
    rc=0
    for data in "$models/${m}_ref"/test_data_set_*; do
        ds=${data##*_}
        # resnet18_ext is resnet18 with external data: one data set is enough.
        [ "$m" = resnet18_ext ] && [ "$ds" != 0 ] && continue
        args=(--name "$m/$ds")
        case " $classifiers " in *" $m "*) args+=(--top5) ;; esac
        [ "$m" = yolov8n ] && args+=(--split 1=4,80) # boxes (pixels), class scores
        if [ -n "$ort_mods" ]; then
            if node "$src/tests/models/ort_run.js" "$ort_mods" "$models/$m.onnx" "$data" \
                "$work/ort/$m/$ds" >"$work/ort.log" 2>&1; then
                args+=(--ort "$work/ort/$m/$ds")
            else
                echo "zoo: SKIP onnxruntime comparison for $m/$ds: $(tail -1 "$work/ort.log")"
            fi
        fi
        r=0
        "$check" "${args[@]}" "$models/$m.onnx" "$data" >"$work/check.out" 2>&1 || r=$?
        cat "$work/check.out"
        if grep -qE 'ERROR: AddressSanitizer|ERROR: LeakSanitizer|runtime error:' "$work/check.out"; then
            echo "FAIL $m/$ds: sanitizer report" >&2
            r=1
        fi
        [ "$r" -eq 0 ] || rc=1
    done
    if [ "$rc" -ne 0 ]; then
        fails=$((fails + 1))
        failed+=("$m")
    fi
done

if [ "$fails" -ne 0 ]; then
    echo "zoo: $fails of ${#names[@]} models FAIL: ${failed[*]}" >&2
    exit 1
fi
echo "zoo: OK (${#names[@]} models: ${names[*]})"
