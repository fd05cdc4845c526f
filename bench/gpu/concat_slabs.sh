#!/usr/bin/env bash
# Channel slabs (Concat inputs written in place) on the GPU machine, in one
# call (about 6-8 minutes from a cold machine):
#   1. test_cuda_dnn (convolutions reading and writing channel slabs, every
#      algorithm that takes them, against float64) and test_cuda_kernels;
#   2. YOLOv8n on cuda against kiln's CPU FP32 reference (relative L2), FP32
#      and FP16, with KILN_CUDA_SLABS=1 and 3 (ACC_MODES), and FP32 with the NHWC
#      plan forced (ACC_NHWC=1);
#   3. engines of every mode (0 = none), alternating rounds of
#      `kiln trtexec --noDataTransfers`: FP32 batch 32, FP16 batch 1 and 32;
#   4. TopK's ONNX node tests on cuda (kc_topk);
#   5. PyTorch eager FP32 at batch 32 side by side (bench/gpu/bench_gpu.py).
#   Env: MODES (default 0 1 2 3), ACC_MODES, ACC_NHWC, SKIP_TORCH, SKIP_PROFILE, NODE_TESTS.
#   OUT=... bench/gpu/concat_slabs.sh
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
OUT=${OUT:-$PWD/gpu-out}; mkdir -p "$OUT"
T0=$SECONDS
B=${KILN_GPU_BUILD:-build-gpu}
MODELS=${MODELS:-yolov8n}
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
gen=(); command -v ninja >/dev/null && gen=(-G Ninja)
python3 models/export.py --models "$MODELS" >"$OUT/export.log" 2>&1 &
EXP=$!
cmake -S . -B "$B" "${gen[@]}" -DCMAKE_BUILD_TYPE=Release -DKILN_CUDA=ON >"$OUT/cmake.log" 2>&1 || { tail -5 "$OUT/cmake.log"; exit 1; }
cmake --build "$B" -j "$(nproc)" --target kiln test_cuda_dnn test_cuda_kernels kiln-conformance >"$OUT/build.log" 2>&1 || { grep -E "error" "$OUT/build.log" | head; exit 1; }
echo "built ($((SECONDS-T0)) s)"
for t in test_cuda_dnn test_cuda_kernels; do
  timeout 300 "$B/tests/$t" >"$OUT/$t.log" 2>&1; echo "$t: exit $?"
  grep -E "FAIL" "$OUT/$t.log" | head; tail -1 "$OUT/$t.log"
done
grep -E "conv slabs" "$OUT/test_cuda_dnn.log"
wait $EXP || { tail -5 "$OUT/export.log"; exit 1; }
K=$B/kiln
gpu() { grep -oE 'GPU Compute Time: .*median = [0-9.e+-]+' "$1" | grep -oE '[0-9.e+-]+$'; }
echo "--- YOLOv8n against the CPU FP32 reference, 1x3x640x640 ($((SECONDS-T0)) s)"
for v in ${ACC_MODES:-1 3}; do
  KILN_CUDA_SLABS=$v timeout 300 "$K" compare models/out/yolov8n.onnx --providers cpu,cuda --precisions fp32,fp16 \
    --shapes input:1x3x640x640 --iterations 1 >"$OUT/acc_$v.txt" 2>&1
  echo "KILN_CUDA_SLABS=$v (exit $?):"; grep -E "^cuda" "$OUT/acc_$v.txt" || tail -5 "$OUT/acc_$v.txt"
done
if [ -n "${ACC_NHWC:-}" ]; then
KILN_CUDA_SLABS=1 KILN_CUDA_NHWC=1 timeout 300 "$K" compare models/out/yolov8n.onnx --providers cpu,cuda --precisions fp32 \
    --shapes input:1x3x640x640 --iterations 1 >"$OUT/acc_nhwc.txt" 2>&1
  echo "KILN_CUDA_SLABS=1 FP32 NHWC (exit $?):"; grep -E "^cuda" "$OUT/acc_nhwc.txt"
fi
for cfg in "fp32 32" "fp16 1" "fp16 32"; do
  set -- $cfg; prec=$1; bs=$2
  fl=(); [ $prec = fp16 ] && fl=(--fp16)
  for v in ${MODES:-0 1 2 3}; do
    KILN_CUDA_SLABS=$v timeout 200 "$K" build models/out/yolov8n.onnx -o "/tmp/y_${prec}_${bs}_$v.kiln" "${fl[@]}" \
      --shapes input:${bs}x3x640x640 --verbose >"$OUT/build_${prec}_${bs}_$v.txt" 2>&1 ||
      { echo "build failed: $(tail -2 "$OUT/build_${prec}_${bs}_$v.txt")"; continue; }
    echo "$prec b$bs slabs $v: $(grep -oE 'cuda layout: .*' "$OUT/build_${prec}_${bs}_$v.txt") $(grep -oE 'cuda own convolutions: .*' "$OUT/build_${prec}_${bs}_$v.txt")"
  done
  for r in 1 2 3; do for v in ${MODES:-0 1 2 3}; do
    KILN_CUDA_SLABS=$v timeout 60 "$K" trtexec --loadEngine="/tmp/y_${prec}_${bs}_$v.kiln" --noDataTransfers --iterations=200 \
      --duration=0 --warmUp=300 >"$OUT/t.txt" 2>&1
    echo "yolov8n $prec b$bs round $r slabs $v: $(gpu "$OUT/t.txt") ms"
  done; done
done
# TopK's node tests on cuda (the onnx-backend-tests beside the checkout, or NODE_TESTS=node.tar.xz)
root=../shared/onnx-backend-tests/node
if [ ! -d "$root" ] && [ -f "${NODE_TESTS:-}" ]; then mkdir -p /tmp/nt && tar xJf "$NODE_TESTS" -C /tmp/nt && root=/tmp/nt/node; fi
if [ -d "$root" ]; then
  for cw in "" --const-weights; do  # K is a graph input: constant with --const-weights, else TopK runs on the host
    KILN_CUDA_TOPK=1 timeout 120 "$B/tests/kiln-conformance" --provider cuda --precision fp32 $cw --root "$root" \
      --known tests/conformance/known_failures.txt --filter test_top_k >"$OUT/conf_topk.txt" 2>&1
    echo "conformance test_top_k on cuda $cw (exit $?): $(grep -E '^provider cuda|passed' "$OUT/conf_topk.txt" | tr '\n' ' ')"
    grep -E "^FAIL" "$OUT/conf_topk.txt" | head
  done
fi
echo "--- PyTorch side by side ($((SECONDS-T0)) s)"
[ -n "${SKIP_TORCH:-}" ] || python3 bench/gpu/bench_gpu.py --kiln "$K" --out "$OUT/bench" --models yolov8n --batches= --compiled none \
  --iters 50 2>&1 | sed -n '/^model /,$p'
[ -n "${SKIP_PROFILE:-}" ] || echo "--- profile, FP16 batch 1 with slabs ($((SECONDS-T0)) s)"
[ -n "${SKIP_PROFILE:-}" ] || timeout 120 "$K" profile /tmp/y_fp16_1_1.kiln --iterations 20 --top 40 >"$OUT/profile.txt" 2>&1
[ -n "${SKIP_PROFILE:-}" ] || head -60 "$OUT/profile.txt"
echo "done ($((SECONDS-T0)) s)"
