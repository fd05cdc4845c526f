#!/usr/bin/env bash
# `kiln run` end to end on the CPU:
#   bash tests/cli/run_model.sh /path/to/kiln
# - conformance models with .pb, .npy (every dtype, converted), raw .bin and
#   named inputs: outputs written with --output match the expected outputs;
# - resnet18 (models/out) on its reference input: output within 1e-3 of
#   PyTorch's; --topk with --labels; --json - is valid JSON; --random is
#   repeatable with --seed.
# Needs /usr/bin/python3 with numpy and onnx (exits 77 without them, or
# without the conformance models).
# Env: KILN_SHARED_DIR, KILN_SOURCE_DIR, KILN_BUILD_DIR.
set -uo pipefail

kiln=${1:?usage: run_model.sh /path/to/kiln}
case $kiln in /*) ;; *) kiln=$PWD/$kiln ;; esac
shared=${KILN_SHARED_DIR:-/work/shared}
src=${KILN_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
py=/usr/bin/python3
if ! [ -x "$py" ] || ! "$py" -c 'import numpy, onnx' 2>/dev/null; then
    echo "skip: /usr/bin/python3 lacks numpy/onnx"
    exit 77
fi
node=$shared/onnx-backend-tests/node
if ! [ -d "$node/test_add" ]; then
    echo "skip: $node not found (set KILN_SHARED_DIR)"
    exit 77
fi
scratch_parent=${KILN_BUILD_DIR:-${TMPDIR:-/tmp}}
mkdir -p "$scratch_parent"
work=$(mktemp -d "$scratch_parent/run-model.XXXXXX")
trap 'rm -rf "$work"' EXIT

"$py" - "$kiln" "$work" "$node" "$src/models/out" <<'EOF'
import json, os, subprocess, sys
import numpy as np
import onnx
from onnx import numpy_helper

kiln, work, node, models = sys.argv[1:5]
fails = 0

def check(cond, what, detail=""):
    global fails
    if cond:
        print("ok:", what)
    else:
        fails += 1
        print("FAIL:", what, detail)

def run(*args):
    r = subprocess.run([kiln, *args], capture_output=True, text=True)
    return r

def pb(path):
    return numpy_helper.to_array(onnx.load_tensor(path))

# 1. .pb inputs of a conformance test; output compared exactly.
add = f"{node}/test_add"
out = f"{work}/add_pb"
r = run("run", f"{add}/model.onnx", "--input", f"{add}/test_data_set_0/input_0.pb",
        "--input", f"{add}/test_data_set_0/input_1.pb", "--output", out)
check(r.returncode == 0 and np.array_equal(np.load(f"{out}/sum.npy"), pb(f"{add}/test_data_set_0/output_0.pb")),
      "test_add from .pb inputs", r.stderr)

# 2. Named inputs in reverse order, .npy and raw .bin.
x = pb(f"{add}/test_data_set_0/input_0.pb")
y = pb(f"{add}/test_data_set_0/input_1.pb")
np.save(f"{work}/x.npy", x)
y.tofile(f"{work}/y.bin")
r = run("run", f"{add}/model.onnx", "--input", f"y={work}/y.bin", "--input", f"x={work}/x.npy",
        "--output", f"{work}/add_named")
check(r.returncode == 0 and np.array_equal(np.load(f"{work}/add_named/sum.npy"), x + y),
      "named inputs: y=.bin, x=.npy", r.stderr)
r = run("run", f"{add}/model.onnx", "--input", f"{work}/x.npy", "--input", f"{work}/y.bin",
        "--shape", "y:3x4x5", "--dtype", "float32", "--output", f"{work}/add_shape")
check(r.returncode == 0 and np.array_equal(np.load(f"{work}/add_shape/sum.npy"), x + y),
      ".bin with --shape NAME:DIMS and --dtype", r.stderr)

# 3. Every .npy dtype is read and converted to the input's type (--dump-input).
vals = (np.arange(60).reshape(3, 4, 5) % 7).astype(np.float64)
for code in ["<f4", "<f8", "<f2", "|i1", "<i2", "<i4", "<i8", "|u1", "<u2", "<u4", "<u8", "|b1", ">f4", ">i8"]:
    a = vals.astype(np.dtype(code))
    np.save(f"{work}/t.npy", a)
    r = run("run", f"{add}/model.onnx", "--input", f"{work}/t.npy", "--input", f"{work}/x.npy",
            "--dump-input", f"{work}/dump")
    got = np.load(f"{work}/dump/x.npy") if r.returncode == 0 else None
    check(got is not None and got.dtype == np.float32 and np.array_equal(got, a.astype(np.float32)),
          f".npy {code} -> float", r.stderr)
np.save(f"{work}/v2.npy", vals.astype(np.float32))
with open(f"{work}/v2.npy", "rb") as f:
    raw = f.read()
hlen = int.from_bytes(raw[8:10], "little")
with open(f"{work}/v2.npy", "wb") as f:  # the same array with a version 2.0 header
    f.write(b"\x93NUMPY\x02\x00" + hlen.to_bytes(4, "little") + raw[10:])
r = run("run", f"{add}/model.onnx", "--input", f"{work}/v2.npy", "--input", f"{work}/x.npy",
        "--output", f"{work}/v2out")
check(r.returncode == 0 and np.array_equal(np.load(f"{work}/v2out/sum.npy"), vals.astype(np.float32) + x),
      ".npy version 2.0 header", r.stderr)

# 4. Outputs of other types are written as .npy of that type.
cast = f"{node}/test_cast_FLOAT_to_DOUBLE"
if os.path.isdir(cast):
    r = run("run", f"{cast}/model.onnx", "--input", f"{cast}/test_data_set_0/input_0.pb", "--output", f"{work}/cast")
    got = np.load(f"{work}/cast/output.npy") if r.returncode == 0 else None
    check(got is not None and got.dtype == np.float64 and
          np.array_equal(got, pb(f"{cast}/test_data_set_0/output_0.pb"), equal_nan=True), "double output written as <f8",
          r.stderr)

# 5. resnet18 against PyTorch's output; top-k with labels; JSON.
resnet = f"{models}/resnet18.onnx"
if os.path.exists(resnet):
    refdir = f"{models}/resnet18_ref"
    if os.path.isdir(f"{refdir}/test_data_set_0"):
        refdir += "/test_data_set_0"
    ref_in, ref_out = f"{refdir}/input_0.pb", f"{refdir}/output_0.pb"
    with open(f"{work}/labels.txt", "w") as f:
        f.write("".join(f"label number {i}\n" for i in range(1000)))
    r = run("run", resnet, "--input", ref_in, "--output", f"{work}/r18", "--topk", "3", "--labels", f"{work}/labels.txt")
    ref = pb(ref_out)
    got = np.load(f"{work}/r18/output.npy") if r.returncode == 0 else None
    err = float(np.abs(got - ref).max()) if got is not None else None
    check(got is not None and err < 1e-3, f"resnet18 matches PyTorch (max abs error {err})", r.stderr)
    top = np.argsort(-ref[1], kind="stable")[:3]
    check(r.returncode == 0 and "top-3 of row 1" in r.stdout and f"class {top[0]:5d}" in r.stdout
          and f"label number {top[0]}" in r.stdout, "--topk 3 --labels names PyTorch's top class", r.stdout[-600:])
    r = run("run", resnet, "--input", ref_in, "--topk", "2", "--json", "-")
    try:
        d = json.loads(r.stdout)
        o = d["outputs"][0]
        ok = (d["inputs"][0]["shape"] == [2, 3, 224, 224] and o["shape"] == [2, 1000]
              and o["topk"][1]["classes"][0]["index"] == int(top[0])
              and abs(sum(np.exp(ref[1] - ref[1].max())) ** -1 - o["topk"][1]["classes"][0]["probability"]) < 1e-4)
    except Exception as e:
        ok, r = False, r
        print(e)
    check(ok and r.stderr == "", "--json - is valid JSON with shapes and top-k", r.stdout[:300] + r.stderr)
    a = run("run", resnet, "--random", "--seed", "7", "--batch", "2", "--output", f"{work}/rnd1")
    b = run("run", resnet, "--random", "--seed", "7", "--batch", "2", "--output", f"{work}/rnd2")
    check(a.returncode == 0 and b.returncode == 0 and
          np.array_equal(np.load(f"{work}/rnd1/output.npy"), np.load(f"{work}/rnd2/output.npy")) and
          np.load(f"{work}/rnd1/output.npy").shape == (2, 1000), "--random --seed 7 --batch 2 is repeatable",
          a.stderr + b.stderr)
else:
    print(f"note: {resnet} not found; resnet18 checks skipped")

# 6. A model with an int64 input and a dynamic sequence axis.
te = f"{models}/text_encoder.onnx"
if os.path.exists(te) and os.path.exists(f"{models}/text_encoder_ref/test_data_set_0/input_0.npy"):
    d = f"{models}/text_encoder_ref/test_data_set_0"
    r = run("run", te, "--input", f"{d}/input_0.npy", "--output", f"{work}/te")
    got = np.load(f"{work}/te/output.npy") if r.returncode == 0 else None
    ref = np.load(f"{d}/output_0.npy")
    check(got is not None and got.shape == ref.shape and np.abs(got - ref).max() < 1e-3,
          "text_encoder (int64 ids, dynamic sequence) matches PyTorch", r.stderr)
    r = run("run", te, "--random", "--shape", "input:3x7", "--output", f"{work}/te_rnd")
    check(r.returncode == 0 and np.load(f"{work}/te_rnd/output.npy").shape[:2] == (3, 7),
          "--random with --shape NAME:3x7 for dynamic axes", r.stderr)
sys.exit(1 if fails else 0)
EOF
