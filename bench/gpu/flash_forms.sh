#!/usr/bin/env bash
# The flash kernel's forms (KILN_CUDA_FA=1..4) on the GPU machine in one call (about 5 minutes
# from a cold machine): build, bench_flash (each form against the default's output), test_cuda_dnn,
# SASS instruction counts and ncu of the kernel, ViT-B/16 FP16 A/B at batch 256 and 1, then
# YOLOv8n FP16 with channel slabs (KILN_CUDA_SLABS=0/1) if time is left (YOLO_BY seconds).
#   OUT=... bench/gpu/flash_forms.sh
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
OUT=${OUT:-$PWD/gpu-out}; mkdir -p "$OUT"; T0=$SECONDS
B=build-gpu
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
python3 models/export.py --models yolov8n,vit_b_16 >"$OUT/export.log" 2>&1 &
gen=(); command -v ninja >/dev/null && gen=(-G Ninja)
cmake -S . -B $B "${gen[@]}" -DCMAKE_BUILD_TYPE=Release -DKILN_CUDA=ON >"$OUT/cmake.log" 2>&1 || { tail -5 "$OUT/cmake.log"; exit 1; }
cmake --build $B -j 16 --target kiln test_cuda_dnn bench_flash >"$OUT/build.log" 2>&1 || { grep -E "error" "$OUT/build.log" | head; exit 1; }
echo "built ($((SECONDS-T0)) s)"
echo "--- bench_flash ($((SECONDS-T0)) s)"; $B/tests/bench_flash 100
timeout 60 $B/tests/test_cuda_dnn >"$OUT/dnn.log" 2>&1; echo "test_cuda_dnn: exit $?"; grep -E "^FAIL" "$OUT/dnn.log" | head; tail -1 "$OUT/dnn.log"
grep -E "h2exp" "$OUT/dnn.log" | head -4; grep -E "flash S197 D64 " "$OUT/dnn.log"
obj=$(find $B -name 'k_attention.cu.o' | head -1)
for fn in _Z7k_flashILi64ELi0ELi1EEv9fa_params _Z7k_flashILi64ELi4ELi1EEv9fa_params; do
  echo "$fn: $(cuobjdump -sass -fun $fn $obj 2>/dev/null | grep -oE 'MUFU\.[A-Z0-9.]+|F2FP\.[A-Z0-9_.]+|HADD2\.F32|HMMA\.[0-9A-Z.]+' | sort | uniq -c | tr '\n' ' ')"
done
wait; echo "exported ($((SECONDS-T0)) s)"
K=$B/kiln
gpu() { grep -oE 'GPU Compute Time: .*median = [0-9.e+-]+' "$1" | grep -oE '[0-9.e+-]+$'; }
echo "--- ViT ($((SECONDS-T0)) s)"
for bs in 256 1; do
  timeout 60 $K build models/out/vit_b_16.onnx -o /tmp/v$bs.kiln --fp16 --shapes input:${bs}x3x224x224 >"$OUT/vb$bs.txt" 2>&1 || { echo "vit build $bs failed"; continue; }
  for r in 1 2; do for fa in 1 4; do
    KILN_CUDA_FA=$fa timeout 60 $K trtexec --loadEngine=/tmp/v$bs.kiln --noDataTransfers --iterations=200 --duration=0 --warmUp=200 >"$OUT/t.txt" 2>&1
    echo "vit fp16 b$bs round $r tiling $fa: $(gpu "$OUT/t.txt") ms"; done; done
done
KILN_CUDA_FA=4 timeout 200 $K compare models/out/vit_b_16.onnx --providers cpu,cuda --precisions fp16 --shapes input:2x3x224x224 --iterations 1 >"$OUT/vacc4.txt" 2>&1; echo "vit acc b2 FA=4 (exit $?): $(grep -E '^cuda' "$OUT/vacc4.txt")"
echo "--- ncu ($((SECONDS-T0)) s)"
timeout 60 ncu --clock-control none -k regex:k_flash --launch-skip 5 --launch-count 1 --section SpeedOfLight --section ComputeWorkloadAnalysis --section WarpStateStats --section Occupancy --section InstructionStats --section LaunchStats \
  $B/tests/bench_flash 6 "b256" >"$OUT/ncu1.txt" 2>&1; echo "ncu rc=$?"
grep -E "k_flash|Throughput|Pipe|Issue Slots|Stall|Warp Cycles|Achieved Occupancy|Theoretical Occupancy|Registers|Executed Ipc|SM Busy|Block Limit" "$OUT/ncu1.txt" | head -60
echo "--- YOLO FP16 slabs ($((SECONDS-T0)) s)"
[ $((SECONDS-T0)) -gt ${YOLO_BY:-250} ] && { echo "skipped: time"; exit 0; }
for bs in 1 32; do
  for v in 0 1; do
    KILN_CUDA_SLABS=$v timeout 200 $K build models/out/yolov8n.onnx -o "/tmp/y${bs}_$v.kiln" --fp16 --shapes input:${bs}x3x640x640 >"$OUT/yb.txt" 2>&1 || { echo "build failed"; continue; }
  done
  for r in 1 2; do for v in 0 1; do
    KILN_CUDA_SLABS=$v timeout 60 $K trtexec --loadEngine=/tmp/y${bs}_$v.kiln --noDataTransfers --iterations=200 --duration=0 --warmUp=200 >"$OUT/t.txt" 2>&1
    echo "yolov8n fp16 b$bs round $r slabs $v: $(gpu "$OUT/t.txt") ms"
  done; done
done
echo "done ($((SECONDS-T0)) s)"
