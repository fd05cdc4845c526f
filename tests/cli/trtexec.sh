#!/usr/bin/env bash
# `kiln trtexec`: trtexec's command lines run by kiln.
#   bash tests/cli/trtexec.sh /path/to/kiln
# - the four trtexec lines of WORKFLOW.md section 8, verbatim: the first
#   three pass (FP16 on the cpu provider builds FP32 and the log says so),
#   the INT8 one is refused with one line and a non-zero exit;
# - the report sections and every metric of the performance summary;
# - --help lists every flag; an unknown flag gets the closest one
#   ("unknown option '--fp61'; did you mean '--fp16'?", exit 2);
# - one-line errors: missing file, shapes outside the profile, bad pools,
#   exclusive flags; --calib refused;
# - exports (--exportTimes, --exportProfile, --exportOutput), --dumpProfile,
#   --separateProfileRun, --streams/--infStreams, both generations' flags.
# The model of the WORKFLOW lines is resnet18.onnx: by default a small
# stand-in with resnet18's input and output (input float[batch,3,224,224],
# output float[batch,1000]) so that `--iterations=1000` takes seconds on the
# reference kernels; KILN_TRTEXEC_MODEL=/path/to/resnet18.onnx runs the real
# one (models/export.py --models resnet18).
# Env: KILN_BUILD_DIR (scratch).  Exits 77 (skip) without /usr/bin/python3
# with onnx and numpy.
set -uo pipefail

