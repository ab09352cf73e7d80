"""The ONNX reference kernels against onnxruntime: one-node models, then every corpus model.

Each unit case builds a one-node ONNX model with ``onnx.helper``, runs it in onnxruntime
and, through ``read_onnx``, in ``tinyir.interp``.  Float results must agree within 1e-5
of the result's magnitude, integer and boolean results exactly.  Corpus models must agree
within 1e-4 of each output's range; the trained digits models must reproduce their
recorded test accuracy.
"""

from __future__ import annotations

import json
import time

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import corpus
from onnx_util import random_feeds, rel_err, session
from tinyir.errors import UnsupportedError, VerifyError
from tinyir.formats.onnx_format import read_onnx
from tinyir.graph import Graph
from tinyir.interp import Interpreter, run
from tinyir.types import DType, TensorType

R = np.random.default_rng(1234)


def f32(*shape, lo=-2.0, hi=2.0):
    return R.uniform(lo, hi, shape).astype(np.float32)


def i64(*values):
    return np.array(values, dtype=np.int64)


def u8(*shape):
    return R.integers(0, 256, shape).astype(np.uint8)


def s8(*shape):
    return R.integers(-128, 128, shape).astype(np.int8)


def scalar(v, dt=np.float32):
    return np.array(v, dtype=dt)


class Const:
    """An operand given as an initializer (shapes, axes, scales): static in both runtimes."""

    def __init__(self, array):
        self.array = np.asarray(array)


def one_node_model(op, inputs, attrs=None, opset=17, n_out=1, domain="", out_names=None,
                   subgraphs=None):
    """A model holding one ``op`` node; ``inputs`` maps names to arrays, Const or None."""
    node_inputs, graph_inputs, inits, feeds = [], [], [], {}
    for name, a in inputs.items():
        if a is None:
            node_inputs.append("")
        elif isinstance(a, Const):
            node_inputs.append(name)
            inits.append(numpy_helper.from_array(a.array, name))
        else:
            node_inputs.append(name)
            elem = helper.np_dtype_to_tensor_dtype(a.dtype)
            graph_inputs.append(helper.make_tensor_value_info(name, elem, a.shape))
            feeds[name] = a
    outs = out_names or [f"y{i}" for i in range(n_out)]
    node = helper.make_node(op, node_inputs, outs, domain=domain or None, **(attrs or {}))
    for key, g in (subgraphs or {}).items():
        node.attribute.append(helper.make_attribute(key, g))
    graph = helper.make_graph([node], op.lower(), graph_inputs,
                              [helper.make_empty_tensor_value_info(o) for o in outs if o],
                              initializer=inits)
    ops = [helper.make_opsetid("", opset)]
    if domain:
        ops.append(helper.make_opsetid(domain, 1))
    model = helper.make_model(graph, opset_imports=ops)
    model.ir_version = 8 if opset <= 16 else 10
    return model.SerializeToString(), feeds


def _typed_outputs(data: bytes, results) -> bytes:
    """The model with its result types filled in from onnxruntime's results."""
    model = onnx.load_from_string(data)
    for vi, r in zip(model.graph.output, results):
        vi.CopyFrom(helper.make_tensor_value_info(
            vi.name, helper.np_dtype_to_tensor_dtype(r.dtype), r.shape))
    return model.SerializeToString()


def check(op, inputs, attrs=None, opset=17, **kw):
    """Run the one-node model in onnxruntime and tinyir and compare every result."""
    data, feeds = one_node_model(op, inputs, attrs, opset, **kw)
    ref = session(data).run(None, feeds)
    g = read_onnx(_typed_outputs(data, ref))
    got = run(g, feeds)
    assert len(got) == len(ref)
    for r, v in zip(ref, g.outputs):
        y = got[v.name]
        assert y.dtype == r.dtype, f"{v.name}: dtype {y.dtype}, onnxruntime {r.dtype}"
        assert y.shape == r.shape, f"{v.name}: shape {y.shape}, onnxruntime {r.shape}"
        if np.issubdtype(r.dtype, np.floating):
            scale = max(1.0, float(np.max(np.abs(r)))) if r.size else 1.0
            err = float(np.max(np.abs(r.astype(np.float64) - y))) if r.size else 0.0
            assert err <= 1e-5 * scale, f"{v.name}: max abs error {err:.3g} (scale {scale:.3g})"
        else:
            np.testing.assert_array_equal(y, r)
    return got


# ---- elementwise ---------------------------------------------------------------------------

@pytest.mark.parametrize("op", ["Add", "Sub", "Mul", "Div", "Equal", "Less", "Greater",
                                "LessOrEqual", "GreaterOrEqual"])
def test_binary_broadcast(op):
    check(op, {"a": f32(2, 3, 4), "b": f32(3, 1)})


def test_pow_and_integer_div():
    check("Pow", {"a": f32(3, 4, lo=0.1), "b": f32(4)})
    check("Pow", {"a": f32(3, 4), "b": scalar(2.0)})
    a = np.array([7, -7, 7, -7, 0], np.int64)
    check("Div", {"a": a, "b": np.array([2, 2, -2, -2, 3], np.int64)})


def test_logic_and_where():
    a, b = R.integers(0, 2, (3, 4)).astype(bool), R.integers(0, 2, (4,)).astype(bool)
    check("And", {"a": a, "b": b})
    check("Or", {"a": a, "b": b})
    check("Not", {"x": a})
    check("Where", {"c": a, "x": f32(3, 4), "y": f32(1, 4)})


def test_variadic():
    for op in ("Sum", "Min", "Max", "Mean"):
        check(op, {"a": f32(2, 3), "b": f32(3), "c": f32(1, 1)})
    check("Sum", {"a": f32(2, 3)})


@pytest.mark.parametrize("op", ["Relu", "Sigmoid", "Tanh", "Exp", "Neg", "Abs", "Floor", "Ceil",
                                "Round", "Erf", "Identity", "Sign", "Softplus", "Softsign"])
