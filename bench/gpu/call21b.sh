#!/usr/bin/env bash
# Twenty-first session, second GPU call: every kiln kernel lets the next one launch once past its wait
# (griddepcontrol.launch_dependents), against a build without it (-DKILN_CUDA_PDL_TRIGGER=0), same engines,
# alternating; accuracy with it; ResNet-50 b1 with kiln's implicit GEMM timed everywhere (KILN_CUDA_IGEMM_ALL=1).
#                                                                                      OUT=... bench/gpu/call21b.sh
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
OUT=${OUT:-/tmp/o}; mkdir -p "$OUT"; T0=$SECONDS
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
python3 models/export.py --models efficientnet_b0,resnet50,vit_b_16,yolov8n >"$OUT/export.log" 2>&1 &
gen=(); command -v ninja >/dev/null && gen=(-G Ninja)
cmake -S . -B bg "${gen[@]}" -DCMAKE_BUILD_TYPE=Release -DKILN_CUDA=ON >"$OUT/cmake.log" 2>&1 || { tail -5 "$OUT/cmake.log"; exit 1; }
cmake -S . -B bgB "${gen[@]}" -DCMAKE_BUILD_TYPE=Release -DKILN_CUDA=ON -DCMAKE_CUDA_FLAGS=-DKILN_CUDA_PDL_TRIGGER=0 >"$OUT/cmakeB.log" 2>&1 || { tail -5 "$OUT/cmakeB.log"; exit 1; }
cmake --build bg -j 16 --target kiln test_cuda_kernels test_cuda_dnn >"$OUT/build.log" 2>&1 || { grep error "$OUT/build.log" | head; exit 1; }
echo "built A ($((SECONDS-T0)) s)"
(cmake --build bgB -j 12 --target kiln >"$OUT/buildB.log" 2>&1; echo "built B rc=$? ($((SECONDS-T0)) s)") &
BP=$!
timeout 150 bg/tests/test_cuda_kernels >"$OUT/kern.log" 2>&1; echo "test_cuda_kernels: exit $? $(tail -1 "$OUT/kern.log")"; grep -E "^FAIL" "$OUT/kern.log" | cut -c1-220 | head -8
timeout 120 bg/tests/test_cuda_dnn >"$OUT/dnn.log" 2>&1; echo "test_cuda_dnn: exit $? $(tail -1 "$OUT/dnn.log")"; grep -E "^FAIL" "$OUT/dnn.log" | cut -c1-300 | head -5
wait
A=bg/kiln; Bk=bgB/kiln
[ -x $Bk ] || { echo "no B build"; tail -5 "$OUT/buildB.log"; }
gpu() { grep -oE 'GPU Compute Time: .*median = [0-9.e+-]+' "$1" | grep -oE '[0-9.e+-]+$'; }
for m in efficientnet_b0 vit_b_16 resnet50; do
  timeout 120 $A compare models/out/$m.onnx --providers cpu,cuda --precisions fp16 --shapes input:2x3x$( [ $m = yolov8n ] && echo 640x640 || echo 224x224) --iterations 1 >"$OUT/acc.txt" 2>&1
  echo "$m acc b2 fp16 trigger (exit $?): $(grep -E '^cuda' "$OUT/acc.txt" | awk '{print $2, $5, $6, $7, $8}' | tr '\n' ';')"
done
ab() { # engine label rounds iters warm
  local e=$1 l=$2 n=$3 it=$4 w=$5; local ra="" rb=""
  for i in $(seq $n); do
    timeout 60 $A trtexec --loadEngine=$e --noDataTransfers --iterations=$it --duration=0 --warmUp=$w >"$OUT/t.txt" 2>&1; ra+=" $(gpu "$OUT/t.txt")"
    timeout 60 $Bk trtexec --loadEngine=$e --noDataTransfers --iterations=$it --duration=0 --warmUp=$w >"$OUT/t.txt" 2>&1; rb+=" $(gpu "$OUT/t.txt")"
  done
  echo "$l: trigger$ra | no trigger$rb"
}
for m in efficientnet_b0 resnet50 vit_b_16 yolov8n; do
  sh=1x3x224x224; [ $m = yolov8n ] && sh=1x3x640x640
  timeout 200 $A build models/out/$m.onnx -o /tmp/$m.1.kiln --fp16 --shapes input:$sh >"$OUT/b.txt" 2>&1 || echo "build failed: $(tail -2 "$OUT/b.txt")"
  ab /tmp/$m.1.kiln "$m fp16 b1" 3 1000 300
done
echo "($((SECONDS-T0)) s)"
for m in resnet50; do
  timeout 200 $A build models/out/$m.onnx -o /tmp/$m.256.kiln --fp16 --shapes input:256x3x224x224 >"$OUT/b.txt" 2>&1 || echo "build failed: $(tail -2 "$OUT/b.txt")"
  ab /tmp/$m.256.kiln "$m fp16 b256" 2 100 30
done
echo "($((SECONDS-T0)) s)"
KILN_CUDA_IGEMM_ALL=1 timeout 200 $A build models/out/resnet50.onnx -o /tmp/ri.kiln --fp16 --shapes input:1x3x224x224 >"$OUT/b.txt" 2>&1 || echo "build failed: $(tail -2 "$OUT/b.txt")"
r=""; for i in 1 2 3; do
  for e in /tmp/ri.kiln /tmp/resnet50.1.kiln; do timeout 60 $A trtexec --loadEngine=$e --noDataTransfers --iterations=1000 --duration=0 --warmUp=300 >"$OUT/t.txt" 2>&1; r+=" $(gpu "$OUT/t.txt")"; done
done
echo "resnet50 b1 (igemm everywhere, default) pairs:$r"
echo "done ($((SECONDS-T0)) s)"
