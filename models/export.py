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
  yolov8n
      Ultralytics YOLOv8n (80 classes; C2f blocks, SPPF, PAN-FPN neck,
      decoupled head with DFL) with its box decoding: input float
      [batch,3,640,640] (values in [0,1]), output "output" float
      [batch,84,8400]: per anchor (strides 8, 16, 32) the box (cx, cy, w, h
      in input pixels) and 80 sigmoid class scores; dynamic batch.
      3,157,200 parameters (3,151,904 with BatchNorm folded, as exported).
  sam_vit_b_encoder
      Segment Anything's ViT-B image encoder (16x16 patches, absolute and
      decomposed relative positions, windowed attention (14x14) but in the
      global blocks 2, 5, 8, 11, neck): input float [batch,3,1024,1024],
      output "output" float [batch,256,64,64]; dynamic batch.  89,670,912
      parameters.  One data set (batch 1): ~490 G MACs per image.
  sam_vit_b_encoder_256 (not in --list)
      the same encoder for 256x256 images (16x16 tokens, pos_embed
      [1,16,16,768], windows padded from 16 to 28): the graph of
      sam_vit_b_encoder at 1/14 of its compute, with data sets of batch 2
      and 1, for the sanitizer build's zoo test.

For each model NAME the script writes, in OUT:
  NAME.onnx
  NAME_ref/test_data_set_N/input_K.{npy,pb}    seeded inputs (K: graph order)
  NAME_ref/test_data_set_N/output_K.{npy,pb}   PyTorch's outputs for them
      as .npy arrays and as TensorProtos named like the graph's inputs and
      outputs (the ONNX backend-test layout).  Data set 0 is the input the
      model was traced with (batch 2; text: [2,16]; sam_vit_b_encoder: 1);
      data set 1, where there is one, has another batch size (1; text:
      [3,37]).
  conformance/test_NAME/{model.onnx,test_data_set_N}
      symbolic links, so that `kiln-conformance --root OUT/conformance` runs
      the zoo (not resnet18_ext: its data file must lie beside the model).
Weights are torchvision's initialisation (PyTorch's default for YOLOv8n and
SAM), seeded, with every parameter that
it leaves constant (zero biases and classifier heads, unit scales, ViT's
class token) redrawn from the seeded generator, the residual branches damped
(see damp_residual_branches) and BatchNorm running statistics set from one
seeded forward pass (batch-norm layers in train mode with momentum 1, then
eval), so every output depends on the input (YOLOv8n: box and class
logits sharpened, see build_yolo; SAM: absolute and relative positions and
sharper attention, see build_sam).  The export fails if a
reference output is near zero or constant, or if its float32 value is more
than 4e-6 (relative L2) away from PyTorch's float64 value on the same input
(YOLOv8n: also its box and score parts, each on its own):
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
YOLO = "yolov8n"
SAM = "sam_vit_b_encoder"
# SAM's encoder at 256x256 (16x16 tokens): the same graph (padding, windows,
# global blocks, relative positions, neck) at 1/14 of the compute (34 G
# MACs), for runs where the full size costs too much (the sanitizer build) and
# to check the dynamic batch (batch 2 and 1).  Not in --list: not a zoo model
# of its own.
SAM_SMALL = "sam_vit_b_encoder_256"
# A U-Net-style decoder (three ConvTranspose upsamplings: 2x2/2, 4x4/2 pad 1,
# 3x3/2 with output_padding and groups, with 3x3 convolutions between): no
# zoo model has ConvTranspose, so this one times and checks the convt.gemm
# tactic against ONNX Runtime (bench/run.sh --models unet_decoder
# --model-dir ...).  Not in --list.
UNET = "unet_decoder"
ALL_MODELS = ["resnet18", "resnet18_ext", "resnet50", "mobilenet_v2", "efficientnet_b0",
              "vit_b_16", DETECTOR, TEXT, YOLO, SAM]
VARIANTS = [SAM_SMALL, UNET]
# Models that take long to export or to run on a slow machine.
BIG_MODELS = ["vit_b_16", DETECTOR, SAM]

