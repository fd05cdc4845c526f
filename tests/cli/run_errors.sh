#!/usr/bin/env bash
# Error paths of `kiln run`, `kiln bench` and `kiln compare` that a new user
# tries: missing files, a wrong input name, a shape that does not fit, an
# image that is not an image, unknown flags...
#   bash tests/cli/run_errors.sh /path/to/kiln
# Every failure must print exactly one line on stderr starting with
# "kiln: ", exit with the documented code (2 usage, 1 file or model) and
# never crash (exit status < 128, no sanitizer report).
# Env: KILN_SHARED_DIR (conformance models), KILN_SOURCE_DIR (models/out),
# KILN_BUILD_DIR (scratch).  Exits 77 (skipped) without the conformance models.
set -uo pipefail

kiln=${1:?usage: run_errors.sh /path/to/kiln}
case $kiln in /*) ;; *) kiln=$PWD/$kiln ;; esac
shared=${KILN_SHARED_DIR:-/work/shared}
src=${KILN_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
add=$shared/onnx-backend-tests/node/test_add/model.onnx # x, y: float[3,4,5]
if ! [ -f "$add" ]; then
    echo "skip: $add not found (set KILN_SHARED_DIR)"
    exit 77
fi
resnet=$src/models/out/resnet18.onnx # input: float[batch,3,224,224]
scratch_parent=${KILN_BUILD_DIR:-${TMPDIR:-/tmp}}
mkdir -p "$scratch_parent"
work=$(mktemp -d "$scratch_parent/run-errors.XXXXXX")
trap 'rm -rf "$work"' EXIT
cd "$work" || exit 1
fails=0

fail() { echo "FAIL: $*" >&2; fails=$((fails + 1)); }
ok() { echo "ok: $*"; }

# expect NAME CODE STDERR-SUBSTRING -- ARGS...: run kiln with ARGS and check
# the exit code, one stderr line starting with "kiln: ", and the substring.
expect() {
    local name=$1 code=$2 want=$3 rc=0
    shift 3
    [ "${1:-}" = "--" ] && shift
    "$kiln" "$@" </dev/null >"$name.out" 2>"$name.err" || rc=$?
    if grep -qE 'Sanitizer|runtime error:' "$name.err"; then
        fail "$name: sanitizer report: $(grep -m1 -E 'Sanitizer|runtime error' "$name.err")"
    elif [ "$rc" -ge 128 ]; then
        fail "$name: crashed (exit $rc): $(head -c 300 "$name.err")"
    elif [ "$rc" -ne "$code" ]; then
        fail "$name: exit $rc, expected $code; stderr: $(head -c 300 "$name.err")"
    elif [ "$code" -ne 0 ] && [ "$(wc -l <"$name.err")" -ne 1 ]; then
        fail "$name: $(wc -l <"$name.err") lines on stderr, expected 1: $(head -c 300 "$name.err")"
    elif [ "$code" -ne 0 ] && ! grep -q '^kiln: ' "$name.err"; then
        fail "$name: stderr does not start with 'kiln: ': $(cat "$name.err")"
    elif [ -n "$want" ] && ! grep -qF -- "$want" "$name.err"; then
        fail "$name: stderr lacks '$want': $(cat "$name.err")"
    else
        ok "$name (exit $rc)"
    fi
}

# npy FILE DESCR SHAPE NBYTES: a .npy file of zeros ('<f4', '3, 4, 5').
npy() {
    local dict="{'descr': '$2', 'fortran_order': False, 'shape': ($3), }"
    local len=$(((10 + ${#dict} + 1 + 63) / 64 * 64 - 10))
    {
        printf '\223NUMPY\001\000'
        printf "\\$(printf %03o $((len % 256)))\\$(printf %03o $((len / 256)))"
        printf '%s' "$dict"
        printf '%*s' $((len - ${#dict} - 1)) ''
        printf '\n'
        head -c "$4" /dev/zero
    } >"$1"
}

npy x.npy '<f4' '3, 4, 5' 240
npy wide.npy '<f4' '3, 4, 6' 288
npy rank2.npy '<f4' '12, 5' 240
npy short.npy '<f4' '3, 4, 5' 100
npy cplx.npy '<c8' '3, 4, 5' 480
printf '\223NUMPY\001\000\020\000garbage' >badheader.npy
printf 'not numpy' >fake.npy
printf 'hello, I am a text file\n' >cat.jpg
printf 'hello, I am a text file\n' >notes.txt
: >empty.png
printf 'GIF89a\001\000\001\000' >anim.gif
printf '\377\330\377\340\000\020JFIF\000' >trunc.jpg
head -c 100 /dev/zero >x.bin
head -c 240 /dev/zero >ok.bin
printf 'garbage' >bad.pb
mkdir -p adir
: >afile

# Files and names.
expect missing-model 1 "no such file 'missing.onnx'" -- run missing.onnx --input x.npy
expect missing-input 1 "no such file 'nope.npy'" -- run "$add" --input nope.npy --input x.npy
expect missing-named-input 1 "no such file 'nope.npy'" -- run "$add" --input x=nope.npy --input y=x.npy
expect input-directory 1 "'adir' is a directory" -- run "$add" --input adir --input x.npy
expect wrong-input-name 2 "unknown input 'bias' (the model's inputs are 'x', 'y')" -- run "$add" --input bias=x.npy --input y=x.npy
expect input-name-typo 2 "did you mean 'x'?" -- run "$add" --input X=x.npy --input y=x.npy
expect input-given-twice 2 "input 'x' is given twice" -- run "$add" --input x=x.npy --input x=x.npy
expect too-many-inputs 2 "more inputs given than the model has" -- run "$add" --input x.npy --input x.npy --input x.npy
expect input-not-given 2 "input 'y' (float[3,4,5]) is not given" -- run "$add" --input x.npy
expect no-input 2 "no --input given" -- run "$add"
expect unknown-format 2 "cannot tell the format of 'notes.txt'" -- run "$add" --input notes.txt --input x.npy

# Shapes and types that do not fit.
expect shape-mismatch 1 "wide.npy holds float[3,4,6], which does not fit input 'x' float[3,4,5]" -- \
    run "$add" --input wide.npy --input x.npy
expect rank-mismatch 1 "rank2.npy holds float[12,5]" -- run "$add" --input rank2.npy --input x.npy
expect npy-short 1 "short.npy: .npy data is 100 bytes" -- run "$add" --input short.npy --input x.npy
expect npy-bad-header 1 "badheader.npy" -- run "$add" --input badheader.npy --input x.npy
expect npy-fake 1 "'fake.npy' is not a .npy file" -- run "$add" --input fake.npy --input x.npy
expect npy-complex 1 "element type '<c8' is not supported" -- run "$add" --input cplx.npy --input x.npy
expect bin-size 1 "'x.bin' has 100 bytes but float[3,4,5] needs 240" -- run "$add" --input x.bin --input x.npy
expect bin-shape 1 "needs 8" -- run "$add" --input ok.bin --input x.npy --shape x:2
expect bad-shape-spec 2 "--shape: '3x4x' is not a shape" -- run "$add" --input ok.bin --input x.npy --shape x:3x4x
expect shape-unknown-input 2 "--shape: unknown input 'q'" -- run "$add" --input ok.bin --input x.npy --shape q:3x4x5
expect bad-dtype 2 "--dtype: unknown element type 'float128'" -- run "$add" --input ok.bin --input x.npy --dtype float128
expect bad-pb 1 "bad.pb: not an ONNX TensorProto" -- run "$add" --input bad.pb --input x.npy

# Images that are not images, or a model that takes no images.
expect text-as-jpeg 1 "'cat.jpg' is not a JPEG or PNG image" -- run "$add" --input cat.jpg --input x.npy
expect empty-png 1 "'empty.png' is empty" -- run "$add" --input empty.png --input x.npy
expect gif 1 "is a GIF image; only JPEG and PNG" -- run "$add" --input anim.gif --input x.npy
if "$kiln" preprocess trunc.jpg --output t.npy 2>&1 | grep -q "built without"; then
    echo "note: kiln built without JPEG support; JPEG decoding errors not tested"
    expect no-jpeg-support 1 "built without JPEG support" -- preprocess trunc.jpg --output t.npy
else
    expect truncated-jpeg 1 "trunc.jpg: not a readable JPEG image" -- run "$add" --input trunc.jpg --input x.npy
    real=$(find /usr/share -xdev -type f -iname '*.jpg' -size +20k 2>/dev/null | LC_ALL=C sort | head -n 1)
    if [ -n "$real" ]; then
        expect image-for-3d-input 1 "images need a 4-D input" -- run "$add" --input "$real" --input x.npy
        if [ -f "$resnet" ]; then
            expect image-and-npy 2 "input 'input' is given twice" -- run "$resnet" --input "$real" --input input=x.npy
        fi
    fi
fi

# Models with dynamic axes other than the batch, and a fixed batch.
te=$src/models/out/text_encoder.onnx # input: int64[batch,sequence]
if [ -f "$te" ]; then
    expect dynamic-axis-needs-shape 2 "give the size of its dynamic axis 1 ('sequence') with --shapes input:DIMS" -- \
        bench "$te" --iterations 1
    expect dynamic-axis-run 2 "with --shape input:DIMS" -- run "$te" --random
fi
ssd=$src/models/out/ssdlite320_mobilenet_v3_large.onnx # input: float[1,3,160,640]
if [ -f "$ssd" ] && [ -n "${real:-}" ]; then
    expect fixed-batch-two-images 1 "its batch is fixed to 1 but 2 images are given" -- \
        run "$ssd" --input "$real" --input "$real"
fi

# Flags.
expect unknown-flag 2 "unknown flag '--frob'" -- run "$add" --frob
expect flag-typo 2 "did you mean '--input'?" -- run "$add" --inptu x.npy
expect flag-typo-eq 2 "did you mean '--topk'?" -- run "$add" --topp=3
expect missing-value 2 "flag '--topk' needs a value" -- run "$add" --input x.npy --input x.npy --topk
expect empty-value 2 "flag '--input' needs a value" -- run "$add" --input=
expect bad-number 2 "--topk: 'five' is not a whole number" -- run "$add" --topk five
expect labels-without-topk 2 "--labels needs --topk" -- run "$add" --labels notes.txt
expect missing-labels 1 "--labels: no such file 'nolabels.txt'" -- run "$add" --topk 3 --labels nolabels.txt
expect output-is-file 2 "--output: 'afile' exists and is not a directory" -- run "$add" --input x.npy --input x.npy --output afile
expect json-needs-value 2 "flag '--json' needs a value" -- run "$add" --input x.npy --input x.npy --json
expect run-missing-model 2 "missing MODEL" -- run --input x.npy
expect run-two-models 2 "unexpected argument" -- run "$add" "$add"
expect preprocess-no-output 2 "missing --output" -- preprocess cat.jpg
expect preprocess-not-image 1 "'cat.jpg' is not a JPEG or PNG image" -- preprocess cat.jpg --output p.npy

# bench and compare.
expect bench-missing-model 1 "no such file 'missing.onnx'" -- bench missing.onnx
expect bench-unknown-flag 2 "unknown flag '--batchsize'" -- bench "$add" --batchsize 4
expect bench-bad-iterations 2 "--iterations: '0' is not a whole number" -- bench "$add" --iterations 0
expect bench-bad-duration 2 "--duration: 'soon' is not a number" -- bench "$add" --duration soon
expect bench-negative-warmup 2 "--warmup: '-5' is not a number >= 0" -- bench "$add" --warmup -5
expect bench-shapes-unknown 2 "--shapes: unknown input 'q'" -- bench "$add" --shapes q:1x2
expect bench-shapes-rank 2 "--shapes gives 2 dimensions for input 'x'" -- bench "$add" --shapes x:3x4
expect bench-batch-fixed 2 "its batch is fixed to 3, --batch 8 does not fit" -- bench "$add" --batch 8
expect bench-wrong-shape 1 "axis 2 is 6" -- bench "$add" --shapes x:3x4x6,y:3x4x6 --iterations 1
expect bench-json-dir 1 "--json: cannot create 'adir'" -- bench "$add" --iterations 1 --warmup 0 --json adir
expect compare-bad-provider 2 "--providers: unknown name 'gpu'" -- compare "$add" --providers cpu,gpu
expect compare-provider-typo 2 "did you mean 'cuda'?" -- compare "$add" --providers cudaa
expect compare-bad-precision 2 "--precisions: unknown name 'fp64'" -- compare "$add" --precisions fp64
expect compare-empty-name 2 "--providers: unknown name ''" -- compare "$add" --providers cpu,

# What works: exit 0 and nothing on stderr.
expect run-ok 0 "" -- run "$add" --input x.npy --input y=ok.bin
expect bench-ok 0 "" -- bench "$add" --iterations 3 --warmup 0
expect compare-ok 0 "" -- compare "$add" --providers cpu,cuda --precisions fp32,fp16 --iterations 2 --warmup 0
for f in run-ok bench-ok compare-ok; do
    [ -s "$f.err" ] && fail "$f: wrote to stderr: $(head -c 300 "$f.err")"
done
grep -q "unavailable" compare-ok.out || fail "compare: no 'unavailable' row: $(cat compare-ok.out)"

if [ "$fails" -ne 0 ]; then
    echo "$fails failure(s)"
    exit 1
fi
echo "all run/bench/compare error paths ok"
