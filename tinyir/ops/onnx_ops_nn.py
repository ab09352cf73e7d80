"""ONNX neural-network ops: convolutions, pooling, normalisation, Gemm and MatMul.

MACs (see :mod:`tinyir.ops.onnx_ops`): a convolution costs one MAC per output element
per weight it reads, ``prod(Y.shape) * (Cin/group) * prod(kernel)``; a transposed
convolution one MAC per input element per weight it scatters,
``prod(X.shape) * (Cout/group) * prod(kernel)``; Gemm and MatMul ``prod(Y.shape) * K``.
Bias adds, pooling and normalisation count 0.
"""

from __future__ import annotations

import math

from tinyir.ops.onnx_ops_common import (UNKNOWN, attr, attr_str, const_floats, const_ints,
                                        dtype_of_code, ishape, itype, known, norm_axis, onnx_op,
                                        operand, opset, out_shape, same_dim, same_dtype, tt)
from tinyir.ops.shapes import broadcast
from tinyir.types import DType

CONV_ATTRS = ("auto_pad", "dilations", "group", "kernel_shape", "pads", "strides")
POOL_ATTRS = ("auto_pad", "ceil_mode", "dilations", "kernel_shape", "pads", "strides")


# ---- window arithmetic ---------------------------------------------------------------
def window_out(node, spatial, kernel, ceil_mode: bool = False):
    """Output sizes of a conv/pool window over ``spatial`` dims (ONNX auto_pad rules)."""
    n = len(spatial)
    strides = list(attr(node, "strides", [1] * n))
    dilations = list(attr(node, "dilations", [1] * n))
    pads = list(attr(node, "pads", [0] * (2 * n)))
    auto_pad = attr_str(node, "auto_pad", "NOTSET")
    if len(strides) != n or len(dilations) != n or len(pads) != 2 * n or len(kernel) != n:
        raise ValueError(f"strides/dilations/pads/kernel_shape do not fit {n} spatial dims")
    out = []
    for i, size in enumerate(spatial):
        k, s, d = kernel[i], strides[i], dilations[i]
        if not known(size, k):
            out.append(UNKNOWN)
            continue
        eff = (k - 1) * d + 1
        if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
            out.append(-(-size // s))
            continue
        total = 0 if auto_pad == "VALID" else pads[i] + pads[i + n]
        span = size + total - eff
        if span < 0:
            raise ValueError(f"window {eff} is larger than the padded input {size + total}")
        # ceil_mode: onnx's shape inference (1.23) keeps a last window that starts in
        # the end padding; onnxruntime and PyTorch drop it.  Verification follows onnx.
        out.append((-(-span // s) if ceil_mode else span // s) + 1)
    return out


def _kernel(node, w_shape):
    if "kernel_shape" in node.attrs:
        return [int(k) for k in node.attrs["kernel_shape"]]
    return list(w_shape[2:])


def conv_shape(node, x_idx: int, w_idx: int, b_idx: int | None):
    """``[N, M, out...]`` for X ``[N, C, ...]`` and W ``[M, C/group, k...]``."""
    x, w = ishape(node, x_idx), ishape(node, w_idx)
    group = int(attr(node, "group", 1))
    if w is not None and len(w) >= 1 and isinstance(w[0], int) and w[0] % group:
        raise ValueError(f"W has {w[0]} filters, not divisible by group={group}")
    if x is None or w is None:
        return None
    if len(x) < 3 or len(w) != len(x):
        raise ValueError(f"X {list(x)} and W {list(w)} must have one rank of at least 3")
    if known(x[1], w[1]) and x[1] != w[1] * group:
        raise ValueError(f"X has {x[1]} channels but W expects {w[1]} x group {group}")
    b = ishape(node, b_idx) if b_idx is not None else None
    if b is not None and (len(b) != 1 or (known(b[0], w[0]) and b[0] != w[0])):
        raise ValueError(f"bias {list(b)} does not match {w[0]} filters")
    return (x[0], w[0], *window_out(node, x[2:], _kernel(node, w)))


def conv_macs_of(infer_fn, w_idx: int):
    """MAC counter for conv-like ops: prod(Y) * (Cin/group) * prod(kernel)."""

    def macs(node):
        y = out_shape(node, 0, infer_fn(node))
        w = ishape(node, w_idx)
        if y is None or w is None or not known(*y, *w[1:]):
            return None
        return math.prod(y) * math.prod(w[1:])

    return macs


def _conv(node):
    """Convolution over N-D NCHW-style input (spatial dims from the window rules)."""
    return [tt(conv_shape(node, 0, 1, 2), same_dtype(node, [0, 1]))]


onnx_op("Conv", ["X", "W", "B?"], ["Y"], attrs=CONV_ATTRS, macs=conv_macs_of(_conv, 1))(_conv)


def _conv_transpose(node):
    """Transposed convolution; W is ``[C, M/group, k...]``, ``output_shape`` wins."""
    x, w = ishape(node, 0), ishape(node, 1)
    dtype = same_dtype(node, [0, 1])
    if x is None or w is None:
        return [tt(None, dtype)]
    group = int(attr(node, "group", 1))
    if len(x) < 3 or len(w) != len(x):
        raise ValueError(f"X {list(x)} and W {list(w)} must have one rank of at least 3")
    same_dim(x[1], w[0], "X channels vs W input channels")
    n = len(x) - 2
    kernel = _kernel(node, w)
    strides = list(attr(node, "strides", [1] * n))
    dil = list(attr(node, "dilations", [1] * n))
    pads = list(attr(node, "pads", [0] * (2 * n)))
    opad = list(attr(node, "output_padding", [0] * n))
    auto_pad = attr_str(node, "auto_pad", "NOTSET")
    if "output_shape" in node.attrs:
        spatial = list(node.attrs["output_shape"])[-n:]
    else:
        spatial = []
        for i in range(n):
            size = x[2 + i]
            if not known(size, kernel[i]):
                spatial.append(UNKNOWN)
            elif auto_pad in ("SAME_UPPER", "SAME_LOWER"):
                spatial.append(size * strides[i])
            else:
                total = 0 if auto_pad == "VALID" else pads[i] + pads[i + n]
                spatial.append(strides[i] * (size - 1) + opad[i]
                               + (kernel[i] - 1) * dil[i] + 1 - total)
    m = w[1] * group if isinstance(w[1], int) else UNKNOWN
    return [tt((x[0], m, *spatial), dtype)]


def _conv_transpose_macs(node):
    x, w = ishape(node, 0), ishape(node, 1)
    if x is None or w is None or not known(*x, *w[1:]):
        return None
    return math.prod(x) * math.prod(w[1:])


onnx_op("ConvTranspose", ["X", "W", "B?"], ["Y"],
        attrs=CONV_ATTRS + ("output_padding", "output_shape"),
        macs=_conv_transpose_macs)(_conv_transpose)


# ---- pooling -------------------------------------------------------------------------
def _pool(node):
    """Window pooling over the spatial dims; MaxPool's Indices are int64."""
    t = itype(node, 0)
    x = t.shape
    if "kernel_shape" not in node.attrs:
        raise ValueError("attribute 'kernel_shape' is required")
    if x is None:
        return [tt(None, t.dtype), tt(None, DType.INT64)]
    kernel = [int(k) for k in node.attrs["kernel_shape"]]
    if len(x) != len(kernel) + 2:
        raise ValueError(f"kernel_shape {kernel} does not fit input {list(x)}")
    y = (x[0], x[1], *window_out(node, x[2:], kernel, bool(attr(node, "ceil_mode", 0))))
    return [tt(y, t.dtype), tt(y, DType.INT64)]


onnx_op("MaxPool", ["X"], ["Y", "Indices?"], attrs=POOL_ATTRS + ("storage_order",))(_pool)
onnx_op("AveragePool", ["X"], ["Y"], attrs=POOL_ATTRS + ("count_include_pad",))(_pool)
onnx_op("LpPool", ["X"], ["Y"], attrs=POOL_ATTRS + ("p",))(_pool)


def _global_pool(node):
    """``[N, C, 1, ...]``: every spatial dim reduced to 1."""
    t = itype(node, 0)
    if t.shape is None:
        return [tt(None, t.dtype)]
    if len(t.shape) < 2:
        raise ValueError(f"input {list(t.shape)} has no channel dim")
    return [tt((*t.shape[:2], *[1] * (len(t.shape) - 2)), t.dtype)]


onnx_op("GlobalAveragePool", ["X"], ["Y"])(_global_pool)
onnx_op("GlobalMaxPool", ["X"], ["Y"])(_global_pool)
onnx_op("GlobalLpPool", ["X"], ["Y"], attrs=("p",))(_global_pool)


# ---- normalisation -------------------------------------------------------------------
@onnx_op("BatchNormalization", ["X", "scale", "B", "input_mean", "input_var"],
         ["Y", "running_mean?", "running_var?", "saved_mean?", "saved_var?"],
         attrs=("epsilon", "momentum", "spatial", "is_test", "consumed_inputs", "training_mode"))
def batch_norm(node):
    """Y like X; the optional statistics results are shaped like the mean operand.

    The four parameter vectors must agree with each other.  They are not compared with
    X's channel dim: opset-7 exporters wrote files whose parameters sit on another axis
    (hls4ml three_layer_bn), onnx's own inference accepts them, and rejecting them
    here would make such a model impossible to load and report on.
    """
    t = itype(node, 0)
    params = [ishape(node, i) for i in range(1, 5)]
    known_p = [p for p in params if p is not None]
    for p in known_p[1:]:
        if len(p) != len(known_p[0]) or any(known(a, b) and a != b
                                            for a, b in zip(p, known_p[0])):
            raise ValueError(f"scale/B/mean/var shapes differ: {[list(q) for q in known_p]}")
    stat = tt(params[2], itype(node, 3).dtype)
    return [tt(t.shape, t.dtype)] + [stat] * 4


@onnx_op("InstanceNormalization", ["input", "scale", "B"], ["output"],
         attrs=("epsilon", "consumed_inputs"))
def instance_norm(node):
    """Output like input; scale and B are ``[C]``."""
    t = itype(node, 0)
    for i in (1, 2):
        s = ishape(node, i)
        if s is not None and t.shape is not None and len(t.shape) > 1:
            if len(s) != 1:
                raise ValueError(f"operand {i} must be 1-D, is {list(s)}")
            same_dim(t.shape[1], s[0], "channels vs scale/B length")
    return [tt(t.shape, t.dtype)]


@onnx_op("LayerNormalization", ["X", "Scale", "B?"], ["Y", "Mean?", "InvStdDev?"],
         attrs=("axis", "epsilon", "stash_type"))
def layer_norm(node):
    """Y like X; Mean/InvStdDev keep dims before ``axis`` and are 1 after it."""
    t = itype(node, 0)
    stat_dtype = dtype_of_code(int(attr(node, "stash_type", 1)))
    if t.shape is None:
        return [tt(None, t.dtype), tt(None, stat_dtype), tt(None, stat_dtype)]
    r = len(t.shape)
    axis = norm_axis(int(attr(node, "axis", -1)), r)
    stat = tt((*t.shape[:axis], *[1] * (r - axis)), stat_dtype)
    return [tt(t.shape, t.dtype), stat, stat]


# ---- Gemm / MatMul -------------------------------------------------------------------
def _gemm(node):
    """``Y[M, N] = alpha * A' B' + beta * C`` with optional transposes; C broadcasts."""
    a, b = ishape(node, 0), ishape(node, 1)
    dtype = same_dtype(node, [0, 1])
    if a is None or b is None:
        return [tt(None, dtype)]
    if len(a) != 2 or len(b) != 2:
        raise ValueError(f"A {list(a)} and B {list(b)} must be 2-D")
    m, ka = (a[1], a[0]) if attr(node, "transA", 0) else (a[0], a[1])
    kb, n = (b[1], b[0]) if attr(node, "transB", 0) else (b[0], b[1])
    same_dim(ka, kb, "inner dims of A and B")
    c = ishape(node, 2)
    if c is not None:
        full = broadcast(c, (m, n))
        if len(full) != 2 or any(known(p, q) and p != q for p, q in zip(full, (m, n))):
            raise ValueError(f"C {list(c)} does not broadcast to [{m}, {n}]")
    return [tt((m, n), dtype)]


def _gemm_macs(node):
    y = out_shape(node, 0, _gemm(node))
    a = ishape(node, 0)
    if y is None or a is None or len(a) != 2:
        return None
    k = a[0] if attr(node, "transA", 0) else a[1]
    return math.prod(y) * k if known(*y, k) else None


onnx_op("Gemm", ["A", "B", "C?"], ["Y"], attrs=("alpha", "beta", "broadcast", "transA", "transB"),
        macs=_gemm_macs)(_gemm)


def matmul_shape(a, b):
    """numpy.matmul result shape (1-D operands are promoted and the dim dropped again)."""
    if a is None or b is None:
        return None
    if len(a) == 0 or len(b) == 0:
        raise ValueError("MatMul operands must not be scalars")
    a2 = (1, *a) if len(a) == 1 else tuple(a)
    b2 = (*b, 1) if len(b) == 1 else tuple(b)
    same_dim(a2[-1], b2[-2], "inner dims of A and B")
    batch = broadcast(a2[:-2], b2[:-2])
    out = list(batch)
    if len(a) > 1:
        out.append(a2[-2])
    if len(b) > 1:
        out.append(b2[-1])
    return tuple(out)


def matmul_macs_of(infer_fn):
    """MAC counter for MatMul-like ops: prod(Y) * K."""

    def macs(node):
        y = out_shape(node, 0, infer_fn(node))
        a = node.inputs[0].type.shape
        if y is None or a is None or not a:
            return None
        k = a[-1]
        return math.prod(y) * k if known(*y, k) else None

    return macs


def _matmul(node):
    """numpy.matmul semantics, batch dims broadcast."""
    return [tt(matmul_shape(ishape(node, 0), ishape(node, 1)), same_dtype(node, [0, 1]))]


onnx_op("MatMul", ["A", "B"], ["Y"], macs=matmul_macs_of(_matmul))(_matmul)



# ---- resampling ----------------------------------------------------------------------
def _scaled(x, scales, axes=None):
    """``floor(dim * scale)`` per axis."""
    axes = list(range(len(x))) if axes is None else [norm_axis(a, len(x)) for a in axes]
    if len(scales) != len(axes):
        raise ValueError(f"{len(scales)} scales for {len(axes)} axes")
    out = list(x)
    for a, s in zip(axes, scales):
        out[a] = math.floor(x[a] * s) if isinstance(x[a], int) else UNKNOWN
    return out


def _sized(node, x, sizes, axes):
    axes = list(range(len(x))) if axes is None else [norm_axis(a, len(x)) for a in axes]
    if len(sizes) != len(axes):
        raise ValueError(f"{len(sizes)} sizes for {len(axes)} axes")
    policy = attr_str(node, "keep_aspect_ratio_policy", "stretch")
    out = list(x)
    if policy == "stretch":
        for a, s in zip(axes, sizes):
            out[a] = s
        return out
    if not known(*[x[a] for a in axes]):
        return [UNKNOWN if i in axes else d for i, d in enumerate(x)]
    ratios = [s / x[a] for a, s in zip(axes, sizes)]
    scale = min(ratios) if policy == "not_larger" else max(ratios)
    for a in axes:
        out[a] = math.floor(x[a] * scale + 0.5)
    return out


@onnx_op("Resize", ["X", "roi?", "scales?", "sizes?"], ["Y"],
         attrs=("antialias", "axes", "coordinate_transformation_mode", "cubic_coeff_a",
                "exclude_outside", "extrapolation_value", "keep_aspect_ratio_policy", "mode",
                "nearest_mode"))
def resize(node):
    """Result from constant ``sizes``, else ``floor(dim * scale)`` from constant ``scales``.

    Resize-10 has two operands (X, scales); from opset 11 the second is ``roi``.
    """
    t = itype(node, 0)
    x = t.shape
    if x is None:
        return [tt(None, t.dtype)]
    two = len(node.inputs) == 2 and (opset(node) or 10) <= 10
    scales_i, sizes_i = (1, None) if two else (2, 3)
    axes = attr(node, "axes")
    sizes = const_ints(node, sizes_i) if sizes_i is not None else None
    scales = const_floats(node, scales_i)
    if sizes:
        return [tt(_sized(node, x, sizes, axes), t.dtype)]
    if scales:
        return [tt(_scaled(x, scales, axes), t.dtype)]
    pending = [operand(node, i) for i in (scales_i, sizes_i) if i is not None]
    if any(v is not None and v.const is None for v in pending):
        return [tt((UNKNOWN,) * len(x), t.dtype)]
    raise ValueError("needs scales or sizes")


@onnx_op("Upsample", ["X", "scales?"], ["Y"],
         attrs=("height_scale", "mode", "scales", "width_scale"))
def upsample(node):
    """``floor(dim * scale)``; scales are an attribute (opset 7-8) or operand (9)."""
    t = itype(node, 0)
    x = t.shape
    if x is None:
        return [tt(None, t.dtype)]
    if "scales" in node.attrs:
        scales = [float(s) for s in node.attrs["scales"]]
    elif "height_scale" in node.attrs or "width_scale" in node.attrs:
        scales = [1.0] * (len(x) - 2) + [float(attr(node, "height_scale", 1.0)),
                                         float(attr(node, "width_scale", 1.0))]
    else:
        scales = const_floats(node, 1)
        if scales is None:
            return [tt((UNKNOWN,) * len(x), t.dtype)]
    return [tt(_scaled(x, scales), t.dtype)]
