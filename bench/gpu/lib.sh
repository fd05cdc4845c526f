# Shared pieces of the GPU call scripts (bench/gpu/call*.sh from the thirtieth session on), sourced:
#   . "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# Sets the working directory to the repository root, OUT (returned files), S (the summary in OUT), L (logs, not
# returned unless tarred), K (the kiln binary) and T (the test binaries), from build-gpu/wt: kiln,
# test_cuda_kernels and test_cuda_dnn of a CUDA build made on the CPU machine and carried over with .gpu/libs
# (libjpeg, libpng for the kiln binary):
#   run(command="OUT=$OUT bash bench/gpu/callXX.sh 2>&1 | tail -90", carry=["build-gpu/wt", ".gpu/libs"])
# The earlier scripts stay as they ran.
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
OUT=${OUT:-/tmp/o}; mkdir -p "$OUT"; T0=$SECONDS; S=$OUT/summary.txt; L=/tmp/logs; mkdir -p $L
export LD_LIBRARY_PATH=$PWD/.gpu/libs:${LD_LIBRARY_PATH:-}
K=build-gpu/wt/kiln; T=build-gpu/wt

# say TEXT: print and append to the summary
say() { echo "$*" | tee -a $S; }
# gpu FILE: the GPU compute median of a kiln trtexec report
gpu() { grep -oE 'GPU Compute Time: .*median = [0-9.e+-]+' "$1" | grep -oE '[0-9.e+-]+$'; }
# tests [SECONDS]: test_cuda_kernels and test_cuda_dnn, their last lines and first failures into the summary
tests() {
  timeout ${1:-200} $T/test_cuda_kernels >$L/k.log 2>&1; say "test_cuda_kernels: exit $? $(tail -1 $L/k.log)"
  grep -E "^FAIL" $L/k.log | cut -c1-200 | head -6 | tee -a $S
  timeout ${1:-240} $T/test_cuda_dnn >$L/d.log 2>&1; say "test_cuda_dnn: exit $? $(tail -1 $L/d.log)"
  grep -E "^FAIL" $L/d.log | cut -c1-200 | head -6 | tee -a $S
}
# compare MODEL SHAPE: kiln compare cpu vs cuda, fp32 and fp16, one summary line
compare() {
  timeout 150 $K compare models/out/$1.onnx --providers cpu,cuda --precisions fp32,fp16 --shapes input:$2 --iterations 1 >$L/cmp_$1.txt 2>&1
  say "$1 $2 compare exit $?: $(grep -E '^cuda' $L/cmp_$1.txt | tr -s ' ' | tr '\n' ';')"
}
# kb ENGINE LABEL [VAR=VALUE]: ncu's per-kernel breakdown of one ungraphed inference (the second half of the
# launches: the first run warms up), summed by kernel, into the summary
kb() {
  env ${3:-X=0} timeout 200 ncu --cache-control none --clock-control none --metrics gpu__time_duration.sum --csv --launch-count 3000 \
    $K trtexec --loadEngine=$1 --noCudaGraph --noDataTransfers --iterations=1 --duration=0 --warmUp=0 >"$L/kb_$2.csv" 2>/dev/null
  python3 - "$L/kb_$2.csv" "$2" <<'PY' | tee -a $S
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
say "$(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader)"
