#!/usr/bin/env bash
# Twentieth session, first GPU call: the nineteenth session's SE rework checked by test_cuda_dnn and the
# conformance suite on cuda FP32 (never run on it), then whether timing more of cuBLASLt's candidates
# (KILN_CUDA_GEMM_CANDIDATES=64 against the default 16) pays at batch 1 (ViT-B/16, ResNet-50 FP16), and
# ViT-B/16 b1's products under ncu (kernel, grid, warm time).   OUT=... bench/gpu/call20a.sh
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
OUT=${OUT:-/tmp/o}; mkdir -p "$OUT"; T0=$SECONDS
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
python3 models/export.py --models vit_b_16,resnet50,efficientnet_b0 >"$OUT/export.log" 2>&1 &
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
timeout 120 $K compare models/out/efficientnet_b0.onnx --providers cpu,cuda --precisions fp32,fp16 --shapes input:2x3x224x224 --iterations 1 >"$OUT/acc.txt" 2>&1
echo "effnet acc b2 (exit $?): $(grep -E '^cuda' "$OUT/acc.txt" | awk '{print $2, $5, $6, $7, $8}' | tr '\n' ';')"
for m in vit_b_16 resnet50; do
  for nc in 16 64; do
    KILN_CUDA_GEMM_CANDIDATES=$nc timeout 200 $K build models/out/$m.onnx -o /tmp/$m.$nc.kiln --fp16 --shapes input:1x3x224x224 >"$OUT/b.txt" 2>&1 || echo "build failed: $(tail -2 "$OUT/b.txt")"
  done
  declare -A res=()
  for r in 1 2 3; do for nc in 16 64; do
    timeout 60 $K trtexec --loadEngine=/tmp/$m.$nc.kiln --noDataTransfers --iterations=1000 --duration=0 --warmUp=300 >"$OUT/t.txt" 2>&1
    res[$nc]+=" $(gpu "$OUT/t.txt")"
  done; done
  echo "$m fp16 b1 candidates 16:${res[16]} | 64:${res[64]}"
done
echo "--- ViT b1 kernels, warm ($((SECONDS-T0)) s)"
timeout 120 ncu --cache-control none --clock-control none --metrics gpu__time_duration.sum,launch__grid_size,launch__block_size,launch__registers_per_thread --csv --launch-count 3000 \
  $K trtexec --loadEngine=/tmp/vit_b_16.16.kiln --noCudaGraph --noDataTransfers --iterations=1 --duration=0 --warmUp=0 >"$OUT/vk.csv" 2>/dev/null
python3 - "$OUT/vk.csv" <<'PY'
import csv, sys, io, collections
rows = [l for l in open(sys.argv[1]) if l.startswith('"')]
ks = collections.OrderedDict()
for r in csv.DictReader(io.StringIO(''.join(rows))):
    k = ks.setdefault(r['ID'], {'name': r['Kernel Name'].split('(')[0].replace('void ', '')[:48]})
    v = r['Metric Value'].replace(',', '')
    if r['Metric Name'] == 'gpu__time_duration.sum':
        v = float(v) * {'ns': 1e-3, 'nsecond': 1e-3, 'us': 1, 'usecond': 1, 'ms': 1e3, 'msecond': 1e3}.get(r.get('Metric Unit', 'ns'), 1e-3)
    k[r['Metric Name']] = v
seq = list(ks.values()); half = seq[len(seq) // 2:]
agg = collections.OrderedDict()
for k in half:
    key = (k['name'], k.get('launch__grid_size'), k.get('launch__block_size'), k.get('launch__registers_per_thread'))
    agg.setdefault(key, []).append(k['gpu__time_duration.sum'])
tot = sum(sum(v) for v in agg.values())
print('%.1f us in %d launches' % (tot, len(half)))
for (n, g, b, rg), v in sorted(agg.items(), key=lambda x: -sum(x[1]))[:14]:
    print('%-48s grid %5s blk %4s reg %3s: %2d x %5.1f = %6.1f us' % (n, g, b, rg, len(v), sum(v) / len(v), sum(v)))
PY
echo "done ($((SECONDS-T0)) s)"
