#!/usr/bin/env bash
# Twenty-ninth session: the few-channel 1x1 kernel with the next group's loads in flight and x read once (all output
# channels a warp), checked and timed as call29f.sh; ResNet-50 b1 built twice (build-to-build spread).
# 1. test_cuda_dnn (its four new cases, every algorithm forced);
# 2. kiln compare FP32/FP16 against the CPU: EfficientNet-B0 b2, MobileNet-V2 b2, YOLOv8n;
# 3. GPU compute medians, three alternating rounds: b1 ResNet-50 / EfficientNet-B0 / YOLOv8n; EfficientNet-B0
#    b256 with the kernel and without (KILN_CUDA_NO_PW=1, engine built so);
# 4. the builds' choices for the expansions, ncu breakdown of EfficientNet-B0 b256.  Logs in $OUT/logs.tgz.
#   OUT=... bench/gpu/call29g.sh   (build-gpu/wt: kiln, test_cuda_dnn from a CUDA build)
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
OUT=${OUT:-/tmp/o}; mkdir -p "$OUT"; T0=$SECONDS; S=$OUT/summary.txt; L=/tmp/logs; mkdir -p $L
export LD_LIBRARY_PATH=$PWD/.gpu/libs:${LD_LIBRARY_PATH:-}
say() { echo "$*" | tee -a $S; }
K=build-gpu/wt/kiln
say "$(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader)"
python3 models/export.py --models resnet50,efficientnet_b0,yolov8n,mobilenet_v2 >$L/export.log 2>&1 &
timeout 240 build-gpu/wt/test_cuda_dnn >$L/d.log 2>&1; say "test_cuda_dnn: exit $? $(tail -1 $L/d.log)"
grep -E "^FAIL" $L/d.log | cut -c1-220 | head -8 | tee -a $S
grep -E "1x1 (16->96|24->144|8->40|32->24)" $L/d.log | cut -c1-160 | tee -a $S
wait; say "exported ($((SECONDS-T0)) s)"
cmp() { timeout 150 $K compare models/out/$1.onnx --providers cpu,cuda --precisions fp32,fp16 --shapes input:$2 --iterations 2 >$L/cmp_$1.txt 2>&1
  say "$1 compare exit $?: $(grep -E '^cuda' $L/cmp_$1.txt | tr -s ' ' | tr '\n' ';')"; }
cmp efficientnet_b0 2x3x224x224; cmp mobilenet_v2 2x3x224x224
gpu() { grep -oE 'GPU Compute Time: .*median = [0-9.e+-]+' "$1" | grep -oE '[0-9.e+-]+$'; }
b() { env KILN_LOG=debug ${4:-X=0} timeout 150 $K build models/out/$1.onnx -o /tmp/$2.kiln --fp16 --verbose --shapes input:$3 >$L/b_$2.txt 2>&1 || say "$2 build failed: $(tail -2 $L/b_$2.txt)"; }
b resnet50 r1 1x3x224x224; b resnet50 r1b 1x3x224x224; b efficientnet_b0 e1 1x3x224x224; b yolov8n y1 1x3x640x640
b efficientnet_b0 e256 256x3x224x224; b efficientnet_b0 e256n 256x3x224x224 KILN_CUDA_NO_PW=1
say "built ($((SECONDS-T0)) s)"
declare -A r=()
t() { local n=$1 it=$2 wu=$3; shift 3
  env "$@" timeout 60 $K trtexec --loadEngine=/tmp/$n.kiln --noDataTransfers --useCudaGraph --iterations=$it --duration=0 --warmUp=$wu >$L/t.txt 2>&1; r[$n]+=" $(gpu $L/t.txt)"; }
for i in 1 2 3; do t r1 2000 300 X=0; t r1b 2000 300 X=0; t e1 2000 300 X=0; t y1 2000 300 X=0; t e256 60 500 X=0; t e256n 60 500 KILN_CUDA_NO_PW=1; done
for n in r1 r1b e1 y1 e256 e256n; do say "$n ms:${r[$n]}"; done
for n in e1 e256 y1; do say "--- $n: few-channel 1x1 timings and choices"
  grep -E "kiln 1x1 few-channel|1x1 .*chose" $L/b_$n.txt | cut -c14-170 | head -10 | tee -a $S; done
timeout 200 ncu --cache-control none --clock-control none --metrics gpu__time_duration.sum --csv --launch-count 3000 \
  $K trtexec --loadEngine=/tmp/e256.kiln --noCudaGraph --noDataTransfers --iterations=1 --duration=0 --warmUp=0 >$L/kb.csv 2>/dev/null
python3 - $L/kb.csv <<'PY' | tee -a $S
import csv, sys, collections, io
rows = [l for l in open(sys.argv[1]) if l.startswith('"')]
t = collections.defaultdict(float); n = collections.Counter(); seq = []
for r in csv.DictReader(io.StringIO(''.join(rows))):
    if r.get('Metric Name') != 'gpu__time_duration.sum': continue
    v = float(r['Metric Value'].replace(',', '')); u = r.get('Metric Unit', 'ns')
    v *= {'ns': 1e-3, 'us': 1, 'usecond': 1, 'nsecond': 1e-3, 'ms': 1e3, 'msecond': 1e3}.get(u, 1e-3)
    seq.append((r['Kernel Name'].split('(')[0][:70], v))
half = seq[len(seq) // 2:]
for k, v in half: t[k] += v; n[k] += 1
print('effnet b256: %.1f us of kernels per inference, %d launches' % (sum(t.values()), len(half)))
for k, v in sorted(t.items(), key=lambda x: -x[1])[:12]: print('  %8.1f us %4d  %s' % (v, n[k], k))
PY
tar -C $L -czf $OUT/logs.tgz .
say "done ($((SECONDS-T0)) s)"
