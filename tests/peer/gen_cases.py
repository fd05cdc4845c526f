#!/usr/bin/python3
"""gen_cases.py — test cases that compare kiln with ONNX Runtime.

    /usr/bin/python3 tests/peer/gen_cases.py gen OUT      # models + inputs
    node tests/peer/run_ort.js OUT [NODE_MODULES]         # ORT computes the outputs
    /usr/bin/python3 tests/peer/gen_cases.py outputs OUT  # ORT outputs -> output_K.pb

"gen" writes, for every case, OUT/test_<Op>_<k>_<type>/model.onnx (one node,
or a tiny graph for If/Loop), test_data_set_0/input_K.pb (seeded random
inputs) and raw/ (the same inputs as raw little-endian files plus
manifest.json, for run_ort.js).  "outputs" turns ORT's raw outputs into
test_data_set_0/output_K.pb, so OUT is a folder in the ONNX backend-test
layout that `kiln-conformance --root OUT` runs, with the output shapes ORT
computed declared in model.onnx.  A case that ORT cannot run is removed with a
line saying why, and "outputs" then exits 1 (the generator should make only
cases ORT 1.30 runs).  Needs the onnx and numpy modules only; everything is
deterministic (seeded per case), so the cases are the same on every machine.

Floating-point inputs of the accumulating operators (Conv, MatMul, pools,
normalizations, Resize...) are drawn from a grid of multiples of 1/8 or
1/16 so that sums of products are exact in float32: the comparison
(rtol 1e-3, atol 1e-7, as for the ONNX suite) then tests the semantics
rather than the summation order.
"""
import json
import os
import shutil
import sys
import zlib

import numpy as np
import onnx
from onnx import helper, numpy_helper

ORT_TYPES = {
    np.dtype(np.float32): "float32", np.dtype(np.float64): "float64", np.dtype(np.float16): "float16",
    np.dtype(np.int8): "int8", np.dtype(np.uint8): "uint8", np.dtype(np.int16): "int16",
    np.dtype(np.uint16): "uint16", np.dtype(np.int32): "int32", np.dtype(np.uint32): "uint32",
    np.dtype(np.int64): "int64", np.dtype(np.uint64): "uint64", np.dtype(np.bool_): "bool",
    np.dtype(object): "string",
}
NP_OF_ORT = {v: k for k, v in ORT_TYPES.items()}
SHORT = {
    "float32": "f32", "float64": "f64", "float16": "f16", "int8": "i8", "uint8": "u8", "int16": "i16",
    "uint16": "u16", "int32": "i32", "uint32": "u32", "int64": "i64", "uint64": "u64", "bool": "bool",
    "string": "str",
}
_np_to_onnx = getattr(helper, "np_dtype_to_tensor_dtype", None) or (lambda d: onnx.mapping.NP_TYPE_TO_TENSOR_TYPE[d])
ONNX_OF_NP = {k: _np_to_onnx(k) for k in ORT_TYPES if k != np.dtype(object)}
ONNX_OF_NP[np.dtype(object)] = onnx.TensorProto.STRING

f32, f16, f64 = np.float32, np.float16, np.float64
i8, u8, i16, i32, i64, u32, u64 = np.int8, np.uint8, np.int16, np.int32, np.int64, np.uint32, np.uint64
INT64_MAX = np.iinfo(np.int64).max
INT64_MIN = np.iinfo(np.int64).min


def ir_for(opset):
    """The IR version that goes with an opset of the default domain."""
    return 8 if opset <= 18 else 9 if opset <= 20 else 10


class C:
    """An input given as an initializer (constant), as real models have them."""

    def __init__(self, a, dtype=None):
        self.a = np.asarray(a, dtype=dtype)


CASES = []  # (name, model, feeds [(name, array)])
_count = {}


def _name(op, first):
    k = _count.get(op, 0)
    _count[op] = k + 1
    t = SHORT.get(ORT_TYPES.get(first.dtype, ""), "x") if first is not None else "none"
    return "test_%s_%d_%s" % (op, k, t)


def R(op):
    """The random generator of the next case of op (seeded by op and case number)."""
    return np.random.RandomState(zlib.crc32(("%s/%d" % (op, _count.get(op, 0))).encode()))


def model_of(nodes, ins, outs, opset, otypes=None, extra_opsets=()):
    """A model from nodes; ins: [(name, value)] where value is an array (graph
    input) or C (initializer); outs: output names.  Returns (model, feeds)."""
    gin, inits, feeds = [], [], []
    for nm, v in ins:
        if isinstance(v, C):
            inits.append(numpy_helper.from_array(v.a, nm))
        else:
            gin.append(helper.make_tensor_value_info(nm, ONNX_OF_NP[v.dtype], list(v.shape)))
            feeds.append((nm, v))
    g = helper.make_graph(nodes, "peer", gin, [helper.make_empty_tensor_value_info(o) for o in outs],
                          initializer=inits)
    imports = [helper.make_opsetid("", opset)] + [helper.make_opsetid(d, v) for d, v in extra_opsets]
    m = helper.make_model(g, opset_imports=imports, producer_name="kiln-peer")
    m.ir_version = ir_for(opset)
    inferred = {}
    if opset <= 17:
        try:
            mi = onnx.shape_inference.infer_shapes(m)
            for o in mi.graph.output:
                if o.type.HasField("tensor_type") and o.type.tensor_type.elem_type:
                    inferred[o.name] = o.type.tensor_type.elem_type
        except Exception:
            pass
    first = next((v for _, v in ins if not isinstance(v, C)), None)
    if first is None and ins:
        first = ins[0][1].a
    del m.graph.output[:]
    for k, o in enumerate(outs):
        if otypes and k < len(otypes) and otypes[k] is not None:
            et = ONNX_OF_NP[np.dtype(otypes[k])]
        elif o in inferred:
            et = inferred[o]
        else:
            et = ONNX_OF_NP[first.dtype]
        vi = helper.make_empty_tensor_value_info(o)
        vi.type.tensor_type.elem_type = et
        m.graph.output.append(vi)
    # the output shapes are those ORT computes: filled in by write_outputs, which checks the model
    return m, feeds


def add(op, ins, attrs=None, opset=17, nout=1, otypes=None, domain="", tag=None):
    """One single-node case.  ins: arrays (graph inputs), C (initializers) or
    None (omitted optional input).  nout: number of outputs, or a list of
    output names where '' skips an optional output."""
    r_ins, names = [], []
    for i, v in enumerate(ins):
        if v is None:
            names.append("")
            continue
        nm = "x%d" % i
        names.append(nm)
        r_ins.append((nm, v if isinstance(v, C) else np.asarray(v)))
    while names and names[-1] == "":
        names.pop()
    onames = ["y%d" % i for i in range(nout)] if isinstance(nout, int) else list(nout)
    node = helper.make_node(op, names, onames, domain=domain, **(attrs or {}))
    outs = [o for o in onames if o]
    extra = [(domain, 1)] if domain else []
    m, feeds = model_of([node], r_ins, outs, opset, otypes, extra)
    first = next((v for _, v in r_ins if not isinstance(v, C)), None)
    if first is None and r_ins:
        first = r_ins[0][1].a
    nm = _name(op, first)
    if tag:
        nm += "_" + tag
    CASES.append((nm, m, feeds))


def graph_case(op, nodes, ins, outs, opset=17, otypes=None):
    """A case made of several nodes (op names the case)."""
    m, feeds = model_of(nodes, ins, outs, opset, otypes)
    first = next((v for _, v in ins if not isinstance(v, C)), None)
    CASES.append((_name(op, first), m, feeds))


# ---- value generators ---------------------------------------------------------------------

def U(r, shape, dtype=f32, lo=-2.0, hi=2.0):
    """Continuous uniform values."""
    return r.uniform(lo, hi, size=shape).astype(dtype)


def G(r, shape, dtype=f32, lo=-2.0, hi=2.0, step=0.125):
    """Values on a grid of multiples of step (exact in float16/32)."""
    return (r.randint(int(round(lo / step)), int(round(hi / step)) + 1, size=shape) * step).astype(dtype)


def I(r, shape, dtype=i32, lo=-10, hi=10):
    """Integers in [lo, hi]."""
    return r.randint(lo, hi + 1, size=shape).astype(dtype)


def B(r, shape):
    return r.randint(0, 2, size=shape).astype(np.bool_)


def V(r, shape, dtype, lo=-2.0, hi=2.0):
    """Values of any type: grid floats, small integers, random booleans."""
    dt = np.dtype(dtype)
    if dt == np.bool_:
        return B(r, shape)
    if dt.kind in "iu":
        lo_i = 0 if dt.kind == "u" else int(lo * 4)
        return I(r, shape, dtype, lo_i, int(hi * 4) if hi * 4 >= 1 else 8)
    if dt == np.dtype(object):
        words = np.array(["a", "bc", "kiln", "", "onnx", "zz"], dtype=object)
        return words[r.randint(0, len(words), size=shape)].astype(object)
    return G(r, shape, dtype, lo, hi)


# ---- elementwise ---------------------------------------------------------------------------

SHAPES1 = [(2, 3, 4, 5), (7,), (), (3, 0, 2), (1, 16, 8)]


def unary(op, types, gen, attrs_list=({},), opset=17):
    """Cases of a unary op: every type with a shape each, every attribute set with float32."""
    cases = [(t, SHAPES1[k % len(SHAPES1)], attrs_list[0]) for k, t in enumerate(types)]
    cases += [(types[0], SHAPES1[(k + 1) % len(SHAPES1)], a) for k, a in enumerate(attrs_list[1:])]
    cases.append((types[0], (4, 6, 9), attrs_list[-1]))
    for t, shape, a in cases:
        r = R(op)
        add(op, [gen(r, shape, t)], a, opset=opset)


def cont(lo, hi):
    return lambda r, s, t: U(r, s, t, lo, hi)


def grid(lo, hi, step=1 / 16):
    return lambda r, s, t: V(r, s, t, lo, hi) if np.dtype(t).kind in "iub" else G(r, s, t, lo, hi, step)


def gen_unary():
    F = [f32, f16, f64]
    unary("Relu", [f32, f16, f64, i8, i32], grid(-4, 4), opset=14)
    unary("LeakyRelu", F, cont(-4, 4), [{}, {"alpha": 0.2}, {"alpha": -1.5}], opset=16)
    unary("Elu", [f32, f16], cont(-4, 4), [{}, {"alpha": 0.5}])
    unary("Selu", [f32, f16], cont(-4, 4), [{}, {"alpha": 1.2, "gamma": 0.9}])
    unary("Sigmoid", F, cont(-8, 8))
    unary("HardSigmoid", [f32, f16], cont(-6, 6), [{}, {"alpha": 0.5, "beta": 0.25}])
    unary("HardSwish", [f32, f16], grid(-5, 5))
    unary("Tanh", F, cont(-5, 5))
    unary("Erf", [f32, f16], cont(-3, 3), opset=13)
    unary("Softplus", [f32, f16], cont(-4, 6))
    unary("Mish", F, cont(-4, 6), opset=18)
    unary("Gelu", [f32, f16], cont(-3, 3), [{}, {"approximate": "tanh"}], opset=20)
    unary("Sqrt", F, cont(0, 9))
    unary("Reciprocal", F, cont(0.25, 4))
    unary("Exp", F, cont(-6, 6))
    unary("Log", F, cont(0.01, 20))
    unary("Abs", [f32, f16, f64, i8, i16, i32, i64, u8], grid(-4, 4))
    unary("Neg", [f32, f16, f64, i8, i32, i64], grid(-4, 4))
    unary("Floor", F, grid(-4, 4, 1 / 8))
    unary("Ceil", F, grid(-4, 4, 1 / 8))
    unary("Round", F, grid(-4, 4, 1 / 4))
    unary("Not", [np.bool_], lambda r, s, t: B(r, s))
    # values that the float types cannot keep finite / special values
    add("Sqrt", [np.array([-1.0, 0.0, -0.0, np.inf, np.nan, 2.0], f32)])
    add("Log", [np.array([0.0, -1.0, np.inf, np.nan, 1.0, 1e-30], f32)])
    add("Exp", [np.array([100.0, -100.0, np.inf, -np.inf, np.nan, 0.0], f32)])
    add("Sigmoid", [np.array([100.0, -100.0, np.inf, -np.inf, 0.0, -20.0], f32)])
    add("Tanh", [np.array([30.0, -30.0, np.inf, -np.inf, 0.0, 1e-4], f32)])
    add("Round", [np.array([0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 0.49999997, 1e9 + 0.5, np.nan, np.inf], f32)])
    # PRelu: slope broadcast to X (unidirectional)
    for t, xs, ss in [(f32, (2, 3, 4, 4), (3, 1, 1)), (f32, (2, 3, 5), (5,)), (f32, (4, 6), (1,)),
                      (f16, (2, 3, 4), (2, 3, 4)), (f64, (3, 4), (4,)), (i32, (2, 5), (5,)),
                      (i64, (2, 5), (1, 5))]:
        r = R("PRelu")
        add("PRelu", [V(r, xs, t, -4, 4), V(r, ss, t, -1, 1)], opset=16)
    r = R("PRelu")
    add("PRelu", [G(r, (1, 8, 3, 3)), C(G(r, (8, 1, 1)))], opset=16)


