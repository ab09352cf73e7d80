"""ONNX neural-network kernels: convolution, pooling, normalisation, Gemm/MatMul.

Convolution and pooling loop over the kernel's offsets (at most a few dozen) and do
all the work of one offset as a single strided numpy operation: a batched matmul over
groups for convolution (a broadcast multiply for depthwise), an elementwise max/sum for
pooling.  Memory stays at one output-sized buffer, and every window is exact ONNX
semantics (pads, auto_pad, dilations, ceil_mode, count_include_pad).
"""

from __future__ import annotations

import itertools
import math

import numpy as np

from tinyir.interp.onnx_kernels_util import (astr, attr, malformed, onnx_kernel, spatial_pads,
                                             unsupported, window_out, window_slices)


# ---- convolution --------------------------------------------------------------------------

def conv_core(x, w, group: int, strides, dilations, pads, dtype=None):
    """N-D grouped convolution of ``x`` [N,C,*S] with ``w`` [M,C/group,*K]; no bias.

    Depthwise kernels (one input channel per group) accumulate one broadcast multiply per
    kernel offset; every other kernel is one im2col matmul per group over a strided view.
    """
    dtype = dtype or np.result_type(x.dtype, w.dtype)
    n, c = x.shape[:2]
    m, cg = w.shape[:2]
    k = tuple(w.shape[2:])
    if c != cg * group or m % group:
        raise ValueError(f"conv channels do not fit: input {c}, weight {list(w.shape)}, "
                         f"group {group}")
    x = x.astype(dtype, copy=False)
    if any(p for pair in pads for p in pair):
        x = np.pad(x, [(0, 0), (0, 0)] + [tuple(p) for p in pads])
    outs = tuple((x.shape[2 + i] - (k[i] - 1) * dilations[i] - 1) // strides[i] + 1
                 for i in range(len(k)))
    mg, p = m // group, math.prod(outs)
    xg = x.reshape((n, group, cg) + x.shape[2:])
    wg = w.astype(dtype, copy=False).reshape((group, mg, cg) + k)
    if cg == 1 and group > 1:
        acc = np.zeros((n, group, mg, p), dtype=dtype)
        for off in itertools.product(*(range(kk) for kk in k)):
            sl = window_slices([o * d for o, d in zip(off, dilations)], strides, outs)
            xs = xg[(slice(None),) * 3 + sl].reshape(n, group, 1, p)
            acc += wg[(slice(None),) * 3 + off][None] * xs  # [1,G,Mg,1] * [N,G,1,P]
        return acc.reshape((n, m) + outs)
    st = xg.strides
    sp = st[3:]
    cols = np.lib.stride_tricks.as_strided(
        xg, (n, group, cg) + k + outs,
        st[:3] + tuple(s * d for s, d in zip(sp, dilations))
        + tuple(s * t for s, t in zip(sp, strides)), writeable=False)
    cols = cols.reshape(n, group, cg * math.prod(k), p)
    y = np.matmul(wg.reshape(group, mg, -1), cols)
    return y.reshape((n, m) + outs)


def _conv_geometry(node, x, w_shape):
    k = list(attr(node, "kernel_shape") or w_shape[2:])
    nsp = len(k)
    strides = list(attr(node, "strides") or [1] * nsp)
    dilations = list(attr(node, "dilations") or [1] * nsp)
    pads = spatial_pads(node, x.shape[2:], k, strides, dilations)
    return strides, dilations, pads


@onnx_kernel("Conv")
def conv(node, args, interp):
    x, w = args[0], args[1]
    b = args[2] if len(args) > 2 else None
    strides, dilations, pads = _conv_geometry(node, x, w.shape)
    y = conv_core(x, w, attr(node, "group", 1), strides, dilations, pads)
    if b is not None:
        y += b.reshape((1, -1) + (1,) * (y.ndim - 2))
    return [y]


