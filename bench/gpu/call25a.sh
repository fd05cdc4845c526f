#!/usr/bin/env bash
# Twenty-fifth session, first GPU call: where ViT-B/16 FP16 spends its time at batch 256 and 1, before any change.
# (1) the unit suites on the carried binaries; (2) engines b256 (build log with every cuBLASLt candidate's time)
# and b1; (3) GPU compute medians, alternating, against a b256 engine built with 64 cuBLASLt candidates and
# against KILN_CUDA_PDL=0 and the new float16 LayerNorm (k_layernorm_h8p) against the old (default); (4) clocks and power while b256 runs; (5) warm per-kernel times (ncu, one inference)
# and kiln profile; a kiln compare of ViT-B/16 (cpu fp32 against cuda fp32/fp16).
# The Reshape+Transpose after the patch embedding as a view of the NHWC buffer (opt-in KILN_CUDA_TVIEW=1; the LayerNorm opt-in KILN_CUDA_LN_PERSIST=1).   KILN=build-gpu/wt/kiln (a clean worktree of HEAD + this session's src/cuda and tests/cuda, CUDA, 90-real), LIBS=.gpu/libs.   OUT=... bench/gpu/call25a.sh
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
OUT=${OUT:-/tmp/o}; mkdir -p "$OUT"; L=/tmp/logs; mkdir -p $L; T0=$SECONDS
export LD_LIBRARY_PATH=$PWD/.gpu/libs:${LD_LIBRARY_PATH:-}
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm,power.limit --format=csv,noheader
python3 models/export.py --models vit_b_16 >$L/export.log 2>&1 &
K=${KILN:-build-gpu/wt/kiln}; T=${TESTS:-build-gpu/wt/tests}
$K sysinfo 2>&1 | grep -E "^ *cuda" | head -2
KILN_CUDA_LN_PERSIST=1 timeout 150 $T/test_cuda_kernels >$L/kern.log 2>&1; echo "test_cuda_kernels: exit $? $(tail -1 $L/kern.log)"; grep -E "^FAIL" $L/kern.log | cut -c1-200 | head -5
timeout 150 $T/test_cuda_dnn >$L/dnn.log 2>&1; echo "test_cuda_dnn: exit $? $(tail -1 $L/dnn.log)"; grep -E "^FAIL" $L/dnn.log | cut -c1-200 | head -5
python3 bench/gpu/tview_model.py /tmp/tview.onnx >$L/tvm.txt 2>&1 || { echo "tview model: $(tail -2 $L/tvm.txt)"; }
for e in 0 1; do
  KILN_CUDA_TVIEW=$e timeout 60 $K compare /tmp/tview.onnx --providers cpu,cuda --precisions fp32,fp16 --shapes input:3x3x28x28 --iterations 3 >$L/tvc$e.txt 2>&1
  echo "tview model, KILN_CUDA_TVIEW=$e: exit $?"; grep -E "^(cpu|cuda)" $L/tvc$e.txt || tail -3 $L/tvc$e.txt
