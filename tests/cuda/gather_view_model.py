#!/usr/bin/env python3
"""Writes gather_view.onnx (argv[1]): Gathers of one constant index in the forms the cuda provider reads in place
(kl_gather_view in src/cuda/exec.c) and the forms it must not, for tests/cuda/gather_view.sh.

X [N, 5, 16] -> A = Relu(X)
  G1 = A[:, 0], G2 = A[:, -1]  (scalar indices)  -> Y1 = G1 + G2, read after C below
  G3 = A[:, [2]]               (1-element list)  -> Y2 = 2 * G3
  G4 = A[0], G5 = G4[3]        (a view of a view) -> Y3 = Sigmoid(G5)
  Y4 = A[:, 4]                 (a graph output: never a view)
  C  = Neg(A)                  (A's last reader in node order: without the view keeping A alive it could be
                                written over before Y1 is computed) -> Y5
P [N, 4, 6, 6] -> Q = Conv(P) (4 -> 8 channels, 3x3 pad 1) -> Y6 = Relu(Q[:, 2])   (a Gather of a convolution's
                                output, NHWC in FP16 plans: never a view there)
"""
import sys
import numpy as np
import onnx
from onnx import helper, numpy_helper, TensorProto as T

rng = np.random.default_rng(7)
i64 = lambda name, v: numpy_helper.from_array(np.array(v, dtype=np.int64), name)
inits = [i64("i0", 0), i64("im1", -1), i64("l2", [2]), i64("i3", 3), i64("i4", 4), i64("i2", 2),
         numpy_helper.from_array(np.float32(2.0).reshape(()), "two"),
         numpy_helper.from_array(rng.standard_normal((8, 4, 3, 3)).astype(np.float32), "W"),
         numpy_helper.from_array(rng.standard_normal(8).astype(np.float32), "B")]
G = lambda x, i, y, axis: helper.make_node("Gather", [x, i], [y], axis=axis, name="gather_" + y)
nodes = [
    helper.make_node("Relu", ["X"], ["A"], name="relu_A"),
    G("A", "i0", "G1", 1), G("A", "im1", "G2", 1), G("A", "l2", "G3", 1),
    G("A", "i0", "G4", 0), G("G4", "i3", "G5", 0), G("A", "i4", "Y4", 1),
    helper.make_node("Neg", ["A"], ["Y5"], name="neg_C"),
    helper.make_node("Add", ["G1", "G2"], ["Y1"], name="add_Y1"),
    helper.make_node("Mul", ["G3", "two"], ["Y2"], name="mul_Y2"),
    helper.make_node("Sigmoid", ["G5"], ["Y3"], name="sigmoid_Y3"),
    helper.make_node("Conv", ["P", "W", "B"], ["Q"], pads=[1, 1, 1, 1], name="conv_Q"),
    G("Q", "i2", "Q2", 1),
    helper.make_node("Relu", ["Q2"], ["Y6"], name="relu_Y6"),
]
f = lambda name, shape: helper.make_tensor_value_info(name, T.FLOAT, shape)
graph = helper.make_graph(
    nodes, "gather_view", [f("X", ["N", 5, 16]), f("P", ["N", 4, 6, 6])],
    [f("Y1", ["N", 16]), f("Y2", ["N", 1, 16]), f("Y3", [16]), f("Y4", ["N", 16]), f("Y5", ["N", 5, 16]),
     f("Y6", ["N", 6, 6])], inits)
model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], producer_name="kiln-tests")
model.ir_version = 7
onnx.checker.check_model(model)
onnx.save(model, sys.argv[1])