kiln=${1:?usage: trtexec.sh /path/to/kiln}
case $kiln in /*) ;; *) kiln=$PWD/$kiln ;; esac
py=/usr/bin/python3
if ! "$py" -c 'import onnx, numpy' 2>/dev/null; then
    echo "trtexec: SKIP: /usr/bin/python3 with onnx and numpy is needed to make the test model" >&2
    exit 77
fi
scratch_parent=${KILN_BUILD_DIR:-${TMPDIR:-/tmp}}
mkdir -p "$scratch_parent"
work=$(mktemp -d "$scratch_parent/cli-trtexec.XXXXXX")
trap 'rm -rf "$work"' EXIT
cd "$work" || exit 1
fails=0
fail() { echo "FAIL: $*" >&2; fails=$((fails + 1)); }
ok() { echo "ok: $*"; }

if [ -n "${KILN_TRTEXEC_MODEL:-}" ]; then
    ln -s "$(cd "$(dirname "$KILN_TRTEXEC_MODEL")" && pwd)/$(basename "$KILN_TRTEXEC_MODEL")" resnet18.onnx
    echo "model: $KILN_TRTEXEC_MODEL"
else
    "$py" - <<'PY' || { echo "trtexec: cannot make the test model" >&2; exit 1; }
import numpy as np, onnx
from onnx import helper as h, TensorProto as T, numpy_helper as nh
rng = np.random.default_rng(18)
def init(name, shape, scale=0.2):
    return nh.from_array((rng.standard_normal(shape) * scale).astype(np.float32), name)
nodes = [h.make_node("Conv", ["input", "w1", "b1"], ["c1"], name="conv1", strides=[8, 8], kernel_shape=[8, 8]),
         h.make_node("Relu", ["c1"], ["r1"], name="relu"),
         h.make_node("GlobalAveragePool", ["r1"], ["p"], name="avgpool"),
         h.make_node("Flatten", ["p"], ["f"], name="flatten"),
         h.make_node("Gemm", ["f", "wf", "bf"], ["output"], name="fc", transB=1)]
g = h.make_graph(nodes, "resnet18_standin",
                 [h.make_tensor_value_info("input", T.FLOAT, ["batch_size", 3, 224, 224])],
                 [h.make_tensor_value_info("output", T.FLOAT, ["batch_size", 1000])],
                 [init("w1", (4, 3, 8, 8)), init("b1", (4,)), init("wf", (1000, 4)), init("bf", (1000,))])
m = h.make_model(g, opset_imports=[h.make_opsetid("", 17)], producer_name="kiln-test")
m.ir_version = 8
onnx.checker.check_model(m)
onnx.save(m, "resnet18.onnx")
PY
    echo "model: a small stand-in for resnet18.onnx (set KILN_TRTEXEC_MODEL for the real one)"
fi

# expect NAME CODE STDERR-SUBSTRING -- ARGS...: exit code, and for a failure
# exactly one stderr line starting with "kiln: " that holds the substring.
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
        fail "$name: exit $rc, expected $code; stderr: $(head -c 400 "$name.err")"
    elif [ "$code" -ne 0 ] && [ "$(wc -l <"$name.err")" -ne 1 ]; then
        fail "$name: $(wc -l <"$name.err") lines on stderr, expected 1: $(head -c 400 "$name.err")"
    elif [ "$code" -ne 0 ] && ! grep -q '^kiln: ' "$name.err"; then
        fail "$name: stderr does not start with 'kiln: ': $(cat "$name.err")"
    elif [ -n "$want" ] && ! grep -qF -- "$want" "$name.err"; then
        fail "$name: stderr lacks '$want': $(cat "$name.err")"
    else
        ok "$name (exit $rc)"
        return 0
    fi
    return 1
}

# has NAME FILE REGEX: the file has a line matching REGEX.
has() {
    grep -qE -- "$3" "$2" && ok "$1" || fail "$1: no line matching '$3' in $2: $(head -c 1500 "$2")"
}

# check NAME PYTHON-EXPR FILE: the expression, with j = the JSON of FILE, is true.
check() {
    local name=$1 expr=$2 file=$3
    if "$py" - "$file" "$expr" <<'PY'; then ok "$name"; else fail "$name: $expr is false for $(head -c 600 "$file")"; fi
import json, sys
j = json.load(open(sys.argv[1]))
sys.exit(0 if eval(sys.argv[2]) else 1)
PY
}

# summary NAME FILE: every metric of trtexec's performance summary is there.
summary() {
    local stats='min = [0-9.e+-]+ ms, max = [0-9.e+-]+ ms, mean = [0-9.e+-]+ ms, median = [0-9.e+-]+ ms, percentile\(90%\) = [0-9.e+-]+ ms, percentile\(95%\) = [0-9.e+-]+ ms, percentile\(99%\) = [0-9.e+-]+ ms$'
    local missing=""
    for sec in "=== Model Options ===" "=== Build Options ===" "=== Inference Options ===" "=== Performance summary ==="; do
        grep -qF "$sec" "$2" || missing="$missing '$sec'"
    done
    grep -qE '^\[I\] Throughput: [0-9.e+-]+ qps$' "$2" || missing="$missing Throughput"
    for m in "Latency" "Enqueue Time" "H2D Latency" "GPU Compute Time" "D2H Latency"; do
        grep -qE "^\[I\] $m: $stats" "$2" || missing="$missing '$m'"
    done
    grep -qE '^\[I\] Total Host Walltime: [0-9.e+-]+ s$' "$2" || missing="$missing 'Total Host Walltime'"
    grep -qE '^\[I\] Total GPU Compute Time: [0-9.e+-]+ s$' "$2" || missing="$missing 'Total GPU Compute Time'"
    grep -qE '^\[I\] H2D Latency: min = 0 ms' "$2" || missing="$missing 'H2D 0 on cpu'"
    grep -q 'host compute' "$2" || missing="$missing 'host compute note'"
    grep -q '^&&&& PASSED kiln.trtexec' "$2" || missing="$missing PASSED"
    [ -z "$missing" ] && ok "$1: report sections and every metric" || fail "$1: missing$missing: $(head -c 3000 "$2")"
}

# ---- the four lines of WORKFLOW.md section 8, verbatim -----------------------------------
line1=(trtexec --onnx=resnet18.onnx --saveEngine=resnet18.engine --fp16 --workspace=1024)
line2=(trtexec --onnx=resnet18.onnx --saveEngine=resnet18_dynamic.engine --minShapes=input:1x3x224x224
    --optShapes=input:8x3x224x224 --maxShapes=input:32x3x224x224 --fp16)
line3=(trtexec --loadEngine=resnet18.engine --iterations=1000 --avgRuns=10)
line4=(trtexec --onnx=resnet18.onnx --saveEngine=resnet18_int8.engine --int8 --calib=calibration_cache.txt)

if expect workflow-1 0 "" -- "${line1[@]}"; then
    summary workflow-1 workflow-1.out
    has "line 1: --fp16 on the cpu provider builds FP32 and says so" workflow-1.out '^\[[WI]\] .*fp16.*fp32|^\[[WI]\] .*FP16.*FP32'
    has "line 1: workspace 1024 MiB" workflow-1.out 'workspace: 1024 MiB'
    [ "$(head -c 7 resnet18.engine)" = KILNENG ] && ok "line 1 saved a kiln engine" || fail "resnet18.engine is not an engine"
fi
if expect workflow-2 0 "" -- "${line2[@]}"; then
    summary workflow-2 workflow-2.out
    has "line 2: inference at the opt shape" workflow-2.out '^\[I\] Input inference shape: input=8x3x224x224$'
    "$kiln" info resnet18_dynamic.engine --json >dyn.json 2>/dev/null &&
        check "line 2: the engine has one profile 1..32" 'int(j["profiles"]) == 1 and "input:1x3x224x224/8x3x224x224/32x3x224x224" in j["build_options"]' dyn.json
fi
if expect workflow-3 0 "" -- "${line3[@]}"; then
    summary workflow-3 workflow-3.out
    n=$(sed -nE 's/^\[I\] Timing trace has ([0-9]+) queries.*/\1/p' workflow-3.out)
    [ "${n:-0}" -ge 1000 ] && ok "line 3: $n >= 1000 inferences timed" || fail "line 3: ${n:-no} queries"
    has "line 3: averages over 10 runs" workflow-3.out '^\[I\] Average on 10 runs - GPU latency: '
    has "line 3: engine loaded" workflow-3.out '^\[I\] Engine loaded in '
