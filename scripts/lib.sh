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