def test_unary(op):
    x = f32(3, 5, lo=-4, hi=4)
    x[0, :3] = [0.5, 1.5, -2.5]  # Round: halves go to even
    check(op, {"x": x})


def test_unary_positive_domain():
    for op in ("Sqrt", "Log", "Reciprocal"):
        check(op, {"x": f32(4, 5, lo=0.1, hi=5)})


@pytest.mark.parametrize("op,attrs", [
    ("LeakyRelu", {}), ("LeakyRelu", {"alpha": 0.2}), ("Elu", {}), ("Elu", {"alpha": 0.5}),
    ("Selu", {}), ("Selu", {"alpha": 1.5, "gamma": 1.1}), ("HardSigmoid", {}),
    ("HardSigmoid", {"alpha": 0.3, "beta": 0.4}), ("HardSwish", {}),
    ("ThresholdedRelu", {"alpha": 0.5}), ("Celu", {"alpha": 2.0}),
])
def test_activations(op, attrs):
    check(op, {"x": f32(2, 3, 8, lo=-5, hi=5)}, attrs)


def test_gelu_opset20():
    check("Gelu", {"x": f32(4, 8, lo=-4, hi=4)}, opset=20)
    check("Gelu", {"x": f32(4, 8, lo=-4, hi=4)}, {"approximate": "tanh"}, opset=20)


def test_prelu():
    check("PRelu", {"x": f32(2, 3, 4, 4), "s": f32(3, 1, 1)})
    check("PRelu", {"x": f32(2, 5), "s": f32(5)})


def test_clip_forms():
    x = f32(3, 7, lo=-3, hi=3)
    check("Clip", {"x": x}, {"min": -1.0, "max": 0.5}, opset=6)
    check("Clip", {"x": x, "lo": scalar(-0.5), "hi": scalar(1.0)}, opset=13)
    check("Clip", {"x": x, "lo": None, "hi": Const(scalar(1.0))}, opset=13)
    check("Clip", {"x": x}, opset=13)


@pytest.mark.parametrize("to", [TensorProto.INT32, TensorProto.INT64, TensorProto.FLOAT,
                                TensorProto.BOOL, TensorProto.UINT8, TensorProto.DOUBLE])
def test_cast(to):
    x = f32(3, 4, lo=-3, hi=100)
    x[0, 0] = 0
    if to == TensorProto.UINT8:
        x = np.abs(x)
    check("Cast", {"x": x}, {"to": to})
    check("Cast", {"x": R.integers(-5, 5, (6,)).astype(np.int64)}, {"to": to})


@pytest.mark.parametrize("opset,axis", [(11, 1), (11, 2), (11, -1), (13, 1), (13, -1), (13, 0)])
@pytest.mark.parametrize("op", ["Softmax", "LogSoftmax"])
def test_softmax_axis_semantics(op, opset, axis):
    check(op, {"x": f32(2, 3, 4, lo=-5, hi=5)}, {"axis": axis}, opset=opset)


def test_softmax_default_axis():
    check("Softmax", {"x": f32(2, 3, 4)}, opset=11)
    check("Softmax", {"x": f32(2, 3, 4)}, opset=13)


# ---- convolution and pooling --------------------------------------------------------------

@pytest.mark.parametrize("attrs", [
    {}, {"pads": [1, 1, 1, 1]}, {"strides": [2, 2], "pads": [1, 0, 2, 1]},
    {"dilations": [2, 2]}, {"auto_pad": "SAME_UPPER", "strides": [2, 2]},
    {"auto_pad": "SAME_LOWER", "strides": [2, 2]}, {"auto_pad": "VALID", "strides": [1, 2]},
])
def test_conv2d(attrs):
    check("Conv", {"x": f32(2, 4, 9, 8), "w": f32(6, 4, 3, 3), "b": f32(6)}, attrs)


def test_conv_groups_and_depthwise():
    check("Conv", {"x": f32(1, 6, 7, 7), "w": f32(4, 3, 3, 3)}, {"group": 2, "pads": [1] * 4})
    check("Conv", {"x": f32(1, 6, 7, 7), "w": f32(12, 1, 3, 3), "b": f32(12)},
          {"group": 6, "strides": [2, 2]})


def test_conv1d_and_large_kernel():
    check("Conv", {"x": f32(2, 3, 20), "w": f32(5, 3, 4), "b": f32(5)},
          {"pads": [2, 1], "strides": [2]})
    check("Conv", {"x": f32(1, 1, 300), "w": f32(18, 1, 64)}, {"strides": [32]})


def test_conv_transpose():
    check("ConvTranspose", {"x": f32(1, 4, 5, 5), "w": f32(4, 3, 3, 3), "b": f32(3)},
          {"strides": [2, 2], "pads": [1, 1, 1, 1], "output_padding": [1, 1]})
    check("ConvTranspose", {"x": f32(1, 4, 5, 5), "w": f32(4, 2, 2, 2)},
          {"strides": [2, 2], "group": 2})


@pytest.mark.parametrize("attrs", [
    {"kernel_shape": [3, 3]}, {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1]},
    {"kernel_shape": [3, 3], "strides": [2, 2], "ceil_mode": 1},
    {"kernel_shape": [2, 2], "strides": [2, 2], "ceil_mode": 1, "pads": [0, 0, 1, 1]},
    {"kernel_shape": [3, 3], "dilations": [2, 2]},
    {"kernel_shape": [3, 2], "auto_pad": "SAME_UPPER", "strides": [2, 2]},
    {"kernel_shape": [3, 3], "auto_pad": "SAME_LOWER", "strides": [2, 2]},
])
def test_max_pool(attrs):
    check("MaxPool", {"x": f32(2, 3, 9, 8)}, attrs)


def test_max_pool_indices_and_int8():
    x = f32(2, 3, 7, 6)
    check("MaxPool", {"x": x}, {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1] * 4},
          n_out=2)
    check("MaxPool", {"x": x}, {"kernel_shape": [2, 2], "strides": [2, 2], "storage_order": 1},
          n_out=2)
    check("MaxPool", {"x": s8(1, 2, 6, 6)}, {"kernel_shape": [2, 2], "strides": [2, 2]})
    check("MaxPool", {"x": f32(1, 2, 11)}, {"kernel_shape": [3], "strides": [2]})