fi
if expect workflow-4-int8 1 "--int8" -- "${line4[@]}"; then
    grep -qi 'int8' workflow-4-int8.err && ok "line 4: the refusal says INT8" || fail "line 4: $(cat workflow-4-int8.err)"
    [ -e resnet18_int8.engine ] && fail "line 4 wrote an engine" || ok "line 4 wrote no engine"
fi

# ---- flags ----------------------------------------------------------------------------------
"$kiln" trtexec --help >help.out 2>&1
missing=""
for f in --onnx --saveEngine --loadEngine --minShapes --optShapes --maxShapes --shapes --workspace --memPoolSize \
    --iterations --duration --warmUp --avgRuns --threads --streams --infStreams --useCudaGraph --noCudaGraph \
    --noDataTransfers --includeDataTransfers --separateProfileRun --dumpProfile --exportTimes --exportProfile \
    --exportOutput --timingCacheFile --skipInference --buildOnly --verbose --fp16 --bf16 --int8 --best --calib \
    --noTF32 --stronglyTyped --help; do
    grep -qE "^  $f([ =[]|\$)" help.out || missing="$missing $f"
done
[ -z "$missing" ] && ok "trtexec --help lists every flag, one line each" || fail "trtexec --help lacks:$missing"

expect unknown-fp61 2 "unknown option '--fp61'; did you mean '--fp16'?" -- trtexec --onnx=resnet18.onnx --fp61
expect unknown-saveengien 2 "did you mean '--saveEngine'?" -- trtexec --onnx=resnet18.onnx --saveEngien=x.engine
expect unknown-case 2 "did you mean '--minShapes'?" -- trtexec --onnx=resnet18.onnx --minshapes=input:1x3x224x224
expect unknown-far 2 "unknown option '--frobnicate'" -- trtexec --onnx=resnet18.onnx --frobnicate
expect no-model 2 "--onnx=FILE" -- trtexec --fp16
expect both-models 2 "exclude each other" -- trtexec --onnx=resnet18.onnx --loadEngine=resnet18.engine
expect missing-onnx 1 "no such file 'nope.onnx'" -- trtexec --onnx=nope.onnx
expect missing-engine 1 "no such file 'nope.engine'" -- trtexec --loadEngine=nope.engine
expect onnx-is-engine 2 "load it with --loadEngine" -- trtexec --onnx=resnet18.engine
expect engine-is-onnx 2 "build it with --onnx" -- trtexec --loadEngine=resnet18.onnx
expect calib-alone 1 "--calib" -- trtexec --onnx=resnet18.onnx --calib=calibration_cache.txt
expect value-missing 2 "needs a value" -- trtexec --onnx=resnet18.onnx --iterations
expect value-unexpected 2 "takes no value" -- trtexec --onnx=resnet18.onnx --fp16=1
expect bad-iterations 2 "--iterations: 'ten'" -- trtexec --onnx=resnet18.onnx --iterations=ten
expect positional 2 "unexpected argument" -- trtexec resnet18.onnx
expect partial-profile 2 "together" -- trtexec --onnx=resnet18.onnx --minShapes=input:1x3x224x224
expect shapes-bad-syntax 2 "is not a shape" -- trtexec --onnx=resnet18.onnx --shapes=input:1x3xhundredx224
expect shapes-unknown-input 2 "no input 'inputs' (did you mean 'input'?)" -- trtexec --onnx=resnet18.onnx \
    --shapes=inputs:1x3x224x224
expect pool-unknown 2 "pool 'dlaSRAM'" -- trtexec --onnx=resnet18.onnx --memPoolSize=dlaSRAM:1
expect pool-bad-size 2 "--memPoolSize" -- trtexec --onnx=resnet18.onnx --memPoolSize=workspace:lots
expect load-with-profile 2 "build options" -- trtexec --loadEngine=resnet18.engine --minShapes=input:1x3x224x224 \
    --optShapes=input:1x3x224x224 --maxShapes=input:1x3x224x224
