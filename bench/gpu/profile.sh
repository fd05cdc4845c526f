#!/usr/bin/env bash
# Build GPU engines and time them (GPU compute, --noDataTransfers) with the
# per-layer profile: bench/gpu/profile.sh KILN OUT "model:batch:prec ..."
set -uo pipefail
kiln=$1; out=$2; shift 2
for spec in $@; do
    IFS=: read -r m b p <<<"$spec"
    f=models/out/$m.onnx
    [ -f "$f" ] || { echo "$m: no model"; continue; }
    shape=$(python3 -c "import onnx,sys; m=onnx.load('$f', load_external_data=False); d=m.graph.input[0].type.tensor_type.shape.dim; print('x'.join(['$b'] + [str(x.dim_value) for x in d[1:]]))")
    e=/tmp/${m}_b${b}_$p.kiln
    flags=(); [ "$p" = fp16 ] && flags=(--fp16)
    t0=$(date +%s.%N)
    timeout 120 "$kiln" build "$f" -o "$e" --shapes input:$shape "${flags[@]}" >"$out/build_${m}_b${b}_$p.txt" 2>&1 || { echo "$spec: build failed"; tail -3 "$out/build_${m}_b${b}_$p.txt"; continue; }
    t1=$(date +%s.%N)
    timeout 60 "$kiln" trtexec --loadEngine="$e" --shapes=input:$shape --noDataTransfers --iterations=200 --duration=0 --warmUp=300 >"$out/trt_${m}_b${b}_$p.txt" 2>&1
    gpu=$(grep -oE "GPU Compute Time: .*median = [0-9.e+-]+ ms" "$out/trt_${m}_b${b}_$p.txt" | grep -oE "median = [0-9.e+-]+" | cut -d' ' -f3)
    timeout 60 "$kiln" trtexec --loadEngine="$e" --shapes=input:$shape --iterations=100 --duration=0 --warmUp=200 >"$out/trtx_${m}_b${b}_$p.txt" 2>&1
    h2d=$(grep -oE "H2D Latency: .*median = [0-9.e+-]+ ms" "$out/trtx_${m}_b${b}_$p.txt" | grep -oE "median = [0-9.e+-]+" | cut -d' ' -f3)
    lat=$(grep -oE "\] Latency: .*median = [0-9.e+-]+ ms" "$out/trtx_${m}_b${b}_$p.txt" | grep -oE "median = [0-9.e+-]+" | cut -d' ' -f3)
    printf '%-18s b%-4s %-5s build %6s s  gpu %8s ms  (with copies: latency %s ms, h2d %s ms)\n' "$m" "$b" "$p" \
        "$(python3 -c "print('%.1f' % ($t1 - $t0))")" "${gpu:-FAIL}" "${lat:-?}" "${h2d:-?}"
    [ -n "$gpu" ] || tail -5 "$out/trt_${m}_b${b}_$p.txt"
    timeout 60 "$kiln" bench "$e" --iterations 10 --duration 0 --warmup 0 >"$out/ready_${m}_b${b}_$p.txt" 2>&1
    ready=$(grep -oE "Engine load \+ context creation: median = [0-9.]+" "$out/ready_${m}_b${b}_$p.txt" | grep -oE "[0-9.]+$")
    first=$(grep -E "^First engine load" "$out/ready_${m}_b${b}_$p.txt")
    echo "$spec: engine load + context (weights uploaded) median ${ready:-?} ms; $first"
    if [ "${PROFILE:-1}" = 1 ]; then
        timeout 60 "$kiln" profile "$e" --batch "$b" --iterations 20 --top "${TOP:-25}" --export "$out/prof_${m}_b${b}_$p.json" >"$out/prof_${m}_b${b}_$p.txt" 2>&1
    fi
done
