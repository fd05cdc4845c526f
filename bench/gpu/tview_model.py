#!/usr/bin/env python3
"""A ViT-style patch embedding for the NHWC Transpose view (src/cuda/exec.c, kl_cu_tview_*):
Conv (kernel = stride = 4, 3 -> 40 channels) -> Reshape [N, 40, H*W] -> Transpose (0, 2, 1)
-> Concat with an expanded class token -> Add positions -> LayerNorm-free MatMul head, plus a
second Reshape/Transpose pair whose Reshape has two readers (must stay a copy).
    python3 bench/gpu/tview_model.py OUT.onnx   (then: kiln compare OUT.onnx --providers cpu,cuda --precisions fp32,fp16)"""
import sys
import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

rng = np.random.default_rng(7)
C, K, P, H = 3, 40, 4, 28          # 28 / 4 = 7x7 = 49 patches
T = (H // P) ** 2
def init(name, a): return numpy_helper.from_array(a.astype(np.float32), name)
inits = [init("w", rng.standard_normal((K, C, P, P)) * 0.2), init("b", rng.standard_normal(K) * 0.1),
         init("cls", rng.standard_normal((1, 1, K))), init("pos", rng.standard_normal((1, T + 1, K)) * 0.1),
         init("wh", rng.standard_normal((K, 10)) * 0.3),
         numpy_helper.from_array(np.array([0, K, T], np.int64), "shp"),
         numpy_helper.from_array(np.array([1, 1, K], np.int64), "one")]
nodes = [
    helper.make_node("Conv", ["input", "w", "b"], ["c"], kernel_shape=[P, P], strides=[P, P]),
    helper.make_node("Reshape", ["c", "shp"], ["r"]),
    helper.make_node("Transpose", ["r"], ["t"], perm=[0, 2, 1]),
    helper.make_node("Shape", ["input"], ["s"]),
    helper.make_node("Slice", ["s", "z0", "z1"], ["n"]),
    helper.make_node("Concat", ["n", "one12"], ["es"], axis=0),
    helper.make_node("Expand", ["cls", "es"], ["ce"]),
    helper.make_node("Concat", ["ce", "t"], ["x"], axis=1),
    helper.make_node("Add", ["x", "pos"], ["xp"]),
    helper.make_node("MatMul", ["xp", "wh"], ["h"]),
    # a second pair: this Reshape is also read by a ReduceMean, so it is no view of the NHWC buffer
    helper.make_node("Conv", ["input", "w"], ["c2"], kernel_shape=[P, P], strides=[P, P]),
    helper.make_node("Reshape", ["c2", "shp"], ["r2"]),
    helper.make_node("Transpose", ["r2"], ["t2"], perm=[0, 2, 1]),
    helper.make_node("ReduceMean", ["r2"], ["m2"], axes=[2], keepdims=1),
    helper.make_node("MatMul", ["t2", "wh"], ["h2"]),
    helper.make_node("Concat", ["h", "h2"], ["hh"], axis=1),
    helper.make_node("Transpose", ["m2"], ["m2t"], perm=[0, 2, 1]),
    helper.make_node("MatMul", ["m2t", "wh"], ["o2"]),
    helper.make_node("Concat", ["hh", "o2"], ["output"], axis=1),
]
inits += [numpy_helper.from_array(np.array([0], np.int64), "z0"), numpy_helper.from_array(np.array([1], np.int64), "z1"),
          numpy_helper.from_array(np.array([1, 1], np.int64), "one12")]
inits[5] = numpy_helper.from_array(np.array([-1, K, T], np.int64), "shp")
g = helper.make_graph(nodes, "tview", [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", C, H, H])],
                      [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["N", 2 * T + 2, 10])], inits)
m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
onnx.checker.check_model(m)
onnx.save(m, sys.argv[1] if len(sys.argv) > 1 else "tview.onnx")
