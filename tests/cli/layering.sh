#!/usr/bin/env bash
# Module layering (STYLE: data flows one way): the ONNX reader and checker
# never reach a backend, and the CPU backend never reaches the ONNX reader.
#   bash tests/cli/layering.sh [/path/to/kiln]   (the binary is not used)
# For every .c/.h under src/onnx/ and src/cpu/, follows its project
# includes ("dir/file.h", resolved under src/) transitively and fails when
#   src/onnx/* reaches src/backend/* or src/cpu/*, or
#   src/cpu/*  reaches src/onnx/*.
# Each failure prints the file and the include chain that reaches the
# forbidden folder.
set -uo pipefail

root=${KILN_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
src=$root/src
[ -d "$src/onnx" ] || { echo "layering: no src/onnx under $root" >&2; exit 1; }
fails=0
checked=0

# Project includes of one file, as paths relative to src/ (one a line).
includes() {
    sed -n 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*"\([^"]*\)".*/\1/p' "$1" |
        while read -r inc; do
            if [ -f "$src/$inc" ]; then
                echo "$inc"
            elif [ -f "$(dirname "$1")/$inc" ]; then
                # relative to the including file
                local d=${1#"$src"/}
                d=$(dirname "$d")
                echo "$d/$inc"
            fi
        done
}

# check FILE FORBIDDEN_REGEX: breadth-first over includes; prints the chain
# of the first forbidden header reached and returns 1.
check() {
    local start=$1 forbid=$2
    declare -A seen=() via=()
    local queue=("$start") f inc
    seen[$start]=1
    while [ ${#queue[@]} -gt 0 ]; do
        f=${queue[0]}
        queue=("${queue[@]:1}")
        while read -r inc; do
            [ -n "$inc" ] || continue
            [ -z "${seen[$inc]:-}" ] || continue
            seen[$inc]=1
            via[$inc]=$f
            if [[ $inc =~ $forbid ]]; then
                local chain=$inc cur=$inc
                while [ "$cur" != "$start" ]; do
                    cur=${via[$cur]}
                    chain="$cur -> $chain"
                done
                echo "FAIL: $chain" >&2
                return 1
            fi
            queue+=("$inc")
        done < <(includes "$src/$f")
    done
    return 0
}

for f in "$src"/onnx/*.c "$src"/onnx/*.h; do
    [ -f "$f" ] || continue
    checked=$((checked + 1))
    check "${f#"$src"/}" '^(backend|cpu)/' || fails=$((fails + 1))
done
while IFS= read -r f; do
    checked=$((checked + 1))
    check "${f#"$src"/}" '^onnx/' || fails=$((fails + 1))
done < <(find "$src/cpu" -name '*.[ch]' | sort)

echo "layering: $checked files checked, $fails violations"
[ "$fails" -eq 0 ]
