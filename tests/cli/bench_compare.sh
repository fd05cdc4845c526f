#!/usr/bin/env bash
# `kiln bench` and `kiln compare` on small models:
#   bash tests/cli/bench_compare.sh /path/to/kiln
# bench prints trtexec's metric names and what was measured, writes a JSON
# report whose numbers agree with each other, runs exactly --iterations N,
# takes --batch and --shapes for dynamic axes, and prints nothing on stderr
# when stderr is not a terminal (no progress line in a pipe), reports MACs,
# GFLOP/s and the fraction of the measured FMA peak consistently with
# `kiln info`; sysinfo / bench --peak report the ISA levels and a peak for
# each, honouring KILN_ISA.  compare
# prints one table with the CPU FP32 reference and "unavailable" rows.
# Needs python3 (for JSON) and the conformance models (exits 77 without).
# Env: KILN_SHARED_DIR, KILN_SOURCE_DIR, KILN_BUILD_DIR.
set -uo pipefail

kiln=${1:?usage: bench_compare.sh /path/to/kiln}
case $kiln in /*) ;; *) kiln=$PWD/$kiln ;; esac
shared=${KILN_SHARED_DIR:-/work/shared}
src=${KILN_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
add=$shared/onnx-backend-tests/node/test_add/model.onnx
py=$(command -v python3 || true)
if ! [ -f "$add" ] || [ -z "$py" ]; then
    echo "skip: needs $add and python3"
    exit 77
fi
scratch_parent=${KILN_BUILD_DIR:-${TMPDIR:-/tmp}}
mkdir -p "$scratch_parent"
work=$(mktemp -d "$scratch_parent/bench.XXXXXX")
trap 'rm -rf "$work"' EXIT
cd "$work" || exit 1
fails=0
fail() { echo "FAIL: $*" >&2; fails=$((fails + 1)); }
ok() { echo "ok: $*"; }

# bench: text report.
if "$kiln" bench "$add" --iterations 25 --warmup 10 --json b.json >b.out 2>b.err; then
    missing=""
    for want in "Model load time:" "Session creation time:" "Throughput:" "qps" "samples/s" \
        "Latency: min = " "max = " "mean = " "median = " "percentile(90%) = " "percentile(95%) = " \
        "percentile(99%) = " "Coefficient of variation:" "Peak RSS:" "kiln: 0.1.0" "Provider: cpu" \
        "Threads: auto" "CPU: " "Measured: 25 runs" "Input: 'x' float[3,4,5], random (seed 0)"; do
        grep -qF -- "$want" b.out || missing="$missing '$want'"
    done
    [ -z "$missing" ] && ok "bench text report" || fail "bench text lacks$missing: $(cat b.out)"
    [ -s b.err ] && fail "bench wrote to stderr in a pipe: $(od -c b.err | head -3)" || ok "bench: no progress in a pipe"
    "$py" - b.json <<'EOF' && ok "bench JSON" || fail "bench JSON: $(head -c 600 b.json)"
import json, sys
d = json.load(open(sys.argv[1]))
lat = d["latency_ms"]
assert d["iterations"] == 25 and len(d["latencies_ms"]) == 25, d["iterations"]
assert lat["min"] <= lat["median"] <= lat["p90"] <= lat["p95"] <= lat["p99"] <= lat["max"], lat
assert lat["min"] <= lat["mean"] <= lat["max"]
assert abs(min(d["latencies_ms"]) - lat["min"]) < 1e-9 and abs(max(d["latencies_ms"]) - lat["max"]) < 1e-9
assert d["throughput"]["inferences_per_s"] > 0 and d["peak_rss_bytes"] > 0
assert d["provider"] == "cpu" and d["kiln_version"] == "0.1.0" and d["inputs"][0]["shape"] == [3, 4, 5]
assert d["model_load_ms"] >= 0 and d["session_create_ms"] >= 0 and d["warmup"]["runs"] >= 1
assert isinstance(d["unstable"], bool) and (d["cv"] > 0.1) == d["unstable"]
EOF
else
    fail "bench exit $?: $(cat b.err)"
fi

# bench --json - writes only JSON on stdout; --duration bounds the time.
if "$kiln" bench "$add" --duration 0.3 --warmup 0 --threads 1 --json - >j.out 2>j.err; then
    "$py" -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["threads"] == 1 and d["duration_s"] >= 0.3, d["duration_s"]' \
        j.out && ok "bench --json - --duration 0.3" || fail "bench --json -: $(head -c 300 j.out)"
else
    fail "bench --json - exit: $(cat j.err)"
fi

# Dynamic batch: --batch and --shapes on resnet18 (a few slow runs).
resnet=$src/models/out/resnet18.onnx
if [ -f "$resnet" ]; then
    if "$kiln" bench "$resnet" --batch 2 --iterations 1 --warmup 0 --json r.json >/dev/null 2>r.err &&
        "$py" -c 'import json,sys; d=json.load(open(sys.argv[1]))
assert d["inputs"][0]["shape"] == [2, 3, 224, 224] and d["batch"] == 2
t = d["throughput"]; assert abs(t["samples_per_s"] - 2 * t["inferences_per_s"]) < 1e-9 * t["samples_per_s"]' r.json; then
        ok "bench --batch 2 on a dynamic batch"
    else
        fail "bench --batch 2: $(cat r.err) $(head -c 300 r.json)"
    fi
    # Compute: MACs at batch 2 = 2 x kiln info's count (batch taken as 1); GFLOP/s at the median.
    if "$kiln" info "$resnet" --json >i.json 2>i.err &&
        "$py" -c 'import json,sys; d=json.load(open(sys.argv[1])); i=json.load(open(sys.argv[2])); c=d["compute"]
assert c["macs"] == 2 * i["macs"]["total"] and c["complete"], (c, i["macs"])
assert abs(c["gflops"] - 2 * c["macs"] / (d["latency_ms"]["median"] * 1e6)) <= 1e-9 * c["gflops"], c
assert c["peak_gflops"] > 0 and c["peak_isa"] in ("ref", "avx2", "avx512") and c["peak_threads"] >= 1, c
assert abs(c["fraction_of_peak"] - c["gflops"] / c["peak_gflops"]) <= 1e-9, c' r.json i.json; then
        ok "bench compute: MACs at batch 2, GFLOP/s, fraction of peak"
    else
        fail "bench compute: $(cat i.err) $(head -c 300 i.json)"
    fi
    "$kiln" bench "$resnet" --shapes input:3x3x224x224 --iterations 1 --warmup 0 >s.out 2>s.err &&
        grep -q "float\[3,3,224,224\]" s.out && ok "bench --shapes" || fail "bench --shapes: $(cat s.err s.out)"
fi

# A model without Conv/Gemm/MatMul says so; the JSON has nulls.
grep -qF "Compute: no Conv, Gemm or MatMul nodes" b.out && ok "bench compute line (no MACs)" ||
    fail "bench compute line: $(grep Compute b.out)"
"$py" -c 'import json,sys; c=json.load(open(sys.argv[1]))["compute"]; assert c["macs"] is None and c["gflops"] is None, c' \
    b.json && ok "bench compute JSON (no MACs)" || fail "bench compute JSON: $(head -c 300 b.json)"

# sysinfo and bench --peak: the CPU, ISA levels, a positive peak per usable level.
if "$kiln" sysinfo --json >si.json 2>si.err &&
    "$py" -c 'import json,sys; d=json.load(open(sys.argv[1]))
lv = d["isa_levels"].split(","); assert lv[0] == "ref" and d["isa"] == lv[-1], d
p = {(x["isa"], x["threads"]): x["gflops"] for x in d["peak_gflops"]}
assert all((l, 1) in p and p[(l, 1)] > 0 for l in lv), p
assert d["cores"] == 1 or all((l, d["cores"]) in p for l in lv), p
pv = {x["name"]: x for x in d["providers"]}
assert pv["cpu"]["usable"] is True and pv["cpu"]["reason"] == "", pv
assert "cuda" not in pv or pv["cuda"]["usable"] or pv["cuda"]["reason"], pv' si.json; then
    ok "sysinfo --json"
else
    fail "sysinfo --json: $(cat si.err) $(head -c 400 si.json)"
fi
KILN_ISA=ref "$kiln" bench --peak >pk.out 2>pk.err && grep -qE '^  ref +[0-9.]+ .*<- in use' pk.out &&
    grep -q 'ISA: detected .*; in use ref (KILN_ISA=ref)' pk.out &&
    { ! grep -q 'ISA: detected avx' pk.out || grep -qE '^  avx2 +excluded by KILN_ISA' pk.out; } &&
    ok "bench --peak with KILN_ISA=ref" ||
    fail "bench --peak: $(cat pk.err pk.out)"
"$kiln" sysinfo "$add" >/dev/null 2>sx.err; [ $? -eq 2 ] && grep -q "takes flags only" sx.err &&
    ok "sysinfo refuses a model" || fail "sysinfo MODEL: $(cat sx.err)"

# compare: the reference row and unavailable rows, as text and JSON.
if "$kiln" compare "$add" --providers cpu,cuda --precisions fp32,fp16 --iterations 3 --warmup 0 >c.out 2>c.err; then
    grep -qE '^cpu +fp32 +reference' c.out && grep -qE '^cpu +fp16 +unavailable' c.out &&
        grep -qE '^cuda +fp32 +unavailable' c.out && grep -q 'median ms' c.out && grep -q 'top-1 agree' c.out &&
        ok "compare table" || fail "compare table: $(cat c.out)"
else
    fail "compare exit: $(cat c.err)"
fi
if "$kiln" compare "$add" --providers cuda --iterations 2 --warmup 0 --json - >cj.out 2>cj.err; then
    "$py" - cj.out <<'EOF' && ok "compare JSON" || fail "compare JSON: $(head -c 600 cj.out)"
import json, sys
d = json.load(open(sys.argv[1]))
rows = d["rows"]
assert rows[0]["reference"] and rows[0]["available"] and rows[0]["runs"] == 2, rows[0]
assert rows[1]["provider"] == "cuda" and not rows[1]["available"] and "unavailable" in rows[1]["reason"], rows[1]
EOF
else
    fail "compare --json - exit: $(cat cj.err)"
fi

# bench --streams N: N contexts of one engine, each exactly --iterations runs, merged.
if "$kiln" build "$add" -o e.kiln >eb.out 2>&1; then
    if "$kiln" bench e.kiln --streams 3 --iterations 4 --warmup 0 --json s.json >s.out 2>s.err; then
        grep -q '^Streams: 3 ' s.out && grep -q '^Measured: 12 runs' s.out && ok "bench --streams text" ||
            fail "bench --streams text: $(cat s.out)"
        "$py" - s.json <<'EOF2' && ok "bench --streams JSON" || fail "bench --streams JSON: $(head -c 600 s.json)"
import json, sys
d = json.load(open(sys.argv[1]))
assert d["streams"] == 3, d["streams"]
assert d["iterations"] == 12 and len(d["latencies_ms"]) == 12, (d["iterations"], len(d["latencies_ms"]))
EOF2
    else
        fail "bench --streams exit: $(cat s.err)"
    fi
    "$kiln" bench e.kiln --streams 65 >/dev/null 2>s65.err
    [ $? -eq 2 ] && grep -q -- '--streams' s65.err && ok "bench --streams 65 refused" || fail "bench --streams 65: $(cat s65.err)"
else
    fail "build of an engine for --streams: $(cat eb.out)"
fi
"$kiln" bench "$add" --streams 2 >/dev/null 2>sm.err
[ $? -eq 2 ] && grep -q 'engine file' sm.err && ok "bench --streams on a model refused" || fail "bench --streams on a model: $(cat sm.err)"

if [ "$fails" -ne 0 ]; then
    echo "$fails failure(s)"
    exit 1
fi
echo "bench and compare ok"
