#!/usr/bin/env bash
# The eighteenth session's GPU-side CLI changes on the GPU machine in one call
# (about 5 minutes from a cold machine): build, the CUDA unit tests, then
# - --providers cuda,cpu on a model's session (bench names cuda),
# - --bf16 alone keeps the cuda layers FP32 (engine precision, warning),
# - --workspace 1 MiB vs the default on ResNet-50 FP16 (time and error),
# - trtexec's report of a GPU engine: the CUDA Graph line, the --avgRuns
#   split, --exportTimes with H2D/compute/D2H,
# - the batch-1 FP16 figures of the CNN targets (GPU compute medians),
# - per-kernel times (ncu, one ungraphed inference) of EfficientNet-B0 b1
#   and ViT-B/16 b256 FP16, summed by kernel name (if KB_BY seconds allow).
#   OUT=... bench/gpu/cli_checks.sh
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
OUT=${OUT:-$PWD/gpu-out}; mkdir -p "$OUT"; T0=$SECONDS
B=build-gpu
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
python3 models/export.py --models resnet18,resnet50,efficientnet_b0,mobilenet_v2,vit_b_16 >"$OUT/export.log" 2>&1 &
gen=(); command -v ninja >/dev/null && gen=(-G Ninja)
cmake -S . -B $B "${gen[@]}" -DCMAKE_BUILD_TYPE=Release -DKILN_CUDA=ON >"$OUT/cmake.log" 2>&1 || { tail -5 "$OUT/cmake.log"; exit 1; }
cmake --build $B -j 16 --target kiln test_cuda_kernels test_cuda_dnn >"$OUT/build.log" 2>&1 || { grep -E "error" "$OUT/build.log" | head; exit 1; }
echo "built ($((SECONDS-T0)) s)"
timeout 150 $B/tests/test_cuda_kernels >"$OUT/kern.log" 2>&1; echo "test_cuda_kernels: exit $? $(tail -1 "$OUT/kern.log")"
timeout 90 $B/tests/test_cuda_dnn >"$OUT/dnn.log" 2>&1; echo "test_cuda_dnn: exit $? $(tail -1 "$OUT/dnn.log")"
wait; echo "exported ($((SECONDS-T0)) s)"
K=$B/kiln
gpu() { grep -oE 'GPU Compute Time: .*median = [0-9.e+-]+' "$1" | grep -oE '[0-9.e+-]+$'; }
echo "--- providers ($((SECONDS-T0)) s)"
timeout 120 $K bench models/out/resnet18.onnx --providers cuda,cpu --iterations 50 --warmup 200 >"$OUT/pb.txt" 2>&1; echo "bench --providers cuda,cpu: exit $?"
grep -E "^Provider|GPU Compute|warning" "$OUT/pb.txt" | head -4
echo "--- bf16 ($((SECONDS-T0)) s)"
timeout 120 $K build models/out/resnet18.onnx -o /tmp/bf.kiln --bf16 --shapes input:1x3x224x224 >"$OUT/bf.txt" 2>&1; echo "build --bf16: exit $?"
grep -iE "bf16|precision" "$OUT/bf.txt" | head -4
timeout 120 $K compare models/out/resnet18.onnx --engine /tmp/bf.kiln --iterations 3 >"$OUT/bfc.txt" 2>&1; grep -E "\(engine\)" "$OUT/bfc.txt" | head -2
echo "--- workspace ($((SECONDS-T0)) s)"
for ws in default 1; do
  a=(); [ $ws != default ] && a=(--workspace $ws)
  timeout 200 $K build models/out/resnet50.onnx -o /tmp/r50_$ws.kiln --fp16 --shapes input:1x3x224x224 "${a[@]}" >"$OUT/w.txt" 2>&1 || { echo "build ws=$ws failed: $(tail -2 "$OUT/w.txt")"; continue; }
  for r in 1 2; do
    timeout 60 $K trtexec --loadEngine=/tmp/r50_$ws.kiln --noDataTransfers --iterations=300 --duration=0 --warmUp=300 >"$OUT/t.txt" 2>&1
    echo "resnet50 fp16 b1 workspace $ws round $r: $(gpu "$OUT/t.txt") ms"
  done
  timeout 120 $K compare models/out/resnet50.onnx --engine /tmp/r50_$ws.kiln --iterations 3 >"$OUT/wc.txt" 2>&1; echo "  $(grep -F '(engine)' "$OUT/wc.txt" | head -1)"
