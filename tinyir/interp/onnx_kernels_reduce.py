"""ONNX reductions, ArgMax/ArgMin, and resizing (Resize, Upsample)."""

from __future__ import annotations

import math

import numpy as np

from tinyir.interp.onnx_kernels_util import astr, attr, ints, onnx_kernel, opset, unsupported

# opset from which ``axes`` is an operand rather than an attribute
_AXES_OPERAND_SINCE = {"ReduceSum": 13}

_REDUCE = {
    "ReduceMean": lambda x, ax, kd: np.mean(x, axis=ax, keepdims=kd),
    "ReduceSum": lambda x, ax, kd: np.sum(x, axis=ax, keepdims=kd),
    "ReduceMax": lambda x, ax, kd: np.max(x, axis=ax, keepdims=kd),
    "ReduceMin": lambda x, ax, kd: np.min(x, axis=ax, keepdims=kd),
    "ReduceProd": lambda x, ax, kd: np.prod(x, axis=ax, keepdims=kd),
    "ReduceL1": lambda x, ax, kd: np.sum(np.abs(x), axis=ax, keepdims=kd),
    "ReduceL2": lambda x, ax, kd: np.sqrt(np.sum(np.square(x), axis=ax, keepdims=kd)),
    "ReduceSumSquare": lambda x, ax, kd: np.sum(np.square(x), axis=ax, keepdims=kd),
    "ReduceLogSum": lambda x, ax, kd: np.log(np.sum(x, axis=ax, keepdims=kd)),
    "ReduceLogSumExp": lambda x, ax, kd: np.log(np.sum(np.exp(x), axis=ax, keepdims=kd)),
}


_NOOP = {"ReduceSumSquare": np.square, "ReduceLogSum": np.log}


@onnx_kernel(*_REDUCE)
def reduce(node, args, interp):
    """Reductions: ``axes`` attribute (older opsets) or operand; ``noop_with_empty_axes``."""
    x = args[0]
    if opset(node) >= _AXES_OPERAND_SINCE.get(node.op_type, 18):
        axes = ints(args[1]) if len(args) > 1 and args[1] is not None else []
    else:
        axes = list(attr(node, "axes") or [])
    keep = bool(attr(node, "keepdims", 1))
    if not axes:
        if attr(node, "noop_with_empty_axes", 0):
            # onnxruntime and onnx's reference keep the elementwise part of these two
            return [_NOOP.get(node.op_type, lambda v: v)(x)]
        axes = list(range(x.ndim))
    xd = x.astype(np.float64) if np.issubdtype(x.dtype, np.floating) else x
    return [_REDUCE[node.op_type](xd, tuple(a % max(x.ndim, 1) for a in axes), keep)]


@onnx_kernel("ArgMax", "ArgMin")
def arg_extreme(node, args, interp):
    x = args[0]
    axis = attr(node, "axis", 0) % x.ndim
    fn = np.argmax if node.op_type == "ArgMax" else np.argmin
    if attr(node, "select_last_index", 0):
        flipped = np.flip(x, axis=axis)
        idx = x.shape[axis] - 1 - fn(flipped, axis=axis)
    else:
        idx = fn(x, axis=axis)
    if attr(node, "keepdims", 1):
        idx = np.expand_dims(idx, axis)
    return [idx.astype(np.int64)]


# ---- resizing ----------------------------------------------------------------------------

def _source_coords(mode, out_len, in_len, scale, roi=None):
    """Coordinate in the input of each output index (``coordinate_transformation_mode``)."""
    x = np.arange(out_len, dtype=np.float64)
    if mode == "half_pixel":
        return (x + 0.5) / scale - 0.5
    if mode == "pytorch_half_pixel":
        return (x + 0.5) / scale - 0.5 if out_len > 1 else np.zeros_like(x)
    if mode == "align_corners":
        return x * (in_len - 1) / (out_len - 1) if out_len > 1 else np.zeros_like(x)
    if mode == "asymmetric":
        return x / scale
    if mode == "tf_half_pixel_for_nn":
        return (x + 0.5) / scale
    if mode == "half_pixel_symmetric":
        adj = out_len / (in_len * scale)
        offset = in_len / 2 * (1 - adj)
        return offset + (x + 0.5) / scale - 0.5
    if mode == "tf_crop_and_resize":
        start, end = roi
        if out_len > 1:
            return start * (in_len - 1) + x * (end - start) * (in_len - 1) / (out_len - 1)
        return np.full_like(x, 0.5 * (start + end) * (in_len - 1))
    raise ValueError(f"coordinate_transformation_mode {mode!r}")


def _nearest(coords, mode, downsampling):
    if mode == "round_prefer_floor":
        return np.ceil(coords - 0.5)
    if mode == "round_prefer_ceil":
        return np.floor(coords + 0.5)
    if mode == "floor":
        return np.floor(coords)
    if mode == "ceil":
        return np.ceil(coords)
    if mode == "simple":  # Resize-10 / Upsample
        return np.ceil(coords) if downsampling else np.floor(coords)
    raise ValueError(f"nearest_mode {mode!r}")


def _cubic_weights(t, a):
    """Keys cubic convolution weights for taps at offsets -1, 0, 1, 2 from floor(x)."""
    d = np.stack([t + 1, t, 1 - t, 2 - t], axis=-1)
    ad = np.abs(d)
    w = np.where(ad <= 1, ((a + 2) * ad - (a + 3)) * ad * ad + 1,
                 np.where(ad < 2, ((a * ad - 5 * a) * ad + 8 * a) * ad - 4 * a, 0.0))
    return w


