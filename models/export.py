#!/usr/bin/python3
"""Export the model zoo to ONNX with seeded random weights (no download).

    /usr/bin/python3 models/export.py [--models a,b,...] [--out models/out]
                                      [--seed 0] [--force] [--list]

Models (opset 17, graph input "input"):
  resnet18, resnet50, mobilenet_v2, efficientnet_b0, vit_b_16
      torchvision image classifiers: input float [batch,3,224,224], output
      "output" float [batch,1000] (logits); dynamic batch.
  resnet18_ext
      resnet18 with every initializer in one external file,
      resnet18_ext.onnx.data (same reference data as resnet18).
  ssdlite320_mobilenet_v3_large
      torchvision detector exported with its pre-processing (normalize,
      bilinear resize to 320x320) and post-processing (box decoding, score
      threshold 0.6, per-class NMS, top-k): input float [1,3,160,640] (one
      image, values in [0,1]; 320/160 and 320/640 keep the resize's scales
      exact); outputs "boxes" float [N,4] (x1,y1,x2,y2 in input pixels),
      "scores" float [N], "labels" int64 [N], N data-dependent (60 for the
      reference input).  The batch is fixed at 1: torchvision's detectors
      take a list of images, which tracing unrolls.
  text_encoder
      token embedding + learned positions + torch.nn.TransformerEncoder
      (4 post-norm layers, d_model 128, 4 heads, feed-forward 256, final
      LayerNorm): input int64 [batch,sequence] token ids < 1000, output
      "output" float [batch,sequence,128]; dynamic batch and sequence.

For each model NAME the script writes, in OUT:
  NAME.onnx
  NAME_ref/test_data_set_N/input_K.{npy,pb}    seeded inputs (K: graph order)
  NAME_ref/test_data_set_N/output_K.{npy,pb}   PyTorch's outputs for them
      as .npy arrays and as TensorProtos named like the graph's inputs and
      outputs (the ONNX backend-test layout).  Data set 0 is the input the
      model was traced with (batch 2; text: [2,16]); data set 1, where there
      is one, has another batch size (1; text: [3,37]).
  conformance/test_NAME/{model.onnx,test_data_set_N}
      symbolic links, so that `kiln-conformance --root OUT/conformance` runs
      the zoo (not resnet18_ext: its data file must lie beside the model).
Weights are torchvision's initialisation, seeded, with every parameter that
it leaves constant (zero biases and classifier heads, unit scales, ViT's
class token) redrawn from the seeded generator, the residual branches damped
(see damp_residual_branches) and BatchNorm running statistics set from one
seeded forward pass (batch-norm layers in train mode with momentum 1, then
eval), so every output depends on the input.  The export fails if a
reference output is near zero or constant, or if its float32 value is more
than 4e-6 (relative L2) away from PyTorch's float64 value on the same input:
the reference's own rounding noise stays well below the 1e-5 that kiln is
held to.

A model whose .onnx and reference files all exist is skipped unless --force
is given.  Files are written under temporary names and renamed, so a reader
never sees half a file.  Prints the export time of each model.

Needs Debian's python3-torch (1.13), python3-torchvision and python3-onnx.
"""
import argparse
import fcntl
import os
import shutil
import sys
import tempfile
import time

OPSET = 17
CLASSIFIERS = ["resnet18", "resnet50", "mobilenet_v2", "efficientnet_b0", "vit_b_16"]
DETECTOR = "ssdlite320_mobilenet_v3_large"
TEXT = "text_encoder"
ALL_MODELS = ["resnet18", "resnet18_ext", "resnet50", "mobilenet_v2", "efficientnet_b0",
              "vit_b_16", DETECTOR, TEXT]
# Models that take long to export or to run on a slow machine.
BIG_MODELS = ["vit_b_16", DETECTOR]

# Largest relative L2 distance allowed between the float32 reference output
# and PyTorch's float64 output (runtimes are held to 1e-5 against it).
MAX_FLOAT64_DEVIATION = 4e-6

TEXT_VOCAB, TEXT_DIM, TEXT_HEADS, TEXT_FF, TEXT_LAYERS, TEXT_MAX_LEN = 1000, 128, 4, 256, 4, 512
DETECTOR_IMAGE = (160, 640)
# With seed 0, 60 (class, box) candidates score above 0.6 (none within 2e-3 of
# it, no two within 4e-5 of each other) and no two boxes of one class have an
# IoU within 0.12 of the NMS threshold (0.55): the detections are stable under
# float rounding, so other runtimes can be compared with them element-wise.
DETECTOR_SCORE_THRESH = 0.6


