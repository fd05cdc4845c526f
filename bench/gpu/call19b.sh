#!/usr/bin/env bash
# Nineteenth session, second GPU call: the SE MLP kernel in 1024-thread blocks
# (default) against the earlier 256 (KILN_CUDA_SE_THREADS=256) on EfficientNet-B0
# FP16 b1/b256, and warm per-kernel times (ncu --cache-control none, ungraphed)
# of the batch-1 targets, to say where their time goes.
#   OUT=... bench/gpu/call19b.sh
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
OUT=${OUT:-/tmp/o}; mkdir -p "$OUT"; T0=$SECONDS
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
python3 models/export.py --models efficientnet_b0,resnet50,vit_b_16,yolov8n >"$OUT/export.log" 2>&1 &
# a kiln built on the workstation (carried) when it runs here, else a build here (~3 minutes)
if [ -x build/kiln ] && build/kiln --version >/dev/null 2>&1; then B=build; echo "carried build"; else
  B=bg; gen=(); command -v ninja >/dev/null && gen=(-G Ninja)
  cmake -S . -B bg "${gen[@]}" -DCMAKE_BUILD_TYPE=Release -DKILN_CUDA=ON >"$OUT/cmake.log" 2>&1 || { tail -5 "$OUT/cmake.log"; exit 1; }
  cmake --build bg -j 16 --target kiln test_cuda_kernels >"$OUT/build.log" 2>&1 || { grep error "$OUT/build.log" | head; exit 1; }
fi
echo "built ($((SECONDS-T0)) s)"
timeout 150 $B/tests/test_cuda_kernels >"$OUT/kern.log" 2>&1; echo "test_cuda_kernels: exit $? $(tail -1 "$OUT/kern.log")"; grep -E "^FAIL" "$OUT/kern.log" | head -5
wait; echo "exported ($((SECONDS-T0)) s)"
K=$B/kiln
gpu() { grep -oE 'GPU Compute Time: .*median = [0-9.e+-]+' "$1" | grep -oE '[0-9.e+-]+$'; }
shape() { python3 -c "import onnx; m=onnx.load('models/out/$1.onnx', load_external_data=False); d=m.graph.input[0].type.tensor_type.shape.dim; print('x'.join(['$2'] + [str(x.dim_value) for x in d[1:]]))"; }
for bs in 1 256; do
  timeout 120 $K build models/out/efficientnet_b0.onnx -o /tmp/e$bs.kiln --fp16 --shapes input:${bs}x3x224x224 >"$OUT/b.txt" 2>&1 || echo "build failed: $(tail -2 "$OUT/b.txt")"
  for r in 1 2 3; do for st in 256 1024; do
    KILN_CUDA_SE_THREADS=$st timeout 60 $K trtexec --loadEngine=/tmp/e$bs.kiln --noDataTransfers --iterations=500 --duration=0 --warmUp=300 >"$OUT/t.txt" 2>&1
    echo "effnet fp16 b$bs round $r se_threads=$st: $(gpu "$OUT/t.txt") ms"
  done; done
done
timeout 120 $K compare models/out/efficientnet_b0.onnx --providers cpu,cuda --precisions fp32,fp16 --shapes input:2x3x224x224 --iterations 1 >"$OUT/acc.txt" 2>&1; echo "effnet acc b2 (exit $?):"; grep -E '^cuda' "$OUT/acc.txt"
echo "--- warm kernel breakdown ($((SECONDS-T0)) s)"
kb() { # engine label: ncu, warm caches, over 2 ungraphed inferences (warm-up + 1)
  timeout 120 ncu --cache-control none --clock-control none --metrics gpu__time_duration.sum --csv --launch-count 3000 \
    $K trtexec --loadEngine=$1 --noCudaGraph --noDataTransfers --iterations=1 --duration=0 --warmUp=0 >"$OUT/kb_$2.csv" 2>/dev/null
  python3 - "$OUT/kb_$2.csv" "$2" "${3:-}" <<'PY'
import csv, sys, collections, io
rows = [l for l in open(sys.argv[1]) if l.startswith('"')]
t = collections.defaultdict(float); n = collections.Counter(); seq = []
for r in csv.DictReader(io.StringIO(''.join(rows))):
    if r.get('Metric Name') != 'gpu__time_duration.sum': continue
    v = float(r['Metric Value'].replace(',', '')); u = r.get('Metric Unit', 'ns')
    v *= {'ns': 1e-3, 'us': 1, 'usecond': 1, 'nsecond': 1e-3, 'ms': 1e3, 'msecond': 1e3}.get(u, 1e-3)
    k = r['Kernel Name'].split('(')[0][:60]; t[k] += v / 2; n[k] += 1; seq.append((k, v))
tot = sum(t.values())
print('%s: %.1f us of kernels per inference, %d launches' % (sys.argv[2], tot, sum(n.values()) // 2))
for k, v in sorted(t.items(), key=lambda x: -x[1])[:12]: print('  %8.1f us %4d  %s' % (v, n[k] // 2, k))
if sys.argv[3]:
    half = seq[len(seq) // 2:]
    print('  sequence (second inference): ' + ' '.join('%s=%.1f' % (k.replace('void ', '')[:14], v) for k, v in half))
PY
}
kb /tmp/e1.kiln effnet_b1 seq
KILN_CUDA_SE_THREADS=256 kb /tmp/e1.kiln effnet_b1_se256
for m in resnet50 yolov8n vit_b_16; do
  s=$(shape $m 1)
  timeout 120 $K build models/out/$m.onnx -o /tmp/$m.kiln --fp16 --shapes input:$s >"$OUT/b.txt" 2>&1 || { echo "build $m failed: $(tail -2 "$OUT/b.txt")"; continue; }
  timeout 60 $K trtexec --loadEngine=/tmp/$m.kiln --noDataTransfers --iterations=500 --duration=0 --warmUp=300 >"$OUT/t.txt" 2>&1
  echo "$m fp16 b1: $(gpu "$OUT/t.txt") ms"
  [ $((SECONDS-T0)) -lt 480 ] && kb /tmp/$m.kiln ${m}_b1 seq
done
echo "done ($((SECONDS-T0)) s)"
