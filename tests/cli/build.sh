#!/usr/bin/env bash
# `kiln build` and the commands that take its engine files:
#   bash tests/cli/build.sh /path/to/kiln
# On a small model made here (Conv+BatchNormalization+Relu, a residual Add,
# GlobalAveragePool, Gemm; dynamic batch):
# - build: summary, engine magic, --json figures (BatchNormalization folded:
#   fewer nodes after; arena <= sum of intermediates with a profile),
#   --verbose build log, profiles (--profile and repeated groups),
#   --help listing every flag;
# - one-line errors with their exit codes: missing file, missing -o, bad
#   shapes syntax, unknown input (with a suggestion), min > opt, unknown flag
#   (closest flag suggested), INT8 refused, unknown provider and pass,
#   a shape outside the profile at run time (naming input, axis and range);
# - run/bench/compare/info/profile/graph on the engine file: the engine's
#   outputs equal the session's (float64 comparison in numpy), bench reports
#   engine load + context creation, info --json facts, profile --export,
#   graph DOT before/after (rendered by Graphviz's dot when installed);
# - run/bench --cache DIR fill an engine cache;
# - --providers skips a provider this kiln/machine lacks with a warning
#   (ONNX Runtime's fallback), --strict-providers refuses.
# Env: KILN_BUILD_DIR (scratch).  Exits 77 (skip) without /usr/bin/python3
# with onnx and numpy (it makes the model and reads the JSON).
set -uo pipefail

