#!/usr/bin/env bash
# Twenty-ninth session: where ResNet-50 and EfficientNet-B0 FP16 spend batch 256 (the throughput misses),
# kernel by kernel: ncu with warm caches over one ungraphed inference (after one warm-up), the top kernels and
# the first kernels in order; the layers' chosen tactics from the build log; and the engines with
# KILN_CUDA_IGEMM_ALL=1 (kiln's implicit GEMM timed for every float16 convolution) against the defaults.
#   OUT=... bench/gpu/call29b.sh   (build-gpu/wt holding kiln from a CUDA build)
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
OUT=${OUT:-/tmp/o}; mkdir -p "$OUT"; T0=$SECONDS; S=$OUT/summary.txt
export LD_LIBRARY_PATH=$PWD/.gpu/libs:${LD_LIBRARY_PATH:-}
say() { echo "$*" | tee -a $S; }
K=${KILN:-build-gpu/wt/kiln}
say "$(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader)"
python3 models/export.py --models resnet50,efficientnet_b0 >$OUT/export.log 2>&1
gpu() { grep -oE 'GPU Compute Time: .*median = [0-9.e+-]+' "$1" | grep -oE '[0-9.e+-]+$'; }
for m in resnet50 efficientnet_b0; do
  KILN_LOG=debug timeout 150 $K build models/out/$m.onnx -o /tmp/$m.kiln --fp16 --verbose --shapes input:256x3x224x224 >$OUT/build_$m.txt 2>&1 || say "$m build failed: $(tail -2 $OUT/build_$m.txt)"
  KILN_CUDA_IGEMM_ALL=1 timeout 150 $K build models/out/$m.onnx -o /tmp/${m}_ig.kiln --fp16 --shapes input:256x3x224x224 >$OUT/build_${m}_ig.txt 2>&1 || say "$m igemm-all build failed"
done
say "built ($((SECONDS-T0)) s)"
declare -A r=()
for i in 1 2; do for e in resnet50 resnet50_ig efficientnet_b0 efficientnet_b0_ig; do
  timeout 60 $K trtexec --loadEngine=/tmp/$e.kiln --noDataTransfers --useCudaGraph --iterations=60 --duration=0 --warmUp=500 >$OUT/t.txt 2>&1; r[$e]+=" $(gpu $OUT/t.txt)"
done; done
for e in resnet50 resnet50_ig efficientnet_b0 efficientnet_b0_ig; do say "$e b256 ms:${r[$e]}"; done
kb() { # engine label
  timeout 200 ncu --cache-control none --clock-control none --metrics gpu__time_duration.sum --csv --launch-count 3000 \
    $K trtexec --loadEngine=$1 --noCudaGraph --noDataTransfers --iterations=1 --duration=0 --warmUp=0 >"$OUT/kb_$2.csv" 2>/dev/null
  python3 - "$OUT/kb_$2.csv" "$2" <<'PY' | tee -a $S
import csv, sys, collections, io
rows = [l for l in open(sys.argv[1]) if l.startswith('"')]
t = collections.defaultdict(float); n = collections.Counter(); seq = []
for r in csv.DictReader(io.StringIO(''.join(rows))):
    if r.get('Metric Name') != 'gpu__time_duration.sum': continue
    v = float(r['Metric Value'].replace(',', '')); u = r.get('Metric Unit', 'ns')
    v *= {'ns': 1e-3, 'us': 1, 'usecond': 1, 'nsecond': 1e-3, 'ms': 1e3, 'msecond': 1e3}.get(u, 1e-3)
    k = r['Kernel Name'].split('(')[0][:70]; seq.append((k, v))
half = seq[len(seq) // 2:]
for k, v in half: t[k] += v; n[k] += 1
tot = sum(t.values())
print('%s: %.1f us of kernels per inference, %d launches' % (sys.argv[2], tot, len(half)))
for k, v in sorted(t.items(), key=lambda x: -x[1])[:16]: print('  %8.1f us %4d  %s' % (v, n[k], k))
print('  first 24 in order: ' + ' | '.join('%s=%.1f' % (k.replace('void ', '')[:40], v) for k, v in half[:24]))
print('  largest 20 launches: ' + ' | '.join('#%d %s=%.1f' % (i, k.replace('void ', '')[:40], v) for i, (k, v) in sorted(enumerate(half), key=lambda x: -x[1][1])[:20]))
PY
}
kb /tmp/resnet50.kiln resnet50_b256
kb /tmp/efficientnet_b0.kiln effnet_b256
say "done ($((SECONDS-T0)) s)"
