#!/usr/bin/env bash
# Nineteenth session, last GPU call: the session's final code checked (CUDA unit tests, conformance on
# cuda FP32, EfficientNet-B0 / ResNet-50 accuracy), the SE MLP block of 1024 threads against 256
# (KILN_CUDA_SE_THREADS=256 or 512) on EfficientNet-B0 FP16, bench --providers cuda,cpu's report, and where the
# SE MLP block's time goes (ncu warp states of the 1152-channel layer).  Short summary on stdout.
#   OUT=... bench/gpu/call19d.sh      (needs .gpu/node.tar.xz, the node tests, for the conformance step)
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
OUT=${OUT:-/tmp/o}; mkdir -p "$OUT"; T0=$SECONDS
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
python3 models/export.py --models efficientnet_b0,resnet50,resnet18 >"$OUT/export.log" 2>&1 &
B=bg; gen=(); command -v ninja >/dev/null && gen=(-G Ninja)
cmake -S . -B $B "${gen[@]}" -DCMAKE_BUILD_TYPE=Release -DKILN_CUDA=ON >"$OUT/cmake.log" 2>&1 || { tail -5 "$OUT/cmake.log"; exit 1; }
cmake --build $B -j 16 --target kiln kiln-conformance test_cuda_kernels test_cuda_dnn >"$OUT/build.log" 2>&1 || { grep error "$OUT/build.log" | head; exit 1; }
echo "built ($((SECONDS-T0)) s)"
timeout 150 $B/tests/test_cuda_kernels >"$OUT/kern.log" 2>&1; echo "test_cuda_kernels: exit $? $(tail -1 "$OUT/kern.log")"; grep -E "^FAIL" "$OUT/kern.log" | head -5
timeout 100 $B/tests/test_cuda_dnn >"$OUT/dnn.log" 2>&1; echo "test_cuda_dnn: exit $? $(tail -1 "$OUT/dnn.log")"; grep -E "^FAIL" "$OUT/dnn.log" | head -5
root=/tmp/nt/node; mkdir -p /tmp/nt && tar xJf .gpu/node.tar.xz -C /tmp/nt
fams="test_conv test_gemm test_matmul test_softmax test_layer_normalization test_maxpool test_averagepool test_global test_add test_sub test_mul test_div test_pow test_relu test_sigmoid test_tanh test_exp test_log test_sqrt test_neg test_abs test_reciprocal test_leakyrelu test_softplus test_erf test_clip test_hardsigmoid test_hardswish test_gelu test_mish test_resize test_concat test_slice test_transpose test_split test_expand test_gather_ test_pad test_constant_pad test_reduce_mean test_reduce_sum test_reduce_max test_reduce_min test_reduce_l2 test_reshape test_flatten test_squeeze test_unsqueeze test_identity test_dropout test_top_k"
mkdir -p /tmp/conf
printf '%s\n' $fams | xargs -P 16 -I{} sh -c "timeout 200 $B/tests/kiln-conformance --provider cuda --precision fp32 --root $root --known tests/conformance/known_failures.txt --filter {} > /tmp/conf/{}.txt 2>&1"
grep -hE "^FAIL" /tmp/conf/*.txt | cut -c1-160 | head -8
awk '/^provider cuda/ {c += $4; p += $10} /^[0-9]+ passed/ {pa += $1; fa += $3} END {print "conformance on cuda fp32: " c " tests with cuda layers, " p " pass; all selected: " pa " passed, " fa " failed"}' /tmp/conf/*.txt
echo "(conformance done, $((SECONDS-T0)) s)"
wait
K=$B/kiln
gpu() { grep -oE 'GPU Compute Time: .*median = [0-9.e+-]+' "$1" | grep -oE '[0-9.e+-]+$'; }
for m in efficientnet_b0 resnet50; do
  timeout 120 $K compare models/out/$m.onnx --providers cpu,cuda --precisions fp32,fp16 --shapes input:2x3x224x224 --iterations 1 >"$OUT/acc.txt" 2>&1
  echo "$m acc b2 (exit $?): $(grep -E '^cuda' "$OUT/acc.txt" | awk '{print $2, $5, $6, $7, $8}' | tr '\n' ';')"
done
for bs in 1 256; do
  timeout 120 $K build models/out/efficientnet_b0.onnx -o /tmp/e$bs.kiln --fp16 --shapes input:${bs}x3x224x224 >"$OUT/b.txt" 2>&1 || echo "build failed: $(tail -2 "$OUT/b.txt")"
  declare -A res=()
  for r in 1 2 3; do for st in 1024 512 256; do
    KILN_CUDA_SE_THREADS=$st timeout 60 $K trtexec --loadEngine=/tmp/e$bs.kiln --noDataTransfers --iterations=500 --duration=0 --warmUp=300 >"$OUT/t.txt" 2>&1
    res[$st]+=" $(gpu "$OUT/t.txt")"
  done; done
  echo "effnet fp16 b$bs SE MLP threads 1024:${res[1024]} | 512:${res[512]} | 256:${res[256]}"
done
timeout 60 $K bench models/out/resnet18.onnx --providers cuda,cpu --iterations 100 --warmup 200 >"$OUT/pb.txt" 2>&1; echo "bench --providers cuda,cpu: exit $? | $(grep -E '^Provider' "$OUT/pb.txt") | $(grep -oE 'Latency: min = [0-9.]+ ms' "$OUT/pb.txt")"
echo "--- SE MLP block, 1152 channels ($((SECONDS-T0)) s)"
timeout 120 ncu --cache-control none --clock-control none -k regex:k_se_mlp_one --launch-skip 28 --launch-count 1 \
  --section SpeedOfLight --section Occupancy --section LaunchStats --section WarpStateStats --section SchedulerStats \
  $K trtexec --loadEngine=/tmp/e1.kiln --noCudaGraph --noDataTransfers --iterations=1 --duration=0 --warmUp=0 >"$OUT/se.txt" 2>&1
grep -E "k_se_mlp_one|^ +(Duration|Registers Per|Grid Size|Block Size|Achieved Occupancy|Warp Cycles Per Issued|Issued Warp Per|No Eligible|Local Memory Spill)" "$OUT/se.txt" | sed -E 's/ +/ /g' | cut -c1-100 | head -12
grep -E "stall|Stall" "$OUT/se.txt" | sed -E 's/ +/ /g' | cut -c1-230 | head -6
echo "done ($((SECONDS-T0)) s)"
