#!/usr/bin/env bash
# Conformance-suite smoke test of the kiln command:
#   bash tests/cli/conformance.sh /path/to/kiln
# Runs `kiln check --json` and `kiln info --json` on every model.onnx of the
# ONNX backend node tests ($KILN_SHARED_DIR/onnx-backend-tests/node, 1802
# models) and fails on
#   - a crash (exit status >= 128), a hang (60 s) or a sanitizer report on stderr;
#   - output of --json that is not valid JSON;
#   - a model that `kiln check` rejects (non-zero exit) or `kiln info` cannot
#     load, unless tests/cli/check_rejects.txt lists it with a reason;
#   - a model listed there that kiln now accepts (the list only shrinks).
# Env: KILN_SHARED_DIR (default: <source>/../shared), KILN_SOURCE_DIR,
#      KILN_BUILD_DIR (scratch goes under it), KILN_JOBS (default 2),
#      KILN_CONFORMANCE_FILTER (a grep -E pattern on test names, for debugging).
set -euo pipefail

kiln=${1:?usage: conformance.sh /path/to/kiln}
kiln=$(cd "$(dirname "$kiln")" && pwd)/$(basename "$kiln")
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
src=${KILN_SOURCE_DIR:-$(cd "$here/../.." && pwd)}
shared=${KILN_SHARED_DIR:-$src/../shared}
suite=$shared/onnx-backend-tests/node
rejects=$here/check_rejects.txt
jobs=${KILN_JOBS:-2}
[ -x "$kiln" ] || { echo "conformance: $kiln is not an executable" >&2; exit 1; }
[ -d "$suite" ] || { echo "conformance: no test suite at $suite" >&2; exit 1; }
py=/usr/bin/python3
[ -x "$py" ] || py=$(command -v python3) || { echo "conformance: needs python3" >&2; exit 1; }

