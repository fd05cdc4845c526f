#!/usr/bin/env bash
# A whole GPU check in one call of under 10 minutes (run first in the thirteenth session, on an H100: all passed):
#   1. build, the CUDA unit suites (test_cuda_dnn now re-creates every timed
#      convolution from its recorded code and forces both 3xTF32 forms), the zoo export;
#   2. the regression that session found: ResNet-50 FP32 batch 32 from an
#      engine file at the speed the build measured (it ran at 5.4 s an
#      inference, layers on the host, when im2col + 3xTF32 codes read as the
#      implicit GEMM; dbb6f68 renumbered them);
#   3. an A/B of the implicit GEMM timed everywhere (KILN_CUDA_IGEMM_ALL=1) on ResNet-50 and YOLOv8n;
#   4. the zoo on cuda FP32/FP16 against the CPU reference, then the side-by-side
#      table with PyTorch (eager, torch.compile) until the call's deadline;
#      bench rows land in OUT as they come.
#   OUT=... bench/gpu/next_call.sh
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
OUT=${OUT:-$PWD/gpu-out}; mkdir -p "$OUT"
T0=$SECONDS
B=build-gpu
export MODELS=resnet50,efficientnet_b0,vit_b_16,yolov8n,mobilenet_v2,text_encoder
OUT=$OUT/steps timeout 300 scripts/gpu-check.sh build unit models 2>&1 |
    grep -E "PASS|FAIL|exit|built|error|passed|failed" | tee "$OUT/steps.txt"
$B/kiln sysinfo 2>&1 | sed -n '/^Providers/,$p' # cuBLASLt and cuDNN now opened with dlopen (culib.c)
echo "--- resnet50 fp32 b32 from an engine file ($((SECONDS - T0)) s)"
timeout 90 $B/kiln build models/out/resnet50.onnx -o /tmp/r32.kiln --shapes input:32x3x224x224 --verbose \
    >"$OUT/r32_build.txt" 2>&1 || echo "build failed: $(tail -2 "$OUT/r32_build.txt")"
grep -E "cuda layout|host CPU|Build time" "$OUT/r32_build.txt"
timeout 60 $B/kiln trtexec --loadEngine=/tmp/r32.kiln --noDataTransfers --iterations=50 --duration=0 --warmUp=200 \
    >"$OUT/r32_run.txt" 2>&1 || echo "trtexec rc=$? (60 s limit: the regression is back?)"
grep -E "GPU Compute Time|\[W\]|rror" "$OUT/r32_run.txt" | cut -c1-200
echo "--- A/B: kiln's implicit GEMM (now with split-K) timed on every convolution, KILN_CUDA_IGEMM_ALL=1"
# ResNet-50's 3x3 layers at 14x14/7x7 run on 8-64 blocks in cuDNN; without split-K the implicit
# GEMM lost there (0.320 -> 0.430 ms), so it is timed only where cuDNN cannot fuse the activation.
for spec in resnet50:1 resnet50:256 yolov8n:1; do
  IFS=: read -r m b <<<"$spec"; line="$spec fp16:"
  for v in 0 1; do
    KILN_CUDA_IGEMM_ALL=$v timeout 120 $B/kiln build models/out/$m.onnx -o /tmp/ig$v.kiln --fp16 \
        --shapes input:${b}x3x$([ $m = yolov8n ] && echo 640x640 || echo 224x224) >/dev/null 2>&1 || line="$line build$v failed"
    timeout 60 $B/kiln trtexec --loadEngine=/tmp/ig$v.kiln --noDataTransfers --iterations=300 --duration=0 \
        --warmUp=300 >"$OUT/ig.txt" 2>&1
    line="$line  igemm_all=$v $(grep -oE 'GPU Compute Time: .*median = [0-9.e+-]+' "$OUT/ig.txt" | grep -oE '[0-9.e+-]+$')"
  done
  echo "$line"
done
echo "--- zoo ($((SECONDS - T0)) s)"
OUT=$OUT/zoo timeout 150 scripts/gpu-check.sh zoo 2>&1 | grep -E "^(---|cuda)"
left=$((570 - (SECONDS - T0)))
echo "--- bench, $left s left"
[ $left -gt 60 ] && BENCH_ARGS="--budget $((left / 2)) --models $MODELS" OUT=$OUT/bench timeout $left \
    scripts/gpu-check.sh bench 2>&1 | tail -25
