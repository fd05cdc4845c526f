#!/usr/bin/env bash
# Nineteenth session, fifth GPU call: the SE fold's hidden units over several blocks (KILN_CUDA_SE_SPLIT=2,
# the default) against one MLP block per image (1), EfficientNet-B0 FP16 b1/b256, the CUDA kernel tests,
# accuracy, and the SE kernels' warm times at batch 1.      OUT=... bench/gpu/call19e.sh
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
OUT=${OUT:-/tmp/o}; mkdir -p "$OUT"; T0=$SECONDS
nvidia-smi --query-gpu=name --format=csv,noheader
python3 models/export.py --models efficientnet_b0 >"$OUT/export.log" 2>&1 &
B=bg; gen=(); command -v ninja >/dev/null && gen=(-G Ninja)
cmake -S . -B $B "${gen[@]}" -DCMAKE_BUILD_TYPE=Release -DKILN_CUDA=ON >"$OUT/cmake.log" 2>&1 || { tail -5 "$OUT/cmake.log"; exit 1; }
cmake --build $B -j 16 --target kiln test_cuda_kernels >"$OUT/build.log" 2>&1 || { grep error "$OUT/build.log" | head; exit 1; }
echo "built ($((SECONDS-T0)) s)"
timeout 150 $B/tests/test_cuda_kernels >"$OUT/kern.log" 2>&1; echo "test_cuda_kernels: exit $? $(tail -1 "$OUT/kern.log")"; grep -E "^FAIL" "$OUT/kern.log" | head -5
wait
K=$B/kiln
gpu() { grep -oE 'GPU Compute Time: .*median = [0-9.e+-]+' "$1" | grep -oE '[0-9.e+-]+$'; }
for bs in 1 256; do
  timeout 120 $K build models/out/efficientnet_b0.onnx -o /tmp/e$bs.kiln --fp16 --shapes input:${bs}x3x224x224 >"$OUT/b.txt" 2>&1 || echo "build failed: $(tail -2 "$OUT/b.txt")"
  declare -A res=()
  for r in 1 2 3; do for sp in 2 1; do
    KILN_CUDA_SE_SPLIT=$sp timeout 60 $K trtexec --loadEngine=/tmp/e$bs.kiln --noDataTransfers --iterations=500 --duration=0 --warmUp=300 >"$OUT/t.txt" 2>&1
    res[$sp]+=" $(gpu "$OUT/t.txt")"
  done; done
  echo "effnet fp16 b$bs split 2 (hidden over blocks):${res[2]} | split 1 (one MLP block):${res[1]}"
done
for sp in 2; do
  KILN_CUDA_SE_SPLIT=$sp timeout 120 $K compare models/out/efficientnet_b0.onnx --providers cpu,cuda --precisions fp32,fp16 --shapes input:2x3x224x224 --iterations 1 >"$OUT/acc.txt" 2>&1
  echo "effnet acc b2 split=$sp (exit $?): $(grep -E '^cuda' "$OUT/acc.txt" | awk '{print $2, $5, $6, $7, $8}' | tr '\n' ';')"
done
echo "--- warm SE kernels, b1 ($((SECONDS-T0)) s)"
for sp in 2 1; do
  KILN_CUDA_SE_SPLIT=$sp timeout 90 ncu --cache-control none --clock-control none --metrics gpu__time_duration.sum --csv --launch-count 3000 \
    $K trtexec --loadEngine=/tmp/e1.kiln --noCudaGraph --noDataTransfers --iterations=1 --duration=0 --warmUp=0 >"$OUT/kb$sp.csv" 2>/dev/null
  python3 - "$OUT/kb$sp.csv" "split=$sp" <<'PY'
import csv, sys, io
rows = [l for l in open(sys.argv[1]) if l.startswith('"')]
seq = []
for r in csv.DictReader(io.StringIO(''.join(rows))):
    if r.get('Metric Name') != 'gpu__time_duration.sum': continue
    v = float(r['Metric Value'].replace(',', '')); u = r.get('Metric Unit', 'ns')
    v *= {'ns': 1e-3, 'us': 1, 'usecond': 1, 'nsecond': 1e-3, 'ms': 1e3, 'msecond': 1e3}.get(u, 1e-3)
    seq.append((r['Kernel Name'].split('(')[0].replace('void ', ''), v))
half = seq[len(seq) // 2:]
se = [v for k, v in half if 'se_' in k]
print('%s: %.1f us of kernels, %d launches; SE kernels %.1f us: %s' % (sys.argv[2], sum(v for k, v in half), len(half), sum(se), ' '.join('%.1f' % v for v in se)))
PY
done
echo "done ($((SECONDS-T0)) s)"