scratch_parent=${KILN_BUILD_DIR:-${TMPDIR:-/tmp}}
mkdir -p "$scratch_parent"
work=$(mktemp -d "$scratch_parent/conformance.XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/out"

# One test: writes out/<test>.{check,info}.{json,err} and a line
# "<test> <check rc> <info rc>" to out/<test>.rc.
run_one() {
    local dir=$1 kiln=$2 out=$3 t rc_c rc_i
    t=$(basename "$dir")
    rc_c=0; rc_i=0
    timeout 60 "$kiln" check --json "$dir/model.onnx" >"$out/$t.check.json" 2>"$out/$t.check.err" || rc_c=$?
    timeout 60 "$kiln" info --json "$dir/model.onnx" >"$out/$t.info.json" 2>"$out/$t.info.err" || rc_i=$?
    echo "$t $rc_c $rc_i" >"$out/$t.rc"
}
export -f run_one

find "$suite" -mindepth 2 -maxdepth 2 -name model.onnx -printf '%h\n' | sort |
    { if [ -n "${KILN_CONFORMANCE_FILTER:-}" ]; then grep -E "$KILN_CONFORMANCE_FILTER" || true; else cat; fi; } \
    >"$work/tests.txt"
total=$(wc -l <"$work/tests.txt")
[ "$total" -gt 0 ] || { echo "conformance: no models found under $suite" >&2; exit 1; }
echo "conformance: running kiln check/info on $total models ($jobs jobs)..."
start=$SECONDS
xargs -P "$jobs" -I{} bash -c 'run_one "$1" "$2" "$3"' _ {} "$kiln" "$work/out" <"$work/tests.txt"

# Judge every result in one Python process (fast: no interpreter per model).
"$py" - "$work/out" "$work/tests.txt" "$rejects" "${KILN_CONFORMANCE_FILTER:-}" "$((SECONDS - start))" <<'PY'
import json, os, re, sys

out, tests_file, rejects_file, filt, secs = sys.argv[1:6]
tests = [os.path.basename(l.strip()) for l in open(tests_file) if l.strip()]
listed = {}
if os.path.exists(rejects_file):
    for line in open(rejects_file):
        line = line.split("#", 1)[0].strip()
        if line:
            name, _, reason = line.partition(" ")
            listed[name] = reason.strip()

SAN = re.compile(r"ERROR: AddressSanitizer|ERROR: LeakSanitizer|runtime error:|"
                 r"SUMMARY: UndefinedBehaviorSanitizer|ERROR: ThreadSanitizer")
CANNOT = re.compile(r"cannot represent", re.I)
failures, valid, rejected, cannot, cannot_run = [], 0, [], 0, 0

def read(path):
    with open(path, errors="replace") as f:
        return f.read()

def first_line(text):
    lines = [l for l in text.splitlines() if l.strip()]
    return lines[0][:200] if lines else "(no message)"

for t in tests:
    rc_path = os.path.join(out, t + ".rc")
    if not os.path.exists(rc_path):
        failures.append("%s: no result (the runner died)" % t)
        continue
    _, rc_c, rc_i = read(rc_path).split()
    rc = {"check": int(rc_c), "info": int(rc_i)}
    text = {}
    for cmd in ("check", "info"):
        so = read(os.path.join(out, "%s.%s.json" % (t, cmd)))
        se = read(os.path.join(out, "%s.%s.err" % (t, cmd)))
        text[cmd] = so + se
        if rc[cmd] == 124:
            failures.append("%s: kiln %s hung (timeout 60 s)" % (t, cmd))
        elif rc[cmd] >= 128:
            failures.append("%s: kiln %s crashed (exit %d): %s" % (t, cmd, rc[cmd], first_line(se)))
        m = SAN.search(se)
        if m:
            i = se.find(m.group(0))
            failures.append("%s: kiln %s: sanitizer report: %s" % (t, cmd, se[i:i + 300].strip()))
        if so.strip():
            try:
                json.loads(so)
            except ValueError as e:
                failures.append("%s: kiln %s --json printed invalid JSON: %s" % (t, cmd, e))
        elif rc[cmd] == 0:
            failures.append("%s: kiln %s --json printed nothing" % (t, cmd))
    check = {}
    try:
        check = json.loads(read(os.path.join(out, t + ".check.json")) or "{}")
    except ValueError:
        pass
    if any(CANNOT.search(x) for x in text.values()) or check.get("status") == "KILN_ERR_UNSUPPORTED":
        cannot += 1
    if isinstance(check.get("unsupported"), int) and check["unsupported"] > 0:
        cannot_run += 1
    if rc["check"] == 0:
        valid += 1
        if t in listed:
            failures.append("%s: listed in check_rejects.txt but kiln check accepts it now: "
                            "remove the line" % t)
        if rc["info"] != 0 and rc["info"] < 128:
            failures.append("%s: kiln check accepts it but kiln info fails (exit %d): %s"
                            % (t, rc["info"], first_line(text["info"])))
    else:
        rejected.append(t)
        if t not in listed and rc["check"] < 124:
            why = check.get("error") or next((p.get("message") for p in check.get("problems", [])
                                              if p.get("severity") == "error"), None)
            failures.append("%s: kiln check rejects it (exit %d): %s"
                            % (t, rc["check"], why or first_line(text["check"])))

if not filt:
    for name in sorted(set(listed) - set(tests)):
        failures.append("%s: listed in check_rejects.txt but not in the suite" % name)

print("conformance: %d checked, %d valid, %d rejected (%d listed in check_rejects.txt), "
      "%d reported \"cannot represent yet\", %d use operators kiln cannot run yet; in %s s"
      % (len(tests), valid, len(rejected), len([t for t in rejected if t in listed]), cannot,
         cannot_run, secs))
if failures:
    print("conformance: %d FAILURES:" % len(failures))
    for f in failures[:200]:
        print("  " + f)
    if len(failures) > 200:
        print("  ... and %d more" % (len(failures) - 200))
    sys.exit(1)
print("conformance: OK")
PY
