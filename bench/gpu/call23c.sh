#!/usr/bin/env bash
# Twenty-third session, third GPU call: kiln against PyTorch 2.11 side by side at batch 1, FP16
# (bench/gpu/bench_gpu.py: eager and torch.compile reduce-overhead, channels_last), on this session's code.
#                                                                                OUT=... bench/gpu/call23c.sh
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
OUT=${OUT:-/tmp/o}; mkdir -p "$OUT"; T0=$SECONDS
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
python3 models/export.py --models efficientnet_b0,resnet50,vit_b_16 >"$OUT/export.log" 2>&1 &
B=build-gpu; gen=(); command -v ninja >/dev/null && gen=(-G Ninja)
cmake -S . -B $B "${gen[@]}" -DCMAKE_BUILD_TYPE=Release -DKILN_CUDA=ON >"$OUT/cmake.log" 2>&1 || { tail -5 "$OUT/cmake.log"; exit 1; }
cmake --build $B -j 16 --target kiln >"$OUT/build.log" 2>&1 || { grep error "$OUT/build.log" | head; exit 1; }
echo "built ($((SECONDS-T0)) s)"
wait
timeout 300 python3 bench/gpu/bench_gpu.py --kiln $B/kiln --out "$OUT" --models resnet50,efficientnet_b0,vit_b_16 \
  --batches 1 --fp32-batch 0 --budget 280 --iters 200 2>&1 | grep -vE '^\{' | tail -12
echo "done ($((SECONDS-T0)) s)"
