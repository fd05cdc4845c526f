#!/usr/bin/env bash
# Fuzz kiln's ONNX loader and checker with libFuzzer (clang, ASan + UBSan).
#
#   scripts/fuzz.sh [SECONDS]          build, then fuzz for SECONDS (default 60)
#   scripts/fuzz.sh --replay           run every input of fuzz/corpus/ once
#   scripts/fuzz.sh --minimize FILE    shrink a crashing input (writes FILE.min)
#
# The work corpus lives in fuzz/work/ (git-ignored): corpus/ grows between
# runs, seeds/ holds the conformance-suite models and fuzz/corpus/ (inputs
# that once found bugs), artifacts/ receives crash-*, leak-*, timeout-* and
# oom-* files.  Exits non-zero when a run finds a crash.
# Env: KILN_FUZZ_BUILD_DIR (default build-fuzz), KILN_FUZZ_JOBS (default 1;
# more than 1 uses libFuzzer's -fork mode), KILN_SHARED_DIR (default ../shared),
# CC (default clang).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${KILN_FUZZ_BUILD_DIR:-$root/build-fuzz}
shared=${KILN_SHARED_DIR:-$root/../shared}
jobs=${KILN_FUZZ_JOBS:-1}
work=$root/fuzz/work
fuzzer=$build/fuzz/fuzz_load

# Build fuzz_load (clang, libFuzzer, ASan, UBSan).
build_fuzzer() {
    if ! command -v "${CC:-clang}" >/dev/null; then
        echo "fuzz: needs clang (apt-get install clang libclang-rt-14-dev)" >&2
        exit 1
    fi
    CC=${CC:-clang} cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
        -DKILN_FUZZ=ON -DKILN_SANITIZE=ON -DKILN_BUILD_TESTS=OFF -DKILN_CUDA=OFF >/dev/null
    cmake --build "$build" --target fuzz_load -j "${KILN_BUILD_JOBS:-2}"
}

# Copy the seeds once: every conformance model and the regression corpus.
seed() {
    mkdir -p "$work/corpus" "$work/seeds" "$work/artifacts"
    if [ -d "$shared/onnx-backend-tests/node" ] && [ -z "$(ls -A "$work/seeds")" ]; then
        for d in "$shared"/onnx-backend-tests/node/*/; do
            cp "$d/model.onnx" "$work/seeds/$(basename "$d")"
        done
    fi
    find "$root/fuzz/corpus" -maxdepth 1 -type f -size +0 -exec cp {} "$work/seeds/" \;
}

case ${1:-} in
--replay)
    build_fuzzer
    mapfile -t files < <(find "$root/fuzz/corpus" -maxdepth 1 -type f | sort)
    [ "${#files[@]}" -gt 0 ] || { echo "fuzz: fuzz/corpus/ is empty"; exit 0; }
    "$fuzzer" -rss_limit_mb=2048 -timeout=10 "${files[@]}"
    echo "fuzz: replayed ${#files[@]} input(s) of fuzz/corpus/ without a crash"
    exit 0 ;;
--minimize)
    input=${2:?usage: fuzz.sh --minimize FILE}
    build_fuzzer
    "$fuzzer" -minimize_crash=1 -max_total_time=120 -rss_limit_mb=2048 -timeout=10 \
        -exact_artifact_path="$input.min" "$input" || true
    [ -f "$input.min" ] && echo "fuzz: minimized to $input.min ($(stat -c %s "$input.min") bytes)"
    exit 0 ;;
esac

secs=${1:-60}
case $secs in '' | *[!0-9]*) echo "usage: fuzz.sh [SECONDS] | --replay | --minimize FILE" >&2; exit 2 ;; esac
build_fuzzer
seed
before=$(find "$work/artifacts" -type f | wc -l)
log=$work/fuzz-$(date +%Y%m%d-%H%M%S).log
echo "fuzz: $secs s on $jobs job(s); log $log"
opts=(-max_total_time="$secs" -max_len=65536 -rss_limit_mb=2048 -timeout=10
      -artifact_prefix="$work/artifacts/" -print_final_stats=1)
[ "$jobs" -gt 1 ] && opts+=(-fork="$jobs")
rc=0
nice -n 10 "$fuzzer" "${opts[@]}" "$work/corpus" "$work/seeds" >"$log" 2>&1 || rc=$?
tail -n 15 "$log"
after=$(find "$work/artifacts" -type f | wc -l)
if [ "$rc" -ne 0 ] || [ "$after" -gt "$before" ]; then
    echo "fuzz: FAILED (exit $rc); new artifacts:" >&2
    find "$work/artifacts" -type f -newer "$log" -printf '  %p (%s bytes)\n' >&2 || true
    grep -m1 -A30 -E 'ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)|runtime error:' "$log" >&2 || true
    echo "fuzz: shrink with scripts/fuzz.sh --minimize FILE, then keep it as fuzz/corpus/crash-<what>" >&2
    exit 1
fi
echo "fuzz: $secs s, no crash ($(grep -m1 -oE 'stat::number_of_executed_units: *[0-9]+' "$log" | grep -oE '[0-9]+$' || echo '?') executions)"