@pytest.mark.parametrize("attrs", [
    {"kernel_shape": [3, 3]}, {"kernel_shape": [3, 3], "pads": [1, 1, 1, 1]},
    {"kernel_shape": [3, 3], "pads": [1, 1, 1, 1], "count_include_pad": 1},
    {"kernel_shape": [3, 3], "strides": [2, 2], "ceil_mode": 1},
    {"kernel_shape": [3, 3], "strides": [2, 2], "ceil_mode": 1, "pads": [1, 1, 1, 1],
     "count_include_pad": 1},
    {"kernel_shape": [2, 3], "auto_pad": "SAME_UPPER", "strides": [2, 2]},
    {"kernel_shape": [3, 3], "auto_pad": "SAME_LOWER", "strides": [2, 2],
     "count_include_pad": 1},
])
def test_average_pool(attrs):
    check("AveragePool", {"x": f32(2, 3, 9, 8)}, attrs)


def test_ceil_mode_drops_windows_starting_in_end_padding():
    attrs = {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [0, 0, 2, 2], "ceil_mode": 1}
    x = f32(1, 1, 4, 4)
    check("MaxPool", {"x": x}, attrs)
    check("AveragePool", {"x": x}, attrs)
    check("AveragePool", {"x": x}, {**attrs, "count_include_pad": 1})
    check("AveragePool", {"x": f32(1, 1, 5, 5)}, {"kernel_shape": [3, 3], "dilations": [2, 2]},
          opset=19)


def test_three_d_conv_and_pool():
    check("Conv", {"x": f32(1, 2, 6, 6, 5), "w": f32(3, 2, 3, 3, 2)}, {"pads": [1, 1, 0, 1, 1, 0]})
    check("MaxPool", {"x": f32(1, 2, 6, 6, 5)}, {"kernel_shape": [2, 2, 2]})


def test_global_pools():
    check("GlobalAveragePool", {"x": f32(2, 3, 5, 4)})
    check("GlobalMaxPool", {"x": f32(2, 3, 5, 4)})


# ---- normalisation, matrix products -------------------------------------------------------

def test_legacy_forms():
    check("Upsample", {"x": f32(1, 2, 3, 4)}, {"scales": [1.0, 1.0, 2.0, 3.0]}, opset=7)
    check("Upsample", {"x": f32(1, 2, 3, 4)}, {"scales": [1.0, 1.0, 2.0, 2.0], "mode": "linear"},
          opset=7)
    check("BatchNormalization", {"x": f32(2, 3, 4), "s": f32(3, 4), "b": f32(3, 4),
                                 "m": f32(3, 4), "v": f32(3, 4, lo=0.1)}, {"spatial": 0},
          opset=7)
    check("Clip", {"x": np.arange(-5, 5).astype(np.int32), "lo": scalar(-2, np.int32),
                   "hi": scalar(3, np.int32)}, opset=13)
    check("Pad", {"x": f32(1, 40), "p": Const(i64(0, 3, 0, 3))}, {"mode": "wrap"}, opset=19)


def test_batch_norm_forms():
    args = {"x": f32(2, 4, 3, 3), "s": f32(4), "b": f32(4), "m": f32(4),
            "v": f32(4, lo=0.1, hi=2)}
    check("BatchNormalization", args, {"epsilon": 1e-3})
    check("BatchNormalization", args, opset=9)
    check("BatchNormalization", args, {"spatial": 1}, opset=7)
    check("BatchNormalization", {"x": f32(3, 5), "s": f32(5), "b": f32(5), "m": f32(5),
                                 "v": f32(5, lo=0.1)}, opset=15)


def test_instance_and_layer_norm():
    check("InstanceNormalization", {"x": f32(2, 3, 4, 5), "s": f32(3), "b": f32(3)})
    check("LayerNormalization", {"x": f32(2, 3, 8), "s": f32(8), "b": f32(8)})
    check("LayerNormalization", {"x": f32(2, 3, 8), "s": f32(3, 8)}, {"axis": 1})


@pytest.mark.parametrize("attrs,ashape,bshape,cshape", [
    ({}, (3, 4), (4, 5), (5,)), ({"transA": 1}, (4, 3), (4, 5), (1, 5)),
    ({"transB": 1, "alpha": 0.5, "beta": 2.0}, (3, 4), (5, 4), (3, 5)),
    ({"transA": 1, "transB": 1}, (4, 3), (5, 4), None), ({}, (3, 4), (4, 5), (3, 1)),
])
def test_gemm(attrs, ashape, bshape, cshape):
    ins = {"a": f32(*ashape), "b": f32(*bshape)}
    if cshape:
        ins["c"] = f32(*cshape)
    check("Gemm", ins, attrs)


def test_matmul_shapes():
    check("MatMul", {"a": f32(3, 4), "b": f32(4, 5)})
    check("MatMul", {"a": f32(2, 3, 4), "b": f32(4, 5)})
    check("MatMul", {"a": f32(4), "b": f32(2, 4, 5)})
    check("MatMul", {"a": f32(2, 3, 4), "b": f32(4)})


# ---- data movement ----------------------------------------------------------------------

def test_reshape_flatten_transpose():
    x = f32(2, 3, 4)
    check("Reshape", {"x": x, "s": Const(i64(0, -1))})
    check("Reshape", {"x": x, "s": Const(i64(4, 0, 2))})
    check("Reshape", {"x": x, "s": Const(i64(-1))}, {"allowzero": 1}, opset=14)
    for axis in (0, 1, 2, -1):
        check("Flatten", {"x": x}, {"axis": axis})
    check("Transpose", {"x": x}, {"perm": [2, 0, 1]})
    check("Transpose", {"x": x})


