#!/usr/bin/env bash
# Gathers of one constant index read in place on the GPU (kl_gather_view, src/cuda/exec.c), on a machine with an
# NVIDIA GPU (scripts/gpu-check.sh's unit step):
#   tests/cuda/gather_view.sh KILN [PYTHON]
# The model (tests/cuda/gather_view_model.py) holds views, a view of a view, forms that must not be views (a
# graph output, an NHWC input in FP16) and an input written over after its Gathers unless the view keeps it alive.
# Checked: every output on cuda FP32 and FP16 against the CPU FP32 reference at batch 1 (views) and 2 (the Gather
# kernel), and which Gathers ran a kernel (kiln profile) at batch 1, at batch 2 and with KILN_CUDA_GATHER_VIEW=0.
set -uo pipefail
K=${1:?usage: gather_view.sh KILN [PYTHON]}
PY=${2:-python3}
D=$(mktemp -d /tmp/kiln-gv.XXXX); trap 'rm -rf "$D"' EXIT
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
fail=0
"$PY" "$here/gather_view_model.py" "$D/g.onnx" || { echo "FAIL: cannot write the model"; exit 1; }
for n in 1 2; do
  shapes="X:${n}x5x16,P:${n}x4x6x6"
  "$K" compare "$D/g.onnx" --providers cpu,cuda --precisions fp32,fp16 --shapes "$shapes" --iterations 1 --warmup 0 \
    --json "$D/c$n.json" >"$D/c$n.txt" 2>&1 || { echo "FAIL: compare at batch $n"; cat "$D/c$n.txt"; fail=1; continue; }
  "$PY" - "$D/c$n.json" "$n" <<'PY' || fail=1
import json, sys
rows = [r for r in json.load(open(sys.argv[1]))["rows"] if r["provider"] == "cuda"]
bad = 0
if len(rows) != 2: print("FAIL: batch %s: %d cuda rows, 2 expected" % (sys.argv[2], len(rows))); sys.exit(1)
for r in rows:
    if not r.get("available"): print("FAIL: cuda %s unavailable: %s" % (r["precision"], r.get("reason"))); bad = 1; continue
    tol = 1e-6 if r["precision"] == "fp32" else 2e-3
    for o in r["outputs"]:
        ok = o["rel_l2_error"] <= tol
        bad |= not ok
        print("%s: batch %s cuda %s %s rel L2 %.2e (<= %.0e)" % ("ok" if ok else "FAIL", sys.argv[2], r["precision"],
              o["name"], o["rel_l2_error"], tol))
sys.exit(bad)
PY
done
# which Gathers ran a kernel: the Gather layers kiln profile timed (a view runs nothing: 0 runs)
ran() { "$PY" -c 'import json,sys; print(" ".join(sorted(l["name"] for l in json.load(open(sys.argv[1]))["layers"] if l["op"] == "Gather" and l["runs"] > 0)))' "$1"; }
prof() { env $1 "$K" profile "$D/g.onnx" --providers cuda,cpu $2 --shapes "X:$3x5x16,P:$3x4x6x6" --iterations 1 --export "$D/p.json" >"$D/p.txt" 2>&1 || { echo "FAIL: profile ($1 $2 batch $3)"; cat "$D/p.txt"; fail=1; }; ran "$D/p.json"; }
# expect ENV FLAGS BATCH "RAN" "VIEWED": the Gathers in RAN ran a kernel, those in VIEWED did not
expect() {
  local got g ok=1; got=" $(prof "$1" "$2" "$3") "
  for g in $4; do [[ "$got" == *" gather_$g "* ]] || ok=0; done
  for g in $5; do [[ "$got" == *" gather_$g "* ]] && ok=0; done
  if [ $ok = 1 ]; then echo "ok: $1 $2 batch $3: Gather kernels:$got(views: $5)"
  else echo "FAIL: $1 $2 batch $3: Gather kernels:$got; expected kernels for '$4' and views for '$5'"; fail=1; fi
}
for p in "" --fp16; do
  expect X=0 "$p" 1 "Y4" "G1 G2 G3 G4 G5"                   # a graph output is never a view
  expect X=0 "$p" 2 "G1 G2 G3 Y4" "G4 G5"                   # A[:, i] at batch 2 is strided: the kernel
  expect KILN_CUDA_GATHER_VIEW=0 "$p" 1 "G1 G2 G3 G4 G5 Y4" ""
done
[ $fail = 0 ] && echo "gather_view: all passed" || echo "gather_view: FAILED"
exit $fail
