#!/usr/bin/env bash
# Figures reported by `kiln info` and verdicts of `kiln check`:
#   bash tests/cli/cli_info.sh /path/to/kiln
# - MACs of Conv/ConvTranspose/Gemm/MatMul/*Integer/QLinear* nodes of
#   conformance-suite models, against hand-computed values;
# - with /usr/bin/python3 + onnx: crafted models for symbolic dims (named
#   and products such as "batch*12"), parameter counts and bytes, metadata,
#   inlined function calls, subgraph nodes, --shapes, and check's exit codes
#   with --strict.
# Env: KILN_SHARED_DIR (conformance models), KILN_BUILD_DIR (scratch).
# Exits 77 (skip) when no python3 is available to read the JSON.
set -uo pipefail

kiln=${1:?usage: cli_info.sh /path/to/kiln}
case $kiln in /*) ;; *) kiln=$PWD/$kiln ;; esac
shared=${KILN_SHARED_DIR:-/work/shared}
suite=$shared/onnx-backend-tests/node
scratch_parent=${KILN_BUILD_DIR:-${TMPDIR:-/tmp}}
mkdir -p "$scratch_parent"
work=$(mktemp -d "$scratch_parent/cli-info.XXXXXX")
trap 'rm -rf "$work"' EXIT
cd "$work" || exit 1
fails=0
fail() { echo "FAIL: $*" >&2; fails=$((fails + 1)); }
ok() { echo "ok: $*"; }

py=$(command -v python3 || true)
if [ -z "$py" ]; then
    echo "cli_info: SKIP: no python3 to read JSON" >&2
    exit 77
fi

# field FILE KEY.PATH: a value from kiln's JSON ("macs.total").
field() {
    "$py" - "$1" "$2" <<'PY'
import json, sys
v = json.load(open(sys.argv[1]))
for k in sys.argv[2].split("."):
    v = v[int(k)] if isinstance(v, list) else v[k]
print(json.dumps(v) if isinstance(v, (list, dict)) else v)
PY
}

# expect_field NAME MODEL KEY VALUE [FLAGS]: kiln info --json MODEL has KEY == VALUE.
expect_field() {
    local name=$1 model=$2 key=$3 want=$4 got rc=0
    shift 4
    "$kiln" info --json "$@" "$model" >"$name.json" 2>"$name.err" || rc=$?
    if [ "$rc" -ne 0 ]; then
        fail "$name: kiln info exit $rc: $(head -c 300 "$name.err")"
        return
    fi
    got=$(field "$name.json" "$key" 2>&1)
    [ "$got" = "$want" ] && ok "$name: $key = $want" || fail "$name: $key = $got, expected $want"
}

# ---- MACs on conformance models (N*Cout*Hout*Wout*Cin/g*kh*kw, M*N*K, ...) ----
if [ -d "$suite" ]; then
    while read -r test macs; do
        if [ -f "$suite/$test/model.onnx" ]; then
            expect_field "$test" "$suite/$test/model.onnx" macs.total "$macs"
            expect_field "$test-unknown" "$suite/$test/model.onnx" macs.unknown_nodes 0
        fi
    done <<'EOF'
test_conv_with_strides_padding 108
test_conv_with_autopad_same 81
test_convinteger_with_padding 128
test_qlinearconv 49
test_convtranspose 162
test_convtranspose_3d 3240
test_convtranspose_group_2 162
test_gemm_all_attributes 60
test_gemm_transposeA 72
test_gemm_default_vector_bias 56
test_matmul_2d 36
test_matmul_4d 72
test_matmul_bcast 144
test_matmulinteger 24
test_qlinearmatmul_2D_uint8_float32 24
test_abs 0
EOF
else
    echo "cli_info: $suite missing, conformance figures skipped"
fi

# ---- crafted models ----------------------------------------------------------
onnxpy=/usr/bin/python3
if ! "$onnxpy" -c 'import onnx' 2>/dev/null; then
    echo "cli_info: $onnxpy lacks onnx, crafted-model checks skipped"
else
    "$onnxpy" - <<'PY' || fail "building test models"
import onnx
from onnx import helper, TensorProto as T

def vi(name, elem, shape):
    return helper.make_tensor_value_info(name, elem, shape)

# Symbolic products: MatMul [batch*12,197,64] x [batch*12,64,197] and a Gemm
# [197*batch,768] x [768,768] with transB.
g = helper.make_graph(
    [helper.make_node("MatMul", ["q", "k"], ["s"], name="qk"),
     helper.make_node("Gemm", ["x", "w"], ["y"], name="proj", transB=1)],
    "g", [vi("q", T.FLOAT, ["batch*12", 197, 64]), vi("k", T.FLOAT, ["batch*12", 64, 197]),
          vi("x", T.FLOAT, ["197*batch", 768])],
    [vi("s", T.FLOAT, None), vi("y", T.FLOAT, None)],
    initializer=[helper.make_tensor("w", T.FLOAT, [768, 768], [0.0] * (768 * 768))])
onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]), "sym.onnx")

# A local function called twice, a Loop-free If with subgraphs, metadata,
# float16 and int8 initializers, an anonymous dim that leaves MACs unknown.
f = helper.make_function("local", "Twice", ["a"], ["b"], [helper.make_node("Add", ["a", "a"], ["b"])],
                         [helper.make_opsetid("", 13)])
then_g = helper.make_graph([helper.make_node("Relu", ["x"], ["t"])], "then", [], [vi("t", T.FLOAT, None)])
else_g = helper.make_graph([helper.make_node("Neg", ["x"], ["e"]), helper.make_node("Abs", ["e"], ["e2"])],
                           "else", [], [vi("e2", T.FLOAT, None)])
g = helper.make_graph(
    [helper.make_node("Twice", ["x"], ["x2"], domain="local"),
     helper.make_node("Twice", ["x2"], ["x4"], domain="local"),
     helper.make_node("If", ["c"], ["r"], then_branch=then_g, else_branch=else_g),
     helper.make_node("MatMul", ["u", "v"], ["uv"])],
    "main", [vi("x", T.FLOAT, ["N", 4]), vi("c", T.BOOL, []), vi("u", T.FLOAT, [None, 8]),
             vi("v", T.FLOAT, [8, 2])],
    [vi("x4", T.FLOAT, None), vi("r", T.FLOAT, None), vi("uv", T.FLOAT, None)],
    initializer=[helper.make_tensor("h", T.FLOAT16, [3, 5], [0] * 15),
                 helper.make_tensor("i8", T.INT8, [7], [0] * 7)])
m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13), helper.make_opsetid("local", 1)],
                      functions=[f], producer_name="crafted", producer_version="9.9")
m.metadata_props.add(key="author", value="kiln tests")
onnx.save(m, "misc.onnx")

# Check verdicts: a valid model, and one with a node reading an undefined value.
g = helper.make_graph([helper.make_node("Relu", ["x"], ["y"], name="relu0")], "ok",
                      [vi("x", T.FLOAT, [2])], [vi("y", T.FLOAT, [2])])
onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]), "valid.onnx")
g = helper.make_graph([helper.make_node("Relu", ["nowhere"], ["y"], name="relu0")], "bad",
                      [vi("x", T.FLOAT, [2])], [vi("y", T.FLOAT, [2])])
onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]), "invalid.onnx")
PY
    # 12*197*197*64 + 197*768*768 with batch taken as 1.
    expect_field sym-macs sym.onnx macs.total $((12 * 197 * 197 * 64 + 197 * 768 * 768))
    expect_field sym-unknown sym.onnx macs.unknown_nodes 0
    expect_field sym-names sym.onnx macs.symbolic_dims_as_1 '["batch"]'
    expect_field sym-params sym.onnx parameters.count $((768 * 768))
    expect_field sym-bytes sym.onnx parameters.bytes $((768 * 768 * 4))
    expect_field sym-input-shape sym.onnx inputs.0.shape '["batch*12", 197, 64]'
    "$kiln" info sym.onnx >sym.txt 2>&1
    grep -q "symbolic dims taken as 1: batch" sym.txt && ok "human output names symbolic dims" ||
        fail "human output: $(cat sym.txt)"

    expect_field misc-inlined misc.onnx function_calls_inlined 2
    expect_field misc-functions misc.onnx local_functions 1
    expect_field misc-add misc.onnx operators.Add 2
    expect_field misc-subgraph-ops misc.onnx operators.Abs 1
    expect_field misc-nodes misc.onnx nodes 7
    expect_field misc-subgraphs misc.onnx subgraphs 2
    expect_field misc-params misc.onnx parameters.count 22
    expect_field misc-bytes misc.onnx parameters.bytes 37
    expect_field misc-unknown misc.onnx macs.unknown_nodes 1
    expect_field misc-meta misc.onnx metadata.author "kiln tests"
    expect_field misc-producer misc.onnx producer_name crafted
    expect_field misc-opsets misc.onnx opsets.1.domain local
    expect_field misc-input-dtype misc.onnx inputs.1.dtype bool
    expect_field misc-input-anon misc.onnx inputs.2.shape '[null, 8]'
    "$kiln" info --json --shapes misc.onnx >values.json 2>&1
    "$py" -c 'import json,sys; n={v["name"] for v in json.load(open(sys.argv[1]))["values"]}; assert {"x","x2","x4","r","h","uv"} <= n, n' \
        values.json && ok "info --json --shapes lists values" || fail "info --json --shapes: $(head -c 300 values.json)"
    "$kiln" info misc.onnx >misc.txt 2>&1
    for want in "crafted 9.9" "1 local, 2 calls inlined" "MACs unknown for 1 node" "22 parameters (37 B)" \
        "author" "x     float[N,4]"; do
        grep -qF -- "$want" misc.txt && ok "info shows '$want'" || fail "info lacks '$want': $(cat misc.txt)"
    done
    "$kiln" info --shapes misc.onnx >shapes.txt 2>&1
    grep -q "values of the main graph" shapes.txt && grep -qE '^  x4 +float' shapes.txt &&
        ok "--shapes lists values" || fail "--shapes: $(cat shapes.txt)"

    rc=0; "$kiln" check valid.onnx >valid.out 2>&1 || rc=$?
    [ "$rc" = 0 ] && grep -q "^valid.onnx: valid" valid.out && ok "check valid model" ||
        fail "check valid.onnx: exit $rc: $(cat valid.out)"
    rc=0; "$kiln" check --strict valid.onnx >strict.out 2>&1 || rc=$?
    if grep -q "^unsupported:" strict.out; then
        [ "$rc" = 1 ] && ok "check --strict fails on unsupported ops" || fail "check --strict: exit $rc"
    else
        [ "$rc" = 0 ] && ok "check --strict passes" || fail "check --strict: exit $rc: $(cat strict.out)"
    fi
    rc=0; "$kiln" check invalid.onnx >invalid.out 2>invalid.err || rc=$?
    [ "$rc" = 1 ] && grep -q "^error: .*nowhere" invalid.out && grep -q "invalid.onnx: invalid" invalid.out &&
        ok "check invalid model" || fail "check invalid.onnx: exit $rc: $(cat invalid.out invalid.err)"
    rc=0; "$kiln" check --json invalid.onnx >invalid.json 2>&1 || rc=$?
    [ "$rc" = 1 ] && [ "$(field invalid.json valid)" = False ] && [ "$(field invalid.json problems.0.severity)" = error ] &&
        ok "check --json invalid model" || fail "check --json invalid.onnx: exit $rc: $(head -c 300 invalid.json)"
fi

if [ "$fails" -ne 0 ]; then
    echo "cli_info: $fails FAILURES" >&2
    exit 1
fi
echo "cli_info: OK"
