"""Helpers shared by the TFLite kernels: quantisation parameters, attrs, clamping.

Kernels read quantisation from the values' types (``node.inputs[i].type.quant``) exactly
as TFLM reads ``TfLiteTensor::params``: per-tensor scale and zero point, or the per-axis
scale list for filters.  Scales are float32 values; TFLM mixes float32 and double math
when it turns them into multipliers, and each kernel says which.
"""

from __future__ import annotations

import numpy as np

from tinyir.errors import UnsupportedError
from tinyir.graph import Node, Value
from tinyir.interp import tfl_quant as fx


def attr(node: Node, name: str, default=None):
    return node.attrs.get(name, default)


def activation(node: Node) -> str:
    """The fused activation name (``NONE`` when the op has none)."""
    act = node.attrs.get("fused_activation_function", "NONE")
    return act if isinstance(act, str) else {0: "NONE", 1: "RELU", 2: "RELU_N1_TO_1",
                                             3: "RELU6"}.get(int(act), "NONE")


def qparams(v: Value | None) -> tuple[float, int]:
    """(scale, zero point) of a per-tensor quantised value; (0.0, 0) when unquantised.

    TFLM's ``params.scale``/``params.zero_point`` are the first entry of the per-axis
    arrays, so a per-channel tensor reports its channel 0 here, as in TFLM.
    """
    if v is None or v.type.quant is None or not v.type.quant.scale:
        return 0.0, 0
    q = v.type.quant
    return float(np.float32(q.scale[0])), int(q.zero_point[0])


def qscales(v: Value) -> np.ndarray:
    """All scales of a value (float32), one per channel for per-axis quantisation."""
    if v.type.quant is None:
        raise UnsupportedError(f"%{v.name} has no quantisation parameters")
    return np.asarray(v.type.quant.scale, dtype=np.float32)


def f32(x) -> np.float32:
    return np.float32(x)


def int_limits(dtype) -> tuple[int, int]:
    info = np.iinfo(np.dtype(dtype))
    return int(info.min), int(info.max)


def out_dtype(node: Node, i: int = 0) -> np.dtype:
    return node.outputs[i].type.dtype.numpy


def out_shape(node: Node, fallback, i: int = 0) -> tuple:
    shape = node.outputs[i].type.shape
    if shape is not None and all(isinstance(d, int) and d >= 0 for d in shape):
        return tuple(shape)
    return tuple(fallback)


def quant_act_range(node: Node, out: Value) -> tuple[int, int]:
    """TFLM ``CalculateActivationRangeQuantized`` for the node's fused activation."""
    scale, zp = qparams(out)
    lo, hi = int_limits(out.type.dtype.numpy)
    return fx.activation_range(activation(node), scale, zp, lo, hi)


def float_act(x: np.ndarray, act: str) -> np.ndarray:
    """``CalculateActivationRange``: RELU, RELU6, RELU_N1_TO_1 clamp; others do nothing."""
    if act == "RELU":
        return np.maximum(x, np.float32(0))
    if act == "RELU6":
        return np.clip(x, np.float32(0), np.float32(6))
    if act in ("RELU_N1_TO_1", "RELU1"):
        return np.clip(x, np.float32(-1), np.float32(1))
    return x


def clamp_cast(x, lo: int, hi: int, dtype) -> np.ndarray:
    return np.clip(x, lo, hi).astype(dtype)


def is_quantized(dtype) -> bool:
    return np.dtype(dtype).kind in "iu"


def variable_state(node: Node, index: int, arg) -> np.ndarray:
    """The value a TFLM variable tensor (LSTM/SVDF state) holds at the start of a run.

    TFLM resets variable tensors when it allocates them: int8 ones to their zero point,
    everything else to zero.  tinyir runs a graph once per call, so a constant (or
    missing) state operand starts from that reset value; a state fed as a graph input
    is used as given.
    """
    v = node.inputs[index]
    if v is not None and arg is not None and not v.is_const:
        return np.asarray(arg)
    if v is None:
        raise UnsupportedError(f"{node.name}: state operand {index} is missing")
    dtype = v.type.dtype.numpy
    fill = qparams(v)[1] if dtype == np.int8 else 0
    return np.full(v.type.shape, fill, dtype=dtype)