def redraw_constant_parameters(model, torch):
    """Redraw, from the seeded global generator, every parameter that the
    default initialisation leaves constant (zero biases and heads, unit
    scales, ViT's class token), so outputs are not trivial."""
    with torch.no_grad():
        for p in model.parameters():
            if p.numel() > 1 and p.min().item() != p.max().item():
                continue
            if p.dim() >= 2:
                bound = 1.0 / p[0].numel() ** 0.5
                p.uniform_(-bound, bound)
            elif float(p.flatten()[0]) == 1.0:
                p.uniform_(0.5, 1.5)  # a scale (BatchNorm / LayerNorm weight)
            else:
                p.normal_(0.0, 0.05)  # a bias or token


def residual_batchnorms(model, torch, torchvision):
    """The BatchNorm closing each residual branch (what torchvision's
    zero_init_residual zeroes) of ResNet, MobileNetV2/V3 and EfficientNet."""
    from torchvision.models import efficientnet, mobilenetv2, mobilenetv3, resnet
    out = []
    for m in model.modules():
        if isinstance(m, resnet.Bottleneck):
            out.append(m.bn3)
        elif isinstance(m, resnet.BasicBlock):
            out.append(m.bn2)
        elif isinstance(m, mobilenetv2.InvertedResidual) and m.use_res_connect:
            out.append(m.conv[-1])
        elif isinstance(m, (mobilenetv3.InvertedResidual, efficientnet.MBConv)) and m.use_res_connect:
            out.append(m.block[-1][1])
    assert all(isinstance(b, torch.nn.BatchNorm2d) for b in out)
    return out


def damp_residual_branches(model, torch, torchvision):
    """Draw the scale of the BatchNorm closing each residual branch from
    U(0.1, 0.3) instead of about 1.  With full-strength branches, random deep
    residual networks amplify rounding errors layer after layer (ResNet-50's
    float32 output is then 1.7e-5 away, in relative L2, from its float64
    output: two correct float32 runtimes cannot agree to 1e-5); damped, as
    trained networks are, it is about 1e-6 and outputs still depend strongly
    on the input."""
    with torch.no_grad():
        for bn in residual_batchnorms(model, torch, torchvision):
            bn.weight.uniform_(0.1, 0.3)


def calibrate_batchnorm(model, torch, batch):
    """Set every BatchNorm's running statistics to those of its activations
    on `batch` (a tensor or, for detectors, a list of images) (the model in eval mode but its batch-norm layers in train
    mode with momentum 1), as training would, so activations stay normalized
    through deep networks and outputs depend on the input."""
    bns = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    if not bns:
        return
    model.eval()
    for m in bns:
        m.reset_running_stats()
        m.momentum = 1.0
        m.train()
    with torch.no_grad():
        model(batch)
    for m in bns:
        m.momentum = 0.1
        m.eval()


def build_classifier(name, seed, torch, torchvision):
    """A torchvision classifier; see build()."""
    torch.manual_seed(seed)
    model = getattr(torchvision.models, name)(weights=None)
    redraw_constant_parameters(model, torch)
    damp_residual_branches(model, torch, torchvision)
    gen = torch.Generator().manual_seed(seed + 2)
    calibrate_batchnorm(model, torch, torch.randn(16, 3, 224, 224, generator=gen))
    x0 = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(seed + 1))
    x1 = torch.randn(1, 3, 224, 224, generator=torch.Generator().manual_seed(seed + 3))
    return (model.eval(), [(x0,), (x1,)], ["input"], ["output"],
            {"input": {0: "batch"}, "output": {0: "batch"}})


