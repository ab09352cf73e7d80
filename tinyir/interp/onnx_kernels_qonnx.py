"""QONNX custom ops (domains ``qonnx.custom_op.general`` and ``.channels_last``).

``Quant`` is fake quantization: ``q = round(clamp(x / scale + zeropt, lo, hi))`` and the
result is ``(q - zeropt) * scale``, with ``lo, hi`` the integer range of ``bitwidth``
bits (``signed``; ``narrow`` drops the most negative, or for unsigned the largest, code).
The channels-last Conv and MaxPool take NHWC activations (and OHWI weights) and are the
ONNX ops in that layout.  onnxruntime cannot run these, so there is no oracle beyond the
QONNX description; tests check them against the NCHW kernels.
"""

from __future__ import annotations

import numpy as np

from tinyir.interp.onnx_kernels_nn import conv, max_pool
from tinyir.interp.onnx_kernels_util import astr, attr, onnx_kernel, unsupported

_ROUND = {
    "ROUND": np.round,  # half to even, as numpy
    "CEIL": np.ceil,
    "FLOOR": np.floor,
    "ROUND_TO_ZERO": np.trunc,
    "HALF_UP": lambda v: np.sign(v) * np.floor(np.abs(v) + 0.5),
    "HALF_DOWN": lambda v: np.sign(v) * np.ceil(np.abs(v) - 0.5),
}


@onnx_kernel("qonnx.custom_op.general.Quant")
def quant(node, args, interp):
    x, scale, zeropt, bitwidth = args
    bits = int(np.asarray(bitwidth).reshape(-1)[0])
    signed, narrow = attr(node, "signed", 1), attr(node, "narrow", 0)
    mode = astr(node, "rounding_mode", "ROUND").upper()
    if mode not in _ROUND:
        unsupported(node, f"rounding_mode {mode} is not supported")
    if bits == 1 and signed:
        unsupported(node, "1-bit signed (bipolar) quantization is not supported")
    if signed:
        lo, hi = -(2 ** (bits - 1)) + (1 if narrow else 0), 2 ** (bits - 1) - 1
    else:
        lo, hi = 0, 2 ** bits - 1 - (1 if narrow else 0)
    y = x / scale + zeropt
    y = _ROUND[mode](np.clip(y, lo, hi))
    return [(y - zeropt) * scale]


def _nchw(x):
    return np.moveaxis(x, -1, 1)


def _nhwc(x):
    return np.ascontiguousarray(np.moveaxis(x, 1, -1))


@onnx_kernel("qonnx.custom_op.channels_last.Conv")
def conv_channels_last(node, args, interp):
    x, w = args[0], args[1]
    rest = list(args[2:])
    return [_nhwc(conv(node, [_nchw(x), _nchw(w)] + rest, interp)[0])]


@onnx_kernel("qonnx.custom_op.channels_last.MaxPool")
def max_pool_channels_last(node, args, interp):
    return [_nhwc(r) for r in max_pool(node, [_nchw(args[0])], interp)]