kiln=${1:?usage: build.sh /path/to/kiln}
case $kiln in /*) ;; *) kiln=$PWD/$kiln ;; esac
py=/usr/bin/python3
if ! "$py" -c 'import onnx, numpy' 2>/dev/null; then
    echo "build: SKIP: /usr/bin/python3 with onnx and numpy is needed to make the test model" >&2
    exit 77
fi
scratch_parent=${KILN_BUILD_DIR:-${TMPDIR:-/tmp}}
mkdir -p "$scratch_parent"
work=$(mktemp -d "$scratch_parent/cli-build.XXXXXX")
trap 'rm -rf "$work"' EXIT
cd "$work" || exit 1
fails=0
skips=0
fail() { echo "FAIL: $*" >&2; fails=$((fails + 1)); }
ok() { echo "ok: $*"; }
skip() { echo "skip: $*"; skips=$((skips + 1)); }

# The builder API must be there: everything below needs it.
if "$kiln" build --help >/dev/null 2>&1; then :; else
    echo "build: SKIP: 'kiln build' is missing from this kiln" >&2
    exit 77
fi

# ---- the model ---------------------------------------------------------------------
"$py" - <<'PY' || { echo "build: cannot make the test model" >&2; exit 1; }
import numpy as np, onnx
from onnx import helper as h, TensorProto as T, numpy_helper as nh
rng = np.random.default_rng(7)
def init(name, shape, scale=0.3):
    return nh.from_array((rng.standard_normal(shape) * scale).astype(np.float32), name)
inits = [init("w1", (8, 3, 3, 3)), init("b1", (8,)),
         nh.from_array((1 + rng.random(8)).astype(np.float32), "bn_s"), init("bn_b", (8,)),
         init("bn_m", (8,), 0.1), nh.from_array((0.5 + rng.random(8)).astype(np.float32), "bn_v"),
         init("w2", (8, 8, 3, 3), 0.2), init("b2", (8,)), init("wf", (10, 8)), init("bf", (10,))]
nodes = [h.make_node("Conv", ["input", "w1", "b1"], ["c1"], name="conv1", pads=[1, 1, 1, 1]),
         h.make_node("BatchNormalization", ["c1", "bn_s", "bn_b", "bn_m", "bn_v"], ["n1"], name="bn1"),
         h.make_node("Relu", ["n1"], ["r1"], name="relu1"),
         h.make_node("Conv", ["r1", "w2", "b2"], ["c2"], name="conv2", pads=[1, 1, 1, 1]),
         h.make_node("Add", ["c2", "r1"], ["a2"], name="add2"),
         h.make_node("Relu", ["a2"], ["r2"], name="relu2"),
         h.make_node("GlobalAveragePool", ["r2"], ["p"], name="pool"),
         h.make_node("Flatten", ["p"], ["f"], name="flatten"),
         h.make_node("Gemm", ["f", "wf", "bf"], ["output"], name="fc", transB=1)]
g = h.make_graph(nodes, "small",
                 [h.make_tensor_value_info("input", T.FLOAT, ["batch", 3, 16, 16])],
                 [h.make_tensor_value_info("output", T.FLOAT, ["batch", 10])], inits)
m = h.make_model(g, opset_imports=[h.make_opsetid("", 17)], producer_name="kiln-test")
m.ir_version = 8
onnx.checker.check_model(m)
onnx.save(m, "small.onnx")
PY

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

# field FILE KEY.PATH: a value from a JSON file ("rows.0.median_ms").
field() {
    "$py" - "$1" "$2" <<'PY'
import json, sys
v = json.load(open(sys.argv[1]))
for k in sys.argv[2].split("."):
    v = v[int(k)] if isinstance(v, list) else v[k]
print(json.dumps(v) if isinstance(v, (list, dict)) else v)
PY
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

dyn=(--minShapes input:1x3x16x16 --optShapes input:4x3x16x16 --maxShapes input:8x3x16x16)

# ---- build ---------------------------------------------------------------------------
if expect build-ok 0 "" -- build small.onnx -o small.kiln; then
    grep -q '^Nodes: 9 before' build-ok.out && ok "summary counts 9 nodes before" ||
        fail "summary: $(cat build-ok.out)"
    for k in Providers: Precision: Arena: "Build time:" Engine:; do
        grep -q "^$k" build-ok.out || fail "summary lacks '$k': $(cat build-ok.out)"
    done
    [ "$(head -c 7 small.kiln)" = KILNENG ] && [ "$(head -c 8 small.kiln | od -An -tx1 | awk '{print $8}')" = 00 ] &&
        ok "engine starts with KILNENG\\0" || fail "engine magic: $(head -c 8 small.kiln | od -c)"
fi
if expect build-json 0 "" -- build small.onnx -o dyn.kiln "${dyn[@]}" --json build.json; then
    check "BatchNormalization folded, Relu/Add fused: fewer nodes after" 'j["nodes_after"] < j["nodes_before"] == 9' build.json
    check "arena <= sum of intermediates (profile max)" '0 < j["arena_bytes"] <= j["intermediate_bytes"]' build.json
    check "build JSON: engine size, build time, providers" 'j["engine_bytes"] > 0 and j["build_ms"] > 0 and "cpu" in j["providers"]' build.json
fi
if expect build-verbose 0 "" -- build small.onnx -o v.kiln --verbose; then
    grep -qi 'bn1' build-verbose.out && ok "--verbose logs the BatchNormalization rewrite" ||
        fail "--verbose shows no rewrite of bn1: $(head -c 800 build-verbose.out)"
fi
# Progress bar: on a terminal only, while tactics are timed ("progress D/N" messages).
if expect build-verbose-profile 0 "" -- build small.onnx -o vp.kiln "${dyn[@]}" --verbose; then
    grep -q 'timing tactics' build-verbose-profile.err && fail "progress bar drawn on a pipe" || ok "no progress bar on a pipe"
    timed=$(sed -nE 's/.*tactics: ([0-9]+) node\(s\) timed.*/\1/p' build-verbose-profile.out | head -n 1)
    if [ "${timed:-0}" -gt 0 ] && command -v script >/dev/null; then
        script -qc "'$kiln' build small.onnx -o tty.kiln ${dyn[*]}" /dev/null >tty.out 2>&1
        grep -q 'timing tactics \[' tty.out && ok "progress bar on a terminal ($timed nodes timed)" ||
            fail "no progress bar on a terminal: $(head -c 500 tty.out)"
    else
        skip "progress bar: ${timed:-no} node timed (no node has two tactics yet) or no 'script' command"
    fi
fi
expect build-json-stdout 0 "" -- build small.onnx -o s2.kiln --json - &&
    check "--json - writes JSON on stdout" 'j["nodes_before"] == 9' build-json-stdout.out
