#!/usr/bin/env bash
# Twentieth session, second GPU call: kiln's depthwise kernel reading tap-major filters (KILN_CUDA_DW_TAPS,
# A/B on one engine), the LayerNorm's early scale/bias loads, 64 cuBLASLt candidates' build time, the CUDA
# tests, accuracy, and ResNet-50 b1's kernels.        OUT=... bench/gpu/call20b.sh
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
OUT=${OUT:-/tmp/o}; mkdir -p "$OUT"; T0=$SECONDS
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
python3 models/export.py --models vit_b_16,resnet50,efficientnet_b0,mobilenet_v2 >"$OUT/export.log" 2>&1 &
B=bg; gen=(); command -v ninja >/dev/null && gen=(-G Ninja)
cmake -S . -B $B "${gen[@]}" -DCMAKE_BUILD_TYPE=Release -DKILN_CUDA=ON >"$OUT/cmake.log" 2>&1 || { tail -5 "$OUT/cmake.log"; exit 1; }
cmake --build $B -j 16 --target kiln test_cuda_kernels test_cuda_dnn >"$OUT/build.log" 2>&1 || { grep error "$OUT/build.log" | head; exit 1; }
echo "built ($((SECONDS-T0)) s)"
timeout 150 $B/tests/test_cuda_kernels >"$OUT/kern.log" 2>&1; echo "test_cuda_kernels: exit $? $(tail -1 "$OUT/kern.log")"; grep -E "^FAIL" "$OUT/kern.log" | head -5
timeout 120 $B/tests/test_cuda_dnn >"$OUT/dnn.log" 2>&1; echo "test_cuda_dnn: exit $? $(tail -1 "$OUT/dnn.log")"; grep -E "^FAIL" "$OUT/dnn.log" | cut -c1-300 | head -5
grep -E "depthwise (5x5 672|3x3 s2 96)" "$OUT/dnn.log" | grep nhwc | cut -c1-150
wait
K=$B/kiln
gpu() { grep -oE 'GPU Compute Time: .*median = [0-9.e+-]+' "$1" | grep -oE '[0-9.e+-]+$'; }
for m in efficientnet_b0 mobilenet_v2; do
  timeout 120 $K compare models/out/$m.onnx --providers cpu,cuda --precisions fp16 --shapes input:2x3x224x224 --iterations 1 >"$OUT/acc.txt" 2>&1
  echo "$m acc b2 fp16 (exit $?): $(grep -E '^cuda' "$OUT/acc.txt" | awk '{print $2, $5, $6, $7, $8}' | tr '\n' ';')"
done
for m in efficientnet_b0 mobilenet_v2; do for bs in 1 256; do
  [ $m = mobilenet_v2 ] && [ $bs = 256 ] && continue
  timeout 200 $K build models/out/$m.onnx -o /tmp/e$bs.kiln --fp16 --shapes input:${bs}x3x224x224 >"$OUT/b.txt" 2>&1 || echo "build failed: $(tail -2 "$OUT/b.txt")"
  declare -A res=()
  for r in 1 2 3; do for tp in 1 0; do
    KILN_CUDA_DW_TAPS=$tp timeout 60 $K trtexec --loadEngine=/tmp/e$bs.kiln --noDataTransfers --iterations=500 --duration=0 --warmUp=300 >"$OUT/t.txt" 2>&1
    res[$tp]+=" $(gpu "$OUT/t.txt")"
  done; done
  echo "$m fp16 b$bs dw taps:${res[1]} | plain:${res[0]}"
done; done
echo "--- ($((SECONDS-T0)) s)"
for m in vit_b_16 resnet50; do
  timeout 200 $K build models/out/$m.onnx -o /tmp/$m.kiln --fp16 --shapes input:1x3x224x224 >"$OUT/b.txt" 2>&1 || echo "build failed: $(tail -2 "$OUT/b.txt")"
  for r in 1 2 3; do timeout 60 $K trtexec --loadEngine=/tmp/$m.kiln --noDataTransfers --iterations=1000 --duration=0 --warmUp=300 >"$OUT/t.txt" 2>&1; echo -n " $(gpu "$OUT/t.txt")"; done; echo " <- $m fp16 b1"
done
rm -f /tmp/tc.txt
s=$SECONDS; timeout 300 $K build models/out/resnet50.onnx -o /tmp/r.kiln --fp16 --shapes input:1x3x224x224 --timing-cache /tmp/tc.txt >"$OUT/b.txt" 2>&1; a=$((SECONDS-s))
s=$SECONDS; timeout 300 $K build models/out/resnet50.onnx -o /tmp/r2.kiln --fp16 --shapes input:1x3x224x224 --timing-cache /tmp/tc.txt >"$OUT/b2.txt" 2>&1; echo "resnet50 fp16 b1 build: cold ${a} s, with the timing cache $((SECONDS-s)) s; $(grep -iE 'build|tim' "$OUT/b.txt" | tail -1 | cut -c1-120)"
echo "--- ResNet-50 b1 kernels, warm ($((SECONDS-T0)) s)"
timeout 120 ncu --cache-control none --clock-control none --metrics gpu__time_duration.sum,launch__grid_size --csv --launch-count 3000 \
  $K trtexec --loadEngine=/tmp/resnet50.kiln --noCudaGraph --noDataTransfers --iterations=1 --duration=0 --warmUp=0 >"$OUT/rk.csv" 2>/dev/null
python3 - "$OUT/rk.csv" <<'PY'
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
print(' '.join('%s/%s:%.1f' % (k['name'][:10], k.get('launch__grid_size'), k['gpu__time_duration.sum']) for k in half))
PY
echo "done ($((SECONDS-T0)) s)"
