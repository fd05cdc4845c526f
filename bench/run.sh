#!/usr/bin/env bash
# kiln, ONNX Runtime 1.30 and PyTorch side by side on the model zoo (CPU):
#
#   bench/run.sh [--models a,b,...] [--batches 1,8] [--threads 1,2] [--quick]
#                [--rounds R] [--build DIR] [--out DIR]
#
# 1. builds kiln's static library (Release, in DIR, default <source>/build-bench)
#    and bench/kiln_time.c against it;
# 2. finds onnxruntime-node@1.30.0 through kiln_need_ort (scripts/lib.sh:
#    $KILN_ORT_NODE_MODULES, <source>/node_modules, or the one shared copy in
#    <source>/.ort, installed there once under a lock);
# 3. exports the models that models/out lacks (models/export.py);
# 4. runs bench/bench.py: per model, batch and thread count, the three runtimes
#    alternate (see bench.py), and the median latencies and the ratios
#    ORT/kiln and torch/kiln are printed, and written to OUT/results.json and
#    OUT/results.md (OUT defaults to DIR/bench).
# --quick: resnet18 and text_encoder, batch 1, 1 thread, 2 rounds (a smoke
# test; explicit --models/--batches/--threads/--rounds still win).
# Default run: 8 models x batches 1,8 x threads 1,2 (about 13 minutes on 2 cores).
# sam_vit_b_encoder (1024x1024, ~490 G MACs and ~2.5 GB of activations per
# image) is not in it: run it alone, e.g. --models sam_vit_b_encoder --batches 1.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
src=$(cd "$here/.." && pwd)
build=$src/build-bench
out=
models=resnet18,resnet50,mobilenet_v2,efficientnet_b0,vit_b_16,ssdlite320_mobilenet_v3_large,text_encoder,yolov8n
batches=1,8
threads=1,2
rounds=5
quick=0
given=" "
usage() { sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//'; exit "${1:-2}"; }
while [ $# -gt 0 ]; do
    case $1 in
        --models) models=$2; given+="models "; shift 2 ;;
        --batches) batches=$2; given+="batches "; shift 2 ;;
        --threads) threads=$2; given+="threads "; shift 2 ;;
        --rounds) rounds=$2; given+="rounds "; shift 2 ;;
        --build) build=$2; shift 2 ;;
        --out) out=$2; shift 2 ;;
        --quick) quick=1; shift ;;
        -h|--help) usage 0 ;;
        *) echo "bench: unknown argument '$1'" >&2; usage ;;
    esac
done
if [ $quick = 1 ]; then
    [[ $given == *" models "* ]] || models=resnet18,text_encoder
    [[ $given == *" batches "* ]] || batches=1
    [[ $given == *" threads "* ]] || threads=1
    [[ $given == *" rounds "* ]] || rounds=2
fi
mkdir -p "$build"
build=$(cd "$build" && pwd)
out=${out:-$build/bench}
mkdir -p "$out"

py=/usr/bin/python3
"$py" -c 'import torch, torchvision, onnx, numpy' 2>/dev/null ||
    { echo "bench: $py needs torch, torchvision, onnx and numpy (apt-get install python3-torch python3-torchvision python3-onnx)" >&2; exit 1; }
command -v node >/dev/null || { echo "bench: no node (apt-get install nodejs npm)" >&2; exit 1; }
# Without an optimized BLAS, Debian's torch falls back to the reference BLAS:
# not a fair peer.
if ! ls /usr/lib/*/openblas-pthread/libblas.so.3 >/dev/null 2>&1; then
    echo "bench: warning: libopenblas0-pthread is not installed: PyTorch may use the reference BLAS" \
         "(apt-get install libopenblas0-pthread)" >&2
fi

# 1. kiln (Release; warnings are not errors here: -O3 raises a few that -O2 does not).
# (reconfigured when an existing cache has CUDA on: kiln_time links the static
# library alone, without the CUDA libraries)
if [ ! -f "$build/CMakeCache.txt" ] || grep -q '^KILN_CUDA:BOOL=ON' "$build/CMakeCache.txt"; then
    cmake -S "$src" -B "$build" -DCMAKE_BUILD_TYPE=Release -DKILN_BUILD_TESTS=OFF -DKILN_CUDA=OFF \
          -DKILN_WERROR=OFF >"$out/cmake.log" 2>&1 ||
        { tail -20 "$out/cmake.log" >&2; exit 1; }
fi
echo "bench: building kiln in $build ($(grep -m1 '^CMAKE_BUILD_TYPE' "$build/CMakeCache.txt" | cut -d= -f2))"
cmake --build "$build" --target kiln_static -j"$(nproc)" >"$out/build.log" 2>&1 ||
    { tail -20 "$out/build.log" >&2; exit 1; }
cc=${CC:-cc}
$cc -std=c11 -O2 -Wall -Wextra -I"$src/include" "$here/kiln_time.c" "$build/libkiln.a" -lm -lpthread \
    -o "$out/kiln_time"

# 2. onnxruntime-node 1.30.0: the one shared copy (kiln_need_ort, scripts/lib.sh).
# shellcheck source=../scripts/lib.sh
source "$src/scripts/lib.sh"
kiln_need_ort || { echo "bench: $kiln_ort_why" >&2; exit 1; }
mods=$KILN_ORT_MODULES

# 3. Models.
missing=
for m in ${models//,/ }; do
    [ -f "$src/models/out/$m.onnx" ] || missing+="$m,"
done
if [ -n "$missing" ]; then
    echo "bench: exporting ${missing%,}"
    "$py" "$src/models/export.py" --models "${missing%,}"
fi

# 4. Measure.
rm -f "$out/workers.log"
"$py" "$here/bench.py" --kiln-time "$out/kiln_time" --ort-modules "$mods" \
    --models "$models" --batches "$batches" --threads "$threads" --rounds "$rounds" \
    --json "$out/results.json" --md "$out/results.md" --log "$out/workers.log"
echo "bench: results in $out/results.json and $out/results.md (workers' messages: $out/workers.log)"
