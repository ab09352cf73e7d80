"""ONNX data-movement kernels: constants, reshapes, slicing, gathering, padding.

Ops whose operands became inputs in later opsets (Reshape 5, Slice 10, Pad 11, Split 13,
Squeeze/Unsqueeze 13) read the attribute form when the node's opset predates the change.
"""

from __future__ import annotations

import numpy as np

from tinyir.interp.onnx_kernels_util import astr, attr, ints, onnx_kernel, opset, unsupported


def _arg(args, i):
    return args[i] if len(args) > i else None


# ---- constants --------------------------------------------------------------------------

@onnx_kernel("Constant")
def constant(node, args, interp):
    a = node.attrs
    if "value" in a:
        return [np.asarray(a["value"])]
    for key, kind in (("value_float", np.float32), ("value_floats", np.float32),
                      ("value_int", np.int64), ("value_ints", np.int64),
                      ("value_string", object), ("value_strings", object)):
        if key in a:
            return [np.asarray(a[key], dtype=kind)]
    unsupported(node, f"constant form {sorted(a)} is not supported")


@onnx_kernel("ConstantOfShape")
def constant_of_shape(node, args, interp):
    value = attr(node, "value")
    fill = np.zeros(1, np.float32) if value is None else np.asarray(value).reshape(-1)
    return [np.full(ints(args[0]), fill[0], dtype=fill.dtype)]


@onnx_kernel("Dropout")
def dropout(node, args, interp):
    """Inference: identity, with an all-true mask when the mask result is requested."""
    x = args[0]
    return [x, np.ones(x.shape, dtype=bool)][:len(node.outputs)]


@onnx_kernel("Shape")
def shape(node, args, interp):
    dims = list(args[0].shape)
    start, end = attr(node, "start", 0), attr(node, "end")
    return [np.asarray(dims[start:end] if end is not None else dims[start:], dtype=np.int64)]


@onnx_kernel("Size")
def size(node, args, interp):
    return [np.asarray(args[0].size, dtype=np.int64)]


# ---- reshaping ----------------------------------------------------------------------------

@onnx_kernel("Reshape")
def reshape(node, args, interp):
    """Reshape: 0 copies the input dim (unless ``allowzero``), -1 is inferred."""
    x = args[0]
    target = ints(args[1]) if opset(node) >= 5 else list(attr(node, "shape"))
    if not attr(node, "allowzero", 0):
        target = [x.shape[i] if d == 0 else d for i, d in enumerate(target)]
    return [x.reshape(target)]


@onnx_kernel("Flatten")
def flatten(node, args, interp):
    x = args[0]
    axis = attr(node, "axis", 1)
    axis = axis + x.ndim if axis < 0 else axis
    lead = int(np.prod(x.shape[:axis], dtype=np.int64))
    return [x.reshape(lead, -1) if x.size or lead else x.reshape(lead, 0)]


@onnx_kernel("Transpose")
def transpose(node, args, interp):
    perm = attr(node, "perm")
    return [np.transpose(args[0], perm)]


def _axes(node, args, index, name):
    """Axes from operand ``index`` (newer opsets) or attribute ``name``; None if neither."""
    a = _arg(args, index)
    if a is not None:
        return ints(a)
    v = attr(node, name)
    return None if v is None else list(v)


@onnx_kernel("Squeeze")
def squeeze(node, args, interp):
    x = args[0]
    axes = _axes(node, args, 1, "axes")
    if axes is None:
        return [np.squeeze(x)]
    return [np.squeeze(x, axis=tuple(a % x.ndim for a in axes))]


@onnx_kernel("Unsqueeze")
def unsqueeze(node, args, interp):
    x = args[0]
    axes = _axes(node, args, 1, "axes")
    rank = x.ndim + len(axes)
    return [np.expand_dims(x, tuple(sorted(a % rank for a in axes)))]


@onnx_kernel("Expand")
def expand(node, args, interp):
    x = args[0]
    return [np.broadcast_to(x, np.broadcast_shapes(x.shape, tuple(ints(args[1])))).copy()]


@onnx_kernel("Tile")
def tile(node, args, interp):
    return [np.tile(args[0], ints(args[1]))]


