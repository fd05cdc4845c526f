#!/usr/bin/env bash
# Model-zoo test of the kiln command:
#   bash tests/cli/models.sh /path/to/kiln
# Exports ResNet-18 (seeded weights) and its external-data twin with
# models/export.py when models/out lacks them, then checks that
#   - `kiln info` and `kiln check` (plain and --json) accept both;
#   - both report the same parameter count and MACs, and the count equals the
#     sum of initializer element counts computed with the onnx package;
#   - tampered external data (offset or length past the end of the data file,
#     location "../x.data" outside the model's folder) makes `kiln info` and
#     `kiln check` fail cleanly (exit 1-127) with a message naming the tensor;
#   - ResNet-50 (25.5 M params, ~4.1 G MACs) and ViT-B/16 (86.6 M params)
#     report the expected figures, when models/out has them (export them with
#     /usr/bin/python3 models/export.py).
# Env: KILN_SOURCE_DIR, KILN_BUILD_DIR (scratch), KILN_MODELS_DIR (default
# <source>/models/out).  Exits 77 when python3-torch/-onnx are missing.
set -euo pipefail

kiln=${1:?usage: models.sh /path/to/kiln}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
src=${KILN_SOURCE_DIR:-$(cd "$here/../.." && pwd)}
models=${KILN_MODELS_DIR:-$src/models/out}
py=/usr/bin/python3
scratch_parent=${KILN_BUILD_DIR:-${TMPDIR:-/tmp}}
mkdir -p "$scratch_parent"
work=$(mktemp -d "$scratch_parent/models-test.XXXXXX")
trap 'rm -rf "$work"' EXIT
fails=0
[ -x "$kiln" ] || { echo "models: $kiln is not an executable" >&2; exit 1; }

fail() { echo "FAIL: $*" >&2; fails=$((fails + 1)); }
ok() { echo "ok: $*"; }

if ! "$py" -c 'import onnx, torch, torchvision' 2>/dev/null; then
    echo "models: SKIP: $py lacks onnx/torch/torchvision (apt-get install python3-onnx python3-torch python3-torchvision)" >&2
    exit 77
fi
if [ ! -f "$models/resnet18.onnx" ] || [ ! -f "$models/resnet18_ext.onnx" ]; then
    "$py" "$src/models/export.py" --models resnet18,resnet18_ext --out "$models"
fi

# run NAME EXPECT CMD...: run a command, keep its output in $work/NAME.{out,err}
# and its exit status in $work/NAME.rc; EXPECT is "ok" (exit 0) or "fail"
# (exit 1-127, and no sanitizer report).
run() {
    local name=$1 expect=$2 rc=0
    shift 2
    "$@" >"$work/$name.out" 2>"$work/$name.err" || rc=$?
    echo "$rc" >"$work/$name.rc"
    if grep -qE 'ERROR: AddressSanitizer|ERROR: LeakSanitizer|runtime error:' "$work/$name.err"; then
        fail "$name: sanitizer report: $(grep -m1 -E 'ERROR|runtime error' "$work/$name.err")"
        return
    fi
    case $expect in
        ok) [ "$rc" -eq 0 ] && ok "$name" ||
            fail "$name: exit $rc: $(head -c 400 "$work/$name.err")" ;;
        fail) if [ "$rc" -ge 1 ] && [ "$rc" -lt 124 ]; then ok "$name (exit $rc)"; else
            fail "$name: expected a clean failure, got exit $rc: $(head -c 400 "$work/$name.err")"; fi ;;
    esac
}

# figure FILE KEY: a figure from kiln's `info --json` output: params
# (parameters.count), macs (macs.total) or unknown_macs (macs.unknown_nodes).
figure() {
    "$py" - "$1" "$2" <<'PY'
import json, sys
path, key = sys.argv[1], sys.argv[2]
keys = {"params": ("parameters", "count"), "macs": ("macs", "total"),
        "unknown_macs": ("macs", "unknown_nodes")}[key]
try:
    v = json.load(open(path))
    for k in keys:
        v = v[k]
except (ValueError, KeyError, TypeError) as e:
    sys.exit("%s: no %s in the JSON (%s: %s)" % (path, ".".join(keys), type(e).__name__, e))
print(int(v))
PY
}

for m in resnet18 resnet18_ext; do
    run "info-$m" ok "$kiln" info "$models/$m.onnx"
    run "check-$m" ok "$kiln" check "$models/$m.onnx"
    run "info-json-$m" ok "$kiln" info --json "$models/$m.onnx"
    run "check-json-$m" ok "$kiln" check --json "$models/$m.onnx"
done