def gen_softmax():
    for op in ("Softmax", "LogSoftmax"):
        for t, shape, axis, opset in [(f32, (2, 3, 4), -1, 13), (f32, (2, 3, 4), 0, 13), (f32, (2, 3, 4), 1, 13),
                                      (f16, (3, 10), -1, 13), (f64, (2, 5, 6), 2, 13), (f32, (2, 3, 4), 1, 11),
                                      (f32, (4, 0, 3), -1, 13), (f32, (5,), 0, 13)]:
            r = R(op)
            add(op, [U(r, shape, t, -5, 5)], {"axis": axis}, opset=opset)
        r = R(op)
        x = U(r, (3, 8), f32, -3, 3)
        x[0] += 500.0
        x[1, 3] = -1e30
        add(op, [x], {"axis": 1}, opset=13)
        r = R(op)
        add(op, [U(r, (2, 3, 4), f32)], {}, opset=13)


BCAST = [((2, 3, 4), (2, 3, 4)), ((2, 3, 4), (4,)), ((2, 1, 4), (1, 3, 1)), ((), (3, 2)),
         ((5, 1, 1, 3), (4, 1)), ((0, 3), (1, 3))]


def gen_binary():
    arith = {"Add": [f32, f16, f64, i32, i64, i8, u8], "Sub": [f32, f16, f64, i32, i64],
             "Mul": [f32, f16, f64, i32, i64, u8], "Div": [f32, f16, f64, i32, i64]}
    for op, types in arith.items():
        for k, (sa, sb) in enumerate(BCAST):
            r = R(op)
            a, b = G(r, sa, f32, -4, 4), G(r, sb, f32, -4, 4)
            if op == "Div":
                b = np.where(np.abs(b) < 0.25, 0.5, b).astype(f32)
                a = U(r, sa, f32, -4, 4)
            add(op, [a, b], opset=14)
        for k, t in enumerate(types[1:]):
            r = R(op)
            sa, sb = BCAST[k % 3 + 1]
            a, b = V(r, sa, t, -4, 4), V(r, sb, t, -4, 4)
            if op == "Div" and np.dtype(t).kind in "iu":
                b = np.where(b == 0, 3, b).astype(t)
            if op == "Div" and np.dtype(t).kind == "f":
                b = np.where(np.abs(b) < 0.25, 0.5, b).astype(t)
            add(op, [a, b], opset=14)
        r = R(op)
        add(op, [G(r, (2, 3), f32), C(G(r, (3,), f32, 0.5, 2))], opset=14)
    # integer division with mixed signs (truncation)
    r = R("Div")
    add("Div", [np.array([7, -7, 7, -7, 0, 9, -9], i32), np.array([2, 2, -2, -2, 3, -4, 4], i32)], opset=14)
    add("Div", [np.array([7, -7, 7, -7, 0], i64), np.array([2, 2, -2, -2, 5], i64)], opset=14)
    add("Div", [np.array([1.0, -1.0, 0.0, 0.0], f32), np.array([0.0, 0.0, 0.0, -0.0], f32)], opset=14)
    # Pow: float bases > 0, mixed exponent types
    for ta, tb, sa, sb in [(f32, f32, (2, 3, 4), (2, 3, 4)), (f32, f32, (3, 4), (4,)), (f64, f64, (5,), ()),
                           (f16, f16, (2, 3), (2, 3)), (f32, i64, (2, 3), (3,)), (f32, i32, (4,), ()),
                           (i32, i32, (2, 4), (4,)), (i64, i64, (6,), (6,)), (i64, f32, (3,), (3,))]:
        r = R("Pow")
        if np.dtype(ta).kind == "f":
            a = U(r, sa, ta, 0.1, 3)
        else:
            a = I(r, sa, ta, -3, 3)
        if np.dtype(tb).kind == "f":
            b = U(r, sb, tb, -2, 2) if np.dtype(ta).kind == "f" else G(r, sb, tb, 0, 3, 1.0)
        else:
            b = I(r, sb, tb, 0, 3) if np.dtype(ta).kind in "iu" else I(r, sb, tb, -2, 3)
        add("Pow", [a, b], opset=15)
    add("Pow", [np.array([-2.0, -2.0, 0.0, 0.0, 4.0, -8.0], f32), np.array([2.0, 3.0, 0.0, -1.0, 0.5, 1 / 3], f32)],
        opset=15)
    # comparisons
    for op in ("Equal", "Less", "Greater", "LessOrEqual", "GreaterOrEqual"):
        types = [f32, i32, i64, f16, f64, u8] + ([np.bool_] if op == "Equal" else [])
        for k, t in enumerate(types):
            r = R(op)
            sa, sb = BCAST[k % len(BCAST)]
            a = V(r, sa, t, -1, 1) if t != f32 else G(r, sa, t, -1, 1, 0.5)
            b = V(r, sb, t, -1, 1) if t != f32 else G(r, sb, t, -1, 1, 0.5)
            add(op, [a, b], opset=16 if op in ("LessOrEqual", "GreaterOrEqual") else 13)
        r = R(op)
        add(op, [np.array([np.nan, 1.0, np.inf, -np.inf, 0.0], f32), np.array([np.nan, np.nan, np.inf, 0.0, -0.0], f32)],
            opset=13)
    add("Equal", [np.array(["a", "b", "kiln", ""], dtype=object), np.array(["a", "c", "kiln", ""], dtype=object)],
        opset=19, otypes=[np.bool_])
    for op in ("And", "Or"):
        for sa, sb in BCAST[:4] + [((0, 2), (2,))]:
            r = R(op)
            add(op, [B(r, sa), B(r, sb)])
    # Where
    for t, sc, sx, sy in [(f32, (2, 3, 4), (2, 3, 4), (2, 3, 4)), (f32, (3, 1), (1, 4), ()),
                          (i64, (2, 1, 4), (3, 1), (1, 3, 4)), (f16, (5,), (5,), (5,)),
                          (f64, (2, 2), (2, 2), (2,)), (i32, (), (3,), (2, 3)), (u8, (0, 3), (1, 3), (3,)),
                          (object, (4,), (4,), (4,))]:
        r = R("Where")
        add("Where", [B(r, sc), V(r, sx, t), V(r, sy, t)], opset=16)


def gen_variadic():
    sets = [[(3, 4)], [(3, 4), (3, 4)], [(2, 3, 4), (4,), (3, 1)], [(1,), (5, 1), (1, 6)], [(0, 2), (2,)]]
    for op, types in [("Min", [f32, f16, f64, i32, i64, u8]), ("Max", [f32, f16, f64, i32, i64, u8]),
                      ("Mean", [f32, f16]), ("Sum", [f32, f16, f64])]:
        for shapes in sets:
            r = R(op)
            add(op, [G(r, s, f32, -4, 4) for s in shapes], opset=13)
        for k, t in enumerate(types[1:]):
            r = R(op)
            add(op, [V(r, s, t, -4, 4) for s in sets[k % 3 + 1]], opset=13)
        if op in ("Min", "Max"):
            r = R(op)
            add(op, [np.array([np.nan, 1.0, 2.0, np.nan], f32), np.array([0.0, np.nan, 3.0, np.nan], f32)], opset=13)
    # Clip
    for t, mn, mx in [(f32, -1.0, 1.5), (f32, None, 0.5), (f32, -0.5, None), (f32, None, None), (f16, -1.0, 1.0),
                      (f64, 0.0, 6.0), (i32, -3, 4), (i64, -2, 2), (u8, 2, 5), (i8, -3, 3), (f32, 2.0, 1.0)]:
        r = R("Clip")
        x = V(r, (2, 3, 4), t, -4, 4)
        ins = [x, None if mn is None else C(np.array(mn, t)), None if mx is None else C(np.array(mx, t))]
        add("Clip", ins, opset=13)
    r = R("Clip")
    add("Clip", [G(r, (3, 5)), np.array(-0.5, f32), np.array(0.75, f32)], opset=13)
    add("Clip", [G(r, (3, 5)), np.array(0.0, f32), np.array(6.0, f32)], opset=11)
    add("Clip", [G(r, (3, 5))], {"min": -1.0, "max": 0.5}, opset=6)
    add("Clip", [np.array([np.nan, np.inf, -np.inf, 0.3], f32), C(np.array(0.0, f32)), C(np.array(1.0, f32))], opset=13)


# ---- normalization -------------------------------------------------------------------------

def gen_norm():
    for t, shape, eps in [(f32, (2, 3, 4, 4), 1e-5), (f32, (2, 3), 1e-5), (f32, (1, 4, 3, 3, 2), 1e-3),
                          (f16, (2, 3, 4, 4), 1e-5), (f64, (2, 5, 3), 1e-5), (f32, (3, 6, 7), 0.1)]:
        r = R("BatchNormalization")
        c = shape[1]
        add("BatchNormalization", [G(r, shape, t), G(r, (c,), t), G(r, (c,), t), G(r, (c,), t),
                                   G(r, (c,), t, 0.25, 2)], {"epsilon": eps}, opset=15)
    r = R("BatchNormalization")
    add("BatchNormalization", [G(r, (2, 4, 5, 5)), C(G(r, (4,))), C(G(r, (4,))), C(G(r, (4,))),
                               C(G(r, (4,), f32, 0.5, 2))], opset=14)
    add("BatchNormalization", [G(r, (2, 4, 5, 5)), G(r, (4,)), G(r, (4,)), G(r, (4,)),
                               G(r, (4,), f32, 0.5, 2)], {"momentum": 0.8}, opset=9)
    for t, shape, eps in [(f32, (2, 3, 5), 1e-5), (f32, (2, 3, 4, 4), 1e-5), (f32, (1, 2, 3, 4, 5), 0.01),
                          (f16, (2, 4, 6), 1e-5)]:
        r = R("InstanceNormalization")
        c = shape[1]
        add("InstanceNormalization", [G(r, shape, t), G(r, (c,), t), G(r, (c,), t)], {"epsilon": eps})
    for t, shape, axis, bias, eps in [(f32, (2, 3, 8), -1, True, 1e-5), (f32, (2, 3, 4, 4), 1, True, 1e-5),
                                      (f32, (4, 6, 5), -2, False, 1e-5), (f16, (3, 16), -1, True, 1e-5),
                                      (f64, (2, 4, 3), 2, True, 1e-3), (f32, (5, 4), 0, True, 1e-5)]:
        r = R("LayerNormalization")
        ns = shape[axis % len(shape):]
        ins = [G(r, shape, t), G(r, ns, t), G(r, ns, t) if bias else None]
        add("LayerNormalization", ins, {"axis": axis, "epsilon": eps}, opset=17)
    r = R("LayerNormalization")
    add("LayerNormalization", [G(r, (2, 3, 8)), G(r, (8,)), G(r, (8,))], {}, opset=17, nout=3,
        otypes=[f32, f32, f32])
    add("LayerNormalization", [G(r, (2, 3, 4)), G(r, (3, 4)), G(r, (3, 4))], {"axis": 1}, opset=17, nout=3,
        otypes=[f32, f32, f32])
    add("LayerNormalization", [G(r, (4, 8), f16), G(r, (8,), f16), G(r, (8,), f16)], {"stash_type": 1},
        opset=17, nout=3, otypes=[f16, f32, f32])
    for t, shape, groups, opset in [(f32, (2, 6, 4, 4), 3, 18), (f32, (2, 4, 5), 2, 18), (f32, (1, 6, 3, 3), 6, 18),
                                    (f32, (2, 6, 4, 4), 3, 21), (f32, (2, 8, 5), 2, 21), (f16, (2, 4, 3, 3), 2, 21),
                                    (f64, (1, 6, 2, 2), 1, 21)]:
        r = R("GroupNormalization")
        n = groups if opset == 18 else shape[1]
        add("GroupNormalization", [G(r, shape, t), G(r, (n,), t), G(r, (n,), t)],
            {"num_groups": groups, "epsilon": 1e-5}, opset=opset)


