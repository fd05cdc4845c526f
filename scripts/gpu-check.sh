#!/usr/bin/env bash
# The GPU check, in one call on a machine with an NVIDIA GPU (the device
# machine): build kiln with the cuda provider, run the CUDA unit tests,
# export the zoo, compare every model on cuda FP32/FP16 against the CPU
# reference, run the conformance suite on cuda, and time kiln against
# PyTorch (eager and compiled with CUDA graphs) side by side.
#   scripts/gpu-check.sh [STEP...]     steps: build unit models zoo conformance bench (default: all)
# Env: OUT (results folder, default ./gpu-out), MODELS (zoo list),
#      KILN_GPU_BUILD (default build-gpu), NODE_TESTS (a node.tar.xz of
#      onnx-backend-tests/node when ../shared is not beside the checkout).
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
OUT=${OUT:-$PWD/gpu-out}
RES=$OUT
OUT=$(mktemp -d /tmp/gpu-check.XXXX)   # logs; packed into RES/logs.tgz at the end
mkdir -p "$RES"
B=${KILN_GPU_BUILD:-build-gpu}
MODELS=${MODELS:-resnet50,mobilenet_v2,efficientnet_b0,vit_b_16,yolov8n,text_encoder}
steps=("$@")
[ ${#steps[@]} -eq 0 ] && steps=(build unit models zoo conformance bench)
has() {
    local s
    # GPU_DEADLINE (seconds since the start): later steps are skipped past it.
    if [ -n "${GPU_DEADLINE:-}" ] && [ "$SECONDS" -gt "$GPU_DEADLINE" ]; then
        echo "skipping '$1': past GPU_DEADLINE ($SECONDS s)"
        return 1
    fi
    for s in "${steps[@]}"; do [ "$s" = "$1" ] && return 0; done
    return 1
}
PY=${PY:-python3}
log() { printf '\n=== %s (%s)\n' "$*" "$(date +%T)"; }
status=0

if has build; then
    log build
    nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm --format=csv | tee "$OUT/gpu.txt"
    gen=(); command -v ninja >/dev/null && gen=(-G Ninja)
    cmake -S . -B "$B" "${gen[@]}" -DCMAKE_BUILD_TYPE=Release -DKILN_CUDA=ON >"$OUT/cmake.log" 2>&1 || { tail -30 "$OUT/cmake.log"; exit 1; }
    cmake --build "$B" -j "$(nproc)" --target kiln kiln-conformance >"$OUT/build.log" 2>&1 || { grep -E "error|Error" -A3 "$OUT/build.log" | head -60; exit 1; }
    for t in test_cuda_kernels test_cuda_dnn bench_flash; do
        cmake --build "$B" -j "$(nproc)" --target $t >>"$OUT/build.log" 2>&1 || echo "$t: does not build (see build.log)"
    done
    echo "built: $("$B/kiln" --version)"
fi

if has unit; then
    log "unit: CUDA kernels and cuDNN/cuBLASLt wrappers against float64 references"
    for t in test_cuda_kernels test_cuda_dnn; do
        [ -x "$B/tests/$t" ] || { echo "$t: not built"; continue; }
        "$B/tests/$t" >"$OUT/$t.log" 2>&1; rc=$?
        grep -E "FAIL" "$OUT/$t.log" | head -30
        tail -3 "$OUT/$t.log"
        echo "$t: exit $rc"
        [ $rc -eq 0 ] || status=1
    done
    # the executor's views: Gathers of one index read in place, against the CPU reference
    tests/cuda/gather_view.sh "$B/kiln" "$PY" >"$OUT/gather_view.log" 2>&1; rc=$?
    grep -E "FAIL" "$OUT/gather_view.log" | head -20
    tail -1 "$OUT/gather_view.log"
    [ $rc -eq 0 ] || status=1
fi

if has models; then
    log "models: export the zoo ($MODELS)"
    $PY models/export.py --models "$MODELS" >"$OUT/export.log" 2>&1 || { tail -20 "$OUT/export.log"; status=1; }
    ls -la models/out/*.onnx 2>/dev/null | awk '{print $5, $9}'
fi

if has zoo; then
    log "zoo: cuda fp32/fp16 against the cpu fp32 reference (batch 1, seeded random inputs)"
    IFS=, read -ra ms <<<"$MODELS"
    for m in "${ms[@]}"; do
        f=models/out/$m.onnx
        [ -f "$f" ] || { echo "$m: no model"; continue; }
        extra=(); [ "$m" = text_encoder ] && extra=(--shapes input:1x16)  # the exporter bakes the traced length into some Reshapes
        it=20; case $m in sam*) it=1 ;; esac   # its CPU reference takes ~30 s per run
        timeout 300 "$B/kiln" compare "$f" --providers cpu,cuda --precisions fp32,fp16 --iterations $it "${extra[@]}" \
            --json "$OUT/compare_$m.json" >"$OUT/compare_$m.txt" 2>&1; rc=$?
        echo "--- $m (exit $rc)"; grep -E "^(cpu|cuda)" "$OUT/compare_$m.txt" || tail -5 "$OUT/compare_$m.txt"
        [ $rc -eq 0 ] || status=1
    done
    # Branches on the second stream (docs/CUDA.md) run the same kernels in the same order on each stream:
    # an FP16 engine's outputs must be the same bytes with them off.
    for m in resnet50 yolov8n; do
        f=models/out/$m.onnx; [ -f "$f" ] || continue
        "$B/kiln" build "$f" --fp16 -o "$OUT/br_$m.kiln" >/dev/null 2>&1 || { echo "$m: branch check: build failed"; status=1; continue; }
        for v in 0 1; do KILN_CUDA_BRANCHES=$v "$B/kiln" run "$OUT/br_$m.kiln" --random --output "$OUT/br_${m}_$v" >/dev/null 2>&1; done
        if [ -n "$(ls "$OUT/br_${m}_1" 2>/dev/null)" ] && diff -rq "$OUT/br_${m}_0" "$OUT/br_${m}_1" >/dev/null; then
            echo "$m: the same outputs with and without branches"
        else echo "FAIL $m: outputs differ with and without branches (KILN_CUDA_BRANCHES)"; status=1; fi
    done
fi

if has bench; then
    log "bench: kiln vs PyTorch side by side"
    # rows land in RES as they come (a call cut short still returns them)
    $PY bench/gpu/bench_gpu.py --kiln "$B/kiln" --out "$OUT" ${BENCH_ARGS:-} 2>&1 | tee "$RES/bench.txt" >"$OUT/bench.txt"
    sed -n '/^model /,$p' "$OUT/bench.txt"; grep -E "^GPU:" "$OUT/bench.txt"
    cp "$OUT/bench_gpu.json" "$RES/" 2>/dev/null
fi
if has profile; then
    log "profile: engines, GPU compute (--noDataTransfers) and per-layer times"
    PROFILE=${PROFILE:-1} bench/gpu/profile.sh "$B/kiln" "$OUT" ${PROFILE_SPECS:-resnet50:1:fp16 resnet50:256:fp16} 2>&1 | tee "$OUT/profile_summary.txt" | grep -E "gpu|FAIL|failed"
fi
if has conformance; then
    log "conformance: ONNX node tests on provider cuda (fp32)"
    root=../shared/onnx-backend-tests/node
    if [ ! -d "$root" ] && [ -n "${NODE_TESTS:-}" ] && [ -f "$NODE_TESTS" ]; then
        mkdir -p /tmp/nodetests && tar xJf "$NODE_TESTS" -C /tmp/nodetests && root=/tmp/nodetests/node
    fi
    if [ -d "$root" ]; then
        # The operators the cuda provider claims, one runner per family in
        # parallel (each test is a process that starts CUDA).
        fams=${CONF_FAMILIES:-"test_conv test_gemm test_matmul test_softmax test_layer_normalization test_maxpool test_averagepool test_global test_add test_sub test_mul test_div test_pow test_relu test_sigmoid test_tanh test_exp test_log test_sqrt test_neg test_abs test_reciprocal test_leakyrelu test_softplus test_erf test_clip test_hardsigmoid test_hardswish test_gelu test_mish test_resize test_concat test_slice test_transpose test_split test_expand test_gather_ test_pad test_constant_pad test_reduce_mean test_reduce_sum test_reduce_max test_reduce_min test_reduce_l2 test_reshape test_flatten test_squeeze test_unsqueeze test_identity test_dropout test_top_k"}
        mkdir -p "$OUT/conf"
        printf '%s\n' $fams | xargs -P "$(nproc)" -I{} sh -c \
            "timeout ${CONF_TIMEOUT:-400} '$B/tests/kiln-conformance' --provider cuda --precision ${CONF_PRECISION:-fp32} --root '$root' --known tests/conformance/known_failures.txt --filter {} > '$OUT/conf/{}.txt' 2>&1"
        cat "$OUT"/conf/*.txt > "$OUT/conformance_cuda.txt"
        grep -hE "^FAIL" "$OUT"/conf/*.txt | cut -c1-220 | head -60
        awk '/^provider cuda/ {c += $4; p += $10} /^[0-9]+ passed/ {pa += $1; fa += $3} END {print "conformance on cuda: " c " tests with cuda layers, " p " pass; all selected tests: " pa " passed, " fa " failed"}' "$OUT"/conf/*.txt
        # Conv and ConvTranspose take only constant weights on cuda, TopK a constant K: the same
        # tests with those graph inputs frozen into the engine from the test data.
        timeout "${CONF_TIMEOUT:-400}" "$B/tests/kiln-conformance" --provider cuda --const-weights --root "$root" \
            --known tests/conformance/known_failures.txt --filter test_conv,test_gemm,test_matmul,test_top_k >"$OUT/conformance_cuda_const.txt" 2>&1
        grep -E "^FAIL" "$OUT/conformance_cuda_const.txt" | cut -c1-220 | head -30
        echo "conv/convtranspose/gemm/matmul/topk with constant weights on cuda: $(grep -E '^provider cuda' "$OUT/conformance_cuda_const.txt"); $(grep -E '^[0-9]+ passed' "$OUT/conformance_cuda_const.txt")"
    else
        echo "no node tests ($root)"
    fi
fi

tar czf "$RES/logs.tgz" -C "$OUT" . 2>/dev/null
exit $status