expect build-two-profiles 0 "" -- build small.onnx -o two.kiln --profile "${dyn[@]}" --profile \
    --minShapes input:1x3x16x16 --optShapes input:16x3x16x16 --maxShapes input:32x3x16x16 &&
    expect info-two-profiles 0 "" -- info two.kiln --json &&
    check "--profile twice: 2 profiles" 'int(j["profiles"]) == 2' info-two-profiles.out
expect build-repeated-groups 0 "" -- build small.onnx -o rep.kiln "${dyn[@]}" \
    --minShapes input:1x3x16x16 --optShapes input:16x3x16x16 --maxShapes input:32x3x16x16 &&
    expect info-repeated-groups 0 "" -- info rep.kiln --json &&
    check "repeated min/opt/max groups: 2 profiles" 'int(j["profiles"]) == 2' info-repeated-groups.out
expect build-threads-workspace 0 "" -- build small.onnx -o tw.kiln --threads 1 --workspace 64 --timing-cache tc.bin
[ -s tc.bin ] && ok "--timing-cache writes the cache file" || skip "--timing-cache wrote no file (nothing to time?)"
expect build-pass-limit 0 "" -- build small.onnx -o pl.kiln --pass-limit 0 --json pl.json &&
    check "--pass-limit 0: no rewrite" 'j["nodes_after"] == j["nodes_before"] and all(l.startswith("passes") for l in j["passes"])' pl.json
expect build-no-optimize 0 "" -- build small.onnx -o no.kiln --no-optimize --json no.json &&
    check "--no-optimize keeps the 9 nodes" 'j["nodes_after"] == 9' no.json
expect build-fp16 0 "" -- build small.onnx -o h.kiln --fp16 &&
    { grep -qi 'fp32' build-fp16.out && ok "--fp16 on cpu: the summary says FP32 is kept" ||
        fail "--fp16: no FP32 note: $(cat build-fp16.out build-fp16.err)"; }

# ---- build errors ----------------------------------------------------------------------
expect build-missing-file 1 "no such file 'nope.onnx'" -- build nope.onnx -o x.kiln
expect build-missing-o 2 "missing -o" -- build small.onnx
expect build-missing-model 2 "missing MODEL" -- build -o x.kiln
expect build-bad-shape 2 "is not a shape" -- build small.onnx -o x.kiln --minShapes input:1x3xAx16 \
    --optShapes input:1x3x16x16 --maxShapes input:1x3x16x16
expect build-no-colon 2 "is not NAME:DIMS" -- build small.onnx -o x.kiln --minShapes 1x3x16x16 \
    --optShapes input:1x3x16x16 --maxShapes input:1x3x16x16
expect build-unknown-input 2 "no input 'inptu' (did you mean 'input'?)" -- build small.onnx -o x.kiln \
    --minShapes inptu:1x3x16x16 --optShapes input:1x3x16x16 --maxShapes input:1x3x16x16
expect build-min-gt-opt 2 "axis 0: min 4 <= opt 2 <= max 8 does not hold" -- build small.onnx -o x.kiln \
    --minShapes input:4x3x16x16 --optShapes input:2x3x16x16 --maxShapes input:8x3x16x16
expect build-fixed-axis 2 "axis 2 is fixed to 16, not 32" -- build small.onnx -o x.kiln --shapes input:1x3x32x32
expect build-wrong-rank 2 "the shape has 3 dimensions" -- build small.onnx -o x.kiln --shapes input:1x3x16
expect build-missing-max 2 "has no max shape" -- build small.onnx -o x.kiln --profile --minShapes input:1x3x16x16 \
    --optShapes input:1x3x16x16
expect build-unknown-flag 2 "unknown flag '--fp61' (did you mean '--fp16'?)" -- build small.onnx -o x.kiln --fp61
expect build-flag-typo 2 "did you mean '--maxShapes'?" -- build small.onnx -o x.kiln --maxShape input:1x3x16x16
expect build-int8 1 "--int8" -- build small.onnx -o int8.kiln --int8
[ -e int8.kiln ] && fail "--int8 left an engine file" || ok "--int8 writes no engine"
expect build-bad-provider 2 "--providers" -- build small.onnx -o x.kiln --providers gpu
expect build-bad-pass 2 "--disable-pass" -- build small.onnx -o x.kiln --disable-pass no_such_pass
expect build-bad-threads 2 "--threads: 'many' is not a whole number" -- build small.onnx -o x.kiln --threads many
expect build-bad-workspace 2 "--workspace" -- build small.onnx -o x.kiln --workspace lots
expect build-unwritable 1 "cannot write the engine" -- build small.onnx -o /nonexistent-dir/x.kiln
expect check-engine 1 "is a kiln engine file, not an ONNX model" -- check small.kiln