# ---- convolution, matmul -------------------------------------------------------------------

def gen_conv():
    # (x shape, w shape, attrs, bias)
    cfg = [((1, 3, 7, 7), (4, 3, 3, 3), {"pads": [1, 1, 1, 1]}, True),
           ((2, 4, 9, 8), (6, 4, 3, 2), {"strides": [2, 3], "pads": [1, 0, 2, 1]}, False),
           ((1, 2, 10, 10), (3, 2, 3, 3), {"dilations": [2, 2], "pads": [2, 2, 2, 2]}, True),
           ((1, 4, 6, 6), (6, 2, 3, 3), {"group": 2}, True),
           ((1, 8, 7, 7), (8, 1, 3, 3), {"group": 8, "strides": [2, 2], "pads": [1, 1, 1, 1]}, True),
           ((2, 3, 20), (5, 3, 4), {"strides": [2], "pads": [1, 2], "dilations": [2]}, True),
           ((1, 2, 5, 6, 4), (3, 2, 3, 3, 2), {"pads": [1, 1, 0, 1, 1, 1]}, True),
           ((1, 3, 8, 7), (4, 3, 3, 3), {"auto_pad": "SAME_UPPER", "strides": [2, 2]}, True),
           ((1, 3, 8, 7), (4, 3, 4, 4), {"auto_pad": "SAME_LOWER", "strides": [2, 1]}, False),
           ((1, 3, 8, 7), (4, 3, 3, 2), {"auto_pad": "VALID", "strides": [1, 2]}, True),
           ((2, 16, 5, 5), (8, 16, 1, 1), {}, True),
           ((1, 3, 7, 7), (2, 3, 3, 3), {"kernel_shape": [3, 3], "strides": [3, 3]}, True),
           ((1, 1, 4, 4), (1, 1, 5, 5), {"pads": [2, 2, 2, 2]}, False),
           ((1, 6, 6, 5), (4, 3, 2, 2), {"group": 2, "dilations": [2, 1], "strides": [1, 2]}, True)]
    for k, (xs, ws, a, bias) in enumerate(cfg):
        r = R("Conv")
        ins = [G(r, xs, f32, -1, 1), G(r, ws, f32, -1, 1), G(r, (ws[0],), f32) if bias else None]
        if k == 4:
            ins[1] = C(ins[1])
            ins[2] = C(ins[2])
        add("Conv", ins, a, opset=11)
    for t in (f16,):
        r = R("Conv")
        add("Conv", [G(r, (1, 2, 6, 6), t, -1, 1, 0.25), G(r, (3, 2, 3, 3), t, -1, 1, 0.25),
                     G(r, (3,), t, -1, 1, 0.25)], {"pads": [1, 1, 1, 1]}, opset=11)
    # ConvTranspose
    cfg = [((1, 2, 4, 4), (2, 3, 3, 3), {}, True),
           ((1, 2, 4, 5), (2, 3, 3, 3), {"strides": [2, 2], "pads": [1, 1, 1, 1], "output_padding": [1, 1]}, True),
           ((2, 3, 3, 3), (3, 2, 2, 2), {"strides": [2, 2]}, False),
           ((1, 2, 4, 4), (2, 2, 3, 3), {"dilations": [2, 2], "pads": [1, 0, 1, 2]}, True),
           ((1, 4, 3, 3), (4, 2, 3, 3), {"group": 2, "strides": [2, 1]}, True),
           ((2, 3, 7), (3, 4, 3), {"strides": [3], "pads": [1, 1]}, True),
           ((1, 2, 3, 3, 2), (2, 2, 2, 2, 2), {"strides": [2, 2, 2]}, True),
           ((1, 2, 3, 3), (2, 3, 3, 3), {"strides": [2, 2], "output_shape": [8, 7]}, False),
           ((1, 2, 3, 4), (2, 3, 3, 3), {"strides": [2, 2], "auto_pad": "SAME_UPPER"}, True),
           ((1, 2, 3, 4), (2, 3, 4, 4), {"strides": [2, 2], "auto_pad": "SAME_LOWER"}, False),
           ((1, 8, 4, 4), (8, 1, 4, 4), {"group": 8, "strides": [2, 2], "pads": [1, 1, 1, 1]}, True),
           ((1, 3, 5, 5), (3, 2, 3, 3), {"kernel_shape": [3, 3], "output_padding": [1, 0], "strides": [2, 2]}, True)]
    for xs, ws, a, bias in cfg:
        r = R("ConvTranspose")
        cout = ws[1] * a.get("group", 1)
        add("ConvTranspose", [G(r, xs, f32, -1, 1), G(r, ws, f32, -1, 1), G(r, (cout,), f32) if bias else None], a,
            opset=11)
    r = R("ConvTranspose")
    add("ConvTranspose", [G(r, (1, 2, 3, 3), f16, -1, 1, 0.25), G(r, (2, 2, 3, 3), f16, -1, 1, 0.25)],
        {"strides": [2, 2]}, opset=11)


def gen_matmul():
    for t, sa, sb in [(f32, (3, 4), (4, 5)), (f32, (2, 3, 4), (4, 5)), (f32, (4,), (4, 5)), (f32, (3, 4), (4,)),
                      (f32, (2, 1, 3, 4), (3, 4, 5)), (f32, (4,), (4,)), (f32, (0, 4), (4, 3)), (f32, (3, 0), (0, 2)),
                      (f32, (2, 8, 16), (2, 16, 8)), (f16, (3, 8), (8, 5)), (f64, (2, 3, 4), (2, 4, 2)),
                      (i32, (3, 4), (4, 2)), (i64, (2, 3), (3, 3)), (u32, (2, 2), (2, 2)), (u64, (2, 3), (3, 1))]:
        r = R("MatMul")
        add("MatMul", [V(r, sa, t, -1, 1), V(r, sb, t, -1, 1)], opset=13)
    r = R("MatMul")
    add("MatMul", [G(r, (2, 5, 6)), C(G(r, (6, 7)))], opset=13)
    # Gemm: (A shape, B shape, C shape or None, attrs)
    for t, sa, sb, sc, a in [(f32, (3, 4), (4, 5), (5,), {}), (f32, (4, 3), (4, 5), (1, 5), {"transA": 1}),
                             (f32, (3, 4), (5, 4), (3, 1), {"transB": 1, "alpha": 0.5, "beta": 2.0}),
                             (f32, (4, 3), (5, 4), (), {"transA": 1, "transB": 1}),
                             (f32, (3, 4), (4, 5), None, {"alpha": 2.0}), (f32, (3, 4), (4, 5), (3, 5), {"beta": 0.0}),
                             (f16, (2, 8), (8, 4), (4,), {}), (f64, (3, 2), (2, 2), (3, 2), {}),
                             (f32, (1, 16), (10, 16), (10,), {"transB": 1})]:
        r = R("Gemm")
        add("Gemm", [G(r, sa, t, -1, 1, 0.25), G(r, sb, t, -1, 1, 0.25),
                     None if sc is None else G(r, sc, t, -1, 1, 0.25)], a, opset=13)
    r = R("Gemm")
    add("Gemm", [G(r, (2, 6)), C(G(r, (4, 6))), C(G(r, (4,)))], {"transB": 1}, opset=11)
    # Einsum
    for eq, shapes, t in [("ij,jk->ik", [(3, 4), (4, 5)], f32), ("bij,bjk->bik", [(2, 3, 4), (2, 4, 5)], f32),
                          ("ii->i", [(4, 4)], f32), ("ij->ji", [(3, 5)], f32), ("i,i->", [(6,), (6,)], f32),
                          ("...ij,...jk->...ik", [(2, 2, 3, 4), (2, 2, 4, 3)], f32),
                          ("bhqd,bhkd->bhqk", [(1, 2, 3, 4), (1, 2, 5, 4)], f32), ("ij->", [(3, 4)], f32),
                          ("ij,jk", [(2, 3), (3, 4)], f32), ("i,j->ij", [(3,), (4,)], f32),
                          ("bij->bj", [(2, 3, 4)], f64), ("ij,ij->i", [(3, 4), (3, 4)], i32),
                          ("ij,jk->ik", [(3, 4), (4, 2)], i64), ("abc,cd->abd", [(2, 3, 4), (4, 2)], f16),
                          ("ijk,ikl,ilm->ijm", [(2, 2, 3), (2, 3, 2), (2, 2, 2)], f32), ("ji", [(3, 2)], f32)]:
        r = R("Einsum")
        add("Einsum", [V(r, s, t, -1, 1) for s in shapes], {"equation": eq}, opset=12)


# ---- pooling ---------------------------------------------------------------------------------

def gen_pool():
    cfg = [((1, 3, 8, 8), {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1]}),
           ((2, 2, 6, 7), {"kernel_shape": [2, 2], "strides": [2, 2]}),
           ((1, 2, 7, 7), {"kernel_shape": [3, 3], "strides": [2, 2], "ceil_mode": 1}),
           ((1, 2, 8, 8), {"kernel_shape": [2, 3], "dilations": [2, 2]}),
           ((2, 3, 11), {"kernel_shape": [3], "strides": [2], "pads": [1, 1]}),
           ((1, 2, 4, 5, 6), {"kernel_shape": [2, 2, 3], "strides": [2, 1, 2]}),
           ((1, 2, 7, 6), {"kernel_shape": [3, 2], "strides": [2, 2], "auto_pad": "SAME_UPPER"}),
           ((1, 2, 7, 6), {"kernel_shape": [3, 3], "strides": [2, 2], "auto_pad": "SAME_LOWER"}),
           ((1, 1, 5, 5), {"kernel_shape": [5, 5], "pads": [2, 2, 2, 2]}),
           ((1, 2, 6, 6), {"kernel_shape": [3, 3], "strides": [3, 3], "pads": [1, 0, 1, 2], "ceil_mode": 1})]
    for xs, a in cfg:
        r = R("MaxPool")
        add("MaxPool", [U(r, xs)], a, opset=12)
    for t in (f16, f64, i8, u8):
        r = R("MaxPool")
        add("MaxPool", [V(r, (1, 2, 5, 5), t, -4, 4)], {"kernel_shape": [2, 2], "pads": [1, 1, 0, 0]}, opset=12)
    for so in (0, 1):
        r = R("MaxPool")
        add("MaxPool", [U(r, (2, 2, 5, 6))], {"kernel_shape": [2, 2], "strides": [1, 2], "pads": [1, 0, 0, 1],
                                              "storage_order": so}, opset=12, nout=2, otypes=[f32, i64])
    r = R("MaxPool")
    add("MaxPool", [U(r, (1, 2, 9, 9))], {"kernel_shape": [3, 3], "dilations": [2, 2], "strides": [2, 2]}, opset=12,
        nout=2, otypes=[f32, i64])
    for k, (xs, a) in enumerate(cfg):
        if "dilations" in a:
            continue
        r = R("AveragePool")
        a = dict(a)
        if k % 2 == 0 and "auto_pad" not in a:
            a["count_include_pad"] = 1
        add("AveragePool", [G(r, xs)], a, opset=11)
    r = R("AveragePool")
    add("AveragePool", [G(r, (1, 2, 6, 6), f16)], {"kernel_shape": [3, 3], "pads": [1, 1, 1, 1]}, opset=11)
    add("AveragePool", [G(r, (1, 2, 8, 8))], {"kernel_shape": [2, 2], "dilations": [2, 2], "pads": [1, 1, 1, 1]},
        opset=19)
    add("AveragePool", [G(r, (1, 2, 7, 7))], {"kernel_shape": [3, 3], "strides": [2, 2], "ceil_mode": 1,
                                              "count_include_pad": 1, "pads": [1, 1, 1, 1]}, opset=19)
    for op in ("GlobalAveragePool", "GlobalMaxPool"):
        for t, xs in [(f32, (1, 3, 5, 5)), (f32, (2, 4, 7)), (f32, (1, 2, 3, 4, 5)), (f16, (2, 3, 4, 4)),
                      (f32, (2, 8, 1, 1))]:
            r = R(op)
            add(op, [G(r, xs, t)], opset=13)