@onnx_kernel("DepthToSpace", "SpaceToDepth")
def depth_space(node, args, interp):
    x = args[0]
    b = attr(node, "blocksize")
    n, c, h, w = x.shape
    if node.op_type == "SpaceToDepth":
        y = x.reshape(n, c, h // b, b, w // b, b).transpose(0, 3, 5, 1, 2, 4)
        return [y.reshape(n, c * b * b, h // b, w // b)]
    if astr(node, "mode", "DCR") == "CRD":
        y = x.reshape(n, c // (b * b), b, b, h, w).transpose(0, 1, 4, 2, 5, 3)
    else:
        y = x.reshape(n, b, b, c // (b * b), h, w).transpose(0, 3, 4, 1, 5, 2)
    return [y.reshape(n, c // (b * b), h * b, w * b)]


# ---- joining and splitting ----------------------------------------------------------------

@onnx_kernel("Concat")
def concat(node, args, interp):
    return [np.concatenate([a for a in args if a is not None], axis=attr(node, "axis"))]


@onnx_kernel("Split")
def split(node, args, interp):
    """Split by ``split`` sizes (attribute before opset 13, operand since) or evenly."""
    x = args[0]
    axis = attr(node, "axis", 0) % x.ndim
    sizes = _axes(node, args, 1, "split")
    n = len(node.outputs)
    if not sizes:
        total = x.shape[axis]
        if "num_outputs" in node.attrs:
            chunk = -(-total // n)
            sizes = [min(chunk, total - i * chunk) for i in range(n)]
        else:
            sizes = [total // n] * n
    bounds = np.cumsum(sizes)[:-1]
    return np.split(x, bounds, axis=axis)


@onnx_kernel("Slice")
def slice_(node, args, interp):
    """Slice with ONNX clamping; attribute form before opset 10, operands since."""
    x = args[0]
    if opset(node) < 10:
        starts, ends = list(attr(node, "starts")), list(attr(node, "ends"))
        axes, steps = attr(node, "axes"), None
    else:
        starts, ends = ints(args[1]), ints(args[2])
        axes = _axes(node, args, 3, "_none")
        steps = _axes(node, args, 4, "_none")
    axes = list(range(len(starts))) if axes is None else axes
    steps = [1] * len(starts) if steps is None else steps
    index = [slice(None)] * x.ndim
    for st, en, ax, sp in zip(starts, ends, axes, steps):
        dim = x.shape[ax]
        st = st + dim if st < 0 else st
        en = en + dim if en < 0 else en
        if sp > 0:
            st, en = min(max(st, 0), dim), min(max(en, 0), dim)
        else:
            st, en = min(max(st, 0), dim - 1), min(max(en, -1), dim - 1)
        index[ax % x.ndim] = slice(st, None if en < 0 else en, sp)
    return [x[tuple(index)]]


@onnx_kernel("Gather")
def gather(node, args, interp):
    x, idx = args
    axis = attr(node, "axis", 0) % x.ndim
    idx = np.where(idx < 0, idx + x.shape[axis], idx)
    return [np.take(x, idx, axis=axis)]


@onnx_kernel("GatherElements")
def gather_elements(node, args, interp):
    x, idx = args
    axis = attr(node, "axis", 0) % x.ndim
    idx = np.where(idx < 0, idx + x.shape[axis], idx)
    return [np.take_along_axis(x, idx, axis=axis)]


@onnx_kernel("Pad")
def pad(node, args, interp):
    """Pad (constant/reflect/edge/wrap); negative pads crop."""
    x = args[0]
    mode = astr(node, "mode", "constant")
    if opset(node) < 11:
        pads = list(attr(node, "pads", attr(node, "paddings")))
        value = float(attr(node, "value", 0.0))
        axes = list(range(x.ndim))
    else:
        pads = ints(args[1])
        value = _arg(args, 2)
        value = 0 if value is None or np.size(value) == 0 else np.asarray(value).reshape(-1)[0]
        axes = _axes(node, args, 3, "_none") or list(range(x.ndim))
    k = len(axes)
    widths = [(0, 0)] * x.ndim
    for i, ax in enumerate(axes):
        widths[ax % x.ndim] = (pads[i], pads[i + k])
    crop = tuple(slice(max(-b, 0), x.shape[i] - max(-e, 0)) for i, (b, e) in enumerate(widths))
    x = x[crop]
    widths = [(max(b, 0), max(e, 0)) for b, e in widths]
    np_mode = {"constant": "constant", "reflect": "reflect", "edge": "edge", "wrap": "wrap"}
    if mode not in np_mode:
        unsupported(node, f"pad mode {mode!r} is not supported")
    if mode == "constant":
        return [np.pad(x, widths, constant_values=np.asarray(value).astype(x.dtype))]
    return [np.pad(x, widths, mode=np_mode[mode])]


@onnx_kernel("Range")
def range_(node, args, interp):
    start, limit, delta = (np.asarray(a).reshape(()) for a in args)
    return [np.arange(start, limit, delta, dtype=start.dtype)]
