#!/usr/bin/env bash
# Thirtieth session: the tap-major depthwise kernels in 2-D tiles of output pixels for large layers
# (KILN_CUDA_DW_TILE=65536: layers of at least 65536 (pixel, 8-channel) items; off by default, the old row slices). test_cuda_kernels and
# test_cuda_dnn (every pooled case in slices and in tiles; every depthwise conv case forced in tiles), kiln compare
# at batch 8, the debug log of the depthwise candidates at batch 256, and GPU compute medians of EfficientNet-B0
# and MobileNet-V2 FP16 at b1/b256, tiles against slices, three alternating rounds.
#   OUT=... bench/gpu/call30a.sh   (build-gpu/wt: kiln, test_cuda_kernels, test_cuda_dnn from a CUDA build)
set -uo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
OFF=; ON=65536
python3 models/export.py --models efficientnet_b0,mobilenet_v2 >$L/export.log 2>&1 &
tests
grep -E "dw pool tiles" $L/k.log | head -3 | cut -c1-160 | tee -a $S
wait; say "exported ($((SECONDS-T0)) s)"
compare efficientnet_b0 8x3x224x224; compare mobilenet_v2 8x3x224x224
# the kernels a profile names (kiln_context_layer_kernel), b8
timeout 120 $K profile models/out/efficientnet_b0.onnx --fp16 --shapes input:8x3x224x224 --top 25 >$L/prof_e8.txt 2>&1 || say "profile failed: $(tail -2 $L/prof_e8.txt)"
head -30 $L/prof_e8.txt | cut -c1-200 > $OUT/prof_e8.txt
b() { timeout 150 env KILN_LOG=debug $3 $K build models/out/$1.onnx -o /tmp/$2.kiln --fp16 --shapes input:$4 --verbose >$L/b_$2.txt 2>&1 || say "$2 build failed: $(tail -2 $L/b_$2.txt)"; }
b efficientnet_b0 e256 KILN_CUDA_DW_TILE=$ON 256x3x224x224; b efficientnet_b0 e256s KILN_CUDA_DW_TILE=$OFF 256x3x224x224
b mobilenet_v2 m256 KILN_CUDA_DW_TILE=$ON 256x3x224x224; b mobilenet_v2 m256s KILN_CUDA_DW_TILE=$OFF 256x3x224x224
b efficientnet_b0 e1 KILN_CUDA_DW_TILE=$ON 1x3x224x224; b mobilenet_v2 m1 KILN_CUDA_DW_TILE=$ON 1x3x224x224
say "built ($((SECONDS-T0)) s)"
for n in e256 e256s m256; do # the depthwise layers' timed taps form and the choice (code 0..: cuDNN, 1000+: kiln's)
  grep -E ' g ([2-9]|[0-9]{2,}) act' $L/b_$n.txt | grep -E 'taps|chose' | sed -E 's/.*conv f16 n [0-9]+ //; s/ act [0-9]+//' > $OUT/${n}_dw.txt
  say "$n depthwise: $(paste -sd'|' $OUT/${n}_dw.txt | sed -E 's/kiln depthwise \(taps\) 0/taps/g; s/ g [0-9]+//g')"
done
declare -A r=()
t() { local n=$1 it=$2 wu=$3 e=$4
  timeout 60 env $e $K trtexec --loadEngine=/tmp/$n.kiln --noDataTransfers --useCudaGraph --iterations=$it --duration=0 --warmUp=$wu >$L/t.txt 2>&1; r[$n]+=" $(gpu $L/t.txt)"; }
for i in 1 2 3; do
  t e256 50 150 KILN_CUDA_DW_TILE=$ON; t e256s 50 150 KILN_CUDA_DW_TILE=$OFF
  t m256 50 150 KILN_CUDA_DW_TILE=$ON; t m256s 50 150 KILN_CUDA_DW_TILE=$OFF
  t e1 2000 300 KILN_CUDA_DW_TILE=$ON; t m1 2000 300 KILN_CUDA_DW_TILE=$ON
done
for n in e256 e256s m256 m256s e1 m1; do say "$n ms:${r[$n]}"; done
kb /tmp/e256.kiln effnet_b256_tiles KILN_CUDA_DW_TILE=$ON
kb /tmp/e256s.kiln effnet_b256_slices KILN_CUDA_DW_TILE=$OFF
tar -C $L -czf $OUT/logs.tgz .
say "done ($((SECONDS-T0)) s)"
