#!/usr/bin/env bash
# torch 2.x nn.MultiheadAttention, end to end:
#   bash tests/cli/torch2_mha.sh /path/to/kiln
# tests/data/torch2_vit/tiny_vit.onnx is torchvision's VisionTransformer
# (image 32, patch 8, 2 layers, hidden 64, 4 heads, mlp 128, 10 classes,
# dynamic batch; torch.manual_seed(0), then the zero-initialized head
# re-drawn from torch.Generator seed 1 (x 0.3 weight, x 0.1 bias) so the
# logits are not all 0) exported by torch 2.11 (torch.onnx.export, opset
# 17, dynamo=False) as bench/gpu/export_tiny.py does; ref/ and ref_b3/ hold
# torch's input_0.npy / output_0.npy for batch 2 and 3.  For a dynamic
# build and a batch-8 build, kiln info --layers must show each encoder
# layer's attention as FusedMatMul (in-projection) -> Slice x3 ->
# kiln.Attention -> Reshape -> Gemm -> Reshape (the last layer, read only at
# its class token after sink_gather_attention: FusedMatMul (key and value
# columns) -> Slice x2, FusedMatMul (the class token's query) ->
# kiln.Attention -> Gemm, its Gathers and Reshape named after the class
# token's Gather), with no Transpose, Gather,
# Squeeze, Unsqueeze, Softmax or MatMul left in the encoder layers; then
# tests/models/zoo_check runs the model (public API, default build) on both
# reference sets: relative L2 <= 1e-5, max abs <= 1e-4 x max|ref|, same
# top-5 classes.
set -euo pipefail

kiln=${1:?usage: torch2_mha.sh /path/to/kiln}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
src=${KILN_SOURCE_DIR:-$(cd "$here/../.." && pwd)}
build=${KILN_BUILD_DIR:-$(cd "$(dirname "$kiln")" && pwd)}
data=$src/tests/data/torch2_vit
zc=$build/tests/zoo_check
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() {
    echo "FAIL: $*"
    exit 1
}
[[ -x $zc ]] || fail "no zoo_check at $zc"

for shapes in "" "input:8x3x32x32"; do
    what=${shapes:-dynamic batch}
    "$kiln" build "$data/tiny_vit.onnx" -o "$tmp/e.kiln" ${shapes:+--shapes "$shapes"} >"$tmp/build.txt" 2>&1 ||
        fail "$what: kiln build: $(cat "$tmp/build.txt")"
    "$kiln" info "$tmp/e.kiln" --layers >"$tmp/info.txt"
    sed -n '/^layers/,$p' "$tmp/info.txt" | tail -n +2 >"$tmp/layers.txt"
    echo "$what: $(grep -E '^nodes (before|after)' "$tmp/info.txt" | tr -s ' ' | paste -sd ' '), Transpose" \
        "$(awk '$2 == "Transpose"' "$tmp/layers.txt" | wc -l) (encoder layers: $(grep encoder_layer "$tmp/layers.txt" |
            awk '$2 == "Transpose"' | wc -l))"
    att=$(awk '$2 == "kiln.Attention"' "$tmp/layers.txt" | wc -l)
    [[ $att == 2 ]] || fail "$what: $att kiln.Attention layers, want 2"
    bad=$(grep encoder_layer "$tmp/layers.txt" |
        awk '$2 ~ /^(Transpose|Gather|Squeeze|Unsqueeze|Softmax|MatMul|Mul)$/' || true)
    [[ -z $bad ]] || fail "$what: left in the encoder layers: $bad"
    for l in 0 1; do
        ops=$(grep "encoder_layer_$l/self_attention" "$tmp/layers.txt" | awk '{print $2}' | paste -sd ' ')
        want="kiln.FusedMatMul Slice Slice Slice kiln.Attention Reshape Gemm Reshape"
        [[ $l == 1 ]] && want="kiln.FusedMatMul Slice Slice kiln.FusedMatMul kiln.Attention Gemm"
        [[ $ops == "$want" ]] || fail "$what: layer $l attention is '$ops', want '$want'"
    done
done

for ref in ref ref_b3; do
    "$zc" --top5 --name "tiny_vit/$ref" "$data/tiny_vit.onnx" "$data/$ref" || fail "zoo_check on $ref"
done
echo "torch2_mha: ok"
