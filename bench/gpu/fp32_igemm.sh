#!/usr/bin/env bash
# kiln's float32 implicit-GEMM convolution (3xTF32, src/cuda/k_conv.cu) on
# the GPU machine, in one call (about 5 minutes on an H100 from a cold
# machine; the fifteenth session's figures in bench/RESULTS.md came from
# these steps):
#   1. test_cuda_dnn: every tile shape forced in FP32 and FP16 on every
#      convolution case against float64;
#   2. FP32 engines of ResNet-50 (b4), YOLOv8n (b2) and EfficientNet-B0 (b4)
#      against kiln's CPU FP32 reference (relative L2): NHWC with cuDNN
#      only, NHWC with the implicit GEMM, and the default build (layout
#      timed);
#   3. batch 32 FP32 A/B on one card: KILN_CUDA_NO_IGEMM=1 against the
#      default, two alternating rounds of `kiln trtexec --noDataTransfers`;
#   4. PyTorch eager FP32 side by side (bench/gpu/bench_gpu.py).
#   OUT=... bench/gpu/fp32_igemm.sh
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
OUT=${OUT:-$PWD/gpu-out}; mkdir -p "$OUT"
T0=$SECONDS
B=${KILN_GPU_BUILD:-build-gpu}
MODELS=${MODELS:-resnet50,yolov8n,efficientnet_b0}
gen=(); command -v ninja >/dev/null && gen=(-G Ninja)
python3 models/export.py --models "$MODELS" >"$OUT/export.log" 2>&1 &
EXP=$!
cmake -S . -B "$B" "${gen[@]}" -DCMAKE_BUILD_TYPE=Release -DKILN_CUDA=ON >"$OUT/cmake.log" 2>&1 || { tail -5 "$OUT/cmake.log"; exit 1; }
cmake --build "$B" -j "$(nproc)" --target kiln test_cuda_dnn >"$OUT/build.log" 2>&1 || { grep -E "error" "$OUT/build.log" | head; exit 1; }
echo "built ($((SECONDS-T0)) s)"
timeout 300 "$B/tests/test_cuda_dnn" >"$OUT/test_cuda_dnn.log" 2>&1; echo "test_cuda_dnn: exit $?"
grep -E "FAIL" "$OUT/test_cuda_dnn.log" | head; tail -1 "$OUT/test_cuda_dnn.log"
wait $EXP || { tail -5 "$OUT/export.log"; exit 1; }
K=$B/kiln
gpu() { grep -oE 'GPU Compute Time: .*median = [0-9.e+-]+' "$1" | grep -oE '[0-9.e+-]+$'; }
IFS=, read -ra ms <<<"$MODELS"
echo "--- FP32 engines against the CPU FP32 reference ($((SECONDS-T0)) s)"
for m in "${ms[@]}"; do
  sh=input:4x3x224x224; [ "$m" = yolov8n ] && sh=input:2x3x640x640
  for v in nhwc_cudnn nhwc_igemm default; do
    case $v in
      nhwc_cudnn) E=(env KILN_CUDA_NHWC=1 KILN_CUDA_NO_IGEMM=1) ;;
      nhwc_igemm) E=(env -u KILN_CUDA_NO_IGEMM KILN_CUDA_NHWC=1) ;;
      default) E=(env -u KILN_CUDA_NO_IGEMM -u KILN_CUDA_NHWC) ;;
    esac
    "${E[@]}" timeout 120 "$K" build "models/out/$m.onnx" -o "$OUT/acc_${m}_$v.kiln" --shapes $sh --verbose \
      >"$OUT/acc_build_${m}_$v.txt" 2>&1 || { echo "$m $v: build failed"; tail -3 "$OUT/acc_build_${m}_$v.txt"; continue; }
    timeout 120 "$K" compare "models/out/$m.onnx" --engine "$OUT/acc_${m}_$v.kiln" --providers cpu --shapes $sh \
      --iterations 1 >"$OUT/acc_${m}_$v.txt" 2>&1
    echo "$m $v (exit $?): $(grep -E '^cuda' "$OUT/acc_${m}_$v.txt" | tr -s ' ') $(grep -oE 'cuda layout: .*' "$OUT/acc_build_${m}_$v.txt")"
    rm -f "$OUT/acc_${m}_$v.kiln"
  done
done
for m in "${ms[@]}"; do
  sh=input:32x3x224x224; [ "$m" = yolov8n ] && sh=input:32x3x640x640
  echo "--- $m FP32 b32: without / with the implicit GEMM ($((SECONDS-T0)) s)"
  for v in without with; do
    E=(env -u KILN_CUDA_NO_IGEMM); [ $v = without ] && E=(env KILN_CUDA_NO_IGEMM=1)
    "${E[@]}" timeout 200 "$K" build "models/out/$m.onnx" -o "/tmp/fp32ig_${m}_$v.kiln" --shapes $sh --verbose \
      >"$OUT/b32_build_${m}_$v.txt" 2>&1 || { echo "build failed: $(tail -2 "$OUT/b32_build_${m}_$v.txt")"; continue; }
    grep -oE 'cuda layout: .*' "$OUT/b32_build_${m}_$v.txt"
  done
  for r in 1 2; do for v in without with; do
    timeout 60 "$K" trtexec --loadEngine="/tmp/fp32ig_${m}_$v.kiln" --noDataTransfers --iterations=50 --duration=0 \
      --warmUp=300 >"$OUT/t.txt" 2>&1
    echo "$m b32 fp32 round $r $v: $(gpu "$OUT/t.txt") ms"
  done; done
done
echo "--- PyTorch side by side ($((SECONDS-T0)) s)"
python3 bench/gpu/bench_gpu.py --kiln "$K" --out "$OUT/bench" --models "$MODELS" --batches= --compiled none \
  --iters 50 2>&1 | sed -n '/^model /,$p'
echo "done ($((SECONDS-T0)) s)"