# Largest relative L2 distance allowed between the float32 reference output
# and PyTorch's float64 output (runtimes are held to 1e-5 against it).
MAX_FLOAT64_DEVIATION = 4e-6

TEXT_VOCAB, TEXT_DIM, TEXT_HEADS, TEXT_FF, TEXT_LAYERS, TEXT_MAX_LEN = 1000, 128, 4, 256, 4, 512
YOLO_IMAGE = 640
# Gains on the weights of the head's last box and class convolutions (see
# build_yolo).
YOLO_BOX_GAIN, YOLO_CLS_GAIN = 3.0, 3.0
SAM_IMAGE = {SAM: 1024, SAM_SMALL: 256}
# Outputs whose parts along an axis are held to the float64 bound each on its
# own (axis, sizes): YOLO's box coordinates (pixels) would hide the scores.
OUTPUT_PARTS = {YOLO: (1, (4, 80))}
SAM_POS_STD = 0.1
SAM_QK_GAIN = 2.0
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


def yolov8_class(torch):
    """Ultralytics YOLOv8 (ultralytics/nn/modules: Conv, Bottleneck, C2f, SPPF,
    Detect, DFL; yolov8.yaml) at inference, for one fixed square image size:
    the anchors and strides are constants, the batch is dynamic."""
    nn = torch.nn

    class Conv(nn.Module):
        """Conv2d (no bias, padding k//2) + BatchNorm2d (eps 1e-3) + SiLU."""

        def __init__(self, c1, c2, k=1, s=1):
            super().__init__()
            self.conv = nn.Conv2d(c1, c2, k, s, k // 2, bias=False)
            self.bn = nn.BatchNorm2d(c2, eps=1e-3, momentum=0.03)
            self.act = nn.SiLU()

        def forward(self, x):
            return self.act(self.bn(self.conv(x)))

    class Bottleneck(nn.Module):
        """Two 3x3 Convs, with a residual connection when `shortcut`."""

        def __init__(self, c, shortcut):
            super().__init__()
            self.cv1 = Conv(c, c, 3)
            self.cv2 = Conv(c, c, 3)
            self.add = shortcut

        def forward(self, x):
            y = self.cv2(self.cv1(x))
            return x + y if self.add else y

    class C2f(nn.Module):
        """1x1 Conv, split in two halves, n Bottlenecks chained on the second,
        concat of the halves and every Bottleneck output, 1x1 Conv."""

        def __init__(self, c1, c2, n, shortcut):
            super().__init__()
            self.c = c2 // 2
            self.cv1 = Conv(c1, 2 * self.c, 1)
            self.cv2 = Conv((2 + n) * self.c, c2, 1)
            self.m = nn.ModuleList(Bottleneck(self.c, shortcut) for _ in range(n))

        def forward(self, x):
            y = list(self.cv1(x).chunk(2, 1))
            y.extend(m(y[-1]) for m in self.m)
            return self.cv2(torch.cat(y, 1))

    class SPPF(nn.Module):
        """1x1 Conv, three chained 5x5 max pools (stride 1), concat, 1x1 Conv."""

        def __init__(self, c1, c2, k=5):
            super().__init__()
            self.cv1 = Conv(c1, c1 // 2, 1)
            self.cv2 = Conv(c1 // 2 * 4, c2, 1)
            self.m = nn.MaxPool2d(k, 1, k // 2)

        def forward(self, x):
            y = [self.cv1(x)]
            y.extend(self.m(y[-1]) for _ in range(3))
            return self.cv2(torch.cat(y, 1))

    class DFL(nn.Module):
        """Distribution focal loss integral: softmax over reg_max bins, then
        their expectation through a fixed 1x1 conv of weights 0..reg_max-1."""

        def __init__(self, c1=16):
            super().__init__()
            self.conv = nn.Conv2d(c1, 1, 1, bias=False).requires_grad_(False)
            with torch.no_grad():
                self.conv.weight.copy_(torch.arange(c1, dtype=torch.float).view(1, c1, 1, 1))
            self.c1 = c1

        def forward(self, x):
            b, _, a = x.shape
            return self.conv(x.view(b, 4, self.c1, a).transpose(2, 1).softmax(1)).view(b, 4, a)

    class Detect(nn.Module):
        """Decoupled head: per level a box branch (2 Conv3x3, Conv2d 1x1 to
        4 * reg_max) and a class branch (2 Conv3x3, Conv2d 1x1 to nc); DFL,
        dist2bbox to (cx, cy, w, h) times the stride, sigmoid scores."""

        def __init__(self, nc, ch, strides, imgsz):
            super().__init__()
            self.nc, self.reg_max = nc, 16
            self.no = nc + 4 * self.reg_max
            c2, c3 = max(16, ch[0] // 4, 4 * self.reg_max), max(ch[0], min(nc, 100))
            self.cv2 = nn.ModuleList(nn.Sequential(Conv(c, c2, 3), Conv(c2, c2, 3),
                                                   nn.Conv2d(c2, 4 * self.reg_max, 1)) for c in ch)
            self.cv3 = nn.ModuleList(nn.Sequential(Conv(c, c3, 3), Conv(c3, c3, 3),
                                                   nn.Conv2d(c3, nc, 1)) for c in ch)
            self.dfl = DFL(self.reg_max)
            # make_anchors(offset 0.5) for imgsz x imgsz, as constants.
            points, stride = [], []
            for s in strides:
                n = imgsz // s
                sy, sx = torch.meshgrid(torch.arange(n) + 0.5, torch.arange(n) + 0.5, indexing="ij")
                points.append(torch.stack((sx, sy), -1).view(-1, 2))
                stride.append(torch.full((n * n, 1), float(s)))
            self.register_buffer("anchors", torch.cat(points).t().contiguous().unsqueeze(0))  # [1,2,A]
            self.register_buffer("strides", torch.cat(stride).t().contiguous().unsqueeze(0))  # [1,1,A]

        def forward(self, xs):
            b = xs[0].shape[0]
            x = torch.cat([torch.cat((self.cv2[i](xi), self.cv3[i](xi)), 1).view(b, self.no, -1)
                           for i, xi in enumerate(xs)], 2)
            box, cls = x.split((4 * self.reg_max, self.nc), 1)
            lt, rb = self.dfl(box).chunk(2, 1)
            x1y1, x2y2 = self.anchors - lt, self.anchors + rb
            xywh = torch.cat(((x1y1 + x2y2) / 2, x2y2 - x1y1), 1) * self.strides
            return torch.cat((xywh, cls.sigmoid()), 1)

    class YOLOv8(nn.Module):
        """Backbone (Conv/C2f with shortcuts, SPPF), PAN-FPN neck (nearest
        x2 upsampling, concat, C2f without shortcuts, stride-2 Convs) and the
        Detect head on P3, P4, P5: [batch, 3, S, S] -> [batch, 4 + nc, A]."""

        def __init__(self, nc=80, depth=0.33, width=0.25, max_channels=1024, imgsz=640):
            super().__init__()

            def ch(c):
                return int(-(-min(c, max_channels) * width // 8) * 8)

            def n(k):
                return max(round(k * depth), 1)

            self.b0 = Conv(3, ch(64), 3, 2)
            self.b1 = Conv(ch(64), ch(128), 3, 2)
            self.b2 = C2f(ch(128), ch(128), n(3), True)
            self.b3 = Conv(ch(128), ch(256), 3, 2)
            self.b4 = C2f(ch(256), ch(256), n(6), True)
            self.b5 = Conv(ch(256), ch(512), 3, 2)
            self.b6 = C2f(ch(512), ch(512), n(6), True)
            self.b7 = Conv(ch(512), ch(1024), 3, 2)
            self.b8 = C2f(ch(1024), ch(1024), n(3), True)
            self.b9 = SPPF(ch(1024), ch(1024), 5)
            self.up = nn.Upsample(None, 2, "nearest")
            self.h12 = C2f(ch(1024) + ch(512), ch(512), n(3), False)
            self.h15 = C2f(ch(512) + ch(256), ch(256), n(3), False)
            self.h16 = Conv(ch(256), ch(256), 3, 2)
            self.h18 = C2f(ch(256) + ch(512), ch(512), n(3), False)
            self.h19 = Conv(ch(512), ch(512), 3, 2)
            self.h21 = C2f(ch(512) + ch(1024), ch(1024), n(3), False)
            self.detect = Detect(nc, (ch(256), ch(512), ch(1024)), (8, 16, 32), imgsz)

        def forward(self, x):
            x = self.b2(self.b1(self.b0(x)))
            p3 = self.b4(self.b3(x))
            p4 = self.b6(self.b5(p3))
            p5 = self.b9(self.b8(self.b7(p4)))
            h12 = self.h12(torch.cat((self.up(p5), p4), 1))
            h15 = self.h15(torch.cat((self.up(h12), p3), 1))
            h18 = self.h18(torch.cat((self.h16(h15), h12), 1))
            h21 = self.h21(torch.cat((self.h19(h18), p5), 1))
            return self.detect([h15, h18, h21])

    return YOLOv8, Bottleneck


def build_yolo(name, seed, torch):
    """YOLOv8n, 80 classes, 640x640: output [batch, 84, 8400] = box (cx, cy,
    w, h in input pixels) and 80 sigmoid class scores per anchor."""
    YOLOv8, Bottleneck = yolov8_class(torch)
    torch.manual_seed(seed)
    model = YOLOv8(imgsz=YOLO_IMAGE)
    redraw_constant_parameters(model, torch)
    with torch.no_grad():
        # Damp the residual branches (see damp_residual_branches).
        for m in model.modules():
            if isinstance(m, Bottleneck) and m.add:
                m.cv2.bn.weight.uniform_(0.1, 0.3)
        # Box logits with a spread (peaked DFL distributions, boxes that
        # differ), class scores spread over (0, 1) instead of all near 0.5.
        for seq in model.detect.cv2:
            seq[-1].weight.mul_(YOLO_BOX_GAIN)
        for seq in model.detect.cv3:
            seq[-1].weight.mul_(YOLO_CLS_GAIN)
    gen = torch.Generator().manual_seed(seed + 2)
    calibrate_batchnorm(model, torch, torch.rand(4, 3, YOLO_IMAGE, YOLO_IMAGE, generator=gen))
    x0 = torch.rand(2, 3, YOLO_IMAGE, YOLO_IMAGE, generator=torch.Generator().manual_seed(seed + 1))
    x1 = torch.rand(1, 3, YOLO_IMAGE, YOLO_IMAGE, generator=torch.Generator().manual_seed(seed + 3))
    return (model.eval(), [(x0,), (x1,)], ["input"], ["output"],
            {"input": {0: "batch"}, "output": {0: "batch"}})


def sam_encoder_class(torch):
    """Segment Anything's ImageEncoderViT (segment_anything/modeling/
    image_encoder.py), ViT-B configuration, written for export: every size
    but the batch is a Python constant, and the windows keep the batch as
    an axis of its own ([batch, windows, ...] instead of [batch * windows,
    ...]), so that the exported shapes stay known (batch symbolic);
    numerically the same computation."""
    nn = torch.nn
    F = torch.nn.functional

    class ConstPad(torch.autograd.Function):
        """F.pad(x, (0, 0, 0, pw, 0, ph)) of [B, H, W, C], exported as one Pad
        with constant pads (torch 1.13 otherwise builds the pads with a
        ConstantOfShape/Concat/Slice chain that it does not fold)."""

        @staticmethod
        def forward(ctx, x, ph, pw):
            return F.pad(x, (0, 0, 0, pw, 0, ph))

        @staticmethod
        def symbolic(g, x, ph, pw):
            pads = g.op("Constant", value_t=torch.tensor([0, 0, 0, 0, 0, ph, pw, 0]))
            return g.op("Pad", x, pads)

    def window_partition(x, ws, H, W, C):
        """[B, H, W, C] -> [B, nw, ws, ws, C], zero-padded to multiples of ws."""
        ph, pw = (ws - H % ws) % ws, (ws - W % ws) % ws
        if ph or pw:
            x = ConstPad.apply(x, ph, pw)
        hp, wp = (H + ph) // ws, (W + pw) // ws
        x = x.reshape(-1, hp, ws, wp, ws, C).permute(0, 1, 3, 2, 4, 5)
        return x.reshape(-1, hp * wp, ws, ws, C)

    def window_unpartition(x, ws, H, W, C):
        """[B, nw, ws, ws, C] -> [B, H, W, C], the padding dropped."""
        hp, wp = -(-H // ws), -(-W // ws)
        x = x.reshape(-1, hp, wp, ws, ws, C).permute(0, 1, 3, 2, 4, 5)
        x = x.reshape(-1, hp * ws, wp * ws, C)
        if hp * ws > H or wp * ws > W:
            x = x[:, :H, :W, :]
        return x

    def get_rel_pos(size, rel_pos):
        """rel_pos [2 * size - 1, C] -> [size, size, C] (query, key): SAM's
        get_rel_pos for equal query and key sizes (no interpolation)."""
        q = torch.arange(size)[:, None]
        k = torch.arange(size)[None, :]
        return rel_pos[q - k + (size - 1)]

    class Attention(nn.Module):
        """Multi-head attention over windows of H x W tokens with decomposed
        relative position terms (add_decomposed_rel_pos)."""

        def __init__(self, dim, heads, size, windows):
            super().__init__()
            self.dim, self.heads, self.size, self.windows = dim, heads, size, windows
            self.scale = (dim // heads) ** -0.5
            self.qkv = nn.Linear(dim, dim * 3)
            self.proj = nn.Linear(dim, dim)
            self.rel_pos_h = nn.Parameter(torch.zeros(2 * size[0] - 1, dim // heads))
            self.rel_pos_w = nn.Parameter(torch.zeros(2 * size[1] - 1, dim // heads))

        def forward(self, x):
            # x: [B, nw, H, W, C]; q, k, v: [B, nw * heads, H * W, head_dim]
            (H, W), nw, nh, hd = self.size, self.windows, self.heads, self.dim // self.heads
            qkv = self.qkv(x).reshape(-1, nw, H * W, 3, nh, hd).permute(3, 0, 1, 4, 2, 5)
            q, k, v = qkv.reshape(3, -1, nw * nh, H * W, hd).unbind(0)
            attn = (q * self.scale) @ k.transpose(-2, -1)
            r_q = q.reshape(-1, nw * nh, H, W, hd)
            rel_h = torch.einsum("bnhwc,hkc->bnhwk", r_q, get_rel_pos(H, self.rel_pos_h))
            rel_w = torch.einsum("bnhwc,wkc->bnhwk", r_q, get_rel_pos(W, self.rel_pos_w))
            # In place: at 1024x1024 a global block's attention is 0.8 GB per
            # image (1.6 GB in the export's float64 check), once instead of
            # three times; exported as two Adds all the same.
            attn = attn.reshape(-1, nw * nh, H, W, H, W)
            attn.add_(rel_h[..., None]).add_(rel_w[..., None, :])
            attn = attn.reshape(-1, nw * nh, H * W, H * W).softmax(dim=-1)
            x = (attn @ v).reshape(-1, nw, nh, H, W, hd).permute(0, 1, 3, 4, 2, 5)
            return self.proj(x.reshape(-1, nw, H, W, self.dim))

    class MLPBlock(nn.Module):
        def __init__(self, dim, hidden):
            super().__init__()
            self.lin1 = nn.Linear(dim, hidden)
            self.lin2 = nn.Linear(hidden, dim)
            self.act = nn.GELU()

        def forward(self, x):
            return self.lin2(self.act(self.lin1(x)))

    class Block(nn.Module):
        """Pre-norm transformer block; windowed attention when window > 0,
        else global attention over the whole grid."""

        def __init__(self, dim, heads, window, grid):
            super().__init__()
            self.dim, self.window, self.grid = dim, window, grid
            self.norm1 = nn.LayerNorm(dim, eps=1e-6)
            if window:
                nw = -(-grid[0] // window) * -(-grid[1] // window)
                self.attn = Attention(dim, heads, (window, window), nw)
            else:
                self.attn = Attention(dim, heads, grid, 1)
            self.norm2 = nn.LayerNorm(dim, eps=1e-6)
            self.mlp = MLPBlock(dim, 4 * dim)

        def forward(self, x):
            (H, W), C = self.grid, self.dim
            shortcut = x
            x = self.norm1(x)
            if self.window:
                x = window_unpartition(self.attn(window_partition(x, self.window, H, W, C)),
                                       self.window, H, W, C)
            else:
                x = self.attn(x.unsqueeze(1)).reshape(-1, H, W, C)
            x = shortcut + x
            return x + self.mlp(self.norm2(x))

    class LayerNorm2d(nn.Module):
        """LayerNorm over the channels of [B, C, H, W] (eps 1e-6)."""

        def __init__(self, c, eps=1e-6):
            super().__init__()
            self.weight = nn.Parameter(torch.ones(c))
            self.bias = nn.Parameter(torch.zeros(c))
            self.eps = eps

        def forward(self, x):
            u = x.mean(1, keepdim=True)
            s = (x - u).pow(2).mean(1, keepdim=True)
            x = (x - u) / torch.sqrt(s + self.eps)
            return self.weight[:, None, None] * x + self.bias[:, None, None]

    class ImageEncoderViT(nn.Module):
        """16x16 patch embedding, absolute positions, 12 blocks (global
        attention in 2, 5, 8, 11, windows of 14 elsewhere), neck to 256
        channels: [B, 3, S, S] -> [B, 256, S/16, S/16]."""

        def __init__(self, img_size=1024, patch=16, dim=768, depth=12, heads=12, out=256,
                     window=14, global_blocks=(2, 5, 8, 11)):
            super().__init__()
            g = img_size // patch
            self.patch_embed = nn.Conv2d(3, dim, patch, patch)
            self.pos_embed = nn.Parameter(torch.zeros(1, g, g, dim))
            self.blocks = nn.ModuleList(
                Block(dim, heads, 0 if i in global_blocks else window, (g, g)) for i in range(depth))
            self.neck = nn.Sequential(nn.Conv2d(dim, out, 1, bias=False), LayerNorm2d(out),
                                      nn.Conv2d(out, out, 3, padding=1, bias=False), LayerNorm2d(out))

        def forward(self, x):
            x = self.patch_embed(x).permute(0, 2, 3, 1) + self.pos_embed
            for blk in self.blocks:
                x = blk(x)
            return self.neck(x.permute(0, 3, 1, 2))

    return ImageEncoderViT


def build_sam(name, seed, torch):
    """SAM's ViT-B image encoder at SAM_IMAGE[name]: output [batch, 256,
    S/16, S/16].  Full size: one data set, batch 1 (a batch of two costs
    minutes and gigabytes more in every runtime); the 256x256 variant checks
    batch 2 and 1."""
    torch.manual_seed(seed)
    model = sam_encoder_class(torch)(img_size=SAM_IMAGE[name])
    redraw_constant_parameters(model, torch)
    # No autograd: tracing (export_one exports with autograd on) would keep
    # every global block's 0.8 GB attention for a backward pass.
    model.requires_grad_(False)
    with torch.no_grad():
        # Positions as strong as the patch features' (std about 0.6).
        model.pos_embed.normal_(0.0, SAM_POS_STD)
        # Sharper attention than the default initialisation's (whose logits
        # have a standard deviation of about 0.2: nearly uniform weights).
        for blk in model.blocks:
            blk.attn.qkv.weight[:2 * blk.dim].mul_(SAM_QK_GAIN)
    s = SAM_IMAGE[name]
    x0 = torch.randn(1 if name == SAM else 2, 3, s, s, generator=torch.Generator().manual_seed(seed + 1))
    datasets = [(x0,)]
    if name != SAM:
        datasets.append((torch.randn(1, 3, s, s, generator=torch.Generator().manual_seed(seed + 3)),))
    return (model.eval(), datasets, ["input"], ["output"],
            {"input": {0: "batch"}, "output": {0: "batch"}})


def build_unet_decoder(name, seed, torch):
    """[N, 256, 16, 16] features -> [N, 3, 128, 128]; see UNET."""
    nn = torch.nn
    torch.manual_seed(seed)
    model = nn.Sequential(
        nn.ConvTranspose2d(256, 128, 2, stride=2), nn.ReLU(),
        nn.Conv2d(128, 128, 3, padding=1), nn.ReLU(),
        nn.ConvTranspose2d(128, 64, 4, stride=2, padding=1), nn.ReLU(),
        nn.Conv2d(64, 64, 3, padding=1), nn.ReLU(),
        nn.ConvTranspose2d(64, 32, 3, stride=2, padding=1, output_padding=1, groups=2), nn.ReLU(),
        nn.Conv2d(32, 3, 1))
    x0 = torch.randn(2, 256, 16, 16, generator=torch.Generator().manual_seed(seed + 1))
    x1 = torch.randn(1, 256, 16, 16, generator=torch.Generator().manual_seed(seed + 3))
    return (model.eval(), [(x0,), (x1,)], ["input"], ["output"],
            {"input": {0: "batch"}, "output": {0: "batch"}})


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
    if name == YOLO:
        return build_yolo(name, seed, torch)
    if name in SAM_IMAGE:
        return build_sam(name, seed, torch)
    if name == UNET:
        return build_unet_decoder(name, seed, torch)
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


def float64_deviation(m64, inputs, outputs, output_names, parts=None):
    """Largest relative L2 distance between the float32 `outputs` and those
    of m64 (the model in float64) on `inputs`: the rounding noise of a float32
    reference, which must stay well below the 1e-5 that runtimes are held to.
    parts: (axis, sizes): also each part of the outputs along axis."""
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
            if parts:
                axis, sizes = parts
                for pa, pb in zip(np.split(a, np.cumsum(sizes)[:-1], axis),
                                  np.split(b, np.cumsum(sizes)[:-1], axis)):
                    worst = max(worst, float(np.linalg.norm(pa - pb) / np.linalg.norm(pb)))
        elif not np.array_equal(a, b):
            raise RuntimeError("output '%s' differs between float32 and float64" % n)
    return worst


def check_outputs(name, outputs, output_names):
    """Refuse trivial reference outputs: constant or all near zero (each
    part of OUTPUT_PARTS on its own too)."""
    import numpy as np
    for a, n in zip(outputs, output_names):
        if a.size == 0:
            raise RuntimeError("%s: output '%s' is empty" % (name, n))
        pieces = [a]
        if name in OUTPUT_PARTS:
            axis, sizes = OUTPUT_PARTS[name]
            pieces += np.split(a, np.cumsum(sizes)[:-1], axis)
        for p in pieces:
            if a.dtype.kind == "f" and (float(np.abs(p).max()) < 1e-3 or float(p.std()) == 0.0):
                raise RuntimeError("%s: output '%s' (or a part of it) is trivial (max |y| %g, std %g)"
                                   % (name, n, float(np.abs(p).max()), float(p.std())))


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
        kw = {}
        import inspect
        if "dynamo" in inspect.signature(torch.onnx.export).parameters:
            kw["dynamo"] = False  # torch >= 2.5: keep the TorchScript exporter (same graphs as 1.13's)
        torch.onnx.export(model, datasets[0], path, export_params=True, opset_version=OPSET,
                          do_constant_folding=True, input_names=input_names,
                          output_names=output_names, dynamic_axes=dynamic, **kw)
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
            dev = float64_deviation(m64, inputs, outputs, output_names, OUTPUT_PARTS.get(name))
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
                    help="comma-separated subset of " + ",".join(ALL_MODELS + VARIANTS))
    ap.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "out"))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--force", action="store_true", help="re-export models that exist")
    ap.add_argument("--list", action="store_true", help="print the model names and exit")
    args = ap.parse_args()
    if args.list:
        print(" ".join(ALL_MODELS))
        return 0

    names = [n for n in args.models.split(",") if n]
    unknown = [n for n in names if n not in ALL_MODELS + VARIANTS]
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
