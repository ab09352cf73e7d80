"""ONNX elementwise kernels: arithmetic, comparisons, activations, Cast, Clip, softmax."""

from __future__ import annotations

import math

import numpy as np

from tinyir.interp.onnx_kernels_util import astr, attr, onnx_kernel, opset, unsupported
from tinyir.types import DType


def _legacy_broadcast(node, a, b):
    """Opset < 7 ``broadcast=1, axis=k``: B's dims line up with A's starting at ``axis``."""
    if attr(node, "broadcast", 0) and "axis" in node.attrs and b.ndim:
        axis = node.attrs["axis"] % a.ndim
        b = b.reshape(b.shape + (1,) * (a.ndim - axis - b.ndim))
    return a, b


def _int_div(a, b):
    """Integer division truncating toward zero (C semantics, as onnxruntime)."""
    q = np.floor_divide(a, b)
    fix = (np.remainder(a, b) != 0) & ((a < 0) != (b < 0))
    return q + fix.astype(q.dtype)


def _pow(a, b):
    if np.issubdtype(a.dtype, np.floating):
        return np.power(a, b.astype(a.dtype))
    return np.power(a.astype(np.float64), b.astype(np.float64)).astype(a.dtype)


def _mod(node, a, b):
    if attr(node, "fmod", 0):
        return np.fmod(a, b)
    return np.mod(a, b)


_BINARY = {
    "Add": np.add, "Sub": np.subtract, "Mul": np.multiply,
    "Div": lambda a, b: _int_div(a, b) if np.issubdtype(a.dtype, np.integer) else a / b,
    "Pow": _pow,
    "Equal": np.equal, "Less": np.less, "Greater": np.greater, "LessOrEqual": np.less_equal,
    "GreaterOrEqual": np.greater_equal, "And": np.logical_and, "Or": np.logical_or,
    "Xor": np.logical_xor, "BitwiseAnd": np.bitwise_and, "BitwiseOr": np.bitwise_or,
    "BitwiseXor": np.bitwise_xor,
}


@onnx_kernel(*_BINARY)
def binary(node, args, interp):
    """Two-operand elementwise ops with numpy broadcasting (and the opset<7 axis form)."""
    a, b = _legacy_broadcast(node, args[0], args[1])
    return [_BINARY[node.op_type](a, b)]


@onnx_kernel("Mod")
def mod(node, args, interp):
    return [_mod(node, args[0], args[1])]


@onnx_kernel("BitShift")
def bit_shift(node, args, interp):
    a, b = args
    return [np.left_shift(a, b) if astr(node, "direction", "") == "LEFT" else np.right_shift(a, b)]


_VARIADIC = {"Sum": np.add, "Min": np.minimum, "Max": np.maximum, "Mean": np.add}


@onnx_kernel(*_VARIADIC)
def variadic(node, args, interp):
    """Sum/Min/Max/Mean over any number of broadcast operands."""
    fn = _VARIADIC[node.op_type]
    acc = args[0]
    for x in args[1:]:
        acc = fn(acc, x)
    if node.op_type == "Mean":
        acc = acc / np.asarray(len(args), dtype=acc.dtype)
    return [acc]


def _erf(x):
    return np.frompyfunc(math.erf, 1, 1)(x.astype(np.float64)).astype(np.float64)


_UNARY = {
    "Relu": lambda x: np.maximum(x, np.zeros((), x.dtype)),
    "Sigmoid": lambda x: 0.5 * (1 + np.tanh(0.5 * x.astype(np.float64))),
    "Tanh": np.tanh, "Exp": np.exp, "Log": np.log, "Neg": np.negative, "Abs": np.abs,
    "Sqrt": np.sqrt, "Reciprocal": lambda x: 1 / x, "Floor": np.floor, "Ceil": np.ceil,
    "Round": np.round, "Sign": np.sign, "Sin": np.sin, "Cos": np.cos, "Tan": np.tan,
    "Not": np.logical_not, "IsNaN": np.isnan, "BitwiseNot": np.invert, "Erf": _erf,
    "Softplus": lambda x: np.logaddexp(0, x.astype(np.float64)),
    "Softsign": lambda x: x / (1 + np.abs(x)),
    "Identity": lambda x: x,
}


@onnx_kernel(*_UNARY)
def unary(node, args, interp):
    return [_UNARY[node.op_type](args[0])]


def _f(node, name, default):
    return float(attr(node, name, default))