# ---- shape manipulation ----------------------------------------------------------------------

def gen_tensor():
    for t, xs, axis in [(f32, (2, 3, 4, 5), 1), (f32, (2, 3, 4), 0), (i64, (2, 3, 4), -1), (f16, (3, 4), 2),
                        (np.bool_, (2, 3, 2), -2), (f32, (5,), 1), (u8, (2, 0, 3), 2), (object, (2, 3), 1)]:
        r = R("Flatten")
        add("Flatten", [V(r, xs, t)], {"axis": axis}, opset=13)
    r = R("Flatten")
    add("Flatten", [U(r, (2, 3, 4))], {}, opset=13)
    for t, xs, shape, allowzero, const in [(f32, (2, 3, 4), [4, 6], 0, True), (f32, (2, 3, 4), [-1, 4], 0, True),
                                          (f32, (2, 3, 4), [0, -1], 0, False), (i64, (2, 3, 4), [2, 0, 2, 2], 0, True),
                                          (f16, (6,), [1, 2, 1, 3], 0, False), (np.bool_, (4, 2), [8], 0, True),
                                          (f32, (0, 3), [3, 0], 1, True), (f32, (0, 3), [0, 4], 0, True),
                                          (f32, (1,), [], 0, True), (i32, (2, 3, 4), [-1], 0, False)]:
        r = R("Reshape")
        s = np.array(shape, i64)
        add("Reshape", [V(r, xs, t), C(s) if const else s], {"allowzero": allowzero} if allowzero else {},
            opset=14)
    for t, xs, perm in [(f32, (2, 3, 4), None), (f32, (2, 3, 4), [1, 0, 2]), (f32, (2, 3, 4, 5), [0, 2, 3, 1]),
                        (i64, (3, 4), [1, 0]), (f16, (2, 3, 4, 5), [3, 1, 0, 2]), (u8, (1, 2, 3, 4, 2), [4, 0, 3, 1, 2]),
                        (np.bool_, (2, 0, 3), [2, 1, 0]), (f32, (), None), (object, (2, 3), [1, 0])]:
        r = R("Transpose")
        add("Transpose", [V(r, xs, t)], {"perm": perm} if perm is not None else {}, opset=13)
    for t, shapes, axis in [(f32, [(2, 3), (2, 4)], 1), (f32, [(2, 3), (1, 3), (3, 3)], 0),
                            (f32, [(2, 3, 4), (2, 3, 1)], -1), (i64, [(3,), (2,), (0,)], 0),
                            (f16, [(1, 2, 2), (1, 2, 2)], -2), (np.bool_, [(2, 2), (2, 1)], 1),
                            (u8, [(2, 0, 2), (2, 3, 2)], 1), (f32, [(4, 5)], 0), (object, [(2,), (1,)], 0)]:
        r = R("Concat")
        add("Concat", [V(r, s, t) for s in shapes], {"axis": axis}, opset=13)
    # Split
    for t, xs, axis, split, nout, opset in [(f32, (6, 4), 0, None, 3, 13), (f32, (2, 7), 1, [2, 5], 2, 13),
                                            (i64, (2, 3, 6), -1, [1, 2, 3], 3, 13), (f16, (4, 4), 1, None, 2, 13),
                                            (f32, (7, 2), 0, None, 3, 18), (f32, (2, 5), 1, [0, 3, 2], 3, 13),
                                            (np.bool_, (6,), 0, [3, 3], 2, 13), (f32, (2, 10), -1, None, 4, 18)]:
        r = R("Split")
        a = {"axis": axis}
        if opset >= 18 and split is None:
            a["num_outputs"] = nout
        add("Split", [V(r, xs, t), None if split is None else C(np.array(split, i64))], a, opset=opset, nout=nout,
            otypes=[t] * nout)
    r = R("Split")
    add("Split", [U(r, (6, 2))], {"axis": 0, "split": [1, 5]}, opset=11, nout=2)
    # Slice: (x shape, starts, ends, axes, steps, as constants)
    for t, xs, st, en, ax, sp, const in [
            (f32, (5, 6), [1, 2], [4, 5], None, None, True),
            (f32, (5, 6), [0], [INT64_MAX], [1], [2], True),
            (f32, (5, 6, 3), [-1], [INT64_MIN], [0], [-1], True),
            (f32, (5, 6), [4, -2], [0, -100], [0, 1], [-2, -1], True),
            (i64, (10,), [-3], [100], [0], [1], False),
            (f32, (4, 5), [10], [20], [1], [1], True),
            (f32, (3, 4, 5), [1, 0], [3, 4], [-1, -3], [1, 3], False),
            (f16, (2, 8), [7], [-9], [1], [-3], True),
            (np.bool_, (4, 4), [1, 1], [3, 3], [0, 1], None, True),
            (f32, (6,), [5], [2], [0], [1], True),
            (object, (5,), [1], [4], [0], [2], True)]:
        r = R("Slice")
        ins = [V(r, xs, t), np.array(st, i64), np.array(en, i64),
               None if ax is None else np.array(ax, i64), None if sp is None else np.array(sp, i64)]
        if const:
            ins = [ins[0]] + [None if v is None else C(v) for v in ins[1:]]
        if ins[3] is None and ins[4] is not None:
            ins[3] = C(np.arange(len(st), dtype=i64))
        add("Slice", ins, opset=13)
    r = R("Slice")
    add("Slice", [U(r, (4, 6)), C(np.array([1, 2], i32)), C(np.array([3, 6], i32)), C(np.array([0, 1], i32))],
        opset=13)
    # Gather
    for t, xs, idx, axis in [(f32, (5, 4), [0, 2, 4], 0), (f32, (5, 4), [[1, -1], [0, 3]], 1), (f32, (3, 4, 5), 2, -1),
                             (i64, (6,), [5, 0, -6, 1], 0), (f16, (2, 3, 4), [[0, 1, 0]], 1),
                             (np.bool_, (4, 2), [3, 3], 0), (f32, (3, 4), [], 1), (object, (4,), [2, 0], 0)]:
        r = R("Gather")
        add("Gather", [V(r, xs, t), np.array(idx, i64)], {"axis": axis}, opset=13)
    r = R("Gather")
    add("Gather", [U(r, (10, 8)), np.array([[1, 9], [-10, 3]], i32)], {"axis": 0}, opset=13)
    add("Gather", [C(G(r, (50, 16))), np.array([[3, 7, 49], [0, 0, 12]], i64)], {"axis": 0}, opset=13)
    # GatherElements
    for t, xs, ishape, axis in [(f32, (3, 4), (3, 2), 1), (f32, (3, 4), (2, 4), 0), (i64, (2, 3, 4), (2, 3, 2), -1),
                                (f16, (2, 3, 4), (1, 3, 4), 0), (i32, (4,), (6,), 0), (f32, (3, 3), (0, 3), 0)]:
        r = R("GatherElements")
        n = xs[axis]
        add("GatherElements", [V(r, xs, t), r.randint(-n, n, size=ishape).astype(i64)], {"axis": axis}, opset=13)
    r = R("GatherElements")
    add("GatherElements", [U(r, (3, 5)), r.randint(0, 5, size=(3, 5)).astype(i32)], {"axis": 1}, opset=13)
    # GatherND: (data shape, indices shape, batch_dims)
    for t, xs, ishape, bd in [(f32, (3, 4), (2, 2), 0), (f32, (3, 4, 5), (2, 1), 0), (i64, (2, 3, 4), (2, 2, 3), 0),
                              (f32, (2, 3, 4), (2, 1), 1), (f16, (2, 3, 4, 2), (2, 3, 1), 2), (f32, (4, 3), (0, 1), 0),
                              (i32, (2, 2, 3), (2, 2, 2), 1)]:
        r = R("GatherND")
        q = ishape[-1]
        dims = xs[bd:bd + q]
        idx = np.stack([r.randint(-d, d, size=ishape[:-1]) for d in dims], -1).astype(i64) if q else \
            np.zeros(ishape, i64)
        add("GatherND", [V(r, xs, t), idx], {"batch_dims": bd}, opset=13)
    # ScatterND
    for t, xs, ushape, idx, red, opset in [
            (f32, (4, 3), (2, 3), [[1], [3]], None, 13), (f32, (2, 3, 4), (2,), [[0, 1, 2], [1, 2, -1]], None, 13),
            (i64, (5,), (3,), [[0], [4], [2]], None, 13), (f32, (4, 3), (3, 3), [[1], [1], [0]], "add", 16),
            (f32, (4, 3), (3, 3), [[2], [2], [0]], "mul", 16), (i32, (3, 4), (2, 4), [[0], [0]], "max", 18),
            (f32, (3, 4), (3, 4), [[1], [1], [2]], "min", 18), (f16, (2, 2, 2), (1, 2, 2), [[1]], None, 13),
            (np.bool_, (3, 2), (1, 2), [[2]], None, 13), (f32, (3, 4), (1, 4), [[-1]], None, 16)]:
        r = R("ScatterND")
        a = {"reduction": red} if red else {}
        add("ScatterND", [V(r, xs, t), np.array(idx, i64), V(r, ushape, t)], a, opset=opset)
    # Shape, Size
    for t, xs, a, opset in [(f32, (2, 3, 4), {}, 13), (i64, (5,), {}, 13), (f32, (), {}, 13),
                            (f32, (2, 3, 4, 5), {"start": 1}, 15), (f32, (2, 3, 4, 5), {"start": -3, "end": -1}, 15),
                            (f16, (2, 3), {"end": 10}, 15), (f32, (2, 3, 4), {"start": 2, "end": 1}, 15),
                            (np.bool_, (0, 3), {}, 15)]:
        r = R("Shape")
        add("Shape", [V(r, xs, t)], a, opset=opset, otypes=[i64])
    for t, xs in [(f32, (2, 3, 4)), (i64, (5,)), (f32, ()), (np.bool_, (0, 3)), (f16, (7, 1))]:
        r = R("Size")
        add("Size", [V(r, xs, t)], opset=13, otypes=[i64])
    # Unsqueeze / Squeeze
    for t, xs, axes, const in [(f32, (3, 4), [0], True), (f32, (3, 4), [1, -1], True), (i64, (), [0], False),
                               (f16, (2, 3), [0, 3], True), (np.bool_, (2,), [1], False), (f32, (2, 0), [-3], True)]:
        r = R("Unsqueeze")
        ax = np.array(axes, i64)
        add("Unsqueeze", [V(r, xs, t), C(ax) if const else ax], opset=13)
    r = R("Unsqueeze")
    add("Unsqueeze", [U(r, (3, 4))], {"axes": [0, 3]}, opset=11)
    for t, xs, axes, const in [(f32, (1, 3, 1, 4), [0], True), (f32, (1, 3, 1, 4), None, True),
                               (i64, (3, 1), [-1], False), (f16, (1, 1), [0, 1], True), (np.bool_, (2, 1, 1), [1, 2], True),
                               (f32, (1, 0, 1), None, True)]:
        r = R("Squeeze")
        ins = [V(r, xs, t)]
        if axes is not None:
            ax = np.array(axes, i64)
            ins.append(C(ax) if const else ax)
        add("Squeeze", ins, opset=13)
    r = R("Squeeze")
    add("Squeeze", [U(r, (1, 3, 1))], {"axes": [2]}, opset=11)
    # Expand
    for t, xs, shape in [(f32, (3, 1), [3, 4]), (f32, (3, 1), [2, 1, 4]), (f32, (2, 3), [1, 1]), (i64, (), [2, 3]),
                         (f16, (1, 4), [3, 1]), (np.bool_, (2, 1, 2), [2, 3, 1]), (f32, (1, 3), [0, 3]),
                         (u8, (4,), [2, 1, 4])]:
        r = R("Expand")
        add("Expand", [V(r, xs, t), np.array(shape, i64)], opset=13)
    r = R("Expand")
    add("Expand", [U(r, (1, 1, 3)), C(np.array([2, 4, 1], i64))], opset=13)
    # Tile
    for t, xs, reps in [(f32, (2, 3), [2, 2]), (f32, (3,), [4]), (i64, (2, 1, 2), [1, 3, 2]), (f16, (2, 2), [1, 1]),
                        (np.bool_, (1, 2), [3, 1]), (f32, (2, 3), [0, 2]), (object, (2,), [2])]:
        r = R("Tile")
        add("Tile", [V(r, xs, t), np.array(reps, i64)], opset=13)
    # DepthToSpace / SpaceToDepth
    for t, xs, bs, mode in [(f32, (1, 8, 2, 3), 2, "DCR"), (f32, (1, 8, 2, 3), 2, "CRD"), (f32, (2, 18, 2, 2), 3, "DCR"),
                            (f16, (1, 4, 3, 3), 2, "CRD"), (f64, (1, 12, 1, 2), 2, "DCR"), (u8, (1, 4, 2, 2), 2, "CRD")]:
        r = R("DepthToSpace")
        add("DepthToSpace", [V(r, xs, t)], {"blocksize": bs, "mode": mode}, opset=13)
    for t, xs, bs in [(f32, (1, 2, 4, 6), 2), (f32, (2, 1, 6, 3), 3), (f16, (1, 3, 2, 2), 2), (f64, (1, 2, 4, 4), 4),
                      (u8, (1, 1, 2, 2), 1)]:
        r = R("SpaceToDepth")
        add("SpaceToDepth", [V(r, xs, t)], {"blocksize": bs}, opset=13)


