#!/usr/bin/env bash
# Twenty-fourth session, first GPU call: kiln against PyTorch 2.11 side by side at batch 1, FP16:
# eager, torch.compile(mode="reduce-overhead") and, new, mode="max-autotune" (ResNet-50), all channels_last.
# KILN=path uses a kiln built elsewhere (same CUDA 13.0; its libjpeg/libpng in KILN_LIBS); else it builds.
#                                                                                OUT=... bench/gpu/call24a.sh
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
OUT=${OUT:-/tmp/o}; mkdir -p "$OUT"; T0=$SECONDS
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
python3 models/export.py --models efficientnet_b0,resnet50,vit_b_16,yolov8n >"$OUT/export.log" 2>&1 &
K=${KILN:-}
[ -n "${KILN_LIBS:-}" ] && export LD_LIBRARY_PATH="$(realpath "$KILN_LIBS"):${LD_LIBRARY_PATH:-}"
if [ -n "$K" ] && "$K" sysinfo >"$OUT/providers.txt" 2>&1 && grep -qE "^ *cuda +usable" "$OUT/providers.txt"; then
  echo "carried kiln: $(grep -E "^ *cuda" "$OUT/providers.txt")"
else
  [ -n "$K" ] && { echo "carried kiln does not run:"; tail -3 "$OUT/providers.txt"; }
  B=build-gpu; gen=(); command -v ninja >/dev/null && gen=(-G Ninja)
  cmake -S . -B $B "${gen[@]}" -DCMAKE_BUILD_TYPE=Release -DKILN_CUDA=ON >"$OUT/cmake.log" 2>&1 || { tail -5 "$OUT/cmake.log"; exit 1; }
  cmake --build $B -j 16 --target kiln >"$OUT/build.log" 2>&1 || { grep error "$OUT/build.log" | head; exit 1; }
  K=$B/kiln; echo "built ($((SECONDS-T0)) s)"
fi
wait; echo "exported ($((SECONDS-T0)) s)"
# ResNet-50 first with all three peers (max-autotune is new), then the others with what is left
timeout 300 python3 bench/gpu/bench_gpu.py --kiln "$K" --out "$OUT/a" --models resnet50 \
  --batches 1 --fp32-batch 0 --autotune resnet50 --iters 200 2>&1 | grep -E '^\{|^resnet50|^GPU' | tail -4
echo "resnet50 done ($((SECONDS-T0)) s)"
left=$((${LIMIT:-470} - SECONDS + T0))
[ $left -gt 60 ] && timeout $left python3 bench/gpu/bench_gpu.py --kiln "$K" --out "$OUT/b" \
  --models efficientnet_b0,vit_b_16,yolov8n --batches 1 --fp32-batch 0 --budget $((left - 60)) --iters 200 2>&1 | grep -vE '^\{' | tail -5
echo "done ($((SECONDS-T0)) s)"
