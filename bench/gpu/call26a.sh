#!/usr/bin/env bash
# Twenty-sixth session: the A/B of call25a.sh without its ncu and profile sections, whose output pushed
# the medians out of the returned tail (the summary lines also go to $OUT/summary.txt).
# ViT-B/16 FP16 GPU compute medians (--noDataTransfers, CUDA graphs), b256 and b1, three alternating rounds of:
# both opt-ins (KILN_CUDA_LN_PERSIST=1 KILN_CUDA_TVIEW=1), LN only, tview only, neither; then the tview test model
# against the CPU with and without KILN_CUDA_TVIEW=1, and ResNet-50 b1 FP16 (the 0.30 ms target) as a reference point.
#   KILN=build-gpu/wt/kiln  OUT=... bench/gpu/call26a.sh
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
OUT=${OUT:-/tmp/o}; mkdir -p "$OUT"; L=/tmp/logs; mkdir -p $L; T0=$SECONDS; S=$OUT/summary.txt
export LD_LIBRARY_PATH=$PWD/.gpu/libs:${LD_LIBRARY_PATH:-}
say() { echo "$*" | tee -a $S; }
say "$(nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,power.limit --format=csv,noheader)"
python3 models/export.py --models vit_b_16,resnet50 >$L/export.log 2>&1 &
K=${KILN:-build-gpu/wt/kiln}
python3 bench/gpu/tview_model.py /tmp/tview.onnx >$L/tvm.txt 2>&1 || say "tview model: $(tail -2 $L/tvm.txt)"
for e in 0 1; do
  KILN_CUDA_TVIEW=$e timeout 60 $K compare /tmp/tview.onnx --providers cpu,cuda --precisions fp32,fp16 --shapes input:3x3x28x28 --iterations 3 >$L/tvc$e.txt 2>&1
  say "tview model, KILN_CUDA_TVIEW=$e: exit $? $(grep -E '^(cpu|cuda)' $L/tvc$e.txt | tr -s ' ' | tr '\n' ';' || tail -2 $L/tvc$e.txt)"
done
wait; say "exported ($((SECONDS-T0)) s): $(tail -1 $L/export.log)"
M=models/out/vit_b_16.onnx
gpu() { grep -oE 'GPU Compute Time: .*median = [0-9.e+-]+' "$1" | grep -oE '[0-9.e+-]+$'; }
timeout 200 $K build $M -o /tmp/v256.kiln --fp16 --shapes input:256x3x224x224 >$L/b256.txt 2>&1 || say "b256 build failed: $(tail -2 $L/b256.txt)"
timeout 100 $K build $M -o /tmp/v1.kiln --fp16 --shapes input:1x3x224x224 >$L/b1.txt 2>&1 || say "b1 build failed"
timeout 100 $K build models/out/resnet50.onnx -o /tmp/r1.kiln --fp16 --shapes input:1x3x224x224 >$L/r1.txt 2>&1 || say "r1 build failed"
say "built engines ($((SECONDS-T0)) s)"
declare -A r=()
t() { # name engine iters warmup env...
  local n=$1 e=$2 it=$3 wu=$4; shift 4
  env "$@" timeout 60 $K trtexec --loadEngine=$e --noDataTransfers --useCudaGraph --iterations=$it --duration=0 --warmUp=$wu >$L/t.txt 2>&1; r[$n]+=" $(gpu $L/t.txt)"
}
for i in 1 2 3; do
  t both /tmp/v256.kiln 60 500 KILN_CUDA_LN_PERSIST=1 KILN_CUDA_TVIEW=1
  t ln /tmp/v256.kiln 60 500 KILN_CUDA_LN_PERSIST=1
  t tv /tmp/v256.kiln 60 500 KILN_CUDA_TVIEW=1
  t base /tmp/v256.kiln 60 500 KILN_X=0
  t b1both /tmp/v1.kiln 2000 300 KILN_CUDA_LN_PERSIST=1 KILN_CUDA_TVIEW=1
  t b1ln /tmp/v1.kiln 2000 300 KILN_CUDA_LN_PERSIST=1
  t b1tv /tmp/v1.kiln 2000 300 KILN_CUDA_TVIEW=1
  t b1base /tmp/v1.kiln 2000 300 KILN_X=0
  t r1 /tmp/r1.kiln 2000 300 KILN_X=0
done
say "vit b256 ms: both${r[both]} | LN only${r[ln]} | tview only${r[tv]} | neither (baseline)${r[base]}"
say "vit b1 ms:   both${r[b1both]} | LN only${r[b1ln]} | tview only${r[b1tv]} | neither (baseline)${r[b1base]}"
say "resnet50 b1 fp16 ms:${r[r1]}"
KILN_CUDA_LN_PERSIST=1 KILN_CUDA_TVIEW=1 timeout 150 $K compare $M --providers cpu,cuda --precisions fp16 --iterations 3 >$L/cmp.txt 2>&1
say "vit compare (both on) exit $?: $(grep -E '^cuda' $L/cmp.txt | tr -s ' ')"
say "done ($((SECONDS-T0)) s)"