done
wait; echo "exported ($((SECONDS-T0)) s): $(tail -1 $L/export.log)"
M=models/out/vit_b_16.onnx
gpu() { grep -oE 'GPU Compute Time: .*median = [0-9.e+-]+' "$1" | grep -oE '[0-9.e+-]+$'; }
KILN_LOG=debug timeout 200 $K build $M -o /tmp/v256.kiln --fp16 --shapes input:256x3x224x224 --verbose >$L/b256.txt 2>&1 || echo "b256 build failed: $(tail -2 $L/b256.txt)"
KILN_CUDA_GEMM_CANDIDATES=64 KILN_LOG=debug timeout 200 $K build $M -o /tmp/v256c.kiln --fp16 --shapes input:256x3x224x224 --verbose >$L/b256c.txt 2>&1 || echo "b256c build failed"
timeout 100 $K build $M -o /tmp/v1.kiln --fp16 --shapes input:1x3x224x224 --verbose >$L/b1.txt 2>&1 || echo "b1 build failed"
echo "built engines ($((SECONDS-T0)) s)"
nvidia-smi --query-gpu=timestamp,clocks.sm,clocks.mem,power.draw,temperature.gpu,clocks_event_reasons.active --format=csv -lms 250 >$L/smi.csv 2>&1 &
SMI=$!
declare -A r=()
for i in 1 2 3; do
  for e in v256 v256c; do
    KILN_CUDA_LN_PERSIST=1 KILN_CUDA_TVIEW=1 timeout 60 $K trtexec --loadEngine=/tmp/$e.kiln --noDataTransfers --useCudaGraph --iterations=60 --duration=0 --warmUp=500 >$L/t.txt 2>&1; r[$e]+=" $(gpu $L/t.txt)"
  done
  KILN_CUDA_TVIEW=1 timeout 60 $K trtexec --loadEngine=/tmp/v256.kiln --noDataTransfers --useCudaGraph --iterations=60 --duration=0 --warmUp=500 >$L/t.txt 2>&1; r[ln0]+=" $(gpu $L/t.txt)"
  KILN_CUDA_LN_PERSIST=1 timeout 60 $K trtexec --loadEngine=/tmp/v256.kiln --noDataTransfers --useCudaGraph --iterations=60 --duration=0 --warmUp=500 >$L/t.txt 2>&1; r[tv0]+=" $(gpu $L/t.txt)"
  timeout 60 $K trtexec --loadEngine=/tmp/v256.kiln --noDataTransfers --useCudaGraph --iterations=60 --duration=0 --warmUp=500 >$L/t.txt 2>&1; r[base]+=" $(gpu $L/t.txt)"
  KILN_CUDA_LN_PERSIST=1 KILN_CUDA_TVIEW=1 timeout 60 $K trtexec --loadEngine=/tmp/v1.kiln --noDataTransfers --useCudaGraph --iterations=2000 --duration=0 --warmUp=300 >$L/t.txt 2>&1; r[v1]+=" $(gpu $L/t.txt)"
  KILN_CUDA_TVIEW=1 timeout 60 $K trtexec --loadEngine=/tmp/v1.kiln --noDataTransfers --useCudaGraph --iterations=2000 --duration=0 --warmUp=300 >$L/t.txt 2>&1; r[v1ln0]+=" $(gpu $L/t.txt)"
  KILN_CUDA_LN_PERSIST=1 timeout 60 $K trtexec --loadEngine=/tmp/v1.kiln --noDataTransfers --useCudaGraph --iterations=2000 --duration=0 --warmUp=300 >$L/t.txt 2>&1; r[v1tv0]+=" $(gpu $L/t.txt)"
  timeout 60 $K trtexec --loadEngine=/tmp/v1.kiln --noDataTransfers --useCudaGraph --iterations=2000 --duration=0 --warmUp=300 >$L/t.txt 2>&1; r[v1base]+=" $(gpu $L/t.txt)"
