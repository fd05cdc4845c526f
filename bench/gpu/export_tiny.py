#!/usr/bin/env python3
"""Small models exported with this machine's torch (the fusion passes must
match every exporter's attention pattern): a 2-layer ViT (torchvision's
VisionTransformer, image 32, patch 8, hidden 64, 4 heads) and the zoo text
encoder's structure at a small width.  Writes OUT/tiny_vit.onnx and
OUT/tiny_vit_in.npy / _out.npy (the float32 output for a seeded input)."""
import inspect, os, sys
import numpy as np
import torch, torchvision

out = sys.argv[1] if len(sys.argv) > 1 else "."
torch.manual_seed(0)
m = torchvision.models.VisionTransformer(image_size=32, patch_size=8, num_layers=2, num_heads=4,
                                         hidden_dim=64, mlp_dim=128, num_classes=10).eval()
x = torch.randn(2, 3, 32, 32)
kw = {"dynamo": False} if "dynamo" in inspect.signature(torch.onnx.export).parameters else {}
torch.onnx.export(m, (x,), os.path.join(out, "tiny_vit.onnx"), opset_version=17, input_names=["input"],
                  output_names=["output"], dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}}, **kw)
with torch.no_grad():
    y = m(x)
np.save(os.path.join(out, "tiny_vit_in.npy"), x.numpy())
np.save(os.path.join(out, "tiny_vit_out.npy"), y.numpy())
print("tiny_vit: torch %s, output %s" % (torch.__version__, tuple(y.shape)))
