"""TFLite data-movement and reduction kernels.

Most of these move bytes and are exact for every dtype: RESHAPE, SQUEEZE, EXPAND_DIMS,
TRANSPOSE, CONCATENATION (TFLM requires equal quantisation, so no requantisation),
SPLIT/SPLIT_V, PACK/UNPACK, STRIDED_SLICE, SLICE, PAD/PADV2 (quantised PAD pads with the
output zero point), GATHER, RESIZE_NEAREST_NEIGHBOR, MAXIMUM/MINIMUM, CAST.  MEAN and SUM
requantise the way TFLM's ``QuantizedMeanOrSum`` does.
"""

from __future__ import annotations

import numpy as np

from tinyir.errors import UnsupportedError
from tinyir.interp import tfl_quant as fx
from tinyir.interp.core import kernel
from tinyir.interp.tfl_common import (activation, attr, clamp_cast, f32, float_act,
                                      int_limits, out_dtype, out_shape, qparams)


def _static_out(node, i: int = 0):
    shape = node.outputs[i].type.shape
    if shape is not None and all(isinstance(d, int) and d >= 0 for d in shape):
        return tuple(shape)
    return None


@kernel("tfl.RESHAPE")
def reshape(node, args, interp):
    x = args[0]
    shape = _static_out(node)
    if shape is None:
        if len(args) > 1 and args[1] is not None:
            shape = tuple(int(d) for d in np.ravel(args[1]))
        else:
            shape = tuple(attr(node, "new_shape", [-1]))
    return [x.reshape(shape)]


@kernel("tfl.SQUEEZE")
def squeeze(node, args, interp):
    x = args[0]
    dims = attr(node, "squeeze_dims", []) or [i for i, d in enumerate(x.shape) if d == 1]
    return [np.squeeze(x, axis=tuple(d % x.ndim for d in dims))]


@kernel("tfl.EXPAND_DIMS")
def expand_dims(node, args, interp):
    x, axis = args[0], int(np.ravel(args[1])[0])
    return [np.expand_dims(x, axis if axis >= 0 else axis + x.ndim + 1)]


@kernel("tfl.TRANSPOSE")
def transpose(node, args, interp):
    return [np.transpose(args[0], [int(p) for p in np.ravel(args[1])])]


@kernel("tfl.CONCATENATION")
def concatenation(node, args, interp):
    xs = [a for a in args if a is not None]
    y = np.concatenate(xs, axis=int(attr(node, "axis", 0)))
    return [float_act(y, activation(node)) if y.dtype == np.float32 else y]


@kernel("tfl.SPLIT")
def split(node, args, interp):
    axis, x = int(np.ravel(args[0])[0]), args[1]
    return list(np.split(x, int(attr(node, "num_splits", len(node.outputs))), axis=axis))


@kernel("tfl.SPLIT_V")
def split_v(node, args, interp):
    x, sizes, axis = args[0], [int(s) for s in np.ravel(args[1])], int(np.ravel(args[2])[0])
    axis %= x.ndim
    if -1 in sizes:
        sizes[sizes.index(-1)] = x.shape[axis] - (sum(sizes) + 1)
    return list(np.split(x, np.cumsum(sizes)[:-1], axis=axis))


@kernel("tfl.PACK")
def pack(node, args, interp):
    return [np.stack(args, axis=int(attr(node, "axis", 0)))]


@kernel("tfl.UNPACK")
def unpack(node, args, interp):
    x, axis = args[0], int(attr(node, "axis", 0))
    return [np.take(x, i, axis=axis) for i in range(x.shape[axis])]


def _clamp(v, lo, hi):
    return max(lo, min(hi, v))


@kernel("tfl.STRIDED_SLICE")
def strided_slice(node, args, interp):
    """TFLite strided_slice_logic: begin/end masks, shrink axes, ``offset`` ends."""
    x = args[0]
    begin, end, strides = (list(np.ravel(a).astype(np.int64)) for a in args[1:4])
    bm, em, sm = (int(attr(node, k, 0)) for k in ("begin_mask", "end_mask", "shrink_axis_mask"))
    if attr(node, "ellipsis_mask", 0) or attr(node, "new_axis_mask", 0):
        raise UnsupportedError(f"{node.name}: STRIDED_SLICE ellipsis/new-axis masks "
                               "are not supported by TFLM")
    offset = bool(attr(node, "offset", False))
    index, shrink = [], []
    big = 1 << 40
    for ax in range(x.ndim):
        n = x.shape[ax]
        if ax >= len(begin):
            index.append(slice(None))
            continue
        st = int(strides[ax])
        b = int(begin[ax])
        e = int(end[ax]) + (b if offset else 0)
        if bm >> ax & 1:
            b = -big if st > 0 else big
        b = b + n if b < 0 else b
        b = _clamp(b, 0, n) if st > 0 else _clamp(b, -1, n - 1)
        if sm >> ax & 1:
            index.append(np.arange(b, b + 1))
            shrink.append(ax)
            continue
        if em >> ax & 1:
            e = big if st > 0 else -big
        e = e + n if e < 0 else e
        e = _clamp(e, 0, n) if st > 0 else _clamp(e, -1, n - 1)
        index.append(np.arange(b, e, st))
    y = x
    for ax, idx in enumerate(index):
        if not isinstance(idx, slice):
            y = np.take(y, idx, axis=ax)
    if shrink:
        y = y.reshape([d for ax, d in enumerate(y.shape) if ax not in shrink])
    return [y.reshape(out_shape(node, y.shape))]