def build_detector(name, seed, torch, torchvision):
    """SSDlite with pre- and post-processing; one image per run."""

    class Detector(torch.nn.Module):
        """Batch-of-one tensor in, (boxes, scores, labels) out."""

        def __init__(self, det):
            super().__init__()
            self.det = det

        def forward(self, x):
            d = self.det([x[0]])[0]
            return d["boxes"], d["scores"], d["labels"]

    torch.manual_seed(seed)
    det = torchvision.models.detection.ssdlite320_mobilenet_v3_large(
        weights=None, weights_backbone=None, score_thresh=DETECTOR_SCORE_THRESH)
    redraw_constant_parameters(det, torch)
    damp_residual_branches(det, torch, torchvision)
    # Sharpen the class scores, so that some boxes score well above the rest.
    with torch.no_grad():
        for m in det.head.classification_head.modules():
            if isinstance(m, torch.nn.Conv2d) and m.out_channels % 91 == 0:
                m.weight.mul_(4.0)
    h, w = DETECTOR_IMAGE
    gen = torch.Generator().manual_seed(seed + 2)
    # Several images: the last feature maps are 1x1.
    calibrate_batchnorm(det, torch, list(torch.rand(8, 3, h, w, generator=gen)))
    model = Detector(det)
    gen = torch.Generator().manual_seed(seed + 1)
    x = torch.rand(1, 3, h, w, generator=gen)
    return model.eval(), [(x,)], ["input"], ["boxes", "scores", "labels"], {
        "boxes": {0: "detections"}, "scores": {0: "detections"}, "labels": {0: "detections"}}


def build_text(name, seed, torch, torchvision):
    """A small text encoder: int64 tokens [batch, sequence] in."""

    class TextEncoder(torch.nn.Module):
        """Embedding, learned positions, TransformerEncoder, LayerNorm."""

        def __init__(self):
            super().__init__()
            self.embed = torch.nn.Embedding(TEXT_VOCAB, TEXT_DIM)
            self.pos = torch.nn.Parameter(torch.randn(1, TEXT_MAX_LEN, TEXT_DIM) * 0.02)
            layer = torch.nn.TransformerEncoderLayer(TEXT_DIM, TEXT_HEADS, TEXT_FF,
                                                     dropout=0.1, batch_first=True)
            self.encoder = torch.nn.TransformerEncoder(layer, TEXT_LAYERS,
                                                       norm=torch.nn.LayerNorm(TEXT_DIM),
                                                       enable_nested_tensor=False)

        def forward(self, tokens):
            x = self.embed(tokens) * TEXT_DIM ** 0.5
            x = x + self.pos[:, :tokens.shape[1]]
            return self.encoder(x)

    torch.manual_seed(seed)
    model = TextEncoder()
    redraw_constant_parameters(model, torch)
    x0 = torch.randint(0, TEXT_VOCAB, (2, 16), dtype=torch.int64,
                       generator=torch.Generator().manual_seed(seed + 1))
    x1 = torch.randint(0, TEXT_VOCAB, (3, 37), dtype=torch.int64,
                       generator=torch.Generator().manual_seed(seed + 3))
    return (model.eval(), [(x0,), (x1,)], ["input"], ["output"],
            {"input": {0: "batch", 1: "sequence"}, "output": {0: "batch", 1: "sequence"}})


def build(name, seed):
    """(model in eval mode, data sets, input names, output names, dynamic
    axes) for `name`.  Each data set is a tuple of input tensors; the first
    is the one the model is traced with, later ones have other batch sizes
    (and sequence lengths), to check that those axes are really dynamic."""
    import torch
    import torchvision
    if name in CLASSIFIERS:
        return build_classifier(name, seed, torch, torchvision)
    if name == DETECTOR:
        return build_detector(name, seed, torch, torchvision)
    if name == TEXT:
        return build_text(name, seed, torch, torchvision)
    raise ValueError(name)


def write_ref(data, inputs, input_names, outputs, output_names):
    """Write data/{input,output}_K.{npy,pb}: arrays and TensorProtos named
    like the graph's inputs and outputs."""
    import numpy as np
    from onnx import numpy_helper
    os.makedirs(data)
    for kind, arrays, names in (("input", inputs, input_names), ("output", outputs, output_names)):
        for k, (a, n) in enumerate(zip(arrays, names)):
            a = np.ascontiguousarray(a)
            np.save(os.path.join(data, "%s_%d.npy" % (kind, k)), a)
            with open(os.path.join(data, "%s_%d.pb" % (kind, k)), "wb") as f:
                f.write(numpy_helper.from_array(a, n).SerializeToString())


