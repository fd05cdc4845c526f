#!/usr/bin/env bash
# The opt-in [K,N] copy of constant Gemm B^T (KILN_CUDA_GEMM_NN=1) on the GPU machine in one call
# (about 5 minutes): the Gemm node tests on cuda (needs .gpu/node.tar.xz, the node tests, beside the
# tree), ViT-B/16 FP16 A/B at batch 256 and 1, its accuracy, and bench --providers cuda,cpu on a session.
#   OUT=... bench/gpu/gemm_nn.sh
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
OUT=${OUT:-/tmp/o}; mkdir -p "$OUT"; T0=$SECONDS
nvidia-smi --query-gpu=name --format=csv,noheader
[ -f models/out/vit_b_16.onnx ] && [ -f models/out/resnet18.onnx ] || python3 models/export.py --models vit_b_16,resnet18 >"$OUT/export.log" 2>&1 &
gen=(); command -v ninja >/dev/null && gen=(-G Ninja)
[ -f bg/CMakeCache.txt ] || cmake -S . -B bg "${gen[@]}" -DCMAKE_BUILD_TYPE=Release -DKILN_CUDA=ON >"$OUT/cmake.log" 2>&1 || { tail -5 "$OUT/cmake.log"; exit 1; }
cmake --build bg -j 16 --target kiln kiln-conformance >"$OUT/build.log" 2>&1 || { grep error "$OUT/build.log" | head; exit 1; }
echo "built ($((SECONDS-T0)) s)"
root=/tmp/nt/node; mkdir -p /tmp/nt && tar xJf .gpu/node.tar.xz -C /tmp/nt
for cw in "" --const-weights; do for nn in 0 1; do
  KILN_CUDA_GEMM_NN=$nn timeout 100 bg/tests/kiln-conformance --provider cuda --precision fp32 $cw --root "$root" \
    --known tests/conformance/known_failures.txt --filter test_gemm >"$OUT/cg.txt" 2>&1
  echo "conformance test_gemm cuda $cw nn=$nn (exit $?): $(grep -E '^provider cuda|passed' "$OUT/cg.txt" | tr '\n' ' ')"
  grep -E "^FAIL" "$OUT/cg.txt" | head -5
done; done
wait; echo "exported ($((SECONDS-T0)) s)"
K=bg/kiln
gpu() { grep -oE 'GPU Compute Time: .*median = [0-9.e+-]+' "$1" | grep -oE '[0-9.e+-]+$'; }
for bs in 256 1; do
  for tb in 0 1; do
    KILN_CUDA_GEMM_NN=$tb timeout 120 $K build models/out/vit_b_16.onnx -o /tmp/v${bs}_$tb.kiln --fp16 --shapes input:${bs}x3x224x224 >"$OUT/vb.txt" 2>&1 || { echo "vit build b$bs tb$tb failed: $(tail -2 "$OUT/vb.txt")"; continue; }
  done
  for r in 1 2; do for tb in 0 1; do
    KILN_CUDA_GEMM_NN=$tb timeout 60 $K trtexec --loadEngine=/tmp/v${bs}_$tb.kiln --noDataTransfers --iterations=200 --duration=0 --warmUp=200 >"$OUT/t.txt" 2>&1
    echo "vit fp16 b$bs round $r gemm_nn=$tb: $(gpu "$OUT/t.txt") ms"
  done; done
done
KILN_CUDA_GEMM_NN=1 timeout 120 $K compare models/out/vit_b_16.onnx --providers cpu,cuda --precisions fp32,fp16 --shapes input:2x3x224x224 --iterations 1 >"$OUT/vacc.txt" 2>&1; echo "vit acc b2 nn=1 (exit $?):"; grep -E '^cuda' "$OUT/vacc.txt"
timeout 60 $K bench models/out/resnet18.onnx --providers cuda,cpu --iterations 100 --warmup 200 >"$OUT/b.txt" 2>&1; echo "bench --providers cuda,cpu: exit $? | $(grep -E '^Provider' "$OUT/b.txt") | $(grep -oE 'GPU Compute Time: .*median = [0-9.]+ ms' "$OUT/b.txt" | grep -oE 'median = [0-9.]+ ms')"
echo "done ($((SECONDS-T0)) s)"