# --help lists every flag.
"$kiln" build --help >help.out 2>&1
missing=""
for f in -o --providers --strict-providers --threads --fp16 --bf16 --int8 --best --tf32 --minShapes --optShapes \
    --maxShapes --profile --workspace --timing-cache --disable-pass --pass-limit --tactic --verbose --json; do
    grep -qE "^  $f( |\$)" help.out || missing="$missing $f"
done
[ -z "$missing" ] && ok "build --help lists every flag" || fail "build --help lacks:$missing"

# ---- the engine in the other commands ------------------------------------------------------
if expect info-engine 0 "" -- info dyn.kiln --layers; then
    for k in "format version" "model SHA-256" providers "CPU features" precision "nodes before" "nodes after" arena \
        "layers ("; do
        grep -q "^$k" info-engine.out || fail "info ENGINE lacks '$k': $(head -c 600 info-engine.out)"
    done
    grep -qE '^ +[0-9]+ +[^ ]+ +cpu ' info-engine.out && ok "info --layers lists layers with their provider" ||
        fail "info --layers: $(cat info-engine.out)"
fi
expect info-engine-json 0 "" -- info dyn.kiln --json &&
    check "info --json: facts, layers with provider and tactic" \
        'j["format_version"] >= 1 and len(j["model_sha256"]) == 64 and j["arena_bytes"] <= j["intermediate_bytes"] and all(l["provider"] and l["op"] for l in j["layers"]) and j["inputs"][0]["name"] == "input"' \
        info-engine-json.out
"$kiln" info - --json <small.kiln >info-stdin.out 2>&1 && check "info reads an engine from stdin" 'j["nodes_before"] == 9' info-stdin.out
expect info-layers-model 2 "--layers applies to an engine" -- info small.onnx --layers

# run: the engine's outputs against the session's, and a shape outside the profile.
mkdir -p out_model out_engine
if expect run-model 0 "" -- run small.onnx --random --batch 3 --output out_model &&
    expect run-engine 0 "" -- run dyn.kiln --random --batch 3 --output out_engine; then
    if "$py" - <<'PY'; then ok "run ENGINE == run MODEL (max abs diff <= 1e-5)"; else fail "run ENGINE differs from run MODEL"; fi
import numpy as np, sys
a = np.load("out_model/output.npy").astype(np.float64); b = np.load("out_engine/output.npy").astype(np.float64)
print("max abs diff", np.abs(a - b).max(), "shape", a.shape)
sys.exit(0 if a.shape == b.shape == (3, 10) and np.abs(a - b).max() <= 1e-5 else 1)
PY
    grep -q 'engine' run-engine.out && ok "run ENGINE says it ran the engine" || fail "run ENGINE: $(cat run-engine.out)"
fi
expect run-outside-profile 1 "axis 0 is 9, outside the range 1..8" -- run dyn.kiln --random --batch 9
grep -q "'input'" run-outside-profile.err && ok "the refusal names the input" || fail "no input name: $(cat run-outside-profile.err)"
expect run-profile-1 0 "" -- run two.kiln --random --batch 20 --profile 1
expect run-profile-0 1 "outside the range 1..8" -- run two.kiln --random --batch 20
expect run-bad-profile 2 "--profile 5" -- run two.kiln --random --profile 5
expect run-model-profile 2 "--profile applies to an engine file" -- run small.onnx --random --profile 1
expect bench-profile-1 0 "" -- bench two.kiln --profile 1 --iterations 1 --warmup 0 --json bench-p1.json &&
    check "bench --profile 1 runs at that profile's opt shape (batch 16)" 'j["batch"] == 16' bench-p1.json
expect run-engine-threads 2 "--threads does not apply to an engine" -- run dyn.kiln --random --threads 2
expect run-engine-cache 2 "--cache applies to a model" -- run dyn.kiln --random --cache cache