done
KILN_CUDA_PDL=0 timeout 60 $K trtexec --loadEngine=/tmp/v256.kiln --noDataTransfers --useCudaGraph --iterations=60 --duration=0 --warmUp=500 >$L/t.txt 2>&1; r[pdl0]+=" $(gpu $L/t.txt)"
kill $SMI 2>/dev/null
echo "vit b256 new (LN h8p + tview):${r[v256]} | old LN:${r[ln0]} | no tview:${r[tv0]} | both old (baseline):${r[base]} | new, 64 cands:${r[v256c]} | PDL off:${r[pdl0]}"
echo "vit b1   new:${r[v1]} | old LN:${r[v1ln0]} | no tview:${r[v1tv0]} | both old (baseline):${r[v1base]}"
KILN_CUDA_LN_PERSIST=1 KILN_CUDA_TVIEW=1 timeout 150 $K compare $M --providers cpu,cuda --precisions fp32,fp16 --iterations 5 >$L/cmp.txt 2>&1; echo "compare exit $?"; grep -E "^(cpu|cuda)" $L/cmp.txt
timeout 100 $K compare $M --providers cpu,cuda --precisions fp16 --iterations 3 >$L/cmp0.txt 2>&1; echo "compare (defaults) exit $?"; grep -E "^(cpu|cuda)" $L/cmp0.txt
python3 - $L/smi.csv <<'PY'
import sys
rows=[l.strip().split(', ') for l in open(sys.argv[1]) if l[:1].isdigit() or l.startswith('20')]
sm=[int(r[1].split()[0]) for r in rows if len(r)>5 and r[1][0].isdigit()]
pw=[float(r[3].split()[0]) for r in rows if len(r)>5 and r[3][0].isdigit()]
busy=[(s,p,r[5]) for s,p,r in zip(sm,pw,rows) if p>300]
import collections
print('smi samples %d; with power>300W: %d; sm clock min/median/max %s; power median %s; reasons %s' % (len(rows), len(busy),
  (min(b[0] for b in busy), sorted(b[0] for b in busy)[len(busy)//2], max(b[0] for b in busy)) if busy else '-',
  sorted(b[1] for b in busy)[len(busy)//2] if busy else '-', collections.Counter(b[2] for b in busy).most_common(4)))
PY
grep -E "cublasLt m " $L/b256.txt | awk '{print $3,$4,$5,$6,$7,$8}' | sort | uniq -c | head -12
for e in v256 v256c; do echo "$e chosen: $(grep -cE 'cublasLt m ' $L/$( [ $e = v256 ] && echo b256 || echo b256c ).txt) candidate timings"; done
agg() { python3 - "$1" <<'PY'
import csv, sys, io, collections
rows = [l for l in open(sys.argv[1]) if l.startswith('"')]
ks = collections.OrderedDict()
for r in csv.DictReader(io.StringIO(''.join(rows))):
    k = ks.setdefault(r['ID'], {'name': r['Kernel Name'].split('(')[0].replace('void ', '')[:60]})
    v = r['Metric Value'].replace(',', '')
    if r['Metric Name'] == 'gpu__time_duration.sum':
        v = float(v) * {'ns': 1e-3, 'nsecond': 1e-3, 'us': 1, 'usecond': 1, 'ms': 1e3, 'msecond': 1e3}.get(r.get('Metric Unit', 'ns'), 1e-3)
    k[r['Metric Name']] = v
seq = list(ks.values()); half = seq[len(seq) // 2:]
print('%.1f us in %d launches' % (sum(k['gpu__time_duration.sum'] for k in half), len(half)))
agg = collections.OrderedDict()
for k in half: agg.setdefault(k['name'], []).append(k['gpu__time_duration.sum'])
for n, v in sorted(agg.items(), key=lambda x: -sum(x[1]))[:24]: print('%-60s %3d x %6.1f = %7.1f us' % (n, len(v), sum(v) / len(v), sum(v)))
print('seq:', ' '.join('%s/%s:%.1f' % (k['name'][:40], k.get('launch__grid_size'), k['gpu__time_duration.sum']) for k in half[:16]))
PY
}
echo "--- ncu b256, warm, per kernel ($((SECONDS-T0)) s)"
timeout 150 ncu --cache-control none --clock-control none --metrics gpu__time_duration.sum,launch__grid_size --csv --launch-count 400 \
  $K trtexec --loadEngine=/tmp/v256.kiln --noCudaGraph --noDataTransfers --iterations=1 --duration=0 --warmUp=0 >$L/k256.csv 2>/dev/null
agg $L/k256.csv | tee $L/k256.txt | head -30
echo "--- ncu b1 ($((SECONDS-T0)) s)"
timeout 90 ncu --cache-control none --clock-control none --metrics gpu__time_duration.sum,launch__grid_size --csv --launch-count 400 \
  $K trtexec --loadEngine=/tmp/v1.kiln --noCudaGraph --noDataTransfers --iterations=1 --duration=0 --warmUp=0 >$L/k1.csv 2>/dev/null
agg $L/k1.csv | tee $L/k1.txt | head -16
timeout 90 $K profile /tmp/v256.kiln --batch 256 --iterations 5 --top 40 >$L/p256.txt 2>&1
timeout 60 $K profile /tmp/v1.kiln --batch 1 --iterations 50 --top 40 >$L/p1.txt 2>&1
head -70 $L/p256.txt | cut -c1-200
tar czf $OUT/logs.tgz -C $L . ; echo "done ($((SECONDS-T0)) s)"
