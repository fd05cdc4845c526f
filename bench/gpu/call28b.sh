#!/usr/bin/env bash
# Twenty-eighth session: check the two defaults turned on after call26a's A/B (the persistent float16
# LayerNorm, k_layernorm_h8p, and the patch-embedding Transpose view), and the IR version 14 fix.
# 1. test_cuda_kernels with the defaults and with KILN_CUDA_LN_PERSIST=0 (both LayerNorm kernels);
# 2. the tview test model (onnx 1.23 writes IR version 14) against the CPU, view on (default) and off;
# 3. ViT-B/16 kiln compare FP32 and FP16 against the CPU (defaults);
# 4. GPU compute medians (--noDataTransfers, CUDA graphs), three alternating rounds: ViT-B/16 b1 and b256
#    with the defaults against both turned off; ResNet-50, EfficientNet-B0 and YOLOv8n FP16 b1 as they stand.
#   KILN=build-gpu/wt/kiln T=build-gpu/wt OUT=... bench/gpu/call28b.sh
# SHORT=1 (bench/gpu/call28c.sh): ViT-B/16 batch 1 only, for a short lease.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
OUT=${OUT:-/tmp/o}; mkdir -p "$OUT"; L=/tmp/logs; mkdir -p $L; T0=$SECONDS; S=$OUT/summary.txt
export LD_LIBRARY_PATH=$PWD/.gpu/libs:${LD_LIBRARY_PATH:-}
say() { echo "$*" | tee -a $S; }
say "$(nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,power.limit --format=csv,noheader)"
SHORT=${SHORT:-0}; M=vit_b_16; [ "$SHORT" = 1 ] || M=vit_b_16,resnet50,efficientnet_b0,yolov8n
python3 models/export.py --models $M >$L/export.log 2>&1 &
K=${KILN:-build-gpu/wt/kiln}; T=${T:-build-gpu/wt}
timeout 150 $T/test_cuda_kernels >$L/k1.log 2>&1; say "test_cuda_kernels (defaults): exit $? $(tail -1 $L/k1.log)"
grep -E "^FAIL" $L/k1.log | cut -c1-200 | head -5 | tee -a $S
KILN_CUDA_LN_PERSIST=0 timeout 150 $T/test_cuda_kernels >$L/k0.log 2>&1
say "test_cuda_kernels (KILN_CUDA_LN_PERSIST=0): exit $? $(tail -1 $L/k0.log)"
python3 bench/gpu/tview_model.py /tmp/tview.onnx >$L/tvm.txt 2>&1 || say "tview model: $(tail -2 $L/tvm.txt)"
say "tview model IR version: $(python3 -c 'import onnx; print(onnx.load("/tmp/tview.onnx").ir_version)' 2>&1)"
for e in 0 1; do
  KILN_CUDA_TVIEW=$e timeout 60 $K compare /tmp/tview.onnx --providers cpu,cuda --precisions fp32,fp16 --shapes input:3x3x28x28 --iterations 3 >$L/tvc$e.txt 2>&1
  say "tview model, KILN_CUDA_TVIEW=$e: exit $? $(grep -E '^(cpu|cuda)' $L/tvc$e.txt | tr -s ' ' | tr '\n' ';' || tail -2 $L/tvc$e.txt)"
done
wait; say "exported ($((SECONDS-T0)) s): $(tail -1 $L/export.log)"
timeout 200 $K compare models/out/vit_b_16.onnx --providers cpu,cuda --precisions fp32,fp16 --iterations 3 >$L/cmp.txt 2>&1
say "vit compare (defaults) exit $?: $(grep -E '^cuda' $L/cmp.txt | tr -s ' ' | tr '\n' ';')"
gpu() { grep -oE 'GPU Compute Time: .*median = [0-9.e+-]+' "$1" | grep -oE '[0-9.e+-]+$'; }
b() { timeout 200 $K build models/out/$1.onnx -o /tmp/$2.kiln --fp16 --shapes input:$3x3x$4x$4 >$L/b$2.txt 2>&1 || say "$2 build failed: $(tail -2 $L/b$2.txt)"; }
b vit_b_16 v1 1 224
[ "$SHORT" = 1 ] || { b vit_b_16 v256 256 224; b resnet50 r1 1 224; b efficientnet_b0 e1 1 224; b yolov8n y1 1 640; }
say "built engines ($((SECONDS-T0)) s)"
declare -A r=()
t() { # name engine iters warmup env...
  local n=$1 e=$2 it=$3 wu=$4; shift 4
  env "$@" timeout 60 $K trtexec --loadEngine=$e --noDataTransfers --useCudaGraph --iterations=$it --duration=0 --warmUp=$wu >$L/t.txt 2>&1; r[$n]+=" $(gpu $L/t.txt)"
}
for i in 1 2 3; do
  t v1 /tmp/v1.kiln 2000 300 KILN_X=0
  t v1off /tmp/v1.kiln 2000 300 KILN_CUDA_LN_PERSIST=0 KILN_CUDA_TVIEW=0
  [ "$SHORT" = 1 ] && continue
  t v256 /tmp/v256.kiln 60 500 KILN_X=0
  t v256off /tmp/v256.kiln 60 500 KILN_CUDA_LN_PERSIST=0 KILN_CUDA_TVIEW=0
  t r1 /tmp/r1.kiln 2000 300 KILN_X=0
  t e1 /tmp/e1.kiln 2000 300 KILN_X=0
  t y1 /tmp/y1.kiln 2000 300 KILN_X=0
done
say "vit b1 ms:   defaults${r[v1]} | both off${r[v1off]}"
if [ "$SHORT" != 1 ]; then
  say "vit b256 ms: defaults${r[v256]} | both off${r[v256off]}"
  say "resnet50 b1 fp16 ms:${r[r1]}"
  say "efficientnet_b0 b1 fp16 ms:${r[e1]}"
  say "yolov8n b1 fp16 ms:${r[y1]}"
fi
say "done ($((SECONDS-T0)) s)"