def test_squeeze_unsqueeze_forms():
    x = f32(1, 3, 1, 2)
    check("Squeeze", {"x": x}, {"axes": [0, -2]}, opset=11)
    check("Squeeze", {"x": x, "a": Const(i64(2))}, opset=13)
    check("Squeeze", {"x": x}, opset=13)
    check("Unsqueeze", {"x": f32(3, 2)}, {"axes": [0, 3]}, opset=11)
    check("Unsqueeze", {"x": f32(3, 2), "a": Const(i64(-1, 0))}, opset=13)


def test_concat_split():
    check("Concat", {"a": f32(2, 3), "b": f32(2, 1), "c": f32(2, 2)}, {"axis": -1})
    x = f32(2, 6, 3)
    check("Split", {"x": x}, {"axis": 1}, n_out=3)
    check("Split", {"x": x}, {"axis": 1, "split": [1, 5]}, opset=11, n_out=2)
    check("Split", {"x": x, "s": Const(i64(2, 4))}, {"axis": 1}, opset=13, n_out=2)
    check("Split", {"x": f32(7, 2)}, {"num_outputs": 3}, opset=18, n_out=3)


@pytest.mark.parametrize("starts,ends,axes,steps", [
    ([1], [3], [1], None), ([0, -3], [2, 100], None, None), ([5], [-100], [2], [-2]),
    ([-1], [0], [1], [-1]), ([2, 0], [-1, 4], [2, 0], [2, 1]), ([10], [20], [1], None),
])
def test_slice_forms(starts, ends, axes, steps):
    x = f32(2, 5, 6)
    if steps is None:
        check("Slice", {"x": x}, {"starts": starts, "ends": ends,
                                  **({"axes": axes} if axes else {})}, opset=9)
    ins = {"x": x, "s": Const(i64(*starts)), "e": Const(i64(*ends))}
    ins["a"] = Const(i64(*axes)) if axes else None
    if steps:
        ins["p"] = Const(i64(*steps))
    check("Slice", ins, opset=13)


def test_gather():
    x = f32(4, 5)
    check("Gather", {"x": x, "i": i64(0, -1, 2)})
    check("Gather", {"x": x, "i": np.array([[1, 0], [3, -2]], np.int64)}, {"axis": 1})
    check("Gather", {"x": i64(2, 3, 4), "i": Const(np.array(1, np.int64))})


@pytest.mark.parametrize("mode", ["constant", "reflect", "edge"])
def test_pad_forms(mode):
    x = f32(1, 2, 5, 6)
    pads = [0, 0, 1, 2, 0, 0, 2, 1]
    attrs = {"mode": mode}
    check("Pad", {"x": x}, {**attrs, "pads": pads, **({"value": 1.5} if mode == "constant"
                                                      else {})}, opset=9)
    ins = {"x": x, "p": Const(i64(*pads))}
    if mode == "constant":
        ins["v"] = Const(scalar(-2.0))
    check("Pad", ins, attrs, opset=13)
    check("Pad", {"x": f32(1, 40), "p": Const(i64(0, 3, 0, 3))}, attrs, opset=15)


def test_pad_negative_and_axes():
    check("Pad", {"x": f32(3, 6), "p": Const(i64(-1, 2, 0, -2))}, opset=13)
    check("Pad", {"x": f32(2, 3, 4), "p": Const(i64(1, 2)), "v": None,
                  "a": Const(i64(-1))}, opset=18)


def test_constants_shape_size():
    check("Constant", {}, {"value": numpy_helper.from_array(f32(2, 3))})
    check("Constant", {}, {"value_ints": [1, 2, 3]}, opset=13)
    check("Constant", {}, {"value_float": 2.5}, opset=13)
    check("ConstantOfShape", {"s": Const(i64(2, 3))})
    check("ConstantOfShape", {"s": Const(i64(4))},
          {"value": numpy_helper.from_array(np.array([7], np.int64))})
    x = f32(2, 3, 4, 5)
    check("Shape", {"x": x})
    check("Shape", {"x": x}, {"start": 1, "end": -1}, opset=15)
    check("Shape", {"x": x}, {"start": -2}, opset=15)
    check("Size", {"x": x})


def test_dropout_inference():
    x = f32(3, 4)
    check("Dropout", {"x": x}, n_out=2, opset=12)
    check("Dropout", {"x": x}, {"ratio": 0.3}, opset=9)
    check("Identity", {"x": x})


def test_expand_tile_depth_to_space():
    check("Expand", {"x": f32(3, 1), "s": Const(i64(2, 1, 4))})
    check("Tile", {"x": f32(2, 3), "r": Const(i64(2, 3))})
    for mode in ("DCR", "CRD"):
        check("DepthToSpace", {"x": f32(1, 8, 2, 3)}, {"blocksize": 2, "mode": mode})
    check("SpaceToDepth", {"x": f32(1, 2, 4, 6)}, {"blocksize": 2})


# ---- reductions and argmax -------------------------------------------------------------

@pytest.mark.parametrize("op", ["ReduceMean", "ReduceSum", "ReduceMax", "ReduceMin",
                                "ReduceProd", "ReduceL2", "ReduceSumSquare"])
def test_reduce_forms(op):
    x = f32(2, 3, 4, lo=0.5, hi=1.5)
    check(op, {"x": x}, {"axes": [1, -1], "keepdims": 0}, opset=11)
    check(op, {"x": x}, {"keepdims": 1}, opset=11)
    check(op, {"x": x, "a": Const(i64(0))}, opset=18)
    check(op, {"x": x}, {"keepdims": 0}, opset=18)
    check(op, {"x": x}, {"noop_with_empty_axes": 1}, opset=18)


def test_reduce_sum_operand_axes_since_13():
    check("ReduceSum", {"x": f32(2, 3, 4), "a": Const(i64(-1))}, {"keepdims": 0}, opset=13)


def test_argmax_argmin():
    x = np.array([[1, 3, 3], [2, 2, 0]], np.float32)
    for op in ("ArgMax", "ArgMin"):
        check(op, {"x": x}, {"axis": 1})
        check(op, {"x": x}, {"axis": 1, "select_last_index": 1, "keepdims": 0})
        check(op, {"x": f32(3, 4, 5)}, {"axis": -1})