def float64_deviation(m64, inputs, outputs, output_names):
    """Largest relative L2 distance between the float32 `outputs` and those
    of m64 (the model in float64) on `inputs`: the rounding noise of a float32
    reference, which must stay well below the 1e-5 that runtimes are held to."""
    import numpy as np
    import torch
    with torch.no_grad():
        ys = m64(*[x.double() if x.is_floating_point() else x for x in inputs])
    if isinstance(ys, torch.Tensor):
        ys = (ys,)
    worst = 0.0
    for a, y, n in zip(outputs, ys, output_names):
        b = y.numpy()
        if a.shape != b.shape:
            raise RuntimeError("output '%s' has shape %s in float32, %s in float64"
                               % (n, a.shape, b.shape))
        if a.dtype.kind == "f":
            a, b = a.astype(np.float64), b.astype(np.float64)
            worst = max(worst, float(np.linalg.norm(a - b) / np.linalg.norm(b)))
        elif not np.array_equal(a, b):
            raise RuntimeError("output '%s' differs between float32 and float64" % n)
    return worst


def check_outputs(name, outputs, output_names):
    """Refuse trivial reference outputs: constant or all near zero."""
    import numpy as np
    for a, n in zip(outputs, output_names):
        if a.size == 0:
            raise RuntimeError("%s: output '%s' is empty" % (name, n))
        if a.dtype.kind == "f" and (float(np.abs(a).max()) < 1e-3 or float(a.std()) == 0.0):
            raise RuntimeError("%s: output '%s' is trivial (max |y| %g, std %g)"
                               % (name, n, float(np.abs(a).max()), float(a.std())))


def fix_output_dims(path, outputs, output_names, dynamic):
    """Give each output dim that the exporter left symbolic but is not
    dynamic (as LayerNormalization's "..._dim_2") its fixed size."""
    import onnx
    model = onnx.load(path)
    changed = False
    for out in model.graph.output:
        a = outputs[output_names.index(out.name)]
        dims = out.type.tensor_type.shape.dim
        for axis, d in enumerate(dims):
            if d.dim_param and axis not in dynamic.get(out.name, {}):
                d.dim_value = a.shape[axis]
                changed = True
    if changed:
        onnx.save(model, path)


def export_one(name, out_dir, seed):
    """Export `name` to out_dir/NAME.onnx and its reference data to
    out_dir/NAME_ref/test_data_set_N/."""
    import copy
    import onnx
    import torch

    model, datasets, input_names, output_names, dynamic = build(name, seed)
    tmp = tempfile.mkdtemp(prefix=".export-", dir=out_dir)
    try:
        path = os.path.join(tmp, name + ".onnx")
        t0 = time.time()
        # Not under torch.no_grad(): torch 1.13 exports nn.MultiheadAttention
        # (ViT, the text encoder) correctly only with autograd enabled.
        torch.onnx.export(model, datasets[0], path, export_params=True, opset_version=OPSET,
                          do_constant_folding=True, input_names=input_names,
                          output_names=output_names, dynamic_axes=dynamic)
        print("%s: torch.onnx.export took %.1f s" % (name, time.time() - t0), flush=True)
        m64 = copy.deepcopy(model).double()
        ref = os.path.join(tmp, name + "_ref")
        for ds, inputs in enumerate(datasets):
            with torch.no_grad():
                ys = model(*inputs)
            if isinstance(ys, torch.Tensor):
                ys = (ys,)
            outputs = [y.numpy() for y in ys]
            if ds == 0:
                fix_output_dims(path, outputs, output_names, dynamic)
            check_outputs(name, outputs, output_names)
            dev = float64_deviation(m64, inputs, outputs, output_names)
            print("%s: data set %d %s: float32 output vs float64: relative L2 %.2g"
                  % (name, ds, [list(x.shape) for x in inputs], dev), flush=True)
            if dev > MAX_FLOAT64_DEVIATION:
                raise RuntimeError("%s: the float32 output is %.2g away from the float64 one "
                                   "(more than %g): the weights are ill-conditioned"
                                   % (name, dev, MAX_FLOAT64_DEVIATION))
            write_ref(os.path.join(ref, "test_data_set_%d" % ds), [x.numpy() for x in inputs],
                      input_names, outputs, output_names)
        onnx.checker.check_model(path)
        install_dir(ref, os.path.join(out_dir, name + "_ref"))
        os.replace(path, os.path.join(out_dir, name + ".onnx"))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)



