#!/usr/bin/env bash
# Branch gpu-next, for the first GPU call of a session: check and time what
# this branch adds over main, written in a session that had no GPU left
# (none of it has run on a GPU yet):
#   1. kiln's implicit GEMM with K split 2 or 4 ways over blocks (tactics
#      10-13 of KC_IGEMM_CFGS; KILN_CUDA_NO_IGEMM_SPLIT=1 leaves them out of
#      the timing): test_cuda_dnn forces each on every convolution case, twice;
#   2. KILN_CUDA_PDL_AFTER_LIB=0: no early launch right after a cuBLASLt or
#      cuDNN kernel (ResNet-50 / ViT-B/16 were ~1% slower with it everywhere);
#   3. the SE MLP's loads unrolled (kc_se_pool_mlp; no switch: compare
#      EfficientNet-B0 b1 with main's 0.455 ms).
#   OUT=... bench/gpu/ab_gpu_next.sh      (about 5 minutes on an H200)
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
OUT=${OUT:-$PWD/gpu-out}; mkdir -p "$OUT"
B=build-gpu
R=$(mktemp -d /tmp/ab.XXXX)
export MODELS=efficientnet_b0,yolov8n,resnet50,vit_b_16,mobilenet_v2
OUT=$R/gc scripts/gpu-check.sh build unit models 2>&1 | grep -E "PASS|FAIL|exit|built|error|passed|failed" | head -40
shape() { python3 -c "import onnx; m=onnx.load('models/out/$1.onnx', load_external_data=False); d=m.graph.input[0].type.tensor_type.shape.dim; print('x'.join(['$2'] + [str(x.dim_value) for x in d[1:]]))"; }
gpu() { grep -oE "GPU Compute Time: .*median = [0-9.e+-]+ ms" "$1" | grep -oE "median = [0-9.e+-]+" | cut -d' ' -f3; }
for spec in yolov8n:1 efficientnet_b0:1 yolov8n:32; do
  IFS=: read -r m b <<<"$spec"; s=$(shape $m $b)
  timeout 200 $B/kiln build models/out/$m.onnx -o /tmp/${m}_${b}_split.kiln --shapes input:$s --fp16 > $R/b1.txt 2>&1 || echo "$spec build failed"
  KILN_CUDA_NO_IGEMM_SPLIT=1 timeout 200 $B/kiln build models/out/$m.onnx -o /tmp/${m}_${b}_nosplit.kiln --shapes input:$s --fp16 > $R/b2.txt 2>&1 || echo "$spec build failed"
  for round in 1 2; do line="$spec r$round:"; for v in nosplit split; do
    timeout 60 $B/kiln trtexec --loadEngine=/tmp/${m}_${b}_$v.kiln --noDataTransfers --iterations=300 --duration=0 --warmUp=300 > $R/t.txt 2>&1 || tail -3 $R/t.txt
    line="$line  $v $(gpu $R/t.txt)"; done; echo "$line"; done
done
for spec in resnet50:1 vit_b_16:1 efficientnet_b0:1 yolov8n:1 mobilenet_v2:1; do
  IFS=: read -r m b <<<"$spec"; s=$(shape $m $b); e=/tmp/${m}_${b}.kiln
  timeout 200 $B/kiln build models/out/$m.onnx -o $e --shapes input:$s --fp16 > $R/b.txt 2>&1 || echo "$spec build failed"
  for round in 1 2 3; do line="$spec r$round:"; for v in 1 0; do
    KILN_CUDA_PDL_AFTER_LIB=$v timeout 60 $B/kiln trtexec --loadEngine=$e --noDataTransfers --iterations=300 --duration=0 --warmUp=300 > $R/t.txt 2>&1 || tail -3 $R/t.txt
    line="$line  pdl-after-lib=$v $(gpu $R/t.txt)"; done; echo "$line"; done
done
export MODELS=efficientnet_b0,yolov8n
OUT=$R/gz scripts/gpu-check.sh zoo 2>&1 | grep -E "^(---|cuda)" | head -10
tar czf "$OUT/ab.tgz" -C "$R" . && rm -rf "$R"