done
echo "--- trtexec report ($((SECONDS-T0)) s)"
timeout 60 $K trtexec --loadEngine=/tmp/r50_default.kiln --iterations=50 --duration=0 --warmUp=100 --avgRuns=10 --exportTimes="$OUT/times.json" >"$OUT/tr.txt" 2>&1; echo "trtexec: exit $?"
grep -E "CUDA Graph|Average on 10 runs" "$OUT/tr.txt" | head -3; grep -E "H2D Latency|GPU Compute Time|D2H Latency" "$OUT/tr.txt"
python3 -c "
import json; t=json.load(open('$OUT/times.json')); x=t[len(t)//2]
print('exportTimes', len(t), 'h2dMs %.4f computeMs %.4f d2hMs %.4f latencyMs %.4f' % (x['h2dMs'], x['computeMs'], x['d2hMs'], x['latencyMs']), 'ordered', x['startH2dMs'] <= x['endH2dMs'] <= x['endComputeMs'] <= x['endD2hMs'])"
echo "--- batch 1 FP16 ($((SECONDS-T0)) s)"
for m in efficientnet_b0 mobilenet_v2; do
  timeout 200 $K build models/out/$m.onnx -o /tmp/$m.kiln --fp16 --shapes input:1x3x224x224 >"$OUT/b.txt" 2>&1 || { echo "$m build failed"; continue; }
  timeout 60 $K trtexec --loadEngine=/tmp/$m.kiln --noDataTransfers --iterations=300 --duration=0 --warmUp=300 >"$OUT/t.txt" 2>&1
  echo "$m fp16 b1: $(gpu "$OUT/t.txt") ms"
done
echo "--- kernel breakdown ($((SECONDS-T0)) s)"
kb() { # engine label: ncu over 2 ungraphed inferences (warm-up + 1), times summed by kernel name
  timeout 150 ncu --clock-control none --metrics gpu__time_duration.sum --csv --launch-count 3000 \
    $K trtexec --loadEngine=$1 --noCudaGraph --noDataTransfers --iterations=1 --duration=0 --warmUp=0 >"$OUT/kb_$2.csv" 2>/dev/null
  python3 - "$OUT/kb_$2.csv" "$2" <<'PY'
import csv, sys, collections, io
rows = [l for l in open(sys.argv[1]) if l.startswith('"')]
t = collections.defaultdict(float); n = collections.Counter()
for r in csv.DictReader(io.StringIO(''.join(rows))):
    if r.get('Metric Name') != 'gpu__time_duration.sum': continue
    v = float(r['Metric Value'].replace(',', '')); u = r.get('Metric Unit', 'ns')
    v *= {'ns': 1e-3, 'us': 1, 'usecond': 1, 'nsecond': 1e-3, 'ms': 1e3, 'msecond': 1e3}.get(u, 1e-3)
    k = r['Kernel Name'].split('(')[0][:60]; t[k] += v / 2; n[k] += 1
tot = sum(t.values())
print('%s: %.1f us of kernels per inference, %d launches' % (sys.argv[2], tot, sum(n.values()) // 2))
for k, v in sorted(t.items(), key=lambda x: -x[1])[:14]: print('  %8.1f us %4d  %s' % (v, n[k] // 2, k))
PY
}
if [ $((SECONDS-T0)) -lt ${KB_BY:-400} ]; then
  kb /tmp/efficientnet_b0.kiln effnet_b1
  timeout 200 $K build models/out/vit_b_16.onnx -o /tmp/v256.kiln --fp16 --shapes input:256x3x224x224 >"$OUT/vb.txt" 2>&1 && kb /tmp/v256.kiln vit_b256
else echo "skipped: time"; fi
echo "done ($((SECONDS-T0)) s)"
