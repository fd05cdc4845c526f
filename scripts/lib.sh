# Shared helpers for kiln's scripts (sourced, not run).

kiln_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

# kiln_need PKG...: apt-get install the Debian packages that are not
# installed yet (as root, or through sudo otherwise).
kiln_need() {
    local missing=() p sudo=
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
    done
    [ "${#missing[@]}" -eq 0 ] && return 0
    if ! command -v apt-get >/dev/null; then
        echo "kiln: missing ${missing[*]} and no apt-get here: install them by hand" >&2
        return 1
    fi
    [ "$(id -u)" -eq 0 ] || sudo=sudo
    echo "kiln: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    $sudo apt-get install -y --no-install-recommends "${missing[@]}" ||
        { $sudo apt-get update && $sudo apt-get install -y --no-install-recommends "${missing[@]}"; }
}

# kiln_build DIR [CMAKE ARGS...]: configure (Release unless given) and build.
kiln_build() {
    local dir=$1
    shift
    cmake -S "$kiln_root" -B "$dir" -DCMAKE_BUILD_TYPE=Release "$@"
    cmake --build "$dir" -j "${KILN_BUILD_JOBS:-$(nproc)}"
}

# The packages every build and test needs.
KILN_BUILD_DEPS=(build-essential cmake pkg-config libjpeg62-turbo-dev libpng-dev)
KILN_PYTHON_DEPS=(python3-torch python3-torchvision python3-onnx python3-pil)
# Tests only: real pictures (desktop-base wallpapers) for the preprocessing
# test, OpenBLAS for a fair PyTorch peer.
KILN_TEST_DEPS=(desktop-base libopenblas0-pthread)

# kiln_need_node: node and npm for the ONNX Runtime peer (onnxruntime-node).
# A node that came from elsewhere (nodesource) brings its own npm: keep it.
kiln_need_node() {
    command -v node >/dev/null && command -v npm >/dev/null && return 0
    kiln_need nodejs npm
}

# kiln_need_ort: onnxruntime-node@$KILN_ORT_VERSION for the scripts that
# compare with ONNX Runtime (tests/peer/run.sh, tests/cli/zoo.sh, bench/run.sh),
# found or installed once for all of them.  Looks in $KILN_ORT_NODE_MODULES
# (a node_modules folder), <source>/node_modules, then the shared folder
# ${KILN_ORT_DIR:-<source>/.ort}/node_modules; installs it there with npm
# (--ignore-scripts: the package ships its CPU binaries; the install script
# only fetches GPU providers) when none loads.  An flock on
# <shared folder>.lock makes concurrent callers (CTest -j, two scripts)
# install it once: the others wait, then find it.  On success sets
# KILN_ORT_MODULES to the node_modules folder, prepends it to NODE_PATH
# (exported) and returns 0; otherwise sets kiln_ort_why to the reason and
# returns 1.  Progress lines go to stderr.
KILN_ORT_VERSION=1.30.0
kiln_ort_ok() {
    [ -d "$1/onnxruntime-node" ] &&
        node -e "const o = require(process.argv[1] + '/onnxruntime-node');
                 if (!o.env.versions || o.env.versions.node !== process.argv[2]) process.exit(1);" \
            "$1" "$KILN_ORT_VERSION" >/dev/null 2>&1
}
kiln_need_ort() {
    local dir=${KILN_ORT_DIR:-$kiln_root/.ort} d fd rc=0
    KILN_ORT_MODULES= kiln_ort_why=
    command -v node >/dev/null || { kiln_ort_why="no node (apt-get install nodejs npm)"; return 1; }
    for d in "${KILN_ORT_NODE_MODULES:-}" "$kiln_root/node_modules" "$dir/node_modules"; do
        if [ -n "$d" ] && kiln_ort_ok "$d"; then KILN_ORT_MODULES=$d; break; fi
    done
    if [ -z "$KILN_ORT_MODULES" ]; then
        command -v npm >/dev/null ||
            { kiln_ort_why="onnxruntime-node@$KILN_ORT_VERSION is not installed and there is no npm (apt-get install npm)"; return 1; }
        mkdir -p "$dir" || { kiln_ort_why="cannot create $dir"; return 1; }
        exec {fd}>"$dir.lock"
        if command -v flock >/dev/null && ! flock -w 1800 "$fd"; then
            exec {fd}>&-
            kiln_ort_why="timed out waiting for $dir.lock (another install of onnxruntime-node)"
            return 1
        fi
        # Another caller may have installed it while this one waited.
        if ! kiln_ort_ok "$dir/node_modules"; then
            echo "kiln: installing onnxruntime-node@$KILN_ORT_VERSION into $dir (npm)..." >&2
            [ -f "$dir/package.json" ] || echo '{"name": "kiln-ort", "private": true}' >"$dir/package.json"
            (cd "$dir" && timeout 900 npm install --ignore-scripts --prefer-offline --no-audit --no-fund \
                --loglevel=error "onnxruntime-node@$KILN_ORT_VERSION" >install.log 2>&1) || rc=$?
            if [ "$rc" -ne 0 ]; then
                tail -5 "$dir/install.log" | sed 's/^/kiln:   /' >&2
                kiln_ort_why="npm could not install onnxruntime-node@$KILN_ORT_VERSION (log: $dir/install.log)"
            elif ! kiln_ort_ok "$dir/node_modules"; then
                kiln_ort_why="onnxruntime-node@$KILN_ORT_VERSION does not load here (node $(node --version), $(uname -m))"
                rc=1
            fi
        fi
        exec {fd}>&-
        [ "$rc" -eq 0 ] || return 1
        KILN_ORT_MODULES=$dir/node_modules
    fi
    export NODE_PATH="$KILN_ORT_MODULES${NODE_PATH:+:$NODE_PATH}"
    return 0
}
