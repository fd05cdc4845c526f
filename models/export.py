#!/usr/bin/python3
"""Export torchvision models to ONNX with seeded random weights (no download).

    /usr/bin/python3 models/export.py [--models resnet18,resnet18_ext,resnet50,vit_b_16]
                                      [--out models/out] [--seed 0] [--force]

Each model is written to OUT/<name>.onnx (opset 17, input "input", output
"output", dynamic batch), plus OUT/<name>_ref/{input_0,output_0}.pb: a seeded
batch-2 input and PyTorch's output for it, as TensorProtos laid out like the
ONNX backend tests, for later correctness checks.  resnet18_ext is resnet18
with every initializer in one external file, resnet18_ext.onnx.data.
Models that already exist are skipped unless --force is given.  Files are
written under a temporary name and renamed, so a reader never sees half a file.

Needs Debian's python3-torch, python3-torchvision and python3-onnx.
"""
import argparse
import os
import shutil
import sys
import tempfile

ALL_MODELS = ["resnet18", "resnet18_ext", "resnet50", "vit_b_16"]
OPSET = 17


def redraw_constant_parameters(model, torch):
    """Redraw, from the seeded global generator, every parameter and batch-norm
    statistic that torchvision's init leaves constant (zero biases, unit
    scales, ViT's zeroed head and class token), so outputs are not trivial."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.numel() > 1 and p.min().item() != p.max().item():
                continue
            if p.dim() >= 2:
                fan_in = p[0].numel()
                bound = 1.0 / fan_in ** 0.5
                p.uniform_(-bound, bound)
            elif float(p.flatten()[0]) == 1.0:
                p.uniform_(0.5, 1.5)  # a scale (BatchNorm / LayerNorm weight)
            else:
                p.normal_(0.0, 0.05)  # a bias or token
        for name, b in model.named_buffers():
            if name.endswith("running_mean"):
                b.normal_(0.0, 0.1)
            elif name.endswith("running_var"):
                b.uniform_(0.5, 1.5)


def build(name, seed, torch, torchvision):
    """The torchvision model `name` in eval mode with seeded random weights."""
    torch.manual_seed(seed)
    model = getattr(torchvision.models, name)(weights=None)
    redraw_constant_parameters(model, torch)
    return model.eval()


def write_tensor(onnx, numpy_array, path):
    """Write a numpy array as a serialized TensorProto."""
    from onnx import numpy_helper
    with open(path, "wb") as f:
        f.write(numpy_helper.from_array(numpy_array).SerializeToString())


def export_one(name, out_dir, seed):
    """Export torchvision model `name` to out_dir/<name>.onnx and its reference
    input/output to out_dir/<name>_ref/."""
    import onnx
    import torch
    import torchvision

    model = build(name, seed, torch, torchvision)
    gen = torch.Generator().manual_seed(seed + 1)
    x = torch.randn(2, 3, 224, 224, generator=gen)
    tmp = tempfile.mkdtemp(prefix=".export-", dir=out_dir)
    try:
        path = os.path.join(tmp, name + ".onnx")
        # Not under torch.no_grad(): torch 1.13 exports nn.MultiheadAttention
        # (ViT) correctly only with autograd enabled.
        torch.onnx.export(model, x, path, export_params=True, opset_version=OPSET,
                          do_constant_folding=True, input_names=["input"],
                          output_names=["output"],
                          dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}})
        onnx.checker.check_model(path)
        with torch.no_grad():
            y = model(x)
        if float(y.std()) == 0.0:
            raise RuntimeError("%s: output is constant; weights are trivial" % name)
        ref = os.path.join(tmp, name + "_ref")
        os.mkdir(ref)
        write_tensor(onnx, x.numpy(), os.path.join(ref, "input_0.pb"))
        write_tensor(onnx, y.numpy(), os.path.join(ref, "output_0.pb"))
        final_ref = os.path.join(out_dir, name + "_ref")
        shutil.rmtree(final_ref, ignore_errors=True)
        os.replace(ref, final_ref)
        os.replace(path, os.path.join(out_dir, name + ".onnx"))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def export_external(src, out_dir, name="resnet18_ext"):
    """Write out_dir/<name>.onnx from `src` with every initializer moved to one
    external file, out_dir/<name>.onnx.data."""
    import onnx
    model = onnx.load(src)
    tmp = tempfile.mkdtemp(prefix=".export-", dir=out_dir)
    try:
        data = name + ".onnx.data"
        path = os.path.join(tmp, name + ".onnx")
        onnx.save_model(model, path, save_as_external_data=True,
                        all_tensors_to_one_file=True, location=data, size_threshold=0)
        onnx.checker.check_model(path)
        os.replace(os.path.join(tmp, data), os.path.join(out_dir, data))
        os.replace(path, os.path.join(out_dir, name + ".onnx"))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", default=",".join(ALL_MODELS),
                    help="comma-separated subset of " + ",".join(ALL_MODELS))
    ap.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "out"))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--force", action="store_true", help="re-export models that exist")
    args = ap.parse_args()

    names = [n for n in args.models.split(",") if n]
    unknown = [n for n in names if n not in ALL_MODELS]
    if unknown:
        ap.error("unknown model(s): %s (known: %s)" % (", ".join(unknown), ", ".join(ALL_MODELS)))
    os.makedirs(args.out, exist_ok=True)
    for name in names:
        path = os.path.join(args.out, name + ".onnx")
        if os.path.exists(path) and not args.force:
            print("%s: exists, skipped" % path)
            continue
        print("%s: exporting..." % path, flush=True)
        if name == "resnet18_ext":
            src = os.path.join(args.out, "resnet18.onnx")
            if not os.path.exists(src):
                export_one("resnet18", args.out, args.seed)
            export_external(src, args.out)
        else:
            export_one(name, args.out, args.seed)
        print("%s: done (%.1f MB)" % (path, os.path.getsize(path) / 1e6), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