if [ -f resnet18_dynamic.engine ]; then
    expect outside-profile 1 "axis 0 is 64, outside the range 1..32" -- trtexec --loadEngine=resnet18_dynamic.engine \
        --shapes=input:64x3x224x224 --iterations=1 --duration=0 --warmUp=0 &&
        { grep -qF "'input'" outside-profile.err && ok "the refusal names the input" || fail "$(cat outside-profile.err)"; }
fi

# ---- both generations' flags, exports and profiles ----------------------------------------------
quick=(--iterations=20 --duration=0 --warmUp=0)
if expect gen11 0 "" -- trtexec --onnx=resnet18.onnx --memPoolSize=workspace:512M --infStreams=2 --noCudaGraph \
    --includeDataTransfers --shapes=input:2x3x224x224 --timingCacheFile=tc.cache --bf16 --noTF32 --stronglyTyped "${quick[@]}"; then
    summary gen11 gen11.out
    has "--memPoolSize=workspace:512M" gen11.out 'workspace: 512 MiB'
    has "--infStreams=2" gen11.out '^\[I\] Inference Streams: 2$'
    has "--shapes sets the inference shape" gen11.out '^\[I\] Input inference shape: input=2x3x224x224$'
    n=$(sed -nE 's/^\[I\] Timing trace has ([0-9]+) queries.*/\1/p' gen11.out)
    [ "${n:-0}" -ge 20 ] && ok "two streams: $n >= 20 inferences" || fail "two streams: ${n:-no} queries"
fi
if expect exports 0 "" -- trtexec --loadEngine=resnet18.engine --exportTimes=times.json --exportProfile=profile.json \
    --exportOutput=output.json --dumpProfile --separateProfileRun --streams=1 --threads --useCudaGraph --noDataTransfers "${quick[@]}"; then
    check "--exportTimes: one entry per inference with trtexec's keys" \
        'len(j) >= 20 and all(k in j[0] for k in ("startEnqMs", "endEnqMs", "startComputeMs", "endComputeMs", "latencyMs", "computeMs", "h2dMs", "d2hMs"))' times.json
    check "--exportProfile: count first, then layers with percentages summing to 100" \
        'j[0]["count"] == 20 and abs(sum(l["percentage"] for l in j[1:]) - 100) < 0.01 and all("timeMs" in l and "averageMs" in l and l["kernel"] == l["tactic"] for l in j[1:])' profile.json
    check "--exportOutput: name, dimensions and values" \
        'j[0]["name"] == "output" and j[0]["dimensions"] == "1x1000" and len(j[0]["values"]) == 1000' output.json
    has "--dumpProfile prints the layers" exports.out '^\[I\] +1 +[0-9.]+ '
    has "--useCudaGraph on cpu is said not to apply" exports.out 'CUDA Graph: requested; not applicable'
    has "--separateProfileRun" exports.out '^\[I\] Profiling run: 20 inferences$'
fi
# TensorRT 8.4+ precision flags: FP8 and per-layer precisions refused in one line, constraints accepted
expect fp8 1 "--fp8: FP8 is not supported" -- trtexec --onnx=resnet18.onnx --fp8 "${quick[@]}"
expect layer-precisions 1 "per-layer precisions are not supported" -- trtexec --onnx=resnet18.onnx \
    --layerPrecisions='*:fp16' "${quick[@]}"
expect constraints-bad 2 "is not none, prefer or obey" -- trtexec --onnx=resnet18.onnx --precisionConstraints=always
if expect constraints 0 "" -- trtexec --onnx=resnet18.onnx --precisionConstraints=obey --iterations=2 --duration=0 --warmUp=0; then
    has "--precisionConstraints is reported" constraints.out '^\[I\] Precision constraints: obey'
fi
# --exportProfile without a separate run counts the timed inferences, not the warm-up's
if expect profile-count 0 "" -- trtexec --loadEngine=resnet18.engine --exportProfile=profile2.json --iterations=7 \
    --duration=0 --warmUp=50; then
    check "--exportProfile counts the 7 timed inferences (warm-up left out)" 'j[0]["count"] == 7' profile2.json
    has "CUDA graphs: said not to apply on cpu" profile-count.out 'CUDA Graph: Disabled \(the cpu provider'
fi
if expect build-only 0 "" -- trtexec --onnx=resnet18.onnx --buildOnly --best --verbose --threads=1; then
    grep -q 'Performance summary' build-only.out && fail "--buildOnly ran inference" || ok "--buildOnly runs no inference"
    has "--best: INT8 left out, said so" build-only.out 'INT8|int8'
fi
expect skip-inference 0 "" -- trtexec --onnx=resnet18.onnx --saveEngine=skip.engine --skipInference &&
    { [ -s skip.engine ] && ok "--skipInference still saves the engine" || fail "--skipInference saved nothing"; }

echo "trtexec: $fails failure(s)"
[ "$fails" -eq 0 ]