# bench: engine load + context creation (median of several loads), and the opt shape by default.
if expect bench-engine 0 "" -- bench dyn.kiln --iterations 3 --warmup 0 --json bench.json; then
    check "bench ENGINE: engine load + context creation over 7 loads" \
        'j["engine_load_context_ms"]["loads"] == 7 and 0 < j["engine_load_context_ms"]["median"] < 20000' bench.json
    check "bench ENGINE runs at the profile's opt shape (batch 4)" 'j["batch"] == 4' bench.json
fi
expect bench-engine-text 0 "" -- bench dyn.kiln --iterations 2 --warmup 0 &&
    { grep -q '^Engine load + context creation: median = ' bench-engine-text.out && ok "bench ENGINE text report" ||
        fail "bench ENGINE text: $(cat bench-engine-text.out)"; }
expect bench-model 0 "" -- bench small.onnx --iterations 2 --warmup 0 &&
    { grep -q '^Session creation time: .*build' bench-model.out && ok "bench MODEL reports the build (session) time" ||
        fail "bench MODEL: $(cat bench-model.out)"; }

# --cache: the session stores an engine, and a second start loads it.
mkdir -p cache
if expect bench-cache-1 0 "" -- bench small.onnx --iterations 1 --warmup 0 --cache cache; then
    n=$(find cache -type f | head -n 5 | wc -l)
    first=$(find cache -type f | head -n 1)
    if [ "$n" -ge 1 ] && [ "$(head -c 7 "$first")" = KILNENG ]; then ok "--cache stored an engine ($first)"
    else fail "--cache DIR holds no engine after a run: $(ls -la cache)"; fi
    expect run-cache-2 0 "" -- run small.onnx --random --cache cache
fi

# compare: the engine's row against the FP32 reference.
expect compare-engine 0 "" -- compare small.onnx --engine dyn.kiln --iterations 2 --warmup 0 --json compare.json &&
    check "compare --engine: engine row with its error" \
        '[r for r in j["rows"] if r["engine"] and r["available"] and r["max_abs_error"] <= 1e-4]' compare.json
expect compare-engine-positional 0 "" -- compare dyn.kiln --model small.onnx --iterations 2 --warmup 0
expect compare-engine-no-model 2 "give its model with --model" -- compare dyn.kiln

# profile: per-layer times, sorted, percentages summing to 100.
if expect profile-engine 0 "" -- profile dyn.kiln --iterations 3 --export prof.json; then
    check "profile --export: layers sorted by time, shares sum to 100, each with op and provider" \
        'abs(sum(l["percentage"] for l in j["layers"]) - 100) < 0.01 and all(l["runs"] == 3 and l["op"] and l["provider"] for l in j["layers"]) and [l["total_ms"] for l in j["layers"]] == sorted([l["total_ms"] for l in j["layers"]], reverse=True)' \
        prof.json
    grep -q '^ *1 ' profile-engine.out && ok "profile prints the table" || fail "profile: $(cat profile-engine.out)"
fi
expect profile-model 0 "" -- profile small.onnx --iterations 2 --top 3
# build flags for a MODEL: the in-memory build is made with them (the engine's facts say so), at the profiled batch
if expect profile-model-flags 0 "" -- profile small.onnx --iterations 1 --fp16 --providers cpu --batch 3 --export profm.json; then
    check "profile MODEL --fp16 --providers cpu: built for cpu, fp16 allowed, batch 3" \
        'j["providers"] == "cpu" and j["inputs"][0]["shape"][0] == 3' profm.json
    grep -q 'precision fp32 (fp16' profile-model-flags.out && ok "profile MODEL prints the build's precision" ||
        fail "profile --fp16: $(head -3 profile-model-flags.out)"
fi
expect profile-engine-flags 2 "applies to a model" -- profile dyn.kiln --fp16
expect profile-bad-flag 2 "did you mean '--iterations'?" -- profile small.onnx --iteration 3