# Figures: external data changes nothing; parameters = sum of initializer numels.
if p1=$(figure "$work/info-json-resnet18.out" params) && p2=$(figure "$work/info-json-resnet18_ext.out" params) &&
    m1=$(figure "$work/info-json-resnet18.out" macs) && m2=$(figure "$work/info-json-resnet18_ext.out" macs); then
    [ "$p1" = "$p2" ] && ok "external data: same parameter count ($p1)" ||
        fail "parameter count: resnet18 $p1, resnet18_ext $p2"
    [ "$m1" = "$m2" ] && ok "external data: same MACs ($m1)" || fail "MACs: resnet18 $m1, resnet18_ext $m2"
    want=$("$py" -c 'import onnx, sys, numpy as np
m = onnx.load(sys.argv[1], load_external_data=False)
print(sum(int(np.prod(t.dims)) for t in m.graph.initializer))' "$models/resnet18.onnx")
    [ "$p1" = "$want" ] && ok "resnet18 parameters = sum of initializer numels ($want)" ||
        fail "resnet18 parameters: kiln $p1, onnx initializers $want"
    # ResNet-18 at 224x224: 1.81 G MACs (convolutions + classifier), per image.
    u=$(figure "$work/info-json-resnet18.out" unknown_macs) || u=?
    [ "$u" = 0 ] && ok "resnet18: MACs known for every node" || fail "resnet18: MACs unknown for $u node(s)"
    [ "$m1" -ge 1750000000 ] && [ "$m1" -le 1900000000 ] && ok "resnet18 MACs ~1.8 G ($m1)" ||
        fail "resnet18 MACs: $m1, expected ~1.81 G per image"
else
    fail "could not read parameter/MAC figures from kiln info --json"
fi

# Tampered external data: each copy lies beside a link to the real data file.
"$py" - "$models/resnet18_ext.onnx" "$work" <<'PY'
import os, shutil, sys
import onnx
src, work = sys.argv[1], sys.argv[2]
data = os.path.join(os.path.dirname(src), "resnet18_ext.onnx.data")
size = os.path.getsize(data)

def place(path, target):
    """Hard-link (or copy) the real data file to `path`."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    try:
        os.link(target, path)
    except OSError:
        shutil.copyfile(target, path)

def tamper(name, edit, data_path):
    """Write work/<name>/model.onnx with `edit` applied to the first
    external initializer's entries; print the tensor's name."""
    m = onnx.load(src, load_external_data=False)
    t = m.graph.initializer[0]
    entries = {e.key: e for e in t.external_data}
    edit(entries)
    os.makedirs(os.path.join(work, name), exist_ok=True)
    onnx.save(m, os.path.join(work, name, "model.onnx"))
    place(data_path, data)
    with open(os.path.join(work, name + ".tensor"), "w") as f:
        f.write(t.name)

def past_end(e):
    e["offset"].value = str(size + 4096)
def too_long(e):
    e["length"].value = str(size - int(e["offset"].value) + 1)
def escape(e):
    e["location"].value = "../x.data"

tamper("offset", past_end, os.path.join(work, "offset", "resnet18_ext.onnx.data"))
tamper("length", too_long, os.path.join(work, "length", "resnet18_ext.onnx.data"))
# The file ../x.data exists, so only the rule "inside the model's folder" refuses it.
tamper("escape", escape, os.path.join(work, "x.data"))
PY
for t in offset length escape; do
    tensor=$(cat "$work/$t.tensor")
    for cmd in info check; do
        run "$cmd-tampered-$t" fail "$kiln" "$cmd" "$work/$t/model.onnx"
        msg=$(cat "$work/$cmd-tampered-$t.out" "$work/$cmd-tampered-$t.err")
        grep -qF -- "$tensor" <<<"$msg" && ok "$cmd-tampered-$t names tensor '$tensor'" ||
            fail "$cmd-tampered-$t: message does not name tensor '$tensor': $(head -c 300 <<<"$msg")"
    done
done
run "check-json-tampered-offset" fail "$kiln" check --json "$work/offset/model.onnx"

# Larger models, when exported.
expect_range() { # NAME KEY FILE LO HI LABEL
    local v
    if v=$(figure "$3" "$2"); then
        [ "$v" -ge "$4" ] && [ "$v" -le "$5" ] && ok "$1 $2 = $v ($6)" || fail "$1 $2 = $v, expected $6"
    else
        fail "$1: no $2 figure"
    fi
}
if [ -f "$models/resnet50.onnx" ]; then
    run "info-json-resnet50" ok "$kiln" info --json "$models/resnet50.onnx"
    run "check-resnet50" ok "$kiln" check "$models/resnet50.onnx"
    expect_range resnet50 params "$work/info-json-resnet50.out" 25450000 25600000 "25.5 M"
    expect_range resnet50 macs "$work/info-json-resnet50.out" 4000000000 4200000000 "~4.1 G"
    expect_range resnet50 unknown_macs "$work/info-json-resnet50.out" 0 0 "0 nodes without MACs"
else
    echo "models: resnet50.onnx not exported, skipped (/usr/bin/python3 models/export.py --models resnet50)"
fi
if [ -f "$models/vit_b_16.onnx" ]; then
    run "info-json-vit_b_16" ok "$kiln" info --json "$models/vit_b_16.onnx"
    run "check-vit_b_16" ok "$kiln" check "$models/vit_b_16.onnx"
    expect_range vit_b_16 params "$work/info-json-vit_b_16.out" 86500000 86700000 "86.6 M"
    # 17.56 G MACs per image: patch embedding, attention and MLP matmuls, head.
    expect_range vit_b_16 macs "$work/info-json-vit_b_16.out" 17000000000 18000000000 "~17.6 G"
else
    echo "models: vit_b_16.onnx not exported, skipped (/usr/bin/python3 models/export.py --models vit_b_16)"
fi

if [ "$fails" -ne 0 ]; then
    echo "models: $fails FAILURES" >&2
    exit 1
fi
echo "models: OK"
