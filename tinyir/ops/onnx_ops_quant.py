"""ONNX quantization ops: Quantize/DequantizeLinear, integer and QLinear compute ops.

Result element types come from the zero-point operands (or ``output_dtype``) as the
spec says; quantization parameters are not inferred (``quant=None``).  MACs follow
the float ops: ConvInteger/QLinearConv like Conv, MatMulInteger/QLinearMatMul like
MatMul.  The ``com.microsoft`` QLinear elementwise ops that onnxruntime's quantizer
emits are declared as ``onnx.com.microsoft.<Op>``.
"""

from __future__ import annotations

from tinyir.ops.onnx_ops_common import (attr, dtype_of_code, ishape, itype, onnx_op, operand, tt)
from tinyir.ops.onnx_ops_nn import conv_macs_of, conv_shape, matmul_macs_of, matmul_shape
from tinyir.ops.shapes import broadcast
from tinyir.types import DType

MS = "com.microsoft"
CONV_ATTRS = ("auto_pad", "dilations", "group", "kernel_shape", "pads", "strides")


def _zp_dtype(node, i: int, default: DType) -> DType:
    v = operand(node, i)
    return default if v is None else v.type.dtype


@onnx_op("QuantizeLinear", ["x", "y_scale", "y_zero_point?"], ["y"],
         attrs=("axis", "block_size", "output_dtype", "precision", "saturate"))
def quantize_linear(node):
    """Shape of x; element type of y_zero_point, else ``output_dtype``, else uint8."""
    code = int(attr(node, "output_dtype", 0))
    if code:
        dtype = dtype_of_code(code)
    else:
        dtype = _zp_dtype(node, 2, DType.UINT8)
    return [tt(ishape(node, 0), dtype)]


@onnx_op("DequantizeLinear", ["x", "x_scale", "x_zero_point?"], ["y"],
         attrs=("axis", "block_size", "output_dtype"))
def dequantize_linear(node):
    """Shape of x; element type of x_scale (or ``output_dtype``)."""
    code = int(attr(node, "output_dtype", 0))
    dtype = dtype_of_code(code) if code else itype(node, 1).dtype
    return [tt(ishape(node, 0), dtype)]


@onnx_op("DynamicQuantizeLinear", ["x"], ["y", "y_scale", "y_zero_point"])
def dynamic_quantize_linear(node):
    """uint8 y shaped like x, float32 scalar scale, uint8 scalar zero point."""
    return [tt(ishape(node, 0), DType.UINT8), tt((), DType.FLOAT32), tt((), DType.UINT8)]


def _conv_integer(node):
    """Conv on integers with zero points; int32 result."""
    return [tt(conv_shape(node, 0, 1, None), DType.INT32)]


onnx_op("ConvInteger", ["x", "w", "x_zero_point?", "w_zero_point?"], ["y"], attrs=CONV_ATTRS,
        macs=conv_macs_of(_conv_integer, 1))(_conv_integer)


def _qlinear_conv(node):
    """Quantized Conv: x at 0, w at 3, int32 bias at 8; element type of y_zero_point."""
    return [tt(conv_shape(node, 0, 3, 8), itype(node, 7).dtype)]


onnx_op("QLinearConv", ["x", "x_scale", "x_zero_point", "w", "w_scale", "w_zero_point",
                        "y_scale", "y_zero_point", "B?"], ["y"], attrs=CONV_ATTRS,
        macs=conv_macs_of(_qlinear_conv, 3))(_qlinear_conv)


def _matmul_integer(node):
    """MatMul on integers with zero points; int32 result."""
    return [tt(matmul_shape(ishape(node, 0), ishape(node, 1)), DType.INT32)]


onnx_op("MatMulInteger", ["A", "B", "a_zero_point?", "b_zero_point?"], ["Y"],
        macs=matmul_macs_of(_matmul_integer))(_matmul_integer)


def _qlinear_matmul(node):
    """Quantized MatMul: a at 0, b at 3; element type of y_zero_point."""
    return [tt(matmul_shape(ishape(node, 0), ishape(node, 3)), itype(node, 7).dtype)]


onnx_op("QLinearMatMul", ["a", "a_scale", "a_zero_point", "b", "b_scale", "b_zero_point",
                          "y_scale", "y_zero_point"], ["y"],
        macs=matmul_macs_of(_qlinear_matmul))(_qlinear_matmul)


# ---- com.microsoft -------------------------------------------------------------------
def _qlinear_binary(node):
    """Broadcast of A (0) and B (3); element type of A."""
    return [tt(broadcast(ishape(node, 0), ishape(node, 3)), itype(node, 0).dtype)]


for _name in ("QLinearAdd", "QLinearMul"):
    onnx_op(_name, ["A", "A_scale", "A_zero_point?", "B", "B_scale", "B_zero_point?",
                    "C_scale", "C_zero_point?"], ["C"], domain=MS)(_qlinear_binary)


def _qlinear_unary(node):
    """Result like X."""
    t = itype(node, 0)
    return [tt(t.shape, t.dtype)]


onnx_op("QLinearSigmoid", ["X", "X_scale", "X_zero_point?", "Y_scale", "Y_zero_point?"], ["Y"],
        domain=MS)(_qlinear_unary)
onnx_op("QLinearLeakyRelu", ["X", "X_scale", "X_zero_point?", "Y_scale", "Y_zero_point?"],
        ["Y"], attrs=("alpha",), domain=MS)(_qlinear_unary)


@onnx_op("QLinearGlobalAveragePool", ["X", "x_scale", "x_zero_point", "y_scale", "y_zero_point"],
         ["Y"], attrs=("channels_last",), domain=MS)
def qlinear_global_average_pool(node):
    """Spatial dims reduced to 1 (NCHW, or NHWC when ``channels_last``)."""
    t = itype(node, 0)
    x = t.shape
    if x is None:
        return [tt(None, t.dtype)]
    if attr(node, "channels_last", 0):
        return [tt((x[0], *[1] * (len(x) - 2), x[-1]), t.dtype)]
    return [tt((x[0], x[1], *[1] * (len(x) - 2)), t.dtype)]
