#!/usr/bin/env bash
# Fuzz kiln's ONNX loader and checker, and its engine loader, with libFuzzer
# (clang, ASan + UBSan).
#
#   scripts/fuzz.sh [SECONDS]          build, then fuzz each target for SECONDS
#                                      (default 60): fuzz_load, then fuzz_engine,
#                                      so CI's `fuzz.sh 60` takes about 2 minutes
#   scripts/fuzz.sh --replay           run every input of fuzz/corpus/ once
#                                      (fuzz/corpus/engine/ through fuzz_engine)
#   scripts/fuzz.sh --minimize FILE [engine]   shrink a crashing input (writes FILE.min)
#
# The work corpus lives in fuzz/work/ (git-ignored): corpus/ grows between
# runs, seeds/ holds the conformance-suite models and fuzz/corpus/ (inputs
# that once found bugs), artifacts/ receives crash-*, leak-*, timeout-* and
# oom-* files.  The engine target works in fuzz/work/engine/ the same way; its
# seeds are small engines that fuzz_engine writes itself from conformance
# models (KILN_FUZZ_ENGINE_SEEDS), plus fuzz/corpus/engine/; its artifacts are
# named artifacts/engine-crash-*.  Exits non-zero when a run finds a crash.
# Env: KILN_FUZZ_TARGETS (default "load engine"),
# KILN_FUZZ_BUILD_DIR (default build-fuzz), KILN_FUZZ_JOBS (default 1;
# more than 1 uses libFuzzer's -fork mode), KILN_SHARED_DIR (default ../shared),
# CC (default clang).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${KILN_FUZZ_BUILD_DIR:-$root/build-fuzz}
shared=${KILN_SHARED_DIR:-$root/../shared}
jobs=${KILN_FUZZ_JOBS:-1}
work=$root/fuzz/work
fuzzer=$build/fuzz/fuzz_load
engine_fuzzer=$build/fuzz/fuzz_engine
targets=${KILN_FUZZ_TARGETS:-load engine}

# Build fuzz_load (clang, libFuzzer, ASan, UBSan).
build_fuzzer() {
    if ! command -v "${CC:-clang}" >/dev/null; then
        echo "fuzz: needs clang (apt-get install clang libclang-rt-14-dev)" >&2
        exit 1
    fi
    CC=${CC:-clang} cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
        -DKILN_FUZZ=ON -DKILN_SANITIZE=ON -DKILN_BUILD_TESTS=OFF -DKILN_CUDA=OFF >/dev/null
    cmake --build "$build" --target fuzz_load fuzz_engine -j "${KILN_BUILD_JOBS:-2}"
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
    mkdir -p "$work/engine/corpus" "$work/engine/seeds"
    if [ -z "$(ls -A "$work/engine/seeds")" ]; then
        KILN_FUZZ_ENGINE_SEEDS="$work/engine/seeds" KILN_SHARED_DIR="$shared" "$engine_fuzzer"
    fi
    find "$root/fuzz/corpus/engine" -maxdepth 1 -type f -size +0 -exec cp {} "$work/engine/seeds/" \;
}

case ${1:-} in
--replay)
    build_fuzzer
    mapfile -t files < <(find "$root/fuzz/corpus" -maxdepth 1 -type f | sort)
    [ "${#files[@]}" -gt 0 ] || { echo "fuzz: fuzz/corpus/ is empty"; exit 0; }
    "$fuzzer" -rss_limit_mb=2048 -timeout=10 "${files[@]}"
    mapfile -t efiles < <(find "$root/fuzz/corpus/engine" -maxdepth 1 -type f -size +0 | sort)
    [ "${#efiles[@]}" -eq 0 ] || "$engine_fuzzer" -rss_limit_mb=2048 -timeout=10 "${efiles[@]}"
    echo "fuzz: replayed ${#files[@]} + ${#efiles[@]} input(s) of fuzz/corpus/ and fuzz/corpus/engine/ without a crash"
    exit 0 ;;
--minimize)
    input=${2:?usage: fuzz.sh --minimize FILE [engine]}
    build_fuzzer
    [ "${3:-}" = engine ] && fuzzer=$engine_fuzzer
    "$fuzzer" -minimize_crash=1 -max_total_time=120 -rss_limit_mb=2048 -timeout=10 \
        -exact_artifact_path="$input.min" "$input" || true
    [ -f "$input.min" ] && echo "fuzz: minimized to $input.min ($(stat -c %s "$input.min") bytes)"
    exit 0 ;;
esac

secs=${1:-60}
case $secs in '' | *[!0-9]*) echo "usage: fuzz.sh [SECONDS] | --replay | --minimize FILE" >&2; exit 2 ;; esac
build_fuzzer
seed
# Fuzz one target for $secs seconds; returns non-zero when it found a crash.
fuzz_target() {
    local name=$1 bin=$2 corpus=$3 seeds=$4 prefix=$5
    local before after log rc=0
    before=$(find "$work/artifacts" -type f | wc -l)
    log=$work/fuzz-$name-$(date +%Y%m%d-%H%M%S).log
    echo "fuzz: $name: $secs s on $jobs job(s); log $log"
    local opts=(-max_total_time="$secs" -max_len=65536 -rss_limit_mb=2048 -timeout=10
          -artifact_prefix="$work/artifacts/$prefix" -print_final_stats=1)
    [ "$jobs" -gt 1 ] && opts+=(-fork="$jobs")
    nice -n 10 "$bin" "${opts[@]}" "$corpus" "$seeds" >"$log" 2>&1 || rc=$?
    tail -n 15 "$log"
    after=$(find "$work/artifacts" -type f | wc -l)
    if [ "$rc" -ne 0 ] || [ "$after" -gt "$before" ]; then
        echo "fuzz: $name FAILED (exit $rc); new artifacts:" >&2
        find "$work/artifacts" -type f -newer "$log" -printf '  %p (%s bytes)\n' >&2 || true
        grep -m1 -A30 -E 'ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)|runtime error:' "$log" >&2 || true
        echo "fuzz: shrink with scripts/fuzz.sh --minimize FILE${prefix:+ engine}, then keep it as fuzz/corpus/${prefix:+engine/}crash-<what>" >&2
        return 1
    fi
    echo "fuzz: $name: $secs s, no crash ($(grep -m1 -oE 'stat::number_of_executed_units: *[0-9]+' "$log" | grep -oE '[0-9]+$' || echo '?') executions)"
}

failed=0
for t in $targets; do
    case $t in
    load) fuzz_target load "$fuzzer" "$work/corpus" "$work/seeds" "" || failed=1 ;;
    engine) fuzz_target engine "$engine_fuzzer" "$work/engine/corpus" "$work/engine/seeds" engine- || failed=1 ;;
    *) echo "fuzz: unknown target '$t' (load, engine)" >&2; exit 2 ;;
    esac
done
exit $failed
