#!/usr/bin/env bash
# Error paths of the kiln command that a new user would hit:
#   bash tests/cli/cli_errors.sh /path/to/kiln
# Every failure must print exactly one line on stderr starting with "kiln: ",
# exit with the documented code (2 usage, 1 model) and never crash (exit
# status < 128, no sanitizer report).  Also checks --version/--help, and
# that --json output stays valid JSON for names with control characters
# and invalid UTF-8.
# Env: KILN_SHARED_DIR (conformance models, optional), KILN_BUILD_DIR (scratch).
set -uo pipefail

kiln=${1:?usage: cli_errors.sh /path/to/kiln}
case $kiln in /*) ;; *) kiln=$PWD/$kiln ;; esac
shared=${KILN_SHARED_DIR:-/work/shared}
scratch_parent=${KILN_BUILD_DIR:-${TMPDIR:-/tmp}}
mkdir -p "$scratch_parent"
work=$(mktemp -d "$scratch_parent/cli-errors.XXXXXX")
trap 'rm -rf "$work"' EXIT
cd "$work" || exit 1
fails=0
py=$(command -v python3 || true)

fail() { echo "FAIL: $*" >&2; fails=$((fails + 1)); }
ok() { echo "ok: $*"; }

# expect NAME CODE [STDERR-SUBSTRING] -- ARGS...: run kiln with ARGS (stdin
# from /dev/null unless $stdin is set) and check exit code, one stderr line
# and the substring.
expect() {
    local name=$1 code=$2 want=${3:-} rc=0
    shift 3
    [ "${1:-}" = "--" ] && shift
    "$kiln" "$@" <"${stdin:-/dev/null}" >"$name.out" 2>"$name.err" || rc=$?
    if grep -qE 'Sanitizer|runtime error:' "$name.err"; then
        fail "$name: sanitizer report: $(grep -m1 -E 'Sanitizer|runtime error' "$name.err")"
        return
    fi
    if [ "$rc" -ge 128 ]; then
        fail "$name: crashed (exit $rc): $(head -c 300 "$name.err")"
        return
    fi
    if [ "$rc" -ne "$code" ]; then
        fail "$name: exit $rc, expected $code; stderr: $(head -c 300 "$name.err")"
        return
    fi
    if [ "$code" -ne 0 ]; then
        local lines
        lines=$(wc -l <"$name.err")
        if [ "$lines" -ne 1 ]; then
            fail "$name: $lines lines on stderr, expected 1: $(head -c 300 "$name.err")"
            return
        fi
        if ! grep -q '^kiln: ' "$name.err"; then
            fail "$name: stderr does not start with 'kiln: ': $(cat "$name.err")"
            return
        fi
    fi
    if [ -n "$want" ] && ! grep -qF -- "$want" "$name.err"; then
        fail "$name: stderr lacks '$want': $(cat "$name.err")"
        return
    fi
    ok "$name (exit $rc)"
}

# Files a new user might pass.
: >empty.onnx
mkdir -p adir.onnx
printf 'this is not an onnx model\n' >text.onnx
printf '\377\377\377\377\377\377\377\377\377\377\377\377' >ff.onnx
printf '\x0f\x01\x02\x03' >wiretype.onnx
printf '\x3a\x7f\x00' >pastend.onnx
awk 'BEGIN { srand(7); for (i = 0; i < 4096; i++) printf "%c", int(rand() * 256) }' >random.onnx 2>/dev/null ||
    head -c 4096 /dev/urandom >random.onnx
conv="$shared/onnx-backend-tests/node/test_conv_with_strides_padding/model.onnx"

# Usage errors: exit 2.
expect no-args 2 "missing subcommand" --
expect unknown-subcommand 2 "unknown subcommand 'frobnicate'" -- frobnicate
expect typo-subcommand 2 "did you mean 'info'" -- inof x.onnx
expect model-as-subcommand 2 "kiln info model.onnx" -- model.onnx
expect unknown-global-flag 2 "unknown flag '--frob'" -- --frob
expect unknown-info-flag 2 "unknown flag '--frob'" -- info --frob x.onnx
expect unknown-check-flag 2 "unknown flag '--fast'" -- check --fast x.onnx
expect typo-flag 2 "did you mean '--json'" -- info --jsno x.onnx
expect flag-with-value 2 "takes no value" -- info --json=yes x.onnx
expect single-dash-flag 2 "unknown flag '-j'" -- check -j x.onnx
expect info-missing-arg 2 "missing MODEL" -- info
expect check-missing-arg 2 "missing MODEL" -- check
expect info-flag-only 2 "missing MODEL" -- info --json
expect two-models 2 "unexpected argument 'b.onnx'" -- info a.onnx b.onnx
expect help-unknown 2 "unknown subcommand 'frob'" -- help frob
expect help-extra 2 "unexpected argument" -- help info check
expect version-extra 2 "unexpected argument" -- --version now

# Model errors: exit 1, one line naming the file.
for cmd in info check; do
    expect "$cmd-missing-file" 1 "no such file 'missing.onnx'" -- "$cmd" missing.onnx
    expect "$cmd-missing-dir" 1 "no such file 'nodir/m.onnx'" -- "$cmd" nodir/m.onnx
    expect "$cmd-directory" 1 "'adir.onnx' is a directory" -- "$cmd" adir.onnx
    expect "$cmd-empty" 1 "'empty.onnx' is empty" -- "$cmd" empty.onnx
    expect "$cmd-text" 1 "text.onnx" -- "$cmd" text.onnx
    expect "$cmd-ff" 1 "ff.onnx" -- "$cmd" ff.onnx
    expect "$cmd-wiretype" 1 "wiretype.onnx" -- "$cmd" wiretype.onnx
    expect "$cmd-pastend" 1 "pastend.onnx" -- "$cmd" pastend.onnx
    expect "$cmd-random" 1 "random.onnx" -- "$cmd" random.onnx
    expect "$cmd-dev-null" 1 "is empty" -- "$cmd" /dev/null
    stdin=empty.onnx expect "$cmd-empty-stdin" 1 "<stdin>" -- "$cmd" -
    stdin=text.onnx expect "$cmd-garbage-stdin" 1 "<stdin>" -- "$cmd" -
    expect "$cmd-json-missing" 1 "no such file" -- "$cmd" --json missing.onnx
    expect "$cmd-dash-dash" 1 "no such file '--json'" -- "$cmd" -- --json
done
# check --json still writes JSON for a model that does not load.
expect check-json-garbage 1 "text.onnx" -- check --json text.onnx
if [ -n "$py" ]; then
    "$py" -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["loaded"] is False and d["valid"] is False, d' \
        check-json-garbage.out && ok "check --json on garbage: valid JSON" ||
        fail "check --json on garbage: bad JSON: $(head -c 300 check-json-garbage.out)"
fi

# Truncated copies of a real model fail cleanly at every length tried.
if [ -f "$conv" ]; then
    size=$(wc -c <"$conv")
    for n in 1 2 10 50 100 150 200 $((size - 1)); do
        head -c "$n" "$conv" >trunc.onnx
        rc=0
        "$kiln" check trunc.onnx >/dev/null 2>trunc.err || rc=$?
        if [ "$rc" -ge 128 ] || grep -qE 'Sanitizer|runtime error:' trunc.err; then
            fail "truncated to $n bytes: exit $rc: $(head -c 300 trunc.err)"
        elif [ "$rc" -ne 0 ] && [ "$(wc -l <trunc.err)" -ne 1 ]; then
            fail "truncated to $n bytes: $(wc -l <trunc.err) stderr lines"
        fi
    done
    ok "truncated models fail cleanly"
fi

# Things that work.
if "$kiln" --version >version.out 2>&1 && [ "$(cat version.out)" = "kiln 0.1.0" ]; then
    ok "--version"
else
    fail "--version: $(cat version.out)"
fi
for args in "--help" "-h" "help" "help info" "help check" "help help" "info --help" "check --help" "check -h"; do
    # shellcheck disable=SC2086
    if "$kiln" $args >help.out 2>help.err && [ -s help.out ] && [ ! -s help.err ]; then
        ok "kiln $args"
    else
        fail "kiln $args: $(head -c 200 help.err)"
    fi
done
if [ -f "$conv" ]; then
    stdin=$conv expect info-stdin 0 "" -- info -
    grep -q 'Conv' info-stdin.out && ok "info - reads stdin" || fail "info -: $(head -c 300 info-stdin.out)"
fi

# JSON stays valid for names with quotes, backslashes, control characters
# and invalid UTF-8 (same-length byte replacement keeps the protobuf valid).
if [ -f "$conv" ] && [ -n "$py" ]; then
    "$py" - "$conv" weird.onnx <<'PY'
import sys
src, dst = sys.argv[1], sys.argv[2]
b = open(src, "rb").read()
for old, new in [(b"backend-test", b'\x01"\\\n\xff\xc0\xed\xa0\x80\x7f\t<'),
                 (b"test_conv_with_strides_padding", b"\xe2\x82\xac-\xf0\x9f\x98\x80-ok-\xc3(-\x00\x1f-name-%s%n-\xfe")]:
    new = new.ljust(len(old), b"_")[:len(old)]
    assert old in b, old
    b = b.replace(old, new)
open(dst, "wb").write(b)
PY
    for cmd in "info --json" "info --json --shapes" "check --json"; do
        # shellcheck disable=SC2086
        "$kiln" $cmd weird.onnx >weird.json 2>weird.err
        rc=$?
        if [ "$rc" -ge 128 ]; then
            fail "$cmd on odd names: crashed ($rc)"
        elif "$py" -c 'import json,sys; json.loads(open(sys.argv[1], "rb").read().decode("utf-8"))' weird.json 2>weird.pyerr; then
            ok "$cmd on odd names: valid UTF-8 JSON"
        else
            fail "$cmd on odd names: invalid JSON: $(head -c 300 weird.pyerr)"
        fi
    done
    "$kiln" info weird.onnx >weird.txt 2>&1
    rc=$?
    if [ "$rc" -eq 0 ] && ! LC_ALL=C grep -q $'[\x01-\x08\x0b-\x1f\x7f]' weird.txt; then
        ok "info on odd names: no raw control characters in human output"
    else
        fail "info on odd names: exit $rc or raw control characters"
    fi
fi

if [ "$fails" -ne 0 ]; then
    echo "cli_errors: $fails FAILURES" >&2
    exit 1
fi
echo "cli_errors: OK"