@kernel("tfl.SLICE")
def slice_(node, args, interp):
    x, begin, size = args[0], np.ravel(args[1]), np.ravel(args[2])
    idx = tuple(slice(int(b), x.shape[i] if int(s) == -1 else int(b) + int(s))
                for i, (b, s) in enumerate(zip(begin, size)))
    return [x[idx]]


@kernel("tfl.PAD", "tfl.PADV2")
def pad(node, args, interp):
    x, paddings = args[0], np.asarray(args[1]).reshape(-1, 2)
    if len(args) > 2 and args[2] is not None:
        value = np.ravel(args[2])[0]
    elif x.dtype == np.float32:
        value = 0.0
    else:  # quantised PAD pads with the output zero point (real 0)
        value = qparams(node.outputs[0])[1]
    return [np.pad(x, [(int(a), int(b)) for a, b in paddings], constant_values=value)]


@kernel("tfl.MIRROR_PAD")
def mirror_pad(node, args, interp):
    x, paddings = args[0], np.asarray(args[1]).reshape(-1, 2)
    mode = "reflect" if attr(node, "mode", "REFLECT") == "REFLECT" else "symmetric"
    return [np.pad(x, [(int(a), int(b)) for a, b in paddings], mode=mode)]


@kernel("tfl.GATHER")
def gather(node, args, interp):
    x, idx = args
    axis = int(attr(node, "axis", 0))
    if int(attr(node, "batch_dims", 0)):
        raise UnsupportedError(f"{node.name}: GATHER with batch_dims is not implemented")
    return [np.take(x, idx.astype(np.int64), axis=axis)]


@kernel("tfl.RESIZE_NEAREST_NEIGHBOR")
def resize_nearest_neighbor(node, args, interp):
    x, size = args[0], [int(s) for s in np.ravel(args[1])]
    align, half = bool(attr(node, "align_corners", False)), bool(attr(node, "half_pixel_centers",
                                                                         False))

    def src(out_n, in_n):
        scale = f32(in_n - 1) / f32(out_n - 1) if (align and out_n > 1) else \
            f32(in_n) / f32(out_n)
        pos = (np.arange(out_n, dtype=np.float32) + f32(0.5 if half else 0.0)) * scale
        pos = pos.astype(np.float32)
        idx = fx.round_away(pos) if align else np.floor(pos)
        idx = np.minimum(idx.astype(np.int64), in_n - 1)
        return np.maximum(idx, 0) if half else idx
    ys, xs = src(size[0], x.shape[1]), src(size[1], x.shape[2])
    return [x[:, ys][:, :, xs]]


@kernel("tfl.MAXIMUM", "tfl.MINIMUM")
def maximum_minimum(node, args, interp):
    fn = np.maximum if node.op_type == "MAXIMUM" else np.minimum
    return [fn(args[0], args[1]).astype(out_dtype(node))]


@kernel("tfl.ARG_MAX", "tfl.ARG_MIN")
def arg_max_min(node, args, interp):
    x, axis = args[0], int(np.ravel(args[1])[0])
    fn = np.argmax if node.op_type == "ARG_MAX" else np.argmin
    return [fn(x, axis=axis).astype(out_dtype(node))]


@kernel("tfl.CAST")
def cast(node, args, interp):
    x, dtype = args[0], out_dtype(node)
    if np.dtype(dtype).kind in "iu" and x.dtype.kind == "f":
        x = np.trunc(x)
    with np.errstate(invalid="ignore", over="ignore"):
        return [x.astype(dtype)]


# ---- reductions -----------------------------------------------------------------------


def _axes(x, axis_arg):
    return tuple(sorted({int(a) % x.ndim for a in np.ravel(axis_arg)}))


@kernel("tfl.MEAN", "tfl.SUM")
def mean_sum(node, args, interp):
    x, axes = args[0], _axes(args[0], args[1])
    keep = bool(attr(node, "keep_dims", False))
    is_sum = node.op_type == "SUM"
    if x.dtype == np.float32:
        r = x.astype(np.float64).sum(axis=axes, keepdims=keep)
        if not is_sum:
            r = r / float(np.prod([x.shape[a] for a in axes]))
        return [r.astype(np.float32).reshape(out_shape(node, r.shape))]
    if x.dtype not in (np.int8, np.int16):
        fn = np.sum if is_sum else np.mean
        return [fn(x, axis=axes, keepdims=keep).astype(x.dtype)]
    s_in, z_in = qparams(node.inputs[0])
    s_out, z_out = qparams(node.outputs[0])
    mult, shift = fx.quantize_multiplier(s_in / s_out)
    n = int(np.prod([x.shape[a] for a in axes]))
    if not is_sum:  # fold 1/n into the multiplier (QuantizedMeanOrSum)
        s = min(n.bit_length() - 1, 32, 31 + shift)
        mult = (mult << s) // n
        shift -= s
    total = x.astype(np.int64).sum(axis=axes, keepdims=keep)
    y = fx.mbqm(fx.wrap32(total - z_in * n), mult, shift) + z_out
    lo, hi = int_limits(x.dtype)
    return [clamp_cast(y, lo, hi, x.dtype).reshape(out_shape(node, y.shape))]


@kernel("tfl.REDUCE_MAX", "tfl.REDUCE_MIN")
def reduce_max_min(node, args, interp):
    x, axes = args[0], _axes(args[0], args[1])
    fn = np.max if node.op_type == "REDUCE_MAX" else np.min
    r = fn(x, axis=axes, keepdims=bool(attr(node, "keep_dims", False)))
    return [r.reshape(out_shape(node, r.shape))]