# ---- resizing ------------------------------------------------------------------------

@pytest.mark.parametrize("mode,ctm,nearest", [
    ("nearest", "asymmetric", "floor"), ("nearest", "half_pixel", "round_prefer_floor"),
    ("nearest", "half_pixel", "round_prefer_ceil"), ("nearest", "align_corners", "ceil"),
    ("nearest", "tf_half_pixel_for_nn", "round_prefer_floor"),
    ("linear", "half_pixel", None), ("linear", "asymmetric", None),
    ("linear", "align_corners", None), ("linear", "pytorch_half_pixel", None),
    ("cubic", "half_pixel", None), ("cubic", "asymmetric", None),
])
@pytest.mark.parametrize("factor", [2.0, 0.6])
def test_resize_scales(mode, ctm, nearest, factor):
    attrs = {"mode": mode, "coordinate_transformation_mode": ctm}
    if nearest:
        attrs["nearest_mode"] = nearest
    scales = Const(np.array([1, 1, factor, factor * 1.25], np.float32))
    check("Resize", {"x": f32(1, 2, 5, 6), "roi": None, "s": scales}, attrs, opset=13)


def test_resize_sizes_and_legacy():
    check("Resize", {"x": f32(1, 2, 4, 4), "roi": None, "s": None,
                     "z": Const(i64(1, 2, 7, 3))}, {"mode": "linear"}, opset=13)
    check("Resize", {"x": f32(1, 2, 4, 4), "roi": Const(np.zeros(0, np.float32)),
                     "s": Const(np.zeros(0, np.float32)), "z": Const(i64(1, 2, 8, 6))},
          {"mode": "nearest"}, opset=11)
    check("Resize", {"x": f32(1, 2, 3, 4), "s": Const(np.array([1, 1, 2, 3], np.float32))},
          {"mode": "nearest"}, opset=10)
    check("Resize", {"x": f32(1, 2, 3, 4), "s": Const(np.array([1, 1, 2, 2], np.float32))},
          {"mode": "linear"}, opset=10)
    check("Upsample", {"x": f32(1, 2, 3, 4), "s": Const(np.array([1, 1, 2, 2], np.float32))},
          {"mode": "nearest"}, opset=9)


# ---- quantization ------------------------------------------------------------------------

def test_quantize_linear():
    x = np.concatenate([f32(40, lo=-3, hi=3), np.array([0.5, 1.5, 2.5, -0.5, -2.5, 100, -100],
                                                      np.float32)])
    check("QuantizeLinear", {"x": x, "s": scalar(0.5), "z": scalar(3, np.uint8)})
    check("QuantizeLinear", {"x": x, "s": scalar(0.02), "z": scalar(-5, np.int8)})
    check("QuantizeLinear", {"x": x, "s": scalar(0.1)})
    xc = f32(2, 3, 4)
    check("QuantizeLinear", {"x": xc, "s": np.array([0.01, 0.02, 0.05], np.float32),
                             "z": np.array([0, 1, -2], np.int8)}, {"axis": 1}, opset=13)


def test_dequantize_linear():
    check("DequantizeLinear", {"x": u8(5, 6), "s": scalar(0.37), "z": scalar(128, np.uint8)})
    check("DequantizeLinear", {"x": s8(5, 6), "s": scalar(0.1)})
    check("DequantizeLinear", {"x": R.integers(-1000, 1000, (7,)).astype(np.int32),
                               "s": scalar(0.01)})
    check("DequantizeLinear", {"x": s8(2, 3, 4), "s": np.array([0.1, 0.2, 0.3], np.float32),
                               "z": np.array([0, 1, -1], np.int8)}, {"axis": 1}, opset=13)


def test_integer_ops():
    check("ConvInteger", {"x": u8(1, 3, 6, 6), "w": u8(4, 3, 3, 3), "xz": scalar(120, np.uint8),
                          "wz": scalar(7, np.uint8)}, {"pads": [1] * 4})
    check("ConvInteger", {"x": u8(1, 2, 5, 5), "w": u8(2, 2, 2, 2)}, opset=10)
    check("MatMulInteger", {"a": u8(3, 8), "b": u8(8, 5), "az": scalar(100, np.uint8),
                            "bz": scalar(3, np.uint8)})
    check("MatMulInteger", {"a": u8(2, 3, 8), "b": s8(8, 5), "az": None,
                            "bz": np.array([1, -2, 0, 3, 4], np.int8)})


def test_qlinear_conv_and_matmul():
    check("QLinearConv", {"x": u8(1, 4, 7, 7), "xs": scalar(0.02), "xz": scalar(128, np.uint8),
                          "w": s8(6, 4, 3, 3), "ws": np.linspace(0.001, 0.01, 6, dtype=np.float32),
                          "wz": np.zeros(6, np.int8), "ys": scalar(0.05),
                          "yz": scalar(100, np.uint8),
                          "b": R.integers(-500, 500, 6).astype(np.int32)}, {"pads": [1] * 4})
    check("QLinearConv", {"x": u8(1, 4, 7, 7), "xs": scalar(0.02), "xz": scalar(128, np.uint8),
                          "w": u8(4, 1, 3, 3), "ws": scalar(0.003), "wz": scalar(120, np.uint8),
                          "ys": scalar(0.01), "yz": scalar(3, np.uint8)},
          {"group": 4, "strides": [2, 2]})
    check("QLinearMatMul", {"a": u8(3, 16), "as": scalar(0.03), "az": scalar(120, np.uint8),
                            "b": s8(16, 5), "bs": scalar(0.004), "bz": scalar(0, np.int8),
                            "ys": scalar(0.02), "yz": scalar(128, np.uint8)})


def test_qlinear_add_com_microsoft():
    ins = {"a": u8(2, 3, 4), "as": scalar(0.05), "az": scalar(120, np.uint8), "b": u8(3, 4),
           "bs": scalar(0.03), "bz": scalar(130, np.uint8), "cs": scalar(0.07),
           "cz": scalar(125, np.uint8)}
    check("QLinearAdd", ins, opset=12, domain="com.microsoft")