def gen_misc():
    # Cast
    CASTS = [(f32, i32, lambda r: U(r, (3, 4), f32, -100, 100)), (f32, u8, lambda r: U(r, (2, 5), f32, 0, 255)),
             (f32, f16, lambda r: U(r, (2, 3, 4), f32, -70000, 70000)), (f16, f32, lambda r: U(r, (5, 3), f16)),
             (f64, f32, lambda r: U(r, (4,), f64)), (i64, f32, lambda r: I(r, (6,), i64, -10 ** 6, 10 ** 6)),
             (np.bool_, f32, lambda r: B(r, (3, 3))), (f32, np.bool_, lambda r: G(r, (4, 3), f32, -1, 1, 0.5)),
             (i32, i64, lambda r: I(r, (5,), i32, -1000, 1000)), (i64, i8, lambda r: I(r, (8,), i64, -300, 300)),
             (u8, f16, lambda r: I(r, (2, 4), u8, 0, 255)), (i32, np.bool_, lambda r: I(r, (6,), i32, -2, 2)),
             (f32, i64, lambda r: U(r, (0, 3), f32)), (f16, i32, lambda r: U(r, (7,), f16, -30, 30)),
             (i32, object, lambda r: I(r, (4,), i32, -500, 500)),
             (object, f32, lambda r: np.array(["1.5", "-2", "0.25", "1e3", "  7"], dtype=object)),
             (object, i64, lambda r: np.array(["12", "-7", "0"], dtype=object)),
             (f32, object, lambda r: np.array([1.5, -2.0, 0.1, 1e10, 3.0], f32))]
    for src, dst, gen in CASTS:
        r = R("Cast")
        add("Cast", [gen(r)], {"to": ONNX_OF_NP[np.dtype(dst)]}, opset=13, otypes=[dst])
    r = R("Cast")
    add("Cast", [np.array([np.nan, np.inf, -np.inf, 1e20, -1e20, 65504.0, 65520.0, 1e-8], f32)],
        {"to": onnx.TensorProto.FLOAT16}, opset=13, otypes=[f16])
    for src, like in [(f32, i64), (i32, f16), (f16, f32), (np.bool_, f64), (f64, u8)]:
        r = R("CastLike")
        x = V(r, (3, 4), src, 0, 4)
        add("CastLike", [x, V(r, (1,), like)], opset=15, otypes=[like])
    # Identity
    for t, xs in [(f32, (2, 3)), (i64, (4,)), (np.bool_, ()), (f16, (0, 2)), (object, (3,))]:
        r = R("Identity")
        add("Identity", [V(r, xs, t)], opset=16)
    # Dropout (inference)
    r = R("Dropout")
    add("Dropout", [U(r, (3, 4))], opset=13)
    add("Dropout", [U(r, (2, 5)), C(np.array(0.5, f32))], opset=13, nout=2, otypes=[f32, np.bool_])
    add("Dropout", [U(r, (2, 5), f16), C(np.array(0.2, f32)), C(np.array(False))], opset=13, nout=2,
        otypes=[f16, np.bool_])
    add("Dropout", [U(r, (4,), f64)], opset=12, nout=2, otypes=[f64, np.bool_])
    add("Dropout", [U(r, (3, 3))], {"ratio": 0.3}, opset=10, nout=2, otypes=[f32, np.bool_])
    # Constant
    for attrs, ot in [({"value": numpy_helper.from_array(np.arange(6, dtype=f32).reshape(2, 3) * 0.5)}, f32),
                      ({"value_float": 2.5}, f32), ({"value_floats": [1.0, -2.0, 3.5]}, f32), ({"value_int": -7}, i64),
                      ({"value_ints": [3, 1, 4, 1, 5]}, i64),
                      ({"value": numpy_helper.from_array(np.array([True, False]))}, np.bool_),
                      ({"value": numpy_helper.from_array(np.array(5, i32))}, i32),
                      ({"value": numpy_helper.from_array(np.array([1.5, 2], f16))}, f16)]:
        node = helper.make_node("Constant", [], ["y0"], **attrs)
        graph_case("Constant", [node], [], ["y0"], opset=13, otypes=[ot])
    # ConstantOfShape
    for shape, val, const in [([2, 3], None, False), ([4], np.array([7], i64), False),
                              ([2, 1, 3], np.array([1.5], f16), True), ([0, 3], np.array([2.0], f32), False),
                              ([], np.array([3], i32), False), ([3, 2], np.array([True]), False),
                              ([2, 2], np.array([-1.25], f64), True)]:
        r = R("ConstantOfShape")
        s = np.array(shape, i64)
        a = {"value": numpy_helper.from_array(val)} if val is not None else {}
        add("ConstantOfShape", [C(s) if const else s], a, opset=9,
            otypes=[val.dtype if val is not None else f32])
    # Range
    for t, st, lim, d in [(f32, 0.0, 5.0, 1.0), (f32, 1.5, -2.0, -0.5), (f32, 0.0, 1.0, 0.3), (i32, 2, 15, 4),
                          (i64, 10, -3, -3), (i64, 5, 2, 1), (f64, -1.0, 1.0, 0.25), (i16, 0, 10, 3)]:
        r = R("Range")
        add("Range", [np.array(st, t), np.array(lim, t), np.array(d, t)], opset=11)
    # Where-like helpers covered in gen_binary; If / Loop below