def _taps(node, mode, in_len, out_len, scale, roi, legacy):
    """(indices [out, taps], weights [out, taps] or None, outside mask) along one axis."""
    ctm = "asymmetric" if legacy else astr(node, "coordinate_transformation_mode", "half_pixel")
    coords = _source_coords(ctm, out_len, in_len, scale, roi)
    outside = (coords < 0) | (coords > in_len - 1) if ctm == "tf_crop_and_resize" else None
    if mode == "nearest":
        nmode = "simple" if legacy else astr(node, "nearest_mode", "round_prefer_floor")
        idx = np.clip(_nearest(coords, nmode, scale < 1), 0, in_len - 1).astype(np.int64)
        return idx[:, None], None, outside
    if mode == "linear":
        c = np.clip(coords, 0, in_len - 1)
        lo = np.floor(c).astype(np.int64)
        hi = np.minimum(lo + 1, in_len - 1)
        t = c - lo
        return np.stack([lo, hi], 1), np.stack([1 - t, t], 1), outside
    if mode == "cubic":
        lo = np.floor(coords).astype(np.int64)
        w = _cubic_weights(coords - lo, float(attr(node, "cubic_coeff_a", -0.75)))
        idx = lo[:, None] + np.arange(-1, 3)[None, :]
        if attr(node, "exclude_outside", 0):
            w = np.where((idx < 0) | (idx >= in_len), 0.0, w)
            w = w / w.sum(axis=1, keepdims=True)
        return np.clip(idx, 0, in_len - 1), w, outside
    raise ValueError(f"mode {mode!r}")


def resize_array(node, x, out_shape, scales, roi, legacy=False):
    """Separable resize of ``x`` to ``out_shape``, one axis at a time."""
    mode = astr(node, "mode", "nearest")
    if attr(node, "antialias", 0):
        unsupported(node, "antialias resizing is not supported")
    y = x if mode == "nearest" else x.astype(np.float64)
    extrapolate = float(attr(node, "extrapolation_value", 0.0))
    for ax in range(x.ndim):
        in_len, out_len = x.shape[ax], out_shape[ax]
        if in_len == out_len and scales[ax] == 1 and roi is None:
            continue
        r = None if roi is None else (roi[ax], roi[ax + x.ndim])
        try:
            idx, w, outside = _taps(node, mode, in_len, out_len, scales[ax], r, legacy)
        except ValueError as e:
            unsupported(node, f"{e} is not supported")
        shape = [1] * y.ndim
        shape[ax] = out_len
        if w is None:
            z = np.take(y, idx[:, 0], axis=ax)
        else:
            z = sum(np.take(y, idx[:, t], axis=ax) * w[:, t].reshape(shape)
                    for t in range(idx.shape[1]))
        if outside is not None:
            z = np.where(outside.reshape(shape), extrapolate, z)
        y = z
    return y


@onnx_kernel("Resize")
def resize(node, args, interp):
    """Resize: scales or sizes (optionally over ``axes``); opset 10 behaves like Upsample."""
    x = args[0]
    if opset(node) < 11:
        scales = [float(s) for s in np.asarray(args[1]).reshape(-1)]
        out = [int(math.floor(d * s)) for d, s in zip(x.shape, scales)]
        return [resize_array(node, x, out, scales, None, legacy=True)]
    roi = args[1] if len(args) > 1 and args[1] is not None and args[1].size else None
    sc = args[2] if len(args) > 2 and args[2] is not None and args[2].size else None
    sz = args[3] if len(args) > 3 and args[3] is not None and args[3].size else None
    axes = [a % x.ndim for a in attr(node, "axes", list(range(x.ndim)))]
    scales = [1.0] * x.ndim
    out = list(x.shape)
    if sz is not None:
        sizes = ints(sz)
        policy = astr(node, "keep_aspect_ratio_policy", "stretch")
        if policy != "stretch":
            ratios = [sizes[i] / x.shape[a] for i, a in enumerate(axes)]
            r = min(ratios) if policy == "not_larger" else max(ratios)
            sizes = [int(round(r * x.shape[a])) for a in axes]
            for a in axes:
                scales[a] = r
        for i, a in enumerate(axes):
            out[a] = sizes[i]
            if policy == "stretch":
                scales[a] = sizes[i] / x.shape[a]
    else:
        for i, a in enumerate(axes):
            scales[a] = float(np.asarray(sc).reshape(-1)[i])
            out[a] = int(math.floor(x.shape[a] * scales[a]))
    if roi is not None:
        full = np.concatenate([np.zeros(x.ndim), np.ones(x.ndim)])
        r = np.asarray(roi, np.float64).reshape(-1)
        for i, a in enumerate(axes):
            full[a], full[a + x.ndim] = r[i], r[i + len(axes)]
        roi = full if astr(node, "coordinate_transformation_mode", "") == "tf_crop_and_resize" \
            else None
    return [resize_array(node, x, out, scales, roi)]


@onnx_kernel("Upsample")
def upsample(node, args, interp):
    x = args[0]
    scales = attr(node, "scales") if opset(node) < 9 else np.asarray(args[1]).reshape(-1)
    scales = [float(s) for s in scales]
    out = [int(math.floor(d * s)) for d, s in zip(x.shape, scales)]
    return [resize_array(node, x, out, scales, None, legacy=True)]
