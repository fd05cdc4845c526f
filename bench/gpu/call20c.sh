#!/usr/bin/env bash
# Twentieth session, third GPU call: test_cuda_dnn with float32 5x5 non-fused Winograd refused, 16 vs 64
# cuBLASLt candidates on two builds each (ResNet-50 / ViT-B/16 FP16 b1), the LayerNorm's early loads
# (KILN_CUDA_LN_EARLY A/B), a cold build's time, and EfficientNet-B0 b1's kernels.   OUT=... bench/gpu/call20c.sh
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
OUT=${OUT:-/tmp/o}; mkdir -p "$OUT"; T0=$SECONDS
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
python3 models/export.py --models vit_b_16,resnet50,efficientnet_b0 >"$OUT/export.log" 2>&1 &
B=bg; gen=(); command -v ninja >/dev/null && gen=(-G Ninja)
cmake -S . -B $B "${gen[@]}" -DCMAKE_BUILD_TYPE=Release -DKILN_CUDA=ON >"$OUT/cmake.log" 2>&1 || { tail -5 "$OUT/cmake.log"; exit 1; }
cmake --build $B -j 16 --target kiln test_cuda_dnn >"$OUT/build.log" 2>&1 || { grep error "$OUT/build.log" | head; exit 1; }
echo "built ($((SECONDS-T0)) s)"
timeout 120 $B/tests/test_cuda_dnn >"$OUT/dnn.log" 2>&1; echo "test_cuda_dnn: exit $? $(tail -1 "$OUT/dnn.log")"; grep -E "^FAIL" "$OUT/dnn.log" | cut -c1-300 | head -5
grep -E "depthwise 5x5 672" "$OUT/dnn.log" | cut -c1-150
wait
K=$B/kiln
gpu() { grep -oE 'GPU Compute Time: .*median = [0-9.e+-]+' "$1" | grep -oE '[0-9.e+-]+$'; }
for m in resnet50 vit_b_16; do
  for nc in 16 64; do for j in 1 2; do
    s=$SECONDS; KILN_CUDA_GEMM_CANDIDATES=$nc timeout 200 $K build models/out/$m.onnx -o /tmp/$m.$nc.$j.kiln --fp16 --shapes input:1x3x224x224 >"$OUT/b.txt" 2>&1 || echo "build failed: $(tail -2 "$OUT/b.txt")"
    [ $j = 1 ] && echo "$m c$nc build $((SECONDS-s)) s ($(grep -oE 'Build time: [0-9.]+ s' "$OUT/b.txt"))"
  done; done
  declare -A res=()
  for r in 1 2 3; do for e in 16.1 64.1 16.2 64.2; do
    timeout 60 $K trtexec --loadEngine=/tmp/$m.$e.kiln --noDataTransfers --iterations=1000 --duration=0 --warmUp=300 >"$OUT/t.txt" 2>&1
    res[$e]+=" $(gpu "$OUT/t.txt")"
  done; done
  echo "$m fp16 b1: c16 build1${res[16.1]} | build2${res[16.2]} || c64 build1${res[64.1]} | build2${res[64.2]}"
done
declare -A ln=()
for r in 1 2 3; do for e in 1 0; do
  KILN_CUDA_LN_EARLY=$e timeout 60 $K trtexec --loadEngine=/tmp/vit_b_16.64.1.kiln --noDataTransfers --iterations=1000 --duration=0 --warmUp=300 >"$OUT/t.txt" 2>&1
  ln[$e]+=" $(gpu "$OUT/t.txt")"
done; done
echo "vit fp16 b1 LN early:${ln[1]} | late:${ln[0]}"
timeout 200 $K build models/out/vit_b_16.onnx -o /tmp/v256.kiln --fp16 --shapes input:256x3x224x224 >"$OUT/b.txt" 2>&1
declare -A ln=()
for r in 1 2; do for e in 1 0; do
  KILN_CUDA_LN_EARLY=$e timeout 60 $K trtexec --loadEngine=/tmp/v256.kiln --noDataTransfers --iterations=100 --duration=0 --warmUp=50 >"$OUT/t.txt" 2>&1
  ln[$e]+=" $(gpu "$OUT/t.txt")"
done; done
echo "vit fp16 b256 LN early:${ln[1]} | late:${ln[0]}"
echo "--- EfficientNet-B0 b1 kernels, warm ($((SECONDS-T0)) s)"
timeout 200 $K build models/out/efficientnet_b0.onnx -o /tmp/e1.kiln --fp16 --shapes input:1x3x224x224 >"$OUT/b.txt" 2>&1
for r in 1 2; do timeout 60 $K trtexec --loadEngine=/tmp/e1.kiln --noDataTransfers --iterations=1000 --duration=0 --warmUp=300 >"$OUT/t.txt" 2>&1; echo -n " $(gpu "$OUT/t.txt")"; done; echo " <- effnet b1"
timeout 120 ncu --cache-control none --clock-control none --metrics gpu__time_duration.sum,launch__grid_size --csv --launch-count 3000 \
  $K trtexec --loadEngine=/tmp/e1.kiln --noCudaGraph --noDataTransfers --iterations=1 --duration=0 --warmUp=0 >"$OUT/ek.csv" 2>/dev/null
python3 - "$OUT/ek.csv" <<'PY'
import csv, sys, io, collections
rows = [l for l in open(sys.argv[1]) if l.startswith('"')]
ks = collections.OrderedDict()
for r in csv.DictReader(io.StringIO(''.join(rows))):
    k = ks.setdefault(r['ID'], {'name': r['Kernel Name'].split('(')[0].replace('void ', '')[:40]})
    v = r['Metric Value'].replace(',', '')
    if r['Metric Name'] == 'gpu__time_duration.sum':
        v = float(v) * {'ns': 1e-3, 'nsecond': 1e-3, 'us': 1, 'usecond': 1, 'ms': 1e3, 'msecond': 1e3}.get(r.get('Metric Unit', 'ns'), 1e-3)
    k[r['Metric Name']] = v
seq = list(ks.values()); half = seq[len(seq) // 2:]
print('%.1f us in %d launches' % (sum(k['gpu__time_duration.sum'] for k in half), len(half)))
agg = collections.OrderedDict()
for k in half: agg.setdefault(k['name'], []).append(k['gpu__time_duration.sum'])
for n, v in sorted(agg.items(), key=lambda x: -sum(x[1]))[:12]: print('%-40s %2d x %5.1f = %6.1f us' % (n, len(v), sum(v) / len(v), sum(v)))
print('dw:', ' '.join('%s:%.1f' % (k.get('launch__grid_size'), k['gpu__time_duration.sum']) for k in half if 'dw' in k['name']))
PY
echo "done ($((SECONDS-T0)) s)"