# ---- control flow and recurrent layers -------------------------------------------------------

def _branch(name, op):
    """A branch body reading the outer value ``x`` by reference."""
    node = helper.make_node(op, ["x"], [f"{name}_out"])
    return helper.make_graph([node], name, [], [
        helper.make_tensor_value_info(f"{name}_out", TensorProto.FLOAT, [3])])


@pytest.mark.parametrize("cond", [True, False])
def test_if_reads_outer_scope(cond):
    node = helper.make_node("If", ["c"], ["y"], then_branch=_branch("then", "Relu"),
                            else_branch=_branch("else", "Neg"))
    pre = helper.make_node("Mul", ["a", "a"], ["x"])  # an outer value computed before the If
    graph = helper.make_graph(
        [pre, node], "if", [helper.make_tensor_value_info("c", TensorProto.BOOL, []),
                            helper.make_tensor_value_info("a", TensorProto.FLOAT, [3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [3])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 15)])
    model.ir_version = 8
    data = model.SerializeToString()
    feeds = {"c": np.array(cond), "a": f32(3)}
    ref = session(data).run(None, feeds)[0]
    got = run(read_onnx(data), feeds)["y"]
    np.testing.assert_array_equal(got, ref)


@pytest.mark.parametrize("direction", ["forward", "reverse", "bidirectional"])
@pytest.mark.parametrize("extras", [False, True])
def test_lstm(direction, extras):
    seq, batch, inp, hid = 5, 3, 4, 6
    d = 2 if direction == "bidirectional" else 1
    ins = {"x": f32(seq, batch, inp), "w": f32(d, 4 * hid, inp, lo=-0.5, hi=0.5),
           "r": f32(d, 4 * hid, hid, lo=-0.5, hi=0.5)}
    if extras:
        ins.update({"b": f32(d, 8 * hid), "l": None, "h0": f32(d, batch, hid),
                    "c0": f32(d, batch, hid), "p": f32(d, 3 * hid)})
    check("LSTM", ins, {"hidden_size": hid, "direction": direction}, opset=14, n_out=3)


def test_lstm_sequence_lens_and_clip():
    ins = {"x": f32(4, 3, 2), "w": f32(2, 12, 2), "r": f32(2, 12, 3), "b": None,
           "l": np.array([4, 2, 1], np.int32)}
    check("LSTM", ins, {"hidden_size": 3, "direction": "bidirectional", "clip": 0.7},
          opset=14, n_out=3)
    check("LSTM", {"x": f32(4, 2, 2), "w": f32(1, 12, 2), "r": f32(1, 12, 3)},
          {"hidden_size": 3, "activations": ["HardSigmoid", "Tanh", "Relu"],
           "activation_alpha": [0.3], "activation_beta": [0.4]},
          opset=14, out_names=["", "yh"])


def test_lstm_batch_first_layout_equals_transposed_run():
    """onnxruntime has no layout=1 LSTM: check it against our own layout=0 run."""
    x, w, r = f32(3, 4, 2), f32(1, 12, 2), f32(1, 12, 3)
    outs = []
    shapes = {0: [(3, 1, 4, 3), (1, 4, 3), (1, 4, 3)], 1: [(4, 3, 1, 3), (4, 1, 3), (4, 1, 3)]}
    for layout, xin in ((0, x), (1, np.swapaxes(x, 0, 1).copy())):
        data, feeds = one_node_model("LSTM", {"x": xin, "w": w, "r": r},
                                     {"hidden_size": 3, "layout": layout}, 14, n_out=3)
        g = read_onnx(_typed_outputs(data, [np.zeros(sh, np.float32) for sh in shapes[layout]]))
        outs.append([run(g, feeds)[v.name] for v in g.outputs])
    np.testing.assert_allclose(outs[1][0], np.transpose(outs[0][0], (2, 0, 1, 3)), rtol=1e-6)
    np.testing.assert_allclose(outs[1][1], np.swapaxes(outs[0][1], 0, 1), rtol=1e-6)


# ---- less common ops ---------------------------------------------------------------------

