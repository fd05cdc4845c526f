#!/usr/bin/env bash
# Thirty-first session, last call (about 4 minutes of device time left): ViT-B/16 FP16 b1 with and without the
# sink_gather pass, GPU compute medians, three alternating rounds; kiln compare at b1.
#   run(command="OUT=$OUT bash bench/gpu/call31f.sh 2>&1 | tail -20", carry=["build-gpu/wt", ".gpu/libs"])
set -uo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
python3 models/export.py --models vit_b_16 >$L/export.log 2>&1
timeout 60 $K build models/out/vit_b_16.onnx -o /tmp/v1.kiln --fp16 --shapes input:1x3x224x224 >$L/b1.txt 2>&1 || say "v1 build failed"
timeout 60 $K build models/out/vit_b_16.onnx -o /tmp/v1n.kiln --fp16 --shapes input:1x3x224x224 --disable-pass sink_gather >$L/b2.txt 2>&1 || say "v1n build failed"
say "built ($((SECONDS-T0)) s)"
declare -A r=()
t() { timeout 30 $K trtexec --loadEngine=/tmp/$1.kiln --noDataTransfers --useCudaGraph --iterations=2000 --duration=0 --warmUp=200 >$L/t.txt 2>&1; r[$1]+=" $(gpu $L/t.txt)"; }
for i in 1 2 3; do t v1; t v1n; done
say "v1 (sink_gather) ms:${r[v1]}"; say "v1n (without) ms:${r[v1n]}"
compare vit_b_16 1x3x224x224
say "done ($((SECONDS-T0)) s)"