def export_external(src, out_dir, name="resnet18_ext"):
    """Write out_dir/<name>.onnx from `src` with every initializer moved to one
    external file, out_dir/<name>.onnx.data, and a copy of src's reference
    data."""
    import onnx
    model = onnx.load(src)
    tmp = tempfile.mkdtemp(prefix=".export-", dir=out_dir)
    try:
        data = name + ".onnx.data"
        path = os.path.join(tmp, name + ".onnx")
        onnx.save_model(model, path, save_as_external_data=True,
                        all_tensors_to_one_file=True, location=data, size_threshold=0)
        onnx.checker.check_model(path)
        ref = os.path.join(tmp, name + "_ref")
        shutil.copytree(src[:-len(".onnx")] + "_ref", ref)
        install_dir(ref, os.path.join(out_dir, name + "_ref"))
        os.replace(os.path.join(tmp, data), os.path.join(out_dir, data))
        os.replace(path, os.path.join(out_dir, name + ".onnx"))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def install_dir(src, dst):
    """Move folder src to dst, replacing dst: the old dst is first renamed
    aside, so dst is only briefly missing and never half-written."""
    old = dst + ".old-%d" % os.getpid()
    try:
        os.replace(dst, old)
    except FileNotFoundError:
        old = None
    os.replace(src, dst)
    if old:
        shutil.rmtree(old, ignore_errors=True)


def complete(out_dir, name):
    """Whether NAME.onnx and all of its reference files exist."""
    ref = os.path.join(out_dir, name + "_ref")
    need = [os.path.join(out_dir, name + ".onnx")] + [
        os.path.join(ref, "test_data_set_0", f)
        for f in ("input_0.npy", "output_0.npy", "input_0.pb", "output_0.pb")]
    if name == "resnet18_ext":
        need.append(os.path.join(out_dir, name + ".onnx.data"))
    return all(os.path.exists(p) for p in need)


def link_conformance(out_dir, name):
    """out_dir/conformance/test_NAME/{model.onnx,test_data_set_0}: relative
    symbolic links to the model and its reference data (not for models with
    external data, which must lie beside the model)."""
    if name == "resnet18_ext":
        return
    test = os.path.join(out_dir, "conformance", "test_" + name)
    os.makedirs(test, exist_ok=True)
    ref = os.path.join(out_dir, name + "_ref")
    links = [("model.onnx", os.path.join("..", "..", name + ".onnx"))]
    links += [(d, os.path.join("..", "..", name + "_ref", d))
              for d in sorted(os.listdir(ref)) if d.startswith("test_data_set_")]
    for link, target in links:
        p = os.path.join(test, link)
        if os.path.islink(p) and os.readlink(p) == target:
            continue
        if os.path.lexists(p):
            os.remove(p)
        os.symlink(target, p)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", default=",".join(ALL_MODELS),
                    help="comma-separated subset of " + ",".join(ALL_MODELS))
    ap.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "out"))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--force", action="store_true", help="re-export models that exist")
    ap.add_argument("--list", action="store_true", help="print the model names and exit")
    args = ap.parse_args()
    if args.list:
        print(" ".join(ALL_MODELS))
        return 0

    names = [n for n in args.models.split(",") if n]
    unknown = [n for n in names if n not in ALL_MODELS]
    if unknown:
        ap.error("unknown model(s): %s (known: %s)" % (", ".join(unknown), ", ".join(ALL_MODELS)))
    os.makedirs(args.out, exist_ok=True)
    # One exporter at a time per folder (tests run in parallel may all ask
    # for resnet18): the next one waits, then finds the models complete.
    lock = open(os.path.join(args.out, ".export.lock"), "w")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        print("%s: another export is running, waiting..." % args.out, flush=True)
        fcntl.flock(lock, fcntl.LOCK_EX)
    exported = set()
    for name in names:
        path = os.path.join(args.out, name + ".onnx")
        if complete(args.out, name) and (name in exported or not args.force):
            print("%s: exists, skipped" % path)
            link_conformance(args.out, name)
            continue
        print("%s: exporting..." % path, flush=True)
        t0 = time.time()
        if name == "resnet18_ext":
            src = os.path.join(args.out, "resnet18.onnx")
            if not complete(args.out, "resnet18") or (args.force and "resnet18" not in exported):
                export_one("resnet18", args.out, args.seed)
                link_conformance(args.out, "resnet18")
                exported.add("resnet18")
            export_external(src, args.out)
        else:
            export_one(name, args.out, args.seed)
        exported.add(name)
        link_conformance(args.out, name)
        print("%s: done (%.1f MB, %.1f s)" % (path, os.path.getsize(path) / 1e6, time.time() - t0),
              flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