@pytest.mark.parametrize("case", [
    ("Mod", {"a": i64(7, -7, 7, -7), "b": i64(3, 3, -3, -3)}, {}, 17),
    ("Mod", {"a": f32(5), "b": f32(5, lo=0.5)}, {"fmod": 1}, 17),
    ("Range", {"a": Const(scalar(1, np.int64)), "b": Const(scalar(10, np.int64)),
               "c": Const(scalar(3, np.int64))}, {}, 17),
    ("Range", {"a": scalar(1.0), "b": scalar(2.0), "c": scalar(0.25)}, {}, 17),
    ("GatherElements", {"x": f32(3, 4), "i": np.array([[0, -1, 2, 1]], np.int64)}, {}, 17),
    ("Einsum", {"a": f32(2, 3, 4), "b": f32(2, 4, 5)}, {"equation": "bij,bjk->bik"}, 12),
    ("Hardmax", {"x": f32(2, 3, 4)}, {"axis": 1}, 13),
    ("Hardmax", {"x": f32(2, 3, 4)}, {"axis": 1}, 11),
    ("Mish", {"x": f32(2, 5)}, {}, 18),
    ("CastLike", {"x": f32(4, hi=50), "t": i64(1)}, {}, 15),
    ("Xor", {"a": np.array([True, False, True]), "b": np.array([True, True, False])}, {}, 17),
    ("IsNaN", {"x": np.array([1, np.nan], np.float32)}, {}, 17),
    ("Sin", {"x": f32(4)}, {}, 17),
    ("QuantizeLinear", {"x": f32(9, lo=-300, hi=300), "s": scalar(0.01),
                        "z": scalar(0, np.int16)}, {}, 21),
    ("DequantizeLinear", {"x": R.integers(-30000, 30000, (5,)).astype(np.int16),
                          "s": scalar(0.01), "z": scalar(3, np.int16)}, {}, 21),
    ("ConvTranspose", {"x": f32(1, 2, 4, 4), "w": f32(2, 3, 3, 3)},
     {"strides": [2, 2], "output_shape": [9, 9]}, 17),
    ("ConvTranspose", {"x": f32(1, 2, 4, 4), "w": f32(2, 3, 3, 3)},
     {"strides": [2, 2], "output_shape": [8, 7]}, 17),
    ("ConvTranspose", {"x": f32(1, 2, 4, 4), "w": f32(2, 3, 3, 3)},
     {"strides": [2, 2], "output_shape": [8, 7], "auto_pad": "SAME_UPPER"}, 17),
    ("ConvTranspose", {"x": f32(1, 2, 4, 4), "w": f32(2, 3, 3, 3)},
     {"strides": [2, 2], "auto_pad": "SAME_UPPER"}, 17),
    ("ConvTranspose", {"x": f32(1, 2, 7), "w": f32(2, 3, 3)}, {"strides": [2], "dilations": [2]},
     17),
    ("Resize", {"x": f32(1, 2, 5, 6),
                "roi": Const(np.array([0, 0, 0.1, 0.2, 1, 1, 0.8, 0.9], np.float32)),
                "s": None, "z": Const(i64(1, 2, 4, 4))},
     {"mode": "linear", "coordinate_transformation_mode": "tf_crop_and_resize"}, 13),
    ("Resize", {"x": f32(1, 2, 5, 6), "roi": None, "s": None, "z": Const(i64(7, 8))},
     {"mode": "linear", "axes": [2, 3], "keep_aspect_ratio_policy": "not_larger"}, 18),
    ("Resize", {"x": f32(1, 2, 5, 6), "roi": None,
                "s": Const(np.array([1, 1, 1.7, 0.5], np.float32))},
     {"mode": "cubic", "exclude_outside": 1, "cubic_coeff_a": -0.5}, 13),
    ("Resize", {"x": f32(1, 2, 5, 6), "roi": None,
                "s": Const(np.array([1, 1, 1.7, 0.5], np.float32))},
     {"mode": "linear", "coordinate_transformation_mode": "half_pixel_symmetric"}, 19),
], ids=lambda c: c[0])
def test_less_common_ops(case):
    op, ins, attrs, opset = case
    check(op, ins, attrs, opset)


# ---- contract ----------------------------------------------------------------------------

def test_hand_built_graph_without_opsets():
    """Kernels need no importer: a graph built by hand (no opsets recorded) runs too."""
    g = Graph("hand", layout="NCHW")
    x = g.add_input("x", TensorType((1, 2, 5, 5), DType.FLOAT32))
    w = g.add_const("w", f32(3, 2, 3, 3))
    node = g.add_node("onnx.Conv", [x, w], [("y", TensorType((1, 3, 3, 3), DType.FLOAT32))],
                      {"strides": [2, 2], "pads": [1, 1, 1, 1]})
    g.outputs = list(node.outputs)
    xv = f32(1, 2, 5, 5)
    xp = np.pad(xv, [(0, 0), (0, 0), (1, 1), (1, 1)]).astype(np.float64)
    want = np.array([[[[np.sum(xp[0, :, 2 * i:2 * i + 3, 2 * j:2 * j + 3] * w.const[m])
                        for j in range(3)] for i in range(3)] for m in range(3)]])
    np.testing.assert_allclose(run(g, {"x": xv})["y"], want, rtol=1e-5, atol=1e-5)


def test_malformed_batch_norm_is_refused():
    """hls4ml_three_layer_bn applies 64-entry BN parameters to a [64, 1] tensor (axis 1 = 1)."""
    g = read_onnx(corpus.model("onnx/hls4ml_three_layer_bn_keras.onnx").read_bytes())
    with pytest.raises(VerifyError, match=r"BatchNormalization.*64 entries.*1 channels"):
        run(g, {g.inputs[0].name: f32(1, 16)})


def test_unknown_op_is_refused_with_its_name():
    x = f32(2)
    data, feeds = one_node_model("Relu", {"x": x})
    g = read_onnx(_typed_outputs(data, [x]))
    g.nodes[0].op = "onnx.NoSuchOp"
    with pytest.raises(UnsupportedError, match="onnx.NoSuchOp"):
        Interpreter(g)


# ---- corpus models against onnxruntime --------------------------------------------------

def _corpus_feeds(sess, path):
    feeds = random_feeds(sess)
    if "silero" in path.name:  # MANIFEST: audio [1,512], zero state, sr=16000
        feeds["input"] = np.random.default_rng(0).standard_normal((1, 512)).astype(np.float32)
        feeds["state"] = np.zeros((2, 1, 128), np.float32)
    return feeds


