#!/usr/bin/env bash
# Twenty-ninth session: the implicit GEMM's epilogue staged in shared memory (16-byte stores of rows) and the
# space-to-depth stem's input made in one pass (kc_s2d_pack), checked and timed.
# 1. test_cuda_kernels (kc_s2d_pack) and test_cuda_dnn (every implicit-GEMM tile forced);
# 2. kiln compare FP32/FP16 against the CPU: ResNet-50 (space-to-depth stem), EfficientNet-B0 b2, YOLOv8n;
# 3. GPU compute medians (--noDataTransfers, CUDA graphs), alternating rounds: b1 ResNet-50, EfficientNet-B0,
#    YOLOv8n; b256 ResNet-50, EfficientNet-B0 and EfficientNet-B0 built and run with KILN_CUDA_DW_TAPS=2;
# 4. ncu per-kernel breakdown of EfficientNet-B0 and ResNet-50 at b256 (as call29b.sh).
#   OUT=... bench/gpu/call29c.sh   (build-gpu/wt: kiln, test_cuda_kernels, test_cuda_dnn from a CUDA build)
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
OUT=${OUT:-/tmp/o}; mkdir -p "$OUT"; T0=$SECONDS; S=$OUT/summary.txt
export LD_LIBRARY_PATH=$PWD/.gpu/libs:${LD_LIBRARY_PATH:-}
say() { echo "$*" | tee -a $S; }
K=build-gpu/wt/kiln; T=build-gpu/wt
say "$(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader)"
python3 models/export.py --models resnet50,efficientnet_b0,yolov8n >$OUT/export.log 2>&1 &
timeout 150 $T/test_cuda_kernels >$OUT/k.log 2>&1; say "test_cuda_kernels: exit $? $(tail -1 $OUT/k.log)"
grep -E "^FAIL" $OUT/k.log | cut -c1-200 | head -5 | tee -a $S
timeout 200 $T/test_cuda_dnn >$OUT/d.log 2>&1; say "test_cuda_dnn: exit $? $(tail -1 $OUT/d.log)"
grep -E "^FAIL" $OUT/d.log | cut -c1-200 | head -5 | tee -a $S
wait; say "exported ($((SECONDS-T0)) s)"
cmp() { timeout 150 $K compare models/out/$1.onnx --providers cpu,cuda --precisions fp32,fp16 --shapes input:$2 --iterations 2 >$OUT/cmp_$1.txt 2>&1
  say "$1 compare exit $?: $(grep -E '^cuda' $OUT/cmp_$1.txt | tr -s ' ' | tr '\n' ';')"; }
cmp resnet50 1x3x224x224; cmp efficientnet_b0 2x3x224x224; cmp yolov8n 1x3x640x640
gpu() { grep -oE 'GPU Compute Time: .*median = [0-9.e+-]+' "$1" | grep -oE '[0-9.e+-]+$'; }
b() { env ${4:-X=0} timeout 150 $K build models/out/$1.onnx -o /tmp/$2.kiln --fp16 --shapes input:$3 >$OUT/b_$2.txt 2>&1 || say "$2 build failed: $(tail -2 $OUT/b_$2.txt)"; }
b resnet50 r1 1x3x224x224; b efficientnet_b0 e1 1x3x224x224; b yolov8n y1 1x3x640x640
b resnet50 r256 256x3x224x224; b efficientnet_b0 e256 256x3x224x224; b efficientnet_b0 e256t 256x3x224x224 KILN_CUDA_DW_TAPS=2
say "built ($((SECONDS-T0)) s)"
declare -A r=()
t() { local n=$1 it=$2 wu=$3; shift 3
  env "$@" timeout 60 $K trtexec --loadEngine=/tmp/$n.kiln --noDataTransfers --useCudaGraph --iterations=$it --duration=0 --warmUp=$wu >$OUT/t.txt 2>&1; r[$n]+=" $(gpu $OUT/t.txt)"; }
for i in 1 2 3; do
  t r1 2000 300 X=0; t e1 2000 300 X=0; t y1 2000 300 X=0
  t r256 60 500 X=0; t e256 60 500 X=0; t e256t 60 500 KILN_CUDA_DW_TAPS=2
done
for n in r1 e1 y1 r256 e256 e256t; do say "$n ms:${r[$n]}"; done
kb() { # engine label [env]
  env ${3:-X=0} timeout 200 ncu --cache-control none --clock-control none --metrics gpu__time_duration.sum --csv --launch-count 3000 \
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
print('%s: %.1f us of kernels per inference, %d launches' % (sys.argv[2], sum(t.values()), len(half)))
for k, v in sorted(t.items(), key=lambda x: -x[1])[:14]: print('  %8.1f us %4d  %s' % (v, n[k], k))
print('  largest 16 launches: ' + ' | '.join('#%d %s=%.1f' % (i, k.replace('void ', '')[:36], v) for i, (k, v) in sorted(enumerate(half), key=lambda x: -x[1][1])[:16]))
PY
}
kb /tmp/e256.kiln effnet_b256
kb /tmp/e256t.kiln effnet_b256_taps KILN_CUDA_DW_TAPS=2
kb /tmp/r256.kiln resnet50_b256
say "done ($((SECONDS-T0)) s)"