def gen_reduce():
    ops = ["ReduceMean", "ReduceSum", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL2"]
    cases = [((2, 3, 4), [1], 1), ((2, 3, 4), [0, 2], 0), ((2, 3, 4), [-1], 1), ((2, 3, 4), None, 1),
             ((2, 3, 4), None, 0), ((5,), [0], 0), ((3, 4, 5, 2), [1, 2], 1)]
    for op in ops:
        lo, hi, step = (0.5, 1.5, 0.125) if op == "ReduceProd" else (-2, 2, 0.125)
        for k, (xs, axes, keep) in enumerate(cases):
            opset = 18 if k % 2 else 13
            if op == "ReduceSum":
                opset = 13
            r = R(op)
            ins = [G(r, xs, f32, lo, hi, step)]
            a = {"keepdims": keep}
            if axes is not None:
                if opset >= 18 or op == "ReduceSum":
                    ins.append(C(np.array(axes, i64)) if k % 3 else np.array(axes, i64))
                else:
                    a["axes"] = axes
            add(op, ins, a, opset=opset)
        for k, t in enumerate([f16, f64, i32, i64]):
            if op == "ReduceL2" and t in (i32, i64):
                continue
            r = R(op)
            x = V(r, (3, 4), t, 0.5 if op == "ReduceProd" else -2, 2)
            if np.dtype(t).kind in "iu" and op == "ReduceProd":
                x = I(r, (3, 4), t, -3, 3)
            if op == "ReduceSum" or k % 2:
                add(op, [x, C(np.array([1], i64))], {"keepdims": k % 2}, opset=13 if op == "ReduceSum" else 18)
            else:
                add(op, [x], {"axes": [0], "keepdims": 1}, opset=13)
        # empty axes: noop_with_empty_axes
        r = R(op)
        opset = 13 if op == "ReduceSum" else 18
        add(op, [G(r, (2, 3), f32, lo, hi, step), C(np.array([], i64))], {"noop_with_empty_axes": 1}, opset=opset)
        add(op, [G(r, (2, 3), f32, lo, hi, step), np.array([], i64)], {"keepdims": 0}, opset=opset)
        add(op, [np.zeros((2, 0, 3), f32), C(np.array([1], i64))], {"keepdims": 1}, opset=opset)
        add(op, [np.zeros((0, 3), i32 if op != "ReduceL2" else f32), C(np.array([0], i64))], {"keepdims": 0},
            opset=opset)
    for op in ("ArgMax", "ArgMin"):
        for t, xs, axis, keep, last in [(f32, (3, 4), 1, 1, 0), (f32, (3, 4), 0, 0, 0), (i32, (2, 3, 4), -1, 1, 1),
                                        (i64, (2, 3, 4), 1, 0, 0), (f16, (5,), 0, 1, 0), (f64, (2, 3), -2, 1, 1),
                                        (u8, (4, 3), 1, 0, 1), (f32, (2, 6), 1, 1, 1)]:
            r = R(op)
            x = I(r, xs, i32, 0, 3).astype(t)
            add(op, [x], {"axis": axis, "keepdims": keep, "select_last_index": last}, opset=13)
    # TopK: values with ties (small integers)
    for t, xs, k, axis, largest in [(f32, (3, 6), 3, -1, 1), (f32, (3, 6), 2, 1, 0), (f32, (5, 4), 5, 0, 1),
                                    (i64, (2, 7), 4, 1, 1), (i32, (4, 3, 2), 2, 1, 0), (f64, (8,), 8, 0, 1),
                                    (f16, (2, 5), 1, 1, 1), (f32, (3, 4), 0, 1, 1), (u8, (3, 5), 2, -1, 0)]:
        r = R("TopK")
        x = I(r, xs, i32, 0, 6).astype(t) if t != f32 else G(r, xs, t, -1, 1, 0.25)
        add("TopK", [x, np.array([k], i64)], {"axis": axis, "largest": largest, "sorted": 1}, opset=11, nout=2,
            otypes=[t, i64])
    r = R("TopK")
    add("TopK", [U(r, (2, 20)), C(np.array([5], i64))], {}, opset=11, nout=2, otypes=[f32, i64])
    add("TopK", [np.array([3.0, np.nan, 1.0, 5.0, np.inf, -np.inf], f32), C(np.array([4], i64))], {}, opset=11,
        nout=2, otypes=[f32, i64])
    # NonZero
    for t, xs in [(f32, (3, 4)), (i32, (2, 3, 2)), (np.bool_, (5,)), (i64, ()), (f32, (0, 3)), (u8, (4, 4)),
                  (f16, (2, 3))]:
        r = R("NonZero")
        x = (r.randint(0, 3, size=xs) * (r.randint(0, 2, size=xs))).astype(t) if t != np.bool_ else B(r, xs)
        add("NonZero", [x], opset=13, otypes=[i64])
    # CumSum
    for t, xs, axis, excl, rev in [(f32, (2, 3, 4), 1, 0, 0), (f32, (5,), 0, 1, 0), (f32, (3, 4), -1, 0, 1),
                                   (f64, (2, 3), 0, 1, 1), (i32, (3, 3), 1, 0, 0), (i64, (4, 2), 0, 1, 0),
                                   (f16, (6,), 0, 0, 1), (i64, (2, 3), 1, 0, 0)]:
        r = R("CumSum")
        at = i32 if excl else i64
        add("CumSum", [V(r, xs, t, 0 if t == u32 else -2, 2), np.array(axis, at)],
            {"exclusive": excl, "reverse": rev}, opset=14)
    r = R("CumSum")
    add("CumSum", [G(r, (3, 5)), C(np.array(1, i64))], opset=14)
    # Trilu
    for t, xs, k, upper in [(f32, (4, 5), None, 1), (f32, (4, 5), 1, 1), (f32, (4, 5), -1, 0), (i64, (2, 3, 3), 0, 0),
                            (f16, (5, 3), 2, 1), (np.bool_, (3, 4), -2, 1), (f32, (3, 3), 10, 0), (f32, (3, 3), -10, 1),
                            (i32, (2, 0, 3), 0, 1), (f64, (1, 2, 4, 4), -1, 0)]:
        r = R("Trilu")
        add("Trilu", [V(r, xs, t), None if k is None else np.array(k, i64)], {"upper": upper}, opset=14)


def gen_resize():
    # (x, roi, scales, sizes, attrs, opset)
    s = lambda *v: C(np.array(v, f32))  # noqa: E731
    z = lambda *v: C(np.array(v, i64))  # noqa: E731
    cfg = [
        ((1, 2, 3, 4), None, s(1, 1, 2, 2), None, {"mode": "nearest"}, 13),
        ((1, 2, 3, 4), None, s(1, 1, 2, 2), None, {"mode": "nearest", "coordinate_transformation_mode": "asymmetric",
                                                   "nearest_mode": "floor"}, 13),
        ((1, 1, 5, 7), None, None, z(1, 1, 3, 4), {"mode": "nearest", "nearest_mode": "round_prefer_ceil",
                                                  "coordinate_transformation_mode": "align_corners"}, 13),
        ((2, 2, 4, 4), None, s(1, 1, 0.75, 1.5), None, {"mode": "nearest", "nearest_mode": "ceil"}, 13),
        ((1, 2, 3, 4), None, s(1, 1, 1.5, 2), None, {"mode": "linear"}, 13),
        ((1, 2, 3, 4), None, None, z(1, 2, 5, 7), {"mode": "linear", "coordinate_transformation_mode": "align_corners"}, 13),
        ((1, 1, 4, 1), None, None, z(1, 1, 6, 1), {"mode": "linear",
                                                   "coordinate_transformation_mode": "pytorch_half_pixel"}, 13),
        ((1, 1, 6, 6), None, s(1, 1, 0.6, 0.5), None, {"mode": "linear", "coordinate_transformation_mode": "asymmetric"}, 13),
        ((1, 2, 4, 4), None, s(1, 1, 2, 1.5), None, {"mode": "cubic"}, 13),
        ((1, 1, 4, 5), None, s(1, 1, 1.5, 2), None, {"mode": "cubic", "cubic_coeff_a": -0.5, "exclude_outside": 1}, 13),
        ((1, 1, 4, 4), None, None, z(1, 1, 7, 5), {"mode": "cubic", "coordinate_transformation_mode": "align_corners"}, 13),
        ((1, 1, 5, 5), s(0, 0, 0.2, 0.1, 1, 1, 0.8, 0.9), None, z(1, 1, 4, 3),
         {"mode": "linear", "coordinate_transformation_mode": "tf_crop_and_resize", "extrapolation_value": -1.0}, 13),
        ((1, 1, 4, 4), s(0, 0, -0.2, 0.1, 1, 1, 1.3, 0.8), None, z(1, 1, 5, 5),
         {"mode": "nearest", "coordinate_transformation_mode": "tf_crop_and_resize"}, 13),
        ((1, 1, 8, 8), None, s(1, 1, 0.5, 0.375), None, {"mode": "linear", "antialias": 1}, 18),
        ((1, 1, 8, 6), None, s(1, 1, 0.6, 0.5), None, {"mode": "cubic", "antialias": 1}, 18),
        ((1, 2, 3, 4), None, s(2, 3), None, {"mode": "nearest", "axes": [2, 3]}, 18),
        ((1, 1, 4, 6), None, None, z(8, 8), {"mode": "linear", "axes": [2, 3], "keep_aspect_ratio_policy": "not_larger"}, 18),
        ((1, 1, 4, 6), None, None, z(8, 8), {"mode": "nearest", "axes": [2, 3], "keep_aspect_ratio_policy": "not_smaller"}, 18),
        ((1, 1, 4, 5), None, s(1, 1, 1.75, 0.6), None, {"mode": "linear",
                                                       "coordinate_transformation_mode": "half_pixel_symmetric"}, 19),
        ((1, 1, 2, 3, 4), None, s(1, 1, 2, 2, 2), None, {"mode": "nearest"}, 13),
        ((1, 1, 2, 3, 4), None, s(1, 1, 2, 1.5, 0.5), None, {"mode": "linear"}, 13),
        ((2, 6), None, s(1, 2.5), None, {"mode": "linear"}, 13),
        ((3, 4), None, None, z(3, 9), {"mode": "nearest", "coordinate_transformation_mode": "half_pixel"}, 13),
    ]
    for xs, roi, sc, sz, a, opset in cfg:
        r = R("Resize")
        add("Resize", [G(r, xs, f32, -2, 2, 0.0625), roi, sc, sz], a, opset=opset)
    for t, a in [(u8, {"mode": "nearest"}), (i8, {"mode": "linear"}), (f16, {"mode": "linear"}),
                 (i32, {"mode": "nearest"})]:
        r = R("Resize")
        add("Resize", [V(r, (1, 1, 3, 4), t, -4, 4), None, C(np.array([1, 1, 2, 1.5], f32))], a, opset=13)
    r = R("Resize")
    add("Resize", [G(r, (1, 2, 3, 3)), np.array([], f32), np.array([1, 1, 2, 2], f32)], {"mode": "nearest"}, opset=13)
    add("Resize", [G(r, (1, 2, 3, 3)), None, None, np.array([1, 2, 4, 5], i64)], {"mode": "linear"}, opset=13)
    add("Resize", [G(r, (1, 2, 3, 3)), np.array([], f32), np.array([1, 1, 3, 3], f32)], {"mode": "nearest"}, opset=11)


def gen_pad():
    # (x shape, pads, mode, constant, axes, opset)
    for t, xs, pads, mode, cv, axes, opset in [
            (f32, (2, 3), [0, 1, 2, 1], "constant", None, None, 13),
            (f32, (1, 2, 3, 4), [0, 0, 1, 2, 0, 0, 2, 1], "constant", 1.5, None, 13),
            (f32, (3, 4), [1, 2, 2, 1], "reflect", None, None, 13),
            (f32, (1, 2, 4, 4), [0, 0, 2, 3, 0, 0, 1, 3], "reflect", None, None, 13),
            (f32, (3, 4), [2, 1, 1, 3], "edge", None, None, 13),
            (f32, (4, 5), [-1, 1, 0, -2], "constant", None, None, 13),
            (f32, (2, 3, 4), [1, 2, 1, 2], "constant", 3.0, [1, -1], 18),
            (f32, (2, 3, 4), [3, 4], "wrap", None, [2], 19),
            (f32, (2, 3), [1, 2, 2, 3], "wrap", None, None, 19),  # ORT reads out of bounds for pads > dim
            (f32, (2, 3, 4), [0, 1, 1, 0, 1, 1], "edge", None, None, 18),
            (i64, (3, 3), [1, 1, 1, 1], "constant", 7, None, 13), (i32, (2, 4), [0, 2, 0, 2], "reflect", None, None, 13),
            (f16, (2, 3), [1, 0, 1, 0], "constant", 0.5, None, 13), (f64, (3,), [2, 1], "edge", None, None, 13),
            (u8, (2, 2), [1, 1, 1, 1], "constant", 9, None, 13), (np.bool_, (2, 2), [0, 1, 0, 1], "constant", None, None, 13),
            (f32, (0, 3), [1, 0, 1, 0], "constant", 2.0, None, 13), (f32, (3, 4), [-1, -1, -1, -1], "reflect", None, None, 13)]:
        r = R("Pad")
        ins = [V(r, xs, t), C(np.array(pads, i64)), None if cv is None else C(np.array(cv, t))]
        if axes is not None:
            ins.append(C(np.array(axes, i64)))
        add("Pad", ins, {"mode": mode}, opset=opset)
    r = R("Pad")
    add("Pad", [U(r, (2, 3)), np.array([1, 0, 0, 2], i64), np.array(-1.0, f32)], {}, opset=13)
    add("Pad", [U(r, (2, 3))], {"pads": [1, 1, 0, 0], "value": 2.0}, opset=2)


def gen_detect():
    # NonMaxSuppression
    def boxes(r, b, n, center):
        c = r.uniform(0, 10, size=(b, n, 2))
        wh = r.uniform(1, 4, size=(b, n, 2))
        if center:
            return np.concatenate([c, wh], -1).astype(f32)
        p1, p2 = c - wh / 2, c + wh / 2
        flip = r.randint(0, 2, size=(b, n, 1)).astype(bool)
        out = np.concatenate([p1, p2], -1)
        out = np.where(flip, np.concatenate([p2, p1], -1), out)  # corners in either order
        return out.astype(f32)

    for b, c, n, center, mo, iou, st in [(1, 1, 10, 0, 5, 0.5, None), (2, 3, 12, 0, 3, 0.4, 0.2),
                                         (1, 2, 15, 1, 10, 0.3, None), (1, 1, 8, 0, 0, 0.5, None),
                                         (1, 2, 20, 0, 100, 0.6, 0.5), (2, 1, 6, 1, None, None, None)]:
        r = R("NonMaxSuppression")
        scores = np.stack([np.stack([r.permutation(n) for _ in range(c)]) for _ in range(b)]).astype(f32) / n
        bx = boxes(r, b, n, center)
        ins = [bx, scores, None if mo is None else C(np.array([mo], i64)),
               None if iou is None else C(np.array([iou], f32)), None if st is None else C(np.array([st], f32))]
        add("NonMaxSuppression", ins, {"center_point_box": center} if center else {}, opset=11, otypes=[i64])
    # RoiAlign
    for xs, k, a in [((1, 2, 8, 8), 3, {"output_height": 2, "output_width": 2, "sampling_ratio": 2}),
                     ((2, 3, 10, 12), 4, {"output_height": 3, "output_width": 4, "spatial_scale": 0.5}),
                     ((1, 1, 6, 6), 2, {"output_height": 2, "output_width": 3, "sampling_ratio": 1,
                                        "coordinate_transformation_mode": "output_half_pixel"}),
                     ((1, 2, 8, 8), 3, {"output_height": 2, "output_width": 2, "sampling_ratio": 2, "mode": "max"}),
                     ((2, 1, 7, 7), 2, {"output_height": 3, "output_width": 3, "sampling_ratio": 0})]:
        r = R("RoiAlign")
        h, w = xs[2] / a.get("spatial_scale", 1.0), xs[3] / a.get("spatial_scale", 1.0)
        p = np.stack([r.uniform(0, w * 0.6, k), r.uniform(0, h * 0.6, k)], -1)
        q = p + np.stack([r.uniform(1, w * 0.4, k), r.uniform(1, h * 0.4, k)], -1)
        rois = np.concatenate([p, q], -1).astype(f32)
        add("RoiAlign", [G(r, xs), rois, r.randint(0, xs[0], size=k).astype(i64)], a, opset=16)
    r = R("RoiAlign")
    add("RoiAlign", [G(r, (1, 1, 5, 5)), np.array([[0.5, 0.5, 3.5, 2.5], [-1, -1, 6, 6]], f32), np.array([0, 0], i64)],
        {"output_height": 2, "output_width": 2, "sampling_ratio": 2}, opset=10)


# int8 weights next to uint8 activations stay in [-63, 63]: ORT's x86 AVX2 u8s8
# kernels add pairs of u8*s8 products in saturating int16 (vpmaddubsw), so
# larger weights give results that depend on the CPU (exact with AVX-VNNI).
I8_LO, I8_HI = -63, 63


def gen_quant():
    # QuantizeLinear
    for xs, sc, zp, zt, axis, opset, xt in [
            ((2, 3, 4), 0.125, 10, u8, None, 13, f32), ((2, 3, 4), 0.05, -3, i8, None, 13, f32),
            ((3, 4), 0.1, None, None, None, 13, f32), ((2, 3, 2), [0.1, 0.2, 0.25], [0, 5, 250], u8, 1, 13, f32),
            ((4, 3), [0.5, 0.25, 0.125], [-1, 0, 1], i8, -1, 13, f32), ((2, 5), 0.2, 128, u8, None, 19, f16),
            ((6,), 0.5, 0, u8, None, 10, f32), ((2, 4), [[0.5, 0.25], [0.125, 1.0]], [[1, 2], [3, 4]], i8, 1, 21, f32)]:
        r = R("QuantizeLinear")
        x = U(r, xs, xt, -40, 40)
        x.flat[:4] = np.array([0.5, 1.5, -0.5, 2.5][:x.size], xt) * (sc if np.isscalar(sc) else 1.0)
        ins = [x, C(np.array(sc, xt if opset >= 19 else f32)), None if zp is None else C(np.array(zp, zt))]
        a = {} if axis is None else {"axis": axis}
        if opset == 21:
            a["block_size"] = 2
        add("QuantizeLinear", ins, a, opset=opset, otypes=[zt or u8])
    for xt, xs, sc, zp, axis, opset in [(u8, (2, 3, 4), 0.125, 10, None, 13), (i8, (3, 4), 0.05, -3, None, 13),
                                        (u8, (3, 4), 0.5, None, None, 13), (i32, (5,), 0.01, 0, None, 13),
                                        (u8, (2, 3, 2), [0.1, 0.2, 0.25], [0, 5, 250], 1, 13),
                                        (i8, (4, 2), [0.5, 2.0], [3, -3], -1, 13), (u8, (6,), 0.25, 3, None, 10),
                                        (i8, (2, 4), [[0.5, 0.25], [0.125, 1.0]], [[1, 2], [3, 4]], 1, 21)]:
        r = R("DequantizeLinear")
        a = {} if axis is None else {"axis": axis}
        if opset == 21:
            a["block_size"] = 2
        add("DequantizeLinear", [V(r, xs, xt, -30, 60) if xt != i32 else I(r, xs, i32, -1000, 1000),
                                 C(np.array(sc, f32)), None if zp is None else C(np.array(zp, xt))], a, opset=opset,
            otypes=[f32])
    r = R("DequantizeLinear")
    add("DequantizeLinear", [I(r, (2, 3), u8, 0, 255), C(np.array(0.5, f16)), C(np.array(7, u8))], opset=19,
        otypes=[f16])
    # DynamicQuantizeLinear
    for lo, hi, xs in [(-3, 5, (2, 3, 4)), (1, 4, (5,)), (-6, -1, (3, 3)), (-1, 1, (1, 16)), (0, 0, (2, 2))]:
        r = R("DynamicQuantizeLinear")
        add("DynamicQuantizeLinear", [U(r, xs, f32, lo, hi) if hi > lo else np.zeros(xs, f32)], opset=11, nout=3,
            otypes=[u8, f32, u8])
    # MatMulInteger
    for at, bt, sa, sb, azp, bzp in [(u8, u8, (3, 4), (4, 5), 3, 7), (u8, i8, (2, 3, 4), (4, 2), 128, None),
                                     (i8, i8, (3, 4), (4, 3), -2, 1), (u8, u8, (4,), (4, 3), None, None),
                                     (u8, i8, (2, 5), (5, 3), None, [1, -1, 0]), (i8, u8, (2, 3), (3, 2), 1, 4)]:
        r = R("MatMulInteger")
        lo = 0 if at == u8 else -128
        a = I(r, sa, at, lo, lo + 255)
        b = I(r, sb, bt, 0 if bt == u8 else I8_LO, 255 if bt == u8 else I8_HI)
        add("MatMulInteger", [a, b, None if azp is None else C(np.array(azp, at)),
                              None if bzp is None else C(np.array(bzp, bt))], opset=10, otypes=[i32])
    # ConvInteger
    for wt, xs, ws, a, xzp, wzp in [(u8, (1, 2, 5, 5), (3, 2, 3, 3), {"pads": [1, 1, 1, 1]}, 5, 3),
                                    (u8, (1, 4, 6, 6), (4, 2, 2, 2), {"group": 2, "strides": [2, 2]}, 128, None),
                                    (i8, (1, 1, 4, 4), (2, 1, 3, 3), {}, 0, 0),
                                    (u8, (2, 3, 7), (2, 3, 3), {"dilations": [2]}, None, None)]:
        r = R("ConvInteger")
        add("ConvInteger", [I(r, xs, u8, 0, 255), I(r, ws, wt, 0 if wt == u8 else I8_LO, 255 if wt == u8 else I8_HI),
                            None if xzp is None else C(np.array(xzp, u8)),
                            None if wzp is None else C(np.array(wzp, wt))], a, opset=10, otypes=[i32])
    # QLinearMatMul: a, a_scale, a_zp, b, b_scale, b_zp, y_scale, y_zp
    for t, sa, sb, sc in [(u8, (3, 4), (4, 5), (0.0625, 0.125, 0.25)), (i8, (2, 3, 4), (4, 3), (0.05, 0.02, 0.1)),
                          (u8, (2, 8), (8, 4), (0.1, 0.03, 0.2)), (u8, (4, 6), (6, 2), (0.5, 0.5, 8.0))]:
        r = R("QLinearMatMul")
        lo, hi = (0, 255) if t == u8 else (-128, 127)
        zps = [t(r.randint(lo // 2 + hi // 4, hi // 2 + hi // 4)) for _ in range(3)]
        add("QLinearMatMul", [I(r, sa, t, lo, hi), C(np.array(sc[0], f32)), C(np.array(zps[0], t)),
                              I(r, sb, t, lo, hi), C(np.array(sc[1], f32)), C(np.array(zps[1], t)),
                              C(np.array(sc[2], f32)), C(np.array(zps[2], t))], opset=10, otypes=[t])
    # QLinearConv: x, x_scale, x_zp, w, w_scale, w_zp, y_scale, y_zp, B
    for wt, xs, ws, a, sc, per_ch, bias in [
            (u8, (1, 2, 5, 5), (3, 2, 3, 3), {"pads": [1, 1, 1, 1]}, (0.0625, 0.125, 0.5), False, True),
            (i8, (1, 3, 6, 6), (4, 3, 3, 3), {"strides": [2, 2]}, (0.02, 0.01, 0.1), True, True),
            (u8, (1, 4, 5, 5), (4, 2, 3, 3), {"group": 2, "pads": [1, 1, 1, 1]}, (0.05, 0.02, 0.2), False, False),
            (i8, (1, 4, 5, 5), (4, 1, 3, 3), {"group": 4}, (0.1, 0.05, 0.3), True, True),
            (u8, (2, 3, 9), (2, 3, 3), {"dilations": [2]}, (0.25, 0.125, 1.0), False, True)]:
        r = R("QLinearConv")
        wlo, whi = (0, 255) if wt == u8 else (I8_LO, I8_HI)
        cout = ws[0]
        wscale = np.array([sc[1] * (k + 1) for k in range(cout)] if per_ch else sc[1], f32)
        wzp = np.array(0 if wt == i8 else 120, wt) if not per_ch else np.zeros(cout, wt)
        add("QLinearConv", [I(r, xs, u8, 0, 255), C(np.array(sc[0], f32)), C(np.array(100, u8)),
                            C(I(r, ws, wt, wlo, whi)), C(wscale), C(wzp), C(np.array(sc[2], f32)), C(np.array(110, u8)),
                            C(I(r, (cout,), i32, -500, 500)) if bias else None], a, opset=10, otypes=[u8])


def gen_control():
    # If: then = x + y, else = x * y (outer-scope values)
    then_g = helper.make_graph([helper.make_node("Add", ["x", "y"], ["t"])], "then", [],
                               [helper.make_tensor_value_info("t", onnx.TensorProto.FLOAT, None)])
    else_g = helper.make_graph([helper.make_node("Mul", ["x", "y"], ["e"])], "else", [],
                               [helper.make_tensor_value_info("e", onnx.TensorProto.FLOAT, None)])
    for cond in (True, False):
        r = R("If")
        node = helper.make_node("If", ["c"], ["out"], then_branch=then_g, else_branch=else_g)
        graph_case("If", [node], [("c", np.array(cond)), ("x", G(r, (2, 3))), ("y", G(r, (3,)))], ["out"], opset=13)
    # If whose branches give different shapes and use constants
    then2 = helper.make_graph([helper.make_node("Concat", ["x", "x"], ["t"], axis=0)], "then", [],
                              [helper.make_tensor_value_info("t", onnx.TensorProto.FLOAT, None)])
    else2 = helper.make_graph([helper.make_node("Constant", [], ["k"], value_floats=[1.0, 2.0, 3.0]),
                               helper.make_node("Sub", ["x", "k"], ["e"])], "else", [],
                              [helper.make_tensor_value_info("e", onnx.TensorProto.FLOAT, None)])
    for cond in (True, False):
        r = R("If")
        node = helper.make_node("If", ["c"], ["out"], then_branch=then2, else_branch=else2)
        graph_case("If", [node], [("c", np.array([cond])), ("x", G(r, (2, 3)))], ["out"], opset=13)
    # Loop: for i in range(M): acc = acc + x * i; scan output acc
    body = helper.make_graph(
        [helper.make_node("Cast", ["i"], ["fi"], to=onnx.TensorProto.FLOAT),
         helper.make_node("Mul", ["x", "fi"], ["xi"]),
         helper.make_node("Add", ["acc_in", "xi"], ["acc_out"]),
         helper.make_node("Identity", ["cond_in"], ["cond_out"]),
         helper.make_node("Identity", ["acc_out"], ["scan"])],
        "body",
        [helper.make_tensor_value_info("i", onnx.TensorProto.INT64, []),
         helper.make_tensor_value_info("cond_in", onnx.TensorProto.BOOL, []),
         helper.make_tensor_value_info("acc_in", onnx.TensorProto.FLOAT, None)],
        [helper.make_tensor_value_info("cond_out", onnx.TensorProto.BOOL, []),
         helper.make_tensor_value_info("acc_out", onnx.TensorProto.FLOAT, None),
         helper.make_tensor_value_info("scan", onnx.TensorProto.FLOAT, None)])
    for m in (4, 1, 0):
        r = R("Loop")
        node = helper.make_node("Loop", ["M", "", "a0"], ["acc", "scans"], body=body)
        graph_case("Loop", [node], [("M", np.array(m, i64)), ("a0", G(r, (2, 3))), ("x", G(r, (2, 3)))],
                   ["acc", "scans"], opset=13, otypes=[f32, f32])
    # while loop: double v until its sum exceeds a limit (cond computed in the body), trip count too
    body2 = helper.make_graph(
        [helper.make_node("Constant", [], ["two"], value_float=2.0),
         helper.make_node("Mul", ["v_in", "two"], ["v_out"]),
         helper.make_node("ReduceSum", ["v_out"], ["s"], keepdims=0),
         helper.make_node("Less", ["s", "limit"], ["cond_out"])],
        "body2",
        [helper.make_tensor_value_info("i", onnx.TensorProto.INT64, []),
         helper.make_tensor_value_info("cond_in", onnx.TensorProto.BOOL, []),
         helper.make_tensor_value_info("v_in", onnx.TensorProto.FLOAT, None)],
        [helper.make_tensor_value_info("cond_out", onnx.TensorProto.BOOL, []),
         helper.make_tensor_value_info("v_out", onnx.TensorProto.FLOAT, None)])
    for lim, trip in [(100.0, None), (100.0, 3), (0.5, None)]:
        r = R("Loop")
        node = helper.make_node("Loop", ["M" if trip is not None else "", "c0", "v0"], ["v"], body=body2)
        ins = ([("M", np.array(trip, i64))] if trip is not None else []) + \
              [("c0", np.array(True)), ("v0", G(r, (3,), f32, 0.5, 1.5)), ("limit", C(np.array(lim, f32)))]
        graph_case("Loop", [node], ins, ["v"], opset=13, otypes=[f32])


def gen_large():
    """Layer sizes of real vision and transformer models (exercise blocked / fast paths)."""
    g = lambda r, s: G(r, s, f32, -1, 1)  # noqa: E731
    for xs, ws, a in [((1, 32, 14, 14), (64, 32, 3, 3), {"pads": [1, 1, 1, 1]}),
                      ((1, 64, 14, 14), (128, 64, 1, 1), {"strides": [2, 2]}),
                      ((1, 96, 14, 14), (96, 1, 3, 3), {"group": 96, "pads": [1, 1, 1, 1]}),
                      ((1, 3, 32, 32), (16, 3, 7, 7), {"strides": [2, 2], "pads": [3, 3, 3, 3]}),
                      ((2, 24, 9, 9), (40, 24, 5, 5), {"pads": [2, 2, 2, 2], "strides": [2, 2]})]:
        r = R("Conv")
        add("Conv", [g(r, xs), C(g(r, ws)), C(G(r, (ws[0],)))], a, opset=11)
    r = R("ConvTranspose")
    add("ConvTranspose", [g(r, (1, 32, 8, 8)), C(g(r, (32, 16, 4, 4))), C(G(r, (16,)))],
        {"strides": [2, 2], "pads": [1, 1, 1, 1]}, opset=11)
    for sa, sb in [((2, 64, 96), (96, 80)), ((1, 4, 16, 32), (1, 4, 32, 16)), ((37, 129), (129, 65))]:
        r = R("MatMul")
        add("MatMul", [g(r, sa), g(r, sb)], opset=13)
    r = R("Gemm")
    add("Gemm", [g(r, (4, 512)), C(g(r, (100, 512))), C(G(r, (100,)))], {"transB": 1}, opset=13)
    r = R("Softmax")
    add("Softmax", [U(r, (2, 4, 16, 128), f32, -8, 8)], {"axis": -1}, opset=13)
    r = R("LayerNormalization")
    add("LayerNormalization", [G(r, (2, 16, 256)), G(r, (256,)), G(r, (256,))], {"axis": -1, "epsilon": 1e-5},
        opset=17)
    r = R("BatchNormalization")
    add("BatchNormalization", [G(r, (2, 64, 7, 7)), C(G(r, (64,))), C(G(r, (64,))), C(G(r, (64,))),
                               C(G(r, (64,), f32, 0.25, 2))], opset=15)
    r = R("MaxPool")
    add("MaxPool", [U(r, (1, 64, 28, 28))], {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1]},
        opset=12)
    r = R("GlobalAveragePool")
    add("GlobalAveragePool", [G(r, (1, 256, 7, 7))], opset=13)
    r = R("Resize")
    add("Resize", [G(r, (1, 16, 16, 16)), None, C(np.array([1, 1, 2, 2], f32))],
        {"mode": "nearest", "coordinate_transformation_mode": "asymmetric", "nearest_mode": "floor"}, opset=13)
    add("Resize", [G(r, (1, 16, 16, 16)), None, C(np.array([1, 1, 2, 2], f32))],
        {"mode": "linear", "coordinate_transformation_mode": "pytorch_half_pixel"}, opset=13)
    r = R("Add")
    add("Add", [G(r, (2, 64, 28, 28)), C(G(r, (64, 1, 1)))], opset=14)
    r = R("Gelu")
    add("Gelu", [U(r, (2, 16, 256), f32, -3, 3)], opset=20)
    r = R("Transpose")
    add("Transpose", [G(r, (2, 16, 12, 64))], {"perm": [0, 2, 1, 3]}, opset=13)


def gen_versions():
    """Older opsets whose attributes became inputs (or changed meaning) later."""
    r = R("Resize")
    add("Resize", [G(r, (1, 2, 3, 4)), C(np.array([1, 1, 2, 1.5], f32))], {"mode": "nearest"}, opset=10)
    add("Resize", [G(r, (1, 2, 4, 4)), C(np.array([1, 1, 0.5, 1.5], f32))], {"mode": "linear"}, opset=10)
    add("Resize", [G(r, (1, 1, 4, 5)), C(np.array([], f32)), C(np.array([1, 1, 1.5, 0.6], f32))],
        {"mode": "nearest", "coordinate_transformation_mode": "tf_half_pixel_for_nn"}, opset=11)
    add("Resize", [G(r, (1, 1, 4, 5)), C(np.array([], f32)), C(np.array([], f32)), C(np.array([1, 1, 7, 3], i64))],
        {"mode": "cubic", "coordinate_transformation_mode": "half_pixel"}, opset=11)
    r = R("Slice")
    add("Slice", [U(r, (5, 6))], {"starts": [1, -4], "ends": [100, -1], "axes": [0, 1]}, opset=1)
    add("Slice", [U(r, (5, 6)), C(np.array([4], i64)), C(np.array([0], i64)), C(np.array([0], i64)),
                  C(np.array([-2], i64))], opset=10)
    r = R("TopK")
    add("TopK", [G(r, (3, 7))], {"k": 3, "axis": 1}, opset=1, nout=2, otypes=[f32, i64])
    add("TopK", [G(r, (6, 2)), C(np.array([2], i64))], {"axis": 0}, opset=10, nout=2, otypes=[f32, i64])
    r = R("Split")
    add("Split", [U(r, (2, 7))], {"axis": 1, "split": [3, 4]}, opset=2, nout=2)
    add("Split", [U(r, (9, 2))], {"axis": 0}, opset=11, nout=3)
    for op in ("Softmax", "LogSoftmax"):
        r = R(op)
        add(op, [U(r, (2, 3, 4), f32, -3, 3)], {}, opset=1)
        add(op, [U(r, (2, 3, 4), f32, -3, 3)], {"axis": 2}, opset=11)
    r = R("ReduceMean")
    add("ReduceMean", [G(r, (2, 3, 4))], {"axes": [0, -1], "keepdims": 0}, opset=11)
    r = R("ReduceSum")
    add("ReduceSum", [G(r, (2, 3, 4))], {"axes": [1]}, opset=11)
    r = R("Unsqueeze")
    add("Unsqueeze", [U(r, (3,))], {"axes": [-1, 0]}, opset=11)
    r = R("Pad")
    add("Pad", [U(r, (2, 3)), C(np.array([0, 1, 1, 0], i64)), C(np.array(0.5, f32))], {"mode": "constant"}, opset=11)
    r = R("Gather")
    add("Gather", [G(r, (2, 5, 3)), np.array([[4, 0], [-1, 2], [3, 3]], i64)], {"axis": 1}, opset=11)
    r = R("Einsum")
    for eq, shapes in [("...ii->...i", [(2, 3, 3)]), ("bij,bkj->bik", [(2, 3, 4), (2, 5, 4)]),
                       ("i,ij,j->", [(3,), (3, 4), (4,)]), ("ab...,b...->a...", [(2, 3, 4), (3, 4)]),
                       ("iij->j", [(3, 3, 2)])]:
        r = R("Einsum")
        add("Einsum", [G(r, sh) for sh in shapes], {"equation": eq}, opset=12)
    r = R("Clip")
    add("Clip", [G(r, (4, 4))], {}, opset=6)
    r = R("ArgMax")
    add("ArgMax", [I(r, (3, 5), i32, 0, 2).astype(f32)], {"axis": 1}, opset=11)
    r = R("Squeeze")
    add("Squeeze", [U(r, (1, 3, 1, 2))], {}, opset=1)


GENERATORS = [gen_unary, gen_softmax, gen_binary, gen_variadic, gen_norm, gen_conv, gen_matmul, gen_pool,
              gen_tensor, gen_misc, gen_reduce, gen_resize, gen_pad, gen_detect, gen_quant, gen_control,
              gen_large, gen_versions]


# ---- writing -------------------------------------------------------------------------------

def raw_bytes(a):
    if a.dtype == np.dtype(object):
        return json.dumps([str(s) for s in a.reshape(-1)]).encode()
    return np.ascontiguousarray(a).astype(a.dtype.newbyteorder("<"), copy=False).tobytes()


def write_cases(out):
    os.makedirs(out, exist_ok=True)
    for n in os.listdir(out):
        if n.startswith("test_"):
            shutil.rmtree(os.path.join(out, n))
    for gen in GENERATORS:
        gen()
    for name, model, feeds in CASES:
        d = os.path.join(out, name)
        os.makedirs(os.path.join(d, "test_data_set_0"))
        os.makedirs(os.path.join(d, "raw"))
        onnx.save(model, os.path.join(d, "model.onnx"))
        man = {"inputs": []}
        for k, (nm, a) in enumerate(feeds):
            t = numpy_helper.from_array(a, nm)
            with open(os.path.join(d, "test_data_set_0", "input_%d.pb" % k), "wb") as f:
                f.write(t.SerializeToString())
            fn = "in_%d.bin" % k
            with open(os.path.join(d, "raw", fn), "wb") as f:
                f.write(raw_bytes(a))
            man["inputs"].append({"name": nm, "type": ORT_TYPES[a.dtype], "dims": list(a.shape), "file": fn})
        with open(os.path.join(d, "raw", "manifest.json"), "w") as f:
            json.dump(man, f)
    print("gen_cases: wrote %d cases to %s" % (len(CASES), out))


def set_output_shapes(path, outputs):
    """Declare the graph outputs with the shapes ORT computed, and check the model."""
    m = onnx.load(path)
    by_name = {o["name"]: o for o in outputs}
    for vi in m.graph.output:
        o = by_name.get(vi.name)
        if o is None:
            continue
        shape = vi.type.tensor_type.shape
        shape.Clear()
        for dim in o["dims"]:
            shape.dim.add().dim_value = dim
    opset = next(i.version for i in m.opset_import if i.domain == "")
    if opset <= 17:
        onnx.checker.check_model(m)
    onnx.save(m, path)


def write_outputs(out):
    done, dropped = 0, []
    for name in sorted(os.listdir(out)):
        d = os.path.join(out, name)
        res_path = os.path.join(d, "raw", "result.json")
        if not name.startswith("test_") or not os.path.isdir(d):
            continue
        if not os.path.exists(res_path):
            dropped.append((name, "ORT did not run it"))
            shutil.rmtree(d)
            continue
        with open(res_path) as f:
            res = json.load(f)
        if not res.get("ok"):
            dropped.append((name, res.get("error", "?").strip().splitlines()[0][:300]))
            shutil.rmtree(d)
            continue
        set_output_shapes(os.path.join(d, "model.onnx"), res["outputs"])
        for k, o in enumerate(res["outputs"]):
            with open(os.path.join(d, "raw", o["file"]), "rb") as f:
                data = f.read()
            if o["type"] == "string":
                a = np.array(json.loads(data.decode()), dtype=object).reshape(o["dims"])
            else:
                a = np.frombuffer(data, dtype=NP_OF_ORT[o["type"]].newbyteorder("<")).reshape(o["dims"])
            t = numpy_helper.from_array(a.astype(NP_OF_ORT[o["type"]]) if o["type"] != "string" else a, o["name"])
            with open(os.path.join(d, "test_data_set_0", "output_%d.pb" % k), "wb") as f:
                f.write(t.SerializeToString())
        done += 1
    for name, why in dropped:
        print("gen_cases: dropped %s: %s" % (name, why))
    print("gen_cases: %d cases with ORT outputs, %d dropped" % (done, len(dropped)))
    if dropped:
        print("gen_cases: ORT %s cannot run every case: make gen_cases.py generate only what it runs" % "1.30")
    return 1 if dropped else 0


def main(argv):
    if len(argv) != 3 or argv[1] not in ("gen", "outputs"):
        print(__doc__.strip().split("\n\n")[0], file=sys.stderr)
        return 2
    if argv[1] == "gen":
        write_cases(argv[2])
        return 0
    return write_outputs(argv[2])


if __name__ == "__main__":
    sys.exit(main(sys.argv))