def _integer_conv(x, xz, w, wz, node):
    """Exact integer convolution (float64 BLAS is exact for 8-bit products of this size)."""
    xs = x.astype(np.float64) - (0 if xz is None else np.asarray(xz, np.float64))
    wz = 0 if wz is None else np.asarray(wz, np.float64)
    if np.ndim(wz) == 1:
        wz = wz.reshape((-1,) + (1,) * (w.ndim - 1))
    ws = w.astype(np.float64) - wz
    strides, dilations, pads = _conv_geometry(node, x, w.shape)
    y = conv_core(xs, ws, attr(node, "group", 1), strides, dilations, pads, np.float64)
    return np.rint(y)


@onnx_kernel("ConvInteger")
def conv_integer(node, args, interp):
    args = list(args) + [None] * (4 - len(args))
    return [_integer_conv(args[0], args[2], args[1], args[3], node).astype(np.int32)]


@onnx_kernel("ConvTranspose")
def conv_transpose(node, args, interp):
    """Transposed convolution: scatter each input pixel's kernel into the output."""
    x, w = args[0], args[1]
    b = args[2] if len(args) > 2 else None
    group = attr(node, "group", 1)
    n, c = x.shape[:2]
    k = list(attr(node, "kernel_shape") or w.shape[2:])
    nsp = len(k)
    s = list(attr(node, "strides") or [1] * nsp)
    d = list(attr(node, "dilations") or [1] * nsp)
    outpad = list(attr(node, "output_padding") or [0] * nsp)
    ins = x.shape[2:]
    full = [s[i] * (ins[i] - 1) + outpad[i] + (k[i] - 1) * d[i] + 1 for i in range(nsp)]
    if attr(node, "output_shape"):
        target = list(attr(node, "output_shape"))[-nsp:]
        totals = [full[i] - target[i] for i in range(nsp)]
        upper = astr(node, "auto_pad", "NOTSET") == "SAME_UPPER"  # NOTSET pads like LOWER
        pads = [(t // 2, t - t // 2) if upper else (t - t // 2, t // 2) for t in totals]
    elif astr(node, "auto_pad", "NOTSET") in ("SAME_UPPER", "SAME_LOWER"):
        totals = [full[i] - ins[i] * s[i] for i in range(nsp)]
        upper = astr(node, "auto_pad", "NOTSET") == "SAME_UPPER"
        pads = [(t // 2, t - t // 2) if upper else (t - t // 2, t // 2) for t in totals]
    else:
        p = list(attr(node, "pads") or [0] * (2 * nsp))
        pads = [(p[i], p[i + nsp]) for i in range(nsp)]
    cg, mg = c // group, w.shape[1]
    dtype = np.result_type(x.dtype, w.dtype)
    out = np.zeros((n, group, mg) + tuple(full), dtype=dtype)
    xg = x.reshape((n, group, cg, -1))
    wg = w.reshape((group, cg, mg) + tuple(k))
    for off in itertools.product(*(range(kk) for kk in k)):
        contrib = np.matmul(np.swapaxes(wg[(slice(None),) * 3 + off], 1, 2), xg)
        sl = window_slices([o * dd for o, dd in zip(off, d)], s, ins)
        out[(slice(None),) * 3 + sl] += contrib.reshape((n, group, mg) + tuple(ins))
    out = out.reshape((n, group * mg) + tuple(full))
    crop = tuple(slice(pb, f - pe) for (pb, pe), f in zip(pads, full))
    out = out[(slice(None), slice(None)) + crop]
    if b is not None:
        out = out + b.reshape((1, -1) + (1,) * nsp)
    return [out]


# ---- pooling --------------------------------------------------------------------------

def _pool_setup(node, x):
    k = list(attr(node, "kernel_shape"))
    nsp = len(k)
    strides = list(attr(node, "strides") or [1] * nsp)
    dil = list(attr(node, "dilations") or [1] * nsp)
    ceil = bool(attr(node, "ceil_mode", 0))
    pads = spatial_pads(node, x.shape[2:], k, strides, dil)
    sizes = x.shape[2:]
    outs = [window_out(sizes[i], k[i], strides[i], dil[i], *pads[i], ceil) for i in range(nsp)]
    ends = [max(pads[i][1], (outs[i] - 1) * strides[i] + (k[i] - 1) * dil[i] + 1
                - sizes[i] - pads[i][0]) for i in range(nsp)]
    return k, strides, dil, pads, outs, ends


def _window_starts(k, dil):
    """For each kernel offset, where it starts in the padded input (per spatial axis)."""
    for off in itertools.product(*(range(kk) for kk in k)):
        yield [o * d for o, d in zip(off, dil)]


@onnx_kernel("MaxPool")
def max_pool(node, args, interp):
    """MaxPool with the optional Indices result (flat NCHW index, or column-major per HW)."""
    x = args[0]
    k, strides, dil, pads, outs, ends = _pool_setup(node, x)
    lowest = -np.inf if np.issubdtype(x.dtype, np.floating) else np.iinfo(x.dtype).min
    widths = [(0, 0), (0, 0)] + [(p[0], e) for p, e in zip(pads, ends)]
    xp = np.pad(x, widths, constant_values=lowest)
    want_idx = len(node.outputs) > 1
    best = idx = None
    for start in _window_starts(k, dil):
        cand = xp[(slice(None),) * 2 + window_slices(start, strides, outs)]
        if best is None:
            best = cand.copy()
            if want_idx:
                idx = np.broadcast_to(_flat_index(node, x, start, strides, outs, pads),
                                      best.shape).copy()
            continue
        if want_idx:
            idx = np.where(cand > best, _flat_index(node, x, start, strides, outs, pads), idx)
        np.maximum(best, cand, out=best)
    return [best, idx] if want_idx else [best]


def _flat_index(node, x, start, strides, outs, pads):
    """Flat index into the unpadded input of each window's element at ``start``."""
    n, c = x.shape[:2]
    sizes = x.shape[2:]
    coords = [np.arange(o) * s + st - p[0] for o, s, st, p in zip(outs, strides, start, pads)]
    grids = np.meshgrid(*coords, indexing="ij")
    if attr(node, "storage_order", 0) and len(sizes) == 2:
        sp = grids[1] * sizes[0] + grids[0]
    else:
        sp = np.ravel_multi_index(grids, sizes, mode="clip")
    plane = math.prod(sizes)
    base = (np.arange(n)[:, None] * c + np.arange(c)[None, :]) * plane
    return base.reshape((n, c) + (1,) * len(sizes)) + sp


@onnx_kernel("AveragePool")
def average_pool(node, args, interp):
    x = args[0]
    k, strides, dil, pads, outs, ends = _pool_setup(node, x)
    widths = [(0, 0), (0, 0)] + [(p[0], e) for p, e in zip(pads, ends)]
    xp = np.pad(x, widths)
    acc = np.zeros(x.shape[:2] + tuple(outs), dtype=np.float64 if x.dtype == np.float64
                   else np.float32)
    for start in _window_starts(k, dil):
        acc += xp[(slice(None),) * 2 + window_slices(start, strides, outs)]
    include = attr(node, "count_include_pad", 0)
    count = np.ones((), dtype=np.float64)
    for i, size in enumerate(x.shape[2:]):
        pb, pe = pads[i]
        valid = np.zeros(pb + size + ends[i])
        if include:
            valid[:pb + size + pe] = 1
        else:
            valid[pb:pb + size] = 1
        c = sum(valid[start:start + strides[i] * (outs[i] - 1) + 1:strides[i]]
                for start in range(0, (k[i] - 1) * dil[i] + 1, dil[i]))
        count = np.multiply.outer(count, c)
    return [acc / count.astype(acc.dtype)]


@onnx_kernel("GlobalAveragePool", "GlobalMaxPool")
def global_pool(node, args, interp):
    x = args[0]
    axes = tuple(range(2, x.ndim))
    if node.op_type == "GlobalMaxPool":
        return [np.max(x, axis=axes, keepdims=True)]
    return [np.mean(x, axis=axes, keepdims=True, dtype=np.float64)]


# ---- normalisation ----------------------------------------------------------------------

def _per_channel(node, p, x):
    """A [C] parameter shaped to broadcast over [N,C,*S]; [C,*S] (legacy spatial=0) as is."""
    p = np.asarray(p, dtype=np.float64)
    if p.ndim == 1 and x.ndim >= 2:
        if p.size != x.shape[1]:
            malformed(node, f"a parameter has {p.size} entries but the input {list(x.shape)} "
                           f"has {x.shape[1]} channels (axis 1)")
        return p.reshape((-1,) + (1,) * (x.ndim - 2))
    return p


@onnx_kernel("BatchNormalization")
def batch_norm(node, args, interp):
    """Inference BatchNormalization; extra (training) results return the running stats."""
    x, scale, b, mean, var = args[:5]
    if attr(node, "training_mode", 0):
        unsupported(node, "training_mode=1 is not supported by the reference interpreter")
    eps = float(attr(node, "epsilon", 1e-5))
    mul = _per_channel(node, scale, x) / np.sqrt(_per_channel(node, var, x) + eps)
    add = _per_channel(node, b, x) - _per_channel(node, mean, x) * mul
    y = x * mul.astype(x.dtype) + add.astype(x.dtype)
    extra = [mean, var, mean, var][:len(node.outputs) - 1]
    return [y] + extra


@onnx_kernel("InstanceNormalization")
def instance_norm(node, args, interp):
    x, scale, b = args
    axes = tuple(range(2, x.ndim))
    xd = x.astype(np.float64)
    mean = xd.mean(axis=axes, keepdims=True)
    var = ((xd - mean) ** 2).mean(axis=axes, keepdims=True)
    y = (xd - mean) / np.sqrt(var + float(attr(node, "epsilon", 1e-5)))
    return [y * _per_channel(node, scale, x) + _per_channel(node, b, x)]


@onnx_kernel("LayerNormalization")
def layer_norm(node, args, interp):
    x, scale = args[0], args[1]
    b = args[2] if len(args) > 2 else None
    axis = attr(node, "axis", -1) % x.ndim
    axes = tuple(range(axis, x.ndim))
    xd = x.astype(np.float64)
    mean = xd.mean(axis=axes, keepdims=True)
    var = ((xd - mean) ** 2).mean(axis=axes, keepdims=True)
    inv = 1 / np.sqrt(var + float(attr(node, "epsilon", 1e-5)))
    y = (xd - mean) * inv * scale
    if b is not None:
        y = y + b
    return [y, mean, inv][:len(node.outputs)]


# ---- matrix products ----------------------------------------------------------------------

@onnx_kernel("Gemm")
def gemm(node, args, interp):
    a, b = args[0], args[1]
    c = args[2] if len(args) > 2 else None
    if attr(node, "transA", 0):
        a = a.T
    if attr(node, "transB", 0):
        b = b.T
    y = float(attr(node, "alpha", 1.0)) * (a.astype(np.float64) @ b.astype(np.float64))
    if c is not None:
        y = y + float(attr(node, "beta", 1.0)) * c
    return [y]


@onnx_kernel("MatMul")
def matmul(node, args, interp):
    a, b = args
    if np.issubdtype(a.dtype, np.floating):
        return [np.matmul(a.astype(np.float64), b.astype(np.float64))]
    return [np.matmul(a, b)]


def integer_matmul(a, az, b, bz):
    """Exact (a - az) @ (b - bz) for 8-bit operands; per-column ``bz`` allowed."""
    ad = a.astype(np.float64) - (0 if az is None else np.asarray(az, np.float64))
    bd = b.astype(np.float64) - (0 if bz is None else np.asarray(bz, np.float64))
    return np.rint(np.matmul(ad, bd))


@onnx_kernel("MatMulInteger")
def matmul_integer(node, args, interp):
    args = list(args) + [None] * (4 - len(args))
    a, b, az, bz = args
    if az is not None and np.ndim(az) == 1 and a.ndim >= 2:
        az = az.reshape(-1, 1)  # per-row zero point of A
    return [integer_matmul(a, az, b, bz).astype(np.int32)]


# ---- others -------------------------------------------------------------------------------

@onnx_kernel("Einsum")
def einsum(node, args, interp):
    return [np.einsum(astr(node, "equation", ""), *args)]