@onnx_kernel("LeakyRelu", "Elu", "Selu", "HardSigmoid", "HardSwish", "ThresholdedRelu", "Celu",
             "Gelu", "Mish")
def activation(node, args, interp):
    """Parametric activations with the ONNX default parameters."""
    x = args[0].astype(np.float64)
    op = node.op_type
    if op == "LeakyRelu":
        y = np.where(x >= 0, x, x * _f(node, "alpha", 0.01))
    elif op == "Elu":
        y = np.where(x >= 0, x, _f(node, "alpha", 1.0) * np.expm1(np.minimum(x, 0)))
    elif op == "Selu":
        alpha = _f(node, "alpha", 1.67326319217681884765625)
        gamma = _f(node, "gamma", 1.05070102214813232421875)
        y = gamma * np.where(x > 0, x, alpha * np.expm1(np.minimum(x, 0)))
    elif op == "HardSigmoid":
        y = np.clip(_f(node, "alpha", 0.2) * x + _f(node, "beta", 0.5), 0, 1)
    elif op == "HardSwish":
        y = x * np.clip(x / 6 + 0.5, 0, 1)
    elif op == "ThresholdedRelu":
        y = np.where(x > _f(node, "alpha", 1.0), x, 0)
    elif op == "Celu":
        a = _f(node, "alpha", 1.0)
        y = np.maximum(x, 0) + np.minimum(0, a * np.expm1(np.minimum(x, 0) / a))
    elif op == "Mish":
        y = x * np.tanh(np.logaddexp(0, x))
    else:  # Gelu
        if astr(node, "approximate", "none") == "tanh":
            y = 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))
        else:
            y = 0.5 * x * (1 + _erf(x / math.sqrt(2)))
    return [y]


@onnx_kernel("PRelu")
def prelu(node, args, interp):
    x, slope = args
    if slope.ndim == 1 and x.ndim > 2 and slope.size == x.shape[1] and slope.size != x.shape[-1]:
        slope = slope.reshape((-1,) + (1,) * (x.ndim - 2))  # legacy per-channel slope
    return [np.where(x >= 0, x, x * slope)]


@onnx_kernel("Clip")
def clip(node, args, interp):
    """Clip: ``min``/``max`` attributes before opset 11, optional operands since."""
    x = args[0]
    if opset(node) < 11:
        lo, hi = attr(node, "min"), attr(node, "max")
    else:
        lo = args[1] if len(args) > 1 else None
        hi = args[2] if len(args) > 2 else None
    if lo is not None:
        x = np.maximum(x, np.asarray(lo, dtype=x.dtype))
    if hi is not None:
        x = np.minimum(x, np.asarray(hi, dtype=x.dtype))
    return [x]


@onnx_kernel("Cast", "CastLike")
def cast(node, args, interp):
    x = args[0]
    to = node.outputs[0].type.dtype
    if to == DType.STRING or x.dtype == object:
        unsupported(node, "casts from or to strings are not supported")
    if to.is_int and np.issubdtype(x.dtype, np.floating):
        x = np.trunc(x)
    if to == DType.BOOL:
        return [x != 0]
    return [x.astype(to.numpy)]


@onnx_kernel("Where")
def where(node, args, interp):
    return [np.where(args[0], args[1], args[2])]


def _softmax_axes(node, x):
    """(array to normalise, normalised axis, original shape): opset<13 flattens at ``axis``."""
    if opset(node) < 13:
        axis = attr(node, "axis", 1) % max(x.ndim, 1)
        flat = x.reshape(int(np.prod(x.shape[:axis])), -1)
        return flat, 1
    return x, attr(node, "axis", -1) % max(x.ndim, 1)


@onnx_kernel("Softmax", "LogSoftmax", "Hardmax")
def softmax(node, args, interp):
    x = args[0]
    y, axis = _softmax_axes(node, x)
    if node.op_type == "Hardmax":
        idx = np.argmax(y, axis=axis)
        out = np.zeros_like(y)
        np.put_along_axis(out, np.expand_dims(idx, axis), 1, axis=axis)
        return [out.reshape(x.shape)]
    y = y.astype(np.float64)
    y = y - np.max(y, axis=axis, keepdims=True)
    e = np.exp(y)
    s = np.sum(e, axis=axis, keepdims=True)
    out = y - np.log(s) if node.op_type == "LogSoftmax" else e / s
    return [out.reshape(x.shape)]
