#!/usr/bin/env bash
# Nineteenth session, first GPU call: the CUDA unit tests after the kl_cu_weights_copy refactor,
# ResNet-50 / EfficientNet-B0 FP16 accuracy and b1 time (the NHWC weight path), then
# bench/gpu/gemm_nn.sh (the opt-in [K,N] Gemm weights and the session profile; it and the
# option were removed after this call measured no gain: git show 93b546c:bench/gpu/gemm_nn.sh).
#   OUT=... bench/gpu/call19a.sh
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
OUT=${OUT:-/tmp/o}; mkdir -p "$OUT"; T0=$SECONDS
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
python3 models/export.py --models vit_b_16,resnet18,resnet50,efficientnet_b0 >"$OUT/export.log" 2>&1 &
gen=(); command -v ninja >/dev/null && gen=(-G Ninja)
cmake -S . -B bg "${gen[@]}" -DCMAKE_BUILD_TYPE=Release -DKILN_CUDA=ON >"$OUT/cmake.log" 2>&1 || { tail -5 "$OUT/cmake.log"; exit 1; }
cmake --build bg -j 16 --target kiln kiln-conformance test_cuda_kernels test_cuda_dnn >"$OUT/build.log" 2>&1 || { grep error "$OUT/build.log" | head; exit 1; }
echo "built ($((SECONDS-T0)) s)"
timeout 150 bg/tests/test_cuda_kernels >"$OUT/kern.log" 2>&1; echo "test_cuda_kernels: exit $? $(tail -1 "$OUT/kern.log")"
timeout 90 bg/tests/test_cuda_dnn >"$OUT/dnn.log" 2>&1; echo "test_cuda_dnn: exit $? $(tail -1 "$OUT/dnn.log")"
wait; echo "exported ($((SECONDS-T0)) s)"
K=bg/kiln
gpu() { grep -oE 'GPU Compute Time: .*median = [0-9.e+-]+' "$1" | grep -oE '[0-9.e+-]+$'; }
for m in resnet50 efficientnet_b0; do
  timeout 120 $K compare models/out/$m.onnx --providers cpu,cuda --precisions fp32,fp16 --shapes input:2x3x224x224 --iterations 1 >"$OUT/acc.txt" 2>&1; echo "$m acc b2 (exit $?):"; grep -E '^cuda' "$OUT/acc.txt"
  timeout 120 $K build models/out/$m.onnx -o /tmp/$m.kiln --fp16 --shapes input:1x3x224x224 >"$OUT/b.txt" 2>&1 || echo "build $m failed: $(tail -2 "$OUT/b.txt")"
  timeout 60 $K trtexec --loadEngine=/tmp/$m.kiln --noDataTransfers --iterations=500 --duration=0 --warmUp=200 >"$OUT/t.txt" 2>&1
  echo "$m fp16 b1: $(gpu "$OUT/t.txt") ms"
done
echo "--- gemm_nn ($((SECONDS-T0)) s)"
OUT=$OUT bash bench/gpu/gemm_nn.sh 2>&1 | grep -vE '^(built|exported)'
echo "done ($((SECONDS-T0)) s)"
