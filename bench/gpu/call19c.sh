#!/usr/bin/env bash
# Nineteenth session, third GPU call: the SE fold split into one MLP block per image and a wide fold
# kernel (default) against the fused fold kernel (KILN_CUDA_SE_SPLIT=0), EfficientNet-B0 FP16 b1/b8/b256,
# the CUDA kernel tests, accuracy, warm per-kernel SE times, and the stall reasons of two depthwise kernels.
#   OUT=... bench/gpu/call19c.sh      (prints a short summary; details in $OUT)
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
OUT=${OUT:-/tmp/o}; mkdir -p "$OUT"; T0=$SECONDS
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
python3 models/export.py --models efficientnet_b0 >"$OUT/export.log" 2>&1 &
if [ -x build/kiln ] && build/kiln --version >/dev/null 2>&1; then B=build; echo "carried build"; else
  B=bg; gen=(); command -v ninja >/dev/null && gen=(-G Ninja)
  cmake -S . -B bg "${gen[@]}" -DCMAKE_BUILD_TYPE=Release -DKILN_CUDA=ON >"$OUT/cmake.log" 2>&1 || { tail -5 "$OUT/cmake.log"; exit 1; }
  cmake --build bg -j 16 --target kiln test_cuda_kernels >"$OUT/build.log" 2>&1 || { grep error "$OUT/build.log" | head; exit 1; }
fi
echo "built ($((SECONDS-T0)) s)"
timeout 150 $B/tests/test_cuda_kernels >"$OUT/kern.log" 2>&1; echo "test_cuda_kernels: exit $? $(tail -1 "$OUT/kern.log")"; grep -E "^FAIL" "$OUT/kern.log" | head -5
grep -E "se_pool" "$OUT/kern.log" | head -3
wait; echo "exported ($((SECONDS-T0)) s)"
K=$B/kiln
gpu() { grep -oE 'GPU Compute Time: .*median = [0-9.e+-]+' "$1" | grep -oE '[0-9.e+-]+$'; }
for bs in 1 8 256; do
  timeout 120 $K build models/out/efficientnet_b0.onnx -o /tmp/e$bs.kiln --fp16 --shapes input:${bs}x3x224x224 >"$OUT/b.txt" 2>&1 || echo "build failed: $(tail -2 "$OUT/b.txt")"
  line="effnet fp16 b$bs (split / fused):"
  for r in 1 2 3; do for sp in 1 0; do
    KILN_CUDA_SE_SPLIT=$sp timeout 60 $K trtexec --loadEngine=/tmp/e$bs.kiln --noDataTransfers --iterations=500 --duration=0 --warmUp=300 >"$OUT/t.txt" 2>&1
    line+=" $(gpu "$OUT/t.txt")"
  done; done
  echo "$line"
done
for sp in 1 0; do
  KILN_CUDA_SE_SPLIT=$sp timeout 120 $K compare models/out/efficientnet_b0.onnx --providers cpu,cuda --precisions fp16 --shapes input:2x3x224x224 --iterations 1 >"$OUT/acc.txt" 2>&1; echo "effnet acc b2 split=$sp (exit $?): $(grep -E '^cuda' "$OUT/acc.txt")"
done
echo "--- warm kernels ($((SECONDS-T0)) s)"
for sp in 1 0; do
  KILN_CUDA_SE_SPLIT=$sp timeout 120 ncu --cache-control none --clock-control none --metrics gpu__time_duration.sum --csv --launch-count 3000 \
    $K trtexec --loadEngine=/tmp/e1.kiln --noCudaGraph --noDataTransfers --iterations=1 --duration=0 --warmUp=0 >"$OUT/kb$sp.csv" 2>/dev/null
  python3 - "$OUT/kb$sp.csv" "split=$sp" <<'PY'
import csv, sys, collections, io
rows = [l for l in open(sys.argv[1]) if l.startswith('"')]
seq = []
for r in csv.DictReader(io.StringIO(''.join(rows))):
    if r.get('Metric Name') != 'gpu__time_duration.sum': continue
    v = float(r['Metric Value'].replace(',', '')); u = r.get('Metric Unit', 'ns')
    v *= {'ns': 1e-3, 'us': 1, 'usecond': 1, 'nsecond': 1e-3, 'ms': 1e3, 'msecond': 1e3}.get(u, 1e-3)
    seq.append((r['Kernel Name'].split('(')[0].replace('void ', ''), v))
half = seq[len(seq) // 2:]
t = collections.defaultdict(float); n = collections.Counter()
for k, v in half: t[k[:40]] += v; n[k[:40]] += 1
print('%s: %.1f us of kernels in the second inference, %d launches' % (sys.argv[2], sum(t.values()), len(half)))
for k, v in sorted(t.items(), key=lambda x: -x[1])[:7]: print('  %8.1f us %4d  %s' % (v, n[k], k))
print('  SE: ' + ' '.join('%.1f' % v for k, v in half if 'se_' in k))
PY
done
echo "--- depthwise detail ($((SECONDS-T0)) s)"
timeout 150 ncu --cache-control none --clock-control none -k regex:k_dw_nhwc --launch-skip 17 --launch-count 4 \
  --section SpeedOfLight --section Occupancy --section LaunchStats --section WarpStateStats \
  $K trtexec --loadEngine=/tmp/e1.kiln --noCudaGraph --noDataTransfers --iterations=1 --duration=0 --warmUp=0 >"$OUT/dw.txt" 2>&1
grep -E "k_dw_nhwc|^ +(Duration|Registers Per|Grid Size|Block Size|Achieved Occupancy|Theoretical Occupancy|Memory Throughput|Compute \(SM\) Throughput|Warp Cycles Per Issued|Dynamic Shared|Static Shared|Waves Per SM)" "$OUT/dw.txt" | sed -E 's/ +/ /g' | cut -c1-110 | head -56
grep -E "OPT|stall" "$OUT/dw.txt" | cut -c1-220 | head -8
echo "done ($((SECONDS-T0)) s)"
