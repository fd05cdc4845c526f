#!/usr/bin/env bash
# Twenty-third session, first GPU call: (1) cuBLASLt candidates whose split-K sum runs as a second kernel,
# penalized at build (KILN_CUDA_SPLITK_PENALTY_US), ResNet-50 FP16 b1 A/B on engines built with 0, 2 and 4 us;
# (2) where YOLOv8n FP16 b1 spends its time (ncu per kernel, warm; kiln profile), the model furthest from
# its batch-1 target; (3) the unit suites on the current code.                 OUT=... bench/gpu/call23a.sh
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
OUT=${OUT:-/tmp/o}; mkdir -p "$OUT"; T0=$SECONDS
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
python3 models/export.py --models resnet50,yolov8n,efficientnet_b0 >"$OUT/export.log" 2>&1 &
B=bg; gen=(); command -v ninja >/dev/null && gen=(-G Ninja)
cmake -S . -B $B "${gen[@]}" -DCMAKE_BUILD_TYPE=Release -DKILN_CUDA=ON >"$OUT/cmake.log" 2>&1 || { tail -5 "$OUT/cmake.log"; exit 1; }
cmake --build $B -j 16 --target kiln test_cuda_kernels test_cuda_dnn >"$OUT/build.log" 2>&1 || { grep error "$OUT/build.log" | head; exit 1; }
echo "built ($((SECONDS-T0)) s)"
timeout 150 $B/tests/test_cuda_kernels >"$OUT/kern.log" 2>&1; echo "test_cuda_kernels: exit $? $(tail -1 "$OUT/kern.log")"; grep -E "^FAIL" "$OUT/kern.log" | cut -c1-220 | head -5
timeout 120 $B/tests/test_cuda_dnn >"$OUT/dnn.log" 2>&1; echo "test_cuda_dnn: exit $? $(tail -1 "$OUT/dnn.log")"; grep -E "^FAIL" "$OUT/dnn.log" | cut -c1-300 | head -5
wait
K=$B/kiln
gpu() { grep -oE 'GPU Compute Time: .*median = [0-9.e+-]+' "$1" | grep -oE '[0-9.e+-]+$'; }
echo "--- ResNet-50 b1, split-K penalty ($((SECONDS-T0)) s)"
for p in 0 2 4; do
  KILN_CUDA_SPLITK_PENALTY_US=$p timeout 200 $K build models/out/resnet50.onnx -o /tmp/r1p$p.kiln --fp16 --shapes input:1x3x224x224 --verbose >"$OUT/b_p$p.txt" 2>&1 || echo "build p$p failed: $(tail -2 "$OUT/b_p$p.txt")"
  echo "p$p: $(grep -c 'penalized' "$OUT/b_p$p.txt") penalized candidate timings; split-K candidates: $(grep -c 'split-K [2-9]' "$OUT/b_p$p.txt")"
done
grep -E "cublasLt m 49 " "$OUT/b_p0.txt" | head -20 | cut -c1-160
declare -A r=()
for i in 1 2 3; do for p in 0 2 4; do
  timeout 30 $K trtexec --loadEngine=/tmp/r1p$p.kiln --noDataTransfers --iterations=1000 --duration=0 --warmUp=200 >"$OUT/t.txt" 2>&1
  r[$p]+=" $(gpu "$OUT/t.txt")"
done; done
echo "resnet50 fp16 b1: penalty 0${r[0]} | 2 us${r[2]} | 4 us${r[4]}"
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
for n, v in sorted(agg.items(), key=lambda x: -sum(x[1]))[:24]: print('%-44s %3d x %5.1f = %6.1f us' % (n, len(v), sum(v) / len(v), sum(v)))
print('seq:', ' '.join('%s/%s:%.1f' % (k['name'][:12], k.get('launch__grid_size'), k['gpu__time_duration.sum']) for k in half)[:4000])
PY
}
for pp in 0 4; do
  echo "--- ResNet-50 b1 kernels, penalty $pp, warm ($((SECONDS-T0)) s)"
  timeout 120 ncu --cache-control none --clock-control none --metrics gpu__time_duration.sum,launch__grid_size --csv --launch-count 3000 \
    $K trtexec --loadEngine=/tmp/r1p$pp.kiln --noCudaGraph --noDataTransfers --iterations=1 --duration=0 --warmUp=0 >"$OUT/rk$pp.csv" 2>/dev/null
  agg "$OUT/rk$pp.csv" | head -12
done
echo "--- YOLOv8n FP16 b1 ($((SECONDS-T0)) s)"
timeout 200 $K build models/out/yolov8n.onnx -o /tmp/y1.kiln --fp16 --shapes input:1x3x640x640 >"$OUT/by.txt" 2>&1 || echo "yolo build failed: $(tail -3 "$OUT/by.txt")"
for i in 1 2; do timeout 60 $K trtexec --loadEngine=/tmp/y1.kiln --noDataTransfers --iterations=1000 --duration=0 --warmUp=300 >"$OUT/t.txt" 2>&1; echo -n " $(gpu "$OUT/t.txt")"; done; echo " <- yolov8n b1"
timeout 120 ncu --cache-control none --clock-control none --metrics gpu__time_duration.sum,launch__grid_size --csv --launch-count 3000 \
  $K trtexec --loadEngine=/tmp/y1.kiln --noCudaGraph --noDataTransfers --iterations=1 --duration=0 --warmUp=0 >"$OUT/yk.csv" 2>/dev/null
agg "$OUT/yk.csv"
timeout 60 $K profile /tmp/y1.kiln --iterations 50 --warmup 10 --top 40 >"$OUT/yp.txt" 2>&1; head -60 "$OUT/yp.txt" | cut -c1-160
echo "--- EfficientNet-B0 b1 ($((SECONDS-T0)) s)"
timeout 200 $K build models/out/efficientnet_b0.onnx -o /tmp/e1.kiln --fp16 --shapes input:1x3x224x224 >"$OUT/be.txt" 2>&1 || echo "effnet build failed"
for i in 1 2; do timeout 60 $K trtexec --loadEngine=/tmp/e1.kiln --noDataTransfers --iterations=1000 --duration=0 --warmUp=300 >"$OUT/t.txt" 2>&1; echo -n " $(gpu "$OUT/t.txt")"; done; echo " <- effnet b1"
timeout 120 ncu --cache-control none --clock-control none --metrics gpu__time_duration.sum,launch__grid_size --csv --launch-count 3000 \
  $K trtexec --loadEngine=/tmp/e1.kiln --noCudaGraph --noDataTransfers --iterations=1 --duration=0 --warmUp=0 >"$OUT/ek.csv" 2>/dev/null
agg "$OUT/ek.csv"
cp /tmp/*.kiln "$OUT/" 2>/dev/null; rm -f "$OUT"/*.kiln
echo "done ($((SECONDS-T0)) s)"
