"""ONNX quantization kernels, matching onnxruntime's arithmetic.

QuantizeLinear divides in float32 and rounds half to even; DequantizeLinear multiplies
``float(q - zp) * scale`` in float32.  QLinear ops accumulate exactly in integers and
requantize with the float32 multiplier ``(a_scale * b_scale) / y_scale`` (per output
channel for per-channel weights), rounding half to even and saturating, as MLAS does.
QLinearAdd (com.microsoft) adds ``a_scale/c_scale * (a - a_zp)`` and
``b_scale/c_scale * (b - b_zp)`` in float32 before rounding.
"""

from __future__ import annotations

import numpy as np

from tinyir.interp.onnx_kernels_nn import _integer_conv, integer_matmul
from tinyir.interp.onnx_kernels_util import attr, onnx_kernel, unsupported
from tinyir.types import DType

_RANGE = {DType.UINT8: (0, 255), DType.INT8: (-128, 127), DType.UINT16: (0, 65535),
          DType.INT16: (-32768, 32767), DType.INT4: (-8, 7), DType.UINT4: (0, 15),
          DType.INT32: (-2 ** 31, 2 ** 31 - 1)}

F32 = np.float32


def _along(p, x, axis: int):
    """A per-tensor or per-axis parameter shaped to broadcast against ``x``."""
    p = np.asarray(p)
    if p.ndim == 0 or p.size == 1 and x.ndim == 0:
        return p.reshape(())
    if p.ndim == 1 and x.ndim > 1:
        shape = [1] * x.ndim
        shape[axis % x.ndim] = -1
        return p.reshape(shape)
    return p


def _saturate(node, q, i=0):
    dt = node.outputs[i].type.dtype
    lo, hi = _RANGE.get(dt, (None, None))
    if lo is None:
        unsupported(node, f"quantized type {dt.value} is not supported")
    return np.clip(q, lo, hi)


def _zp(z):
    return 0 if z is None else z.astype(np.int64)


@onnx_kernel("QuantizeLinear")
def quantize_linear(node, args, interp):
    x, scale = args[0], args[1]
    zp = args[2] if len(args) > 2 else None
    if attr(node, "block_size", 0):
        unsupported(node, "blocked quantization is not supported")
    axis = attr(node, "axis", 1)
    s = _along(scale, x, axis).astype(F32)
    q = np.rint(x.astype(F32) / s).astype(np.float64) + _along(_zp(zp), x, axis)
    return [_saturate(node, q)]


@onnx_kernel("DequantizeLinear")
def dequantize_linear(node, args, interp):
    x, scale = args[0], args[1]
    zp = args[2] if len(args) > 2 else None
    if attr(node, "block_size", 0):
        unsupported(node, "blocked quantization is not supported")
    axis = attr(node, "axis", 1)
    diff = (x.astype(np.int64) - _along(_zp(zp), x, axis)).astype(F32)
    s = _along(scale, x, axis)
    return [diff * s.astype(s.dtype if s.dtype != np.float64 else F32)]


def _requantize(node, acc, multiplier, y_zp):
    """MLAS requantization: rint(float32(acc) * multiplier) + zp, saturated."""
    y = np.rint(acc.astype(F32) * multiplier).astype(np.float64) + _zp(y_zp)
    return _saturate(node, y)


@onnx_kernel("QLinearConv")
def qlinear_conv(node, args, interp):
    args = list(args) + [None] * (9 - len(args))
    x, xs, xz, w, ws, wz, ys, yz, b = args
    acc = _integer_conv(x, xz, w, wz, node)
    if b is not None:
        acc = acc + b.astype(np.float64).reshape((1, -1) + (1,) * (acc.ndim - 2))
    mult = (F32(xs) * np.asarray(ws, F32)) / F32(ys)
    if np.ndim(mult) == 1:
        mult = mult.reshape((1, -1) + (1,) * (acc.ndim - 2))
    return [_requantize(node, acc, mult, yz)]


@onnx_kernel("QLinearMatMul")
def qlinear_matmul(node, args, interp):
    a, as_, az, b, bs, bz, ys, yz = args
    acc = integer_matmul(a, az, b, bz)
    mult = (np.asarray(as_, F32) * np.asarray(bs, F32)) / np.asarray(ys, F32)
    return [_requantize(node, acc, mult, yz)]


@onnx_kernel("com.microsoft.QLinearAdd", "com.microsoft.QLinearMul")
def qlinear_binary(node, args, interp):
    args = list(args) + [None] * (8 - len(args))
    a, as_, az, b, bs, bz, cs, cz = args
    da = (a.astype(np.int32) - _zp(az)).astype(F32)
    db = (b.astype(np.int32) - _zp(bz)).astype(F32)
    if node.op_type == "QLinearAdd":
        y = (F32(as_) / F32(cs)) * da + (F32(bs) / F32(cs)) * db
    else:
        y = (F32(as_) * F32(bs) / F32(cs)) * (da * db)
    return [_saturate(node, np.rint(y).astype(np.float64) + _zp(cz))]
