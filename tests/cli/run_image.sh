#!/usr/bin/env bash
# Image preprocessing of `kiln run` against torchvision:
#   bash tests/cli/run_image.sh /path/to/kiln
# For real pictures installed on the system (JPEG/PNG under /usr/share, e.g.
# Debian's desktop-base wallpapers) and variants made from one of them
# (grayscale, CMYK, progressive and 4:4:4 JPEG; palette with transparency,
# RGBA, LA, 1-bit, 16-bit RGB PNG; tiny, thin and portrait sizes that need
# upscaling, padding and round-half-even crops), compare `kiln preprocess`
# with torchvision 0.14's
#   Resize(256), CenterCrop(224), ToTensor(), Normalize(ImageNet mean/std)
# on PIL images: the un-normalized pixels must agree within 1/255.  Then run
# a model on two images (one batch) with --dump-input and compare the batch.
# Needs /usr/bin/python3 with torch, torchvision, PIL and numpy; exits 77
# (skipped) without them or when kiln was built without JPEG/PNG support.
# Env: KILN_SOURCE_DIR (models/out), KILN_BUILD_DIR (scratch),
# KILN_PICTURES_DIR (where to look for pictures instead of /usr/share).
set -uo pipefail

kiln=${1:?usage: run_image.sh /path/to/kiln}
case $kiln in /*) ;; *) kiln=$PWD/$kiln ;; esac
src=${KILN_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
py=/usr/bin/python3
if ! [ -x "$py" ] || ! "$py" -c 'import torch, torchvision, PIL, numpy' 2>/dev/null; then
    echo "skip: /usr/bin/python3 lacks torch/torchvision/PIL/numpy"
    exit 77
fi
scratch_parent=${KILN_BUILD_DIR:-${TMPDIR:-/tmp}}
mkdir -p "$scratch_parent"
work=$(mktemp -d "$scratch_parent/run-image.XXXXXX")
trap 'rm -rf "$work"' EXIT

# Pictures shipped by installed packages (sorted, so the run is repeatable).
mapfile -t pictures < <(find "${KILN_PICTURES_DIR:-/usr/share}" -xdev -type f \( -iname '*.jpg' -o -iname '*.jpeg' -o -iname '*.png' \) \
    -size +20k 2>/dev/null | LC_ALL=C sort | head -n 16)

model=$src/models/out/resnet18.onnx
"$py" - "$kiln" "$work" "$model" "${pictures[@]}" <<'EOF'
import os, struct, subprocess, sys, zlib
import numpy as np
from PIL import Image
from torchvision import transforms as T

kiln, work, model, pictures = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
mean = np.array([0.485, 0.456, 0.406], np.float32).reshape(3, 1, 1)
std = np.array([0.229, 0.224, 0.225], np.float32).reshape(3, 1, 1)
tf = T.Compose([T.Resize(256), T.CenterCrop(224), T.ToTensor(),
                T.Normalize((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))])

def reference(path):
    return tf(Image.open(path).convert("RGB")).numpy()

def kiln_run(*args):
    return subprocess.run([kiln, *args], capture_output=True, text=True)

def png16(path, rgb8):
    """Write an RGB 16-bit PNG (PIL cannot) whose high bytes are rgb8."""
    h, w, _ = rgb8.shape
    px = rgb8.astype(">u2") * 257 + np.arange(w, dtype=">u2")[None, :, None] % 200
    raw = b"".join(b"\0" + px[y].tobytes() for y in range(h))
    chunk = lambda t, d: struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xFFFFFFFF)
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, 2, 0, 0, 0))
                + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))

# Build-time support: a tiny PNG and JPEG.
Image.new("RGB", (8, 8), (10, 20, 30)).save(f"{work}/probe.png")
Image.new("RGB", (8, 8), (10, 20, 30)).save(f"{work}/probe.jpg")
for probe in ("probe.png", "probe.jpg"):
    r = kiln_run("preprocess", f"{work}/{probe}", "--output", f"{work}/probe.npy")
    if r.returncode != 0 and "built without" in r.stderr:
        print("skip:", r.stderr.strip())
        sys.exit(77)

cases = list(pictures)
if not pictures:
    print("note: no JPEG/PNG pictures under /usr/share (install desktop-base); using synthetic images only")
    yy, xx = np.mgrid[0:480, 0:640]
    img = np.stack([(xx * 255 // 639), (yy * 255 // 479), ((xx ^ yy) & 255)], -1).astype(np.uint8)
    base = Image.fromarray(img)
else:
    base = Image.open(pictures[0]).convert("RGB")
variants = {
    "gray.jpg": lambda p: base.convert("L").save(p, quality=90),
    "cmyk.jpg": lambda p: base.convert("CMYK").save(p, quality=90),
    "progressive.jpg": lambda p: base.save(p, progressive=True, quality=85),
    "q444.jpg": lambda p: base.save(p, quality=95, subsampling=0),
    "tiny.jpg": lambda p: base.resize((100, 80)).save(p),
    "thin.png": lambda p: base.resize((300, 17)).save(p),
    "portrait.png": lambda p: base.resize((241, 500)).save(p),
    "odd.png": lambda p: base.resize((333, 257)).save(p),
    "palette.png": lambda p: base.convert("P", palette=Image.ADAPTIVE).save(p, transparency=3),
    "rgba.png": lambda p: Image.fromarray(np.dstack([np.array(base), np.full(base.size[::-1], 100, np.uint8)])).save(p),
    "la.png": lambda p: base.convert("LA").save(p),
    "bw.png": lambda p: base.convert("1").save(p),
    "rgb16.png": lambda p: png16(p, np.array(base.resize((320, 240)))),
}
for name, make in variants.items():
    make(f"{work}/{name}")
    cases.append(f"{work}/{name}")

fails = 0
exact = 0
for path in cases:
    ref = reference(path)
    r = kiln_run("preprocess", path, "--output", f"{work}/k.npy")
    if r.returncode != 0:
        print(f"FAIL: {path}: kiln preprocess exit {r.returncode}: {r.stderr.strip()}")
        fails += 1
        continue
    got = np.load(f"{work}/k.npy")
    if got.shape != (1,) + ref.shape or got.dtype != np.float32:
        print(f"FAIL: {path}: shape {got.shape} {got.dtype}, expected (1,) + {ref.shape} float32")
        fails += 1
        continue
    diff = np.abs((got[0] * std + mean) - (ref * std + mean)).max() * 255
    exact += bool(np.array_equal(got[0], ref))
    if diff > 1.0 + 1e-4:
        print(f"FAIL: {path}: max pixel difference {diff:.3f}/255 (> 1/255)")
        fails += 1
    else:
        print(f"ok: {path if path in pictures else os.path.basename(path)} {Image.open(path).size} {Image.open(path).mode}: "
              f"max diff {diff:.4f}/255")
print(f"{len(cases) - fails}/{len(cases)} images within 1/255 of torchvision ({exact} bit-exact)")

# A batch of two images through `kiln run`, checked with --dump-input.
if os.path.exists(model):
    a, b = cases[0], cases[-1]
    r = kiln_run("run", model, "--input", a, "--input", b, "--dump-input", f"{work}/dump", "--topk", "1")
    if r.returncode != 0:
        print(f"FAIL: kiln run on two images: exit {r.returncode}: {r.stderr.strip()}")
        fails += 1
    else:
        got = np.load(f"{work}/dump/input.npy")
        ref = np.stack([reference(a), reference(b)])
        diff = np.abs(got - ref).max() if got.shape == ref.shape else float("inf")
        if got.shape != ref.shape or diff * 255 * 0.229 > 1.0 + 1e-4:
            print(f"FAIL: kiln run --dump-input: shape {got.shape}, max diff {diff}")
            fails += 1
        elif "top-1 of row 1" not in r.stdout:
            print(f"FAIL: kiln run --topk 1 on a batch of 2 did not print row 1:\n{r.stdout}")
            fails += 1
        else:
            print("ok: kiln run on a batch of two images; --dump-input matches torchvision")
else:
    print(f"note: {model} not found; batch run skipped")
sys.exit(1 if fails else 0)
EOF