def _probes(g, count=12):
    """Up to ``count`` evenly spaced intermediate float results of the main graph.

    The "light" corpus models have constant weights, so their final outputs are
    constant too; their intermediate activations are not.
    """
    outs = {v.name for v in g.outputs}
    cands = [v for n in g.nodes for v in n.outputs
             if v.type.dtype.is_float and v.name not in outs and not n.subgraphs()]
    step = max(1, len(cands) // count)
    return cands[step - 1::step][:count]


def _with_outputs(data: bytes, values) -> bytes:
    model = onnx.load_from_string(data)
    for v in values:
        model.graph.output.append(helper.make_tensor_value_info(
            v.name, helper.np_dtype_to_tensor_dtype(v.type.dtype.numpy), None))
    return model.SerializeToString()


@pytest.mark.parametrize("path", corpus.files("**/*.onnx"))
def test_corpus_model_matches_onnxruntime(path):
    """Outputs and a dozen intermediate results agree within 1e-4 of their range."""
    data = path.read_bytes()
    g = read_onnx(data, path)
    probes = _probes(g)
    try:
        sess = session(_with_outputs(data, probes))
        feeds = _corpus_feeds(sess, path)
        ref = sess.run(None, feeds)
    except Exception as e:  # MANIFEST: onnxruntime refuses hls4ml BN and qonnx models
        pytest.skip(f"onnxruntime does not run {path.name}: {str(e).splitlines()[0][:120]}")
    start = time.perf_counter()
    got = run(g, feeds, keep=True)
    elapsed = time.perf_counter() - start
    assert elapsed < 10, f"{path.name} took {elapsed:.1f} s in the interpreter"
    for r, v in zip(ref, g.outputs):
        y = got[v.name]
        assert y.dtype == r.dtype and y.shape == r.shape, v.name
        assert rel_err(r, y) <= 1e-4, f"{v.name}: error {rel_err(r, y):.3g} of the output range"
    for r, v in zip(ref[len(g.outputs):], probes):
        y = got[v.name]
        assert y.dtype == r.dtype and y.shape == r.shape, v.name
        # many light-model activations are nearly constant: measure against the magnitude
        scale = max(float(np.abs(r).max()), 1e-30) if r.size else 1.0
        err = float(np.max(np.abs(r.astype(np.float64) - y))) / scale if r.size else 0.0
        assert err <= 1e-4, f"intermediate {v.name}: error {err:.3g} of its magnitude"


QUANTIZED = ["onnx/onnxzoo_shufflenet_v2_int8.onnx", "onnx/onnx_mnist_integerops_uint8.onnx",
             "onnx-from-tflite/coral_mobilenet_v1_025_128_uint8.onnx",
             "onnx-from-tflite/coral_split_concat_uint8.onnx"]


@pytest.mark.parametrize("rel", QUANTIZED)
def test_quantized_corpus_models_are_bit_exact(rel):
    """Every integer intermediate of the quantized models equals onnxruntime's."""
    data = corpus.model(rel).read_bytes()
    g = read_onnx(data)
    outs = {v.name for v in g.outputs}
    ints_ = [v for n in g.nodes for v in n.outputs
             if not v.type.dtype.is_float and v.name not in outs]
    sess = session(_with_outputs(data, ints_))
    feeds = random_feeds(sess)
    ref = sess.run(None, feeds)[len(g.outputs):]
    got = run(g, feeds, keep=True)
    assert ints_
    for r, v in zip(ref, ints_):
        np.testing.assert_array_equal(got[v.name], r, err_msg=v.name)


def _qonnx_as_standard_onnx(model: onnx.ModelProto) -> onnx.ModelProto:
    """The QONNX model rewritten with standard ops onnxruntime runs: Quant as
    Div/Add/Clip/Round/Sub/Mul, channels-last ops as Transpose + op + Transpose."""
    inits = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    nodes, extra = [], []
    for n in model.graph.node:
        a = {x.name: helper.get_attribute_value(x) for x in n.attribute}
        if n.op_type == "Quant":
            x, sc, zp, bw = n.input
            bits, signed, narrow = int(inits[bw]), a.get("signed", 1), a.get("narrow", 0)
            lo = -(2 ** (bits - 1)) + narrow if signed else 0
            hi = 2 ** (bits - 1) - 1 if signed else 2 ** bits - 1 - narrow
            t = [f"{n.name}_t{i}" for i in range(5)]
            extra += [numpy_helper.from_array(np.array(lo, np.float32), t[0] + "lo"),
                      numpy_helper.from_array(np.array(hi, np.float32), t[0] + "hi")]
            nodes += [helper.make_node("Div", [x, sc], [t[0]]),
                      helper.make_node("Add", [t[0], zp], [t[1]]),
                      helper.make_node("Clip", [t[1], t[0] + "lo", t[0] + "hi"], [t[2]]),
                      helper.make_node("Round", [t[2]], [t[3]]),
                      helper.make_node("Sub", [t[3], zp], [t[4]]),
                      helper.make_node("Mul", [t[4], sc], list(n.output))]
        elif n.domain == "qonnx.custom_op.channels_last":
            ins = [f"{n.name}_in", f"{n.name}_w"][:len(n.input[:2])]
            nodes += [helper.make_node("Transpose", [n.input[0]], [ins[0]], perm=[0, 3, 1, 2])]
            if n.op_type == "Conv":
                nodes += [helper.make_node("Transpose", [n.input[1]], [ins[1]], perm=[0, 3, 1, 2])]
            nodes += [helper.make_node(n.op_type, ins + list(n.input[2:]), [f"{n.name}_y"], **a),
                      helper.make_node("Transpose", [f"{n.name}_y"], list(n.output),
                                       perm=[0, 2, 3, 1])]
        else:
            nodes.append(n)
    graph = helper.make_graph(nodes, "std", model.graph.input, model.graph.output,
                              list(model.graph.initializer) + extra)
    out = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    out.ir_version = 8
    return out


def test_qonnx_tiny_unet_matches_standard_onnx_rewrite():
    """No runtime executes QONNX ops; the same model in standard ops is the oracle."""
    path = corpus.model("onnx/hls4ml_tiny_unet_qonnx.onnx")
    data = path.read_bytes()
    std = _qonnx_as_standard_onnx(onnx.load_from_string(data)).SerializeToString()
    x = np.random.default_rng(0).random((1, 256, 256, 3)).astype(np.float32)
    ref = session(std).run(None, {"global_in": x})[0]
    g = read_onnx(data, path)
    got = run(g, {"global_in": x})[g.outputs[0].name]
    assert got.shape == ref.shape and rel_err(ref, got) <= 1e-4, rel_err(ref, got)


@pytest.mark.parametrize("name", ["digits_lenet_bn", "digits_resdw_bn"])
def test_digits_accuracy(name):
    results = json.loads(corpus.model("trained/digits_results.json").read_text())
    data = np.load(corpus.model("trained/digits_test.npz"))
    g = read_onnx(corpus.model(f"trained/{name}.onnx").read_bytes())
    interp = Interpreter(g)
    inp, out = g.inputs[0].name, g.outputs[0].name
    correct = sum(int(np.argmax(interp.run({inp: x[None]})[out])) == int(y)
                  for x, y in zip(data["x_test"], data["y_test"]))
    expected = results["models"][name]["onnxruntime_correct"]  # 447 and 444
    assert correct == expected, f"{name}: {correct}/{len(data['y_test'])} correct"
