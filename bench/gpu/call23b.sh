#!/usr/bin/env bash
# Twenty-third session, second GPU call: the SE block's MLP and fold in one launch (k_se_fused: the first
# blocks to start make the hidden units, every block waits for them, then scales its rows), checked against
# float64 in test_cuda_kernels (three launches in a row on the same counters), end to end (kiln compare),
# and A/B on one engine against two launches (KILN_CUDA_SE_FUSED=0).           OUT=... bench/gpu/call23b.sh
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
OUT=${OUT:-/tmp/o}; mkdir -p "$OUT"; T0=$SECONDS
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
[ -f models/out/efficientnet_b0.onnx ] || python3 models/export.py --models efficientnet_b0,mobilenet_v2 >"$OUT/export.log" 2>&1 &
B=build-gpu; gen=(); command -v ninja >/dev/null && gen=(-G Ninja)
cmake -S . -B $B "${gen[@]}" -DCMAKE_BUILD_TYPE=Release -DKILN_CUDA=ON >"$OUT/cmake.log" 2>&1 || { tail -5 "$OUT/cmake.log"; exit 1; }
cmake --build $B -j 16 --target kiln test_cuda_kernels test_cuda_dnn >"$OUT/build.log" 2>&1 || { grep error "$OUT/build.log" | head; exit 1; }
echo "built ($((SECONDS-T0)) s)"
timeout 150 $B/tests/test_cuda_kernels >"$OUT/kern.log" 2>&1; echo "test_cuda_kernels: exit $? $(tail -1 "$OUT/kern.log")"; grep -E "^FAIL" "$OUT/kern.log" | cut -c1-220 | head -8
grep -E "se fold" "$OUT/kern.log" | cut -c1-120 | head -12
timeout 120 $B/tests/test_cuda_dnn >"$OUT/dnn.log" 2>&1; echo "test_cuda_dnn: exit $? $(tail -1 "$OUT/dnn.log")"; grep -E "^FAIL" "$OUT/dnn.log" | cut -c1-300 | head -5
wait
K=$B/kiln
gpu() { grep -oE 'GPU Compute Time: .*median = [0-9.e+-]+' "$1" | grep -oE '[0-9.e+-]+$'; }
for f in 1 0; do
  KILN_CUDA_SE_FUSED=$f timeout 120 $K compare models/out/efficientnet_b0.onnx --providers cpu,cuda --precisions fp16,fp32 --shapes input:2x3x224x224 --iterations 1 >"$OUT/acc$f.txt" 2>&1
  echo "effnet acc b2 fused=$f (exit $?): $(grep -E '^cuda' "$OUT/acc$f.txt" | awk '{print $2, $5, $6, $7, $8}' | tr '\n' ';')"
done
for m in efficientnet_b0:1 efficientnet_b0:8 mobilenet_v2:1; do
  IFS=: read -r mm b <<<"$m"
  timeout 200 $K build models/out/$mm.onnx -o /tmp/$mm$b.kiln --fp16 --shapes input:${b}x3x224x224 >"$OUT/b.txt" 2>&1 || { echo "build $mm failed: $(tail -2 "$OUT/b.txt")"; continue; }
  declare -A r=()
  for i in 1 2 3; do for f in 1 0; do
    KILN_CUDA_SE_FUSED=$f timeout 30 $K trtexec --loadEngine=/tmp/$mm$b.kiln --noDataTransfers --iterations=1000 --duration=0 --warmUp=200 >"$OUT/t.txt" 2>&1
    r[$f]+=" $(gpu "$OUT/t.txt")"
  done; done
  echo "$mm fp16 b$b: one launch${r[1]} | two${r[0]}   ($((SECONDS-T0)) s)"
done
echo "--- EfficientNet-B0 b1 kernels, one launch, warm ($((SECONDS-T0)) s)"
timeout 120 ncu --cache-control none --clock-control none --metrics gpu__time_duration.sum,launch__grid_size --csv --launch-count 3000 \
  $K trtexec --loadEngine=/tmp/efficientnet_b01.kiln --noCudaGraph --noDataTransfers --iterations=1 --duration=0 --warmUp=0 >"$OUT/ek.csv" 2>/dev/null
python3 - "$OUT/ek.csv" <<'PY'
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
for n, v in sorted(agg.items(), key=lambda x: -sum(x[1]))[:10]: print('%-44s %3d x %5.1f = %6.1f us' % (n, len(v), sum(v) / len(v), sum(v)))
PY
echo "done ($((SECONDS-T0)) s)"
