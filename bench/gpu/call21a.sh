#!/usr/bin/env bash
# Twenty-first session, first GPU call: the depthwise convolution that pools its own output for the SE step
# (kc_dwconv_nhwc_taps_pool + kc_se_mlp_fold_parts: no k_pool_part launch), checked against float64
# (test_cuda_kernels) and end to end (kiln compare), A/B against KILN_CUDA_NO_DW_POOL=1 on one engine;
# and ResNet-50 b1's kernels by name (where its batch-1 time goes).      OUT=... bench/gpu/call21a.sh
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
OUT=${OUT:-/tmp/o}; mkdir -p "$OUT"; T0=$SECONDS
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
python3 models/export.py --models efficientnet_b0,resnet50 >"$OUT/export.log" 2>&1 &
B=bg; gen=(); command -v ninja >/dev/null && gen=(-G Ninja)
cmake -S . -B $B "${gen[@]}" -DCMAKE_BUILD_TYPE=Release -DKILN_CUDA=ON >"$OUT/cmake.log" 2>&1 || { tail -5 "$OUT/cmake.log"; exit 1; }
cmake --build $B -j 16 --target kiln test_cuda_kernels test_cuda_dnn >"$OUT/build.log" 2>&1 || { grep error "$OUT/build.log" | head; exit 1; }
echo "built ($((SECONDS-T0)) s)"
timeout 150 $B/tests/test_cuda_kernels >"$OUT/kern.log" 2>&1; echo "test_cuda_kernels: exit $? $(tail -1 "$OUT/kern.log")"; grep -E "^FAIL" "$OUT/kern.log" | cut -c1-220 | head -8
grep -E "dw pool" "$OUT/kern.log" | cut -c1-130 | head -40
timeout 120 $B/tests/test_cuda_dnn >"$OUT/dnn.log" 2>&1; echo "test_cuda_dnn: exit $? $(tail -1 "$OUT/dnn.log")"; grep -E "^FAIL" "$OUT/dnn.log" | cut -c1-300 | head -5
wait
K=$B/kiln
gpu() { grep -oE 'GPU Compute Time: .*median = [0-9.e+-]+' "$1" | grep -oE '[0-9.e+-]+$'; }
for pool in 1 0; do
  if [ $pool = 1 ]; then unset KILN_CUDA_NO_DW_POOL; else export KILN_CUDA_NO_DW_POOL=1; fi
  timeout 120 $K compare models/out/efficientnet_b0.onnx --providers cpu,cuda --precisions fp16 --shapes input:2x3x224x224 --iterations 1 >"$OUT/acc.txt" 2>&1
  echo "effnet acc b2 fp16 dwpool=$pool (exit $?): $(grep -E '^cuda' "$OUT/acc.txt" | awk '{print $2, $5, $6, $7, $8}' | tr '\n' ';')"
done
unset KILN_CUDA_NO_DW_POOL
for b in 1 8; do
  timeout 200 $K build models/out/efficientnet_b0.onnx -o /tmp/e$b.kiln --fp16 --shapes input:${b}x3x224x224 >"$OUT/b.txt" 2>&1 || echo "build failed: $(tail -2 "$OUT/b.txt")"
  declare -A r=()
  for i in 1 2 3; do for e in 1 0; do
    if [ $e = 1 ]; then unset KILN_CUDA_NO_DW_POOL; else export KILN_CUDA_NO_DW_POOL=1; fi
    timeout 60 $K trtexec --loadEngine=/tmp/e$b.kiln --noDataTransfers --iterations=1000 --duration=0 --warmUp=300 >"$OUT/t.txt" 2>&1
    r[$e]+=" $(gpu "$OUT/t.txt")"
  done; done
  unset KILN_CUDA_NO_DW_POOL
  echo "effnet fp16 b$b: dw pool${r[1]} | separate pool${r[0]}"
done
agg() { python3 - "$1" <<'PY'
import csv, sys, io, collections
rows = [l for l in open(sys.argv[1]) if l.startswith('"')]
ks = collections.OrderedDict()
for r in csv.DictReader(io.StringIO(''.join(rows))):
    k = ks.setdefault(r['ID'], {'name': r['Kernel Name'].split('(')[0].replace('void ', '')[:44]})
    v = r['Metric Value'].replace(',', '')
    if r['Metric Name'] == 'gpu__time_duration.sum':
        v = float(v) * {'ns': 1e-3, 'nsecond': 1e-3, 'us': 1, 'usecond': 1, 'ms': 1e3, 'msecond': 1e3}.get(r.get('Metric Unit', 'ns'), 1e-3)
    k[r['Metric Name']] = v
seq = list(ks.values()); half = seq[len(seq) // 2:]
print('%.1f us in %d launches' % (sum(k['gpu__time_duration.sum'] for k in half), len(half)))
agg = collections.OrderedDict()
for k in half: agg.setdefault(k['name'], []).append(k['gpu__time_duration.sum'])
for n, v in sorted(agg.items(), key=lambda x: -sum(x[1]))[:14]: print('%-44s %2d x %5.1f = %6.1f us' % (n, len(v), sum(v) / len(v), sum(v)))
print('seq:', ' '.join('%s/%s:%.1f' % (k['name'][:10], k.get('launch__grid_size'), k['gpu__time_duration.sum']) for k in half)[:2400])
PY
}
echo "--- EfficientNet-B0 b1 kernels, warm ($((SECONDS-T0)) s)"
timeout 120 ncu --cache-control none --clock-control none --metrics gpu__time_duration.sum,launch__grid_size --csv --launch-count 3000 \
  $K trtexec --loadEngine=/tmp/e1.kiln --noCudaGraph --noDataTransfers --iterations=1 --duration=0 --warmUp=0 >"$OUT/ek.csv" 2>/dev/null
agg "$OUT/ek.csv" | head -16
echo "--- ResNet-50 b1 kernels, warm ($((SECONDS-T0)) s)"
timeout 200 $K build models/out/resnet50.onnx -o /tmp/r1.kiln --fp16 --shapes input:1x3x224x224 >"$OUT/b.txt" 2>&1
grep -iE 'conv.*(im2col|algo)' "$OUT/b.txt" | head -3
for i in 1 2; do timeout 60 $K trtexec --loadEngine=/tmp/r1.kiln --noDataTransfers --iterations=1000 --duration=0 --warmUp=300 >"$OUT/t.txt" 2>&1; echo -n " $(gpu "$OUT/t.txt")"; done; echo " <- resnet50 b1"
timeout 120 ncu --cache-control none --clock-control none --metrics gpu__time_duration.sum,launch__grid_size --csv --launch-count 3000 \
  $K trtexec --loadEngine=/tmp/r1.kiln --noCudaGraph --noDataTransfers --iterations=1 --duration=0 --warmUp=0 >"$OUT/rk.csv" 2>/dev/null
agg "$OUT/rk.csv"
timeout 60 $K profile /tmp/r1.kiln --iterations 50 --warmup 10 --top 24 >"$OUT/rp.txt" 2>&1; head -34 "$OUT/rp.txt" | cut -c1-150
echo "done ($((SECONDS-T0)) s)"