# graph: DOT before and after optimization, from a model and from an engine.
if expect graph-after 0 "" -- graph small.onnx -o after.dot && expect graph-before 0 "" -- graph small.onnx --before -o before.dot &&
    expect graph-engine 0 "" -- graph dyn.kiln; then
    a=$(grep -c 'label=' after.dot); b=$(grep -c 'label=' before.dot)
    head -c 7 after.dot | grep -q digraph && [ "$a" -lt "$b" ] && ok "graph: fewer boxes after optimization ($a < $b)" ||
        fail "graph before/after: $b vs $a labels"
    grep -q 'bn1' after.dot && ok "graph labels fused layers with the nodes they absorbed" || fail "after.dot does not name bn1"
    if command -v dot >/dev/null; then
        for f in after.dot before.dot graph-engine.out; do
            dot -Tsvg "$f" -o "$f.svg" 2>dot.err && [ -s "$f.svg" ] && ok "dot -Tsvg renders $f" ||
                fail "dot -Tsvg $f: $(head -c 300 dot.err)"
        done
    else
        skip "graphviz's dot is not installed: DOT output not rendered"
    fi
fi
expect graph-before-engine 2 "--before applies to a model" -- graph dyn.kiln --before

# --providers as ONNX Runtime takes them: a provider this kiln or machine
# lacks is skipped with one warning (the next one runs the model), refused
# with --strict-providers; run and bench take the list for a model's session.
if "$kiln" sysinfo 2>/dev/null | grep -qE '^ *cuda +usable'; then
    skip "--providers fallback: this machine can run cuda"
else
    for c in run bench build; do
        case $c in
        run) args=(run small.onnx --random --shape input:1x3x16x16) ;;
        bench) args=(bench small.onnx --iterations 2 --warmup 0) ;;
        build) args=(build small.onnx -o prov.kiln) ;;
        esac
        rc=0
        "$kiln" "${args[@]}" --providers cuda,cpu </dev/null >"prov-$c.out" 2>"prov-$c.err" || rc=$?
        if [ "$rc" -eq 0 ] && [ "$(grep -c "warning: --providers: provider 'cuda'" "prov-$c.err")" -eq 1 ] &&
            grep -q "skipped" "prov-$c.err"; then
            ok "$c --providers cuda,cpu: cuda skipped with one warning, cpu ran"
        else
            fail "$c --providers cuda,cpu: exit $rc; stderr: $(head -c 400 "prov-$c.err")"
        fi
        expect "prov-$c-strict" 1 "--providers: provider 'cuda'" -- "${args[@]}" --providers cuda,cpu --strict-providers
        expect "prov-$c-none" 1 "none of 'cuda' can run here" -- "${args[@]}" --providers cuda
    done
    grep -q '^Provider: cpu' prov-bench.out && ok "bench names the session's provider" ||
        fail "bench --providers: no 'Provider: cpu' line: $(grep -m1 Provider prov-bench.out)"
fi
# --batch 1,2,3: one report per size, in order; every size checked first
if expect bench-sweep 0 "" -- bench small.onnx --batch 1,2,3 --iterations 2 --warmup 0; then
    [ "$(grep -E '^=== batch [0-9]+ ===$' bench-sweep.out | tr -d '=a-z ' | tr '\n' ,)" = "1,2,3," ] &&
        [ "$(grep -c 'samples/s (batch ' bench-sweep.out)" -eq 3 ] && ok "bench --batch 1,2,3: three reports in order" ||
        fail "bench --batch 1,2,3: $(grep -E '^=== batch|samples/s' bench-sweep.out | tr '\n' ' ')"
fi
expect bench-sweep-bad 2 "--batch: 'x'" -- bench small.onnx --batch 1,x --iterations 2 --warmup 0
[ -s bench-sweep-bad.out ] && fail "bench --batch 1,x ran before refusing: $(head -c 200 bench-sweep-bad.out)" ||
    ok "bench --batch 1,x refused before any run"
expect bench-sweep-json 2 "--json takes one --batch value" -- bench small.onnx --batch 1,2 --json x.json
expect run-bad-provider 2 "unknown provider 'gpu'" -- run small.onnx --random --shape input:1x3x16x16 --providers gpu
expect run-engine-providers 2 "--providers applies to a model" -- run dyn.kiln --random --providers cpu
expect bench-engine-providers 2 "--providers applies to a model" -- bench dyn.kiln --iterations 1 --providers cpu

echo "build: $fails failure(s), $skips skip(s)"
[ "$fails" -eq 0 ]
