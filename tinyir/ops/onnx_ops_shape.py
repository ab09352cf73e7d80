"""ONNX data-movement ops: Reshape, Transpose, Concat, Split, Slice, Pad, Gather, ...

Where an op's result shape depends on an operand (``shape``, ``axes``, ``pads``,
``starts``...), the shape is computed when that operand is a constant; otherwise the
rank is kept when it follows from the types and the dims are unknown.  Operands that
were attributes in old opsets (Reshape ``shape`` before 5, Slice before 10, Pad before
11, Split/Squeeze/Unsqueeze before 13) are read from either place.  All cost 0 MACs.
"""

from __future__ import annotations

import math

import numpy as np

from tinyir.ops.onnx_ops_common import (UNKNOWN, attr, const, const_ints, dprod, ishape, itype,
                                        known, norm_axis, one_of, onnx_op, same_dim, same_dtype,
                                        tt, unknown_dims, vector_len)
from tinyir.ops.shapes import broadcast
from tinyir.types import DType


@onnx_op("Reshape", ["data", "shape?"], ["reshaped"],
         attrs=("shape", "allowzero", "consumed_inputs"))
def reshape(node):
    """Target from ``shape`` (0 copies the input dim unless allowzero, -1 is inferred)."""
    t = itype(node, 0)
    target = one_of(node, "shape", 1)
    if target is None:
        n = vector_len(node, 1)
        return [tt(None if n is None else unknown_dims(n), t.dtype)]
    x = t.shape
    allowzero = bool(attr(node, "allowzero", 0))
    if target.count(-1) > 1:
        raise ValueError(f"shape {target} has more than one -1")
    out = []
    for i, d in enumerate(target):
        if d == 0 and not allowzero:
            if x is not None and i >= len(x):
                raise ValueError(f"shape {target} copies dim {i} of a rank-{len(x)} input")
            out.append(UNKNOWN if x is None else x[i])
        elif d < -1:
            raise ValueError(f"shape {target} has a negative dim")
        else:
            out.append(d)
    if x is None:
        return [tt([UNKNOWN if d == -1 else d for d in out], t.dtype)]
    # symbolic dims that appear on both sides cancel: [N, 4, 6] -> [N, -1] gives 24
    have = list(x)
    rest = []
    for d in out:
        if d != -1 and isinstance(d, str) and d != UNKNOWN and d in have:
            have.remove(d)
        elif d != -1:
            rest.append(d)
    if -1 in out:
        fill = UNKNOWN
        if known(*have, *rest):
            part, total = math.prod(rest), math.prod(have)
            if part == 0 or total % part:
                raise ValueError(f"cannot reshape {list(x)} to {target}")
            fill = total // part
        out = [fill if d == -1 else d for d in out]
    elif known(*have, *rest) and math.prod(have) != math.prod(rest):
        raise ValueError(f"cannot reshape {list(x)} to {target}")
    return [tt(out, t.dtype)]


@onnx_op("Flatten", ["input"], ["output"], attrs=("axis",))
def flatten(node):
    """2-D ``[prod(dims before axis), prod(dims from axis)]``."""
    t = itype(node, 0)
    if t.shape is None:
        return [tt((UNKNOWN, UNKNOWN), t.dtype)]
    r = len(t.shape)
    axis = int(attr(node, "axis", 1))
    if not -r <= axis <= r:
        raise ValueError(f"axis {axis} is out of range for rank {r}")
    if axis < 0:
        axis += r
    return [tt((dprod(t.shape[:axis]), dprod(t.shape[axis:])), t.dtype)]


@onnx_op("Transpose", ["data"], ["transposed"], attrs=("perm",))
def transpose(node):
    """Dims permuted by ``perm`` (default: reversed)."""
    t = itype(node, 0)
    if t.shape is None:
        return [tt(None, t.dtype)]
    r = len(t.shape)
    perm = [int(p) for p in attr(node, "perm", list(range(r))[::-1])]
    if sorted(p % r if r else p for p in perm) != list(range(r)) or len(perm) != r:
        raise ValueError(f"perm {perm} is not a permutation of {r} dims")
    return [tt([t.shape[p] for p in perm], t.dtype)]


@onnx_op("Squeeze", ["data", "axes?"], ["squeezed"], attrs=("axes",))
def squeeze(node):
    """Drop the size-1 dims named by ``axes`` (all size-1 dims when none are given)."""
    t = itype(node, 0)
    x = t.shape
    axes = one_of(node, "axes", 1)
    if axes is None and not operand_missing(node, 1):
        n = vector_len(node, 1)
        return [tt(None if x is None or n is None else unknown_dims(len(x) - n), t.dtype)]
    if x is None:
        return [tt(None, t.dtype)]
    if axes is None:
        if not known(*x):
            return [tt(None, t.dtype)]
        return [tt([d for d in x if d != 1], t.dtype)]
    axes = {norm_axis(a, len(x)) for a in axes}
    for a in axes:
        if isinstance(x[a], int) and x[a] != 1:
            raise ValueError(f"cannot squeeze dim {a} of size {x[a]}")
    return [tt([d for i, d in enumerate(x) if i not in axes], t.dtype)]


@onnx_op("Unsqueeze", ["data", "axes?"], ["expanded"], attrs=("axes",))
def unsqueeze(node):
    """Insert size-1 dims at ``axes`` (positions in the result)."""
    t = itype(node, 0)
    x = t.shape
    axes = one_of(node, "axes", 1)
    if axes is None:
        n = vector_len(node, 1)
        if "axes" not in node.attrs and operand_missing(node, 1):
            raise ValueError("axes are required")
        return [tt(None if x is None or n is None else unknown_dims(len(x) + n), t.dtype)]
    if x is None:
        return [tt(None, t.dtype)]
    r = len(x) + len(axes)
    norm = {norm_axis(a, r) for a in axes}
    if len(norm) != len(axes):
        raise ValueError(f"axes {axes} repeat")
    axes = norm
    rest = iter(x)
    return [tt([1 if i in axes else next(rest) for i in range(r)], t.dtype)]


def operand_missing(node, i: int) -> bool:
    return i >= len(node.inputs) or node.inputs[i] is None


@onnx_op("Concat", ["inputs*"], ["concat_result"], attrs=("axis",))
def concat(node):
    """Join along ``axis``; every other dim must agree."""
    shapes = [v.type.shape for v in node.inputs if v is not None]
    if not shapes:
        raise ValueError("needs at least one operand")
    dtype = same_dtype(node, range(len(node.inputs)))
    if any(s is None for s in shapes):
        ranks = {len(s) for s in shapes if s is not None}
        return [tt(unknown_dims(ranks.pop()) if len(ranks) == 1 else None, dtype)]
    r = len(shapes[0])
    if any(len(s) != r for s in shapes):
        raise ValueError(f"operands have different ranks: {[list(s) for s in shapes]}")
    axis = norm_axis(int(attr(node, "axis", 1 if r > 1 else 0)), r)
    out = list(shapes[0])
    for s in shapes[1:]:
        for i in range(r):
            if i != axis:
                out[i] = same_dim(out[i], s[i], f"concat operands differ in dim {i}")
    sizes = [s[axis] for s in shapes]
    out[axis] = sum(sizes) if known(*sizes) else UNKNOWN
    return [tt(out, dtype)]


@onnx_op("Split", ["input", "split?"], ["outputs*"], attrs=("axis", "split", "num_outputs"))
def split(node):
    """Sizes from ``split`` (attribute or operand), else equal parts (opset 18 rounds up)."""
    t = itype(node, 0)
    n = len(node.outputs)
    sizes = one_of(node, "split", 1)
    x = t.shape
    if x is None:
        return [tt(None, t.dtype)] * n
    axis = norm_axis(int(attr(node, "axis", 0)), len(x))
    d = x[axis]
    if sizes is not None:
        if len(sizes) != n:
            raise ValueError(f"split {sizes} names {len(sizes)} parts for {n} results")
        if isinstance(d, int) and sum(sizes) != d:
            raise ValueError(f"split {sizes} does not add up to dim {d}")
    elif not isinstance(d, int):
        sizes = [UNKNOWN] * n
    elif "num_outputs" in node.attrs:
        chunk = -(-d // n)
        sizes = [chunk] * (n - 1) + [d - chunk * (n - 1)]
    else:
        if d % n:
            raise ValueError(f"dim {d} does not split into {n} equal parts")
        sizes = [d // n] * n
    return [tt((*x[:axis], s, *x[axis + 1:]), t.dtype) for s in sizes]


def _slice_len(d: int, start: int, end: int, step: int) -> int:
    if step == 0:
        raise ValueError("slice step is 0")
    if start < 0:
        start += d
    if end < 0:
        end += d
    if step > 0:
        start, end = min(max(start, 0), d), min(max(end, 0), d)
    else:
        start, end = min(max(start, 0), d - 1), min(max(end, -1), d - 1)
    return max(0, -(-(end - start) // step))


@onnx_op("Slice", ["data", "starts?", "ends?", "axes?", "steps?"], ["output"],
         attrs=("starts", "ends", "axes"))
def slice_(node):
    """Per-axis ``[start:end:step]`` with the spec's clamping."""
    t = itype(node, 0)
    x = t.shape
    if x is None:
        return [tt(None, t.dtype)]
    legacy = "starts" in node.attrs
    starts = one_of(node, "starts", 1)
    ends = one_of(node, "ends", 2)
    if legacy:
        axes = attr(node, "axes")
        steps = None
    else:
        if operand_missing(node, 1) or operand_missing(node, 2):
            raise ValueError("starts and ends are required")
        axes = const_ints(node, 3)
        steps = const_ints(node, 4)
        if (axes is None and not operand_missing(node, 3)) or \
                (steps is None and not operand_missing(node, 4)):
            return [tt(unknown_dims(len(x)), t.dtype)]
    if starts is None or ends is None:
        if axes is None:
            return [tt(unknown_dims(len(x)), t.dtype)]
        axes = {norm_axis(a, len(x)) for a in axes}
        return [tt([UNKNOWN if i in axes else d for i, d in enumerate(x)], t.dtype)]
    if axes is None:
        axes = list(range(len(starts)))
    steps = steps or [1] * len(starts)
    if not len(starts) == len(ends) == len(axes) == len(steps):
        raise ValueError("starts, ends, axes and steps differ in length")
    out = list(x)
    for s, e, a, st in zip(starts, ends, axes, steps):
        a = norm_axis(int(a), len(x))
        out[a] = _slice_len(x[a], s, e, st) if isinstance(x[a], int) else UNKNOWN
    return [tt(out, t.dtype)]


@onnx_op("Gather", ["data", "indices"], ["output"], attrs=("axis",))
def gather(node):
    """``data.shape[:axis] + indices.shape + data.shape[axis+1:]``."""
    t = itype(node, 0)
    x, ind = t.shape, ishape(node, 1)
    if x is None or ind is None:
        return [tt(None, t.dtype)]
    axis = norm_axis(int(attr(node, "axis", 0)), len(x))
    idx = const(node, 1)
    if idx is not None and isinstance(x[axis], int) and idx.size:
        if idx.max() >= x[axis] or idx.min() < -x[axis]:
            raise ValueError(f"indices out of range for dim of size {x[axis]}")
    return [tt((*x[:axis], *ind, *x[axis + 1:]), t.dtype)]


@onnx_op("Pad", ["data", "pads?", "constant_value?", "axes?"], ["output"],
         attrs=("mode", "pads", "paddings", "value"))
def pad(node):
    """Each padded dim grows by its begin and end pads (negative pads crop)."""
    t = itype(node, 0)
    x = t.shape
    if x is None:
        return [tt(None, t.dtype)]
    pads = node.attrs.get("pads", node.attrs.get("paddings"))
    pads = [int(p) for p in pads] if pads is not None else const_ints(node, 1)
    axes = const_ints(node, 3)
    if pads is None or (axes is None and not operand_missing(node, 3)):
        return [tt(unknown_dims(len(x)), t.dtype)]
    axes = [norm_axis(a, len(x)) for a in axes] if axes is not None else list(range(len(x)))
    if len(pads) != 2 * len(axes):
        raise ValueError(f"pads {pads} do not fit {len(axes)} axes")
    out = list(x)
    for i, a in enumerate(axes):
        if isinstance(out[a], int):
            out[a] += pads[i] + pads[i + len(axes)]
            if out[a] < 0:
                raise ValueError(f"pads {pads} crop dim {a} below zero")
    return [tt(out, t.dtype)]


@onnx_op("Expand", ["input", "shape"], ["output"])
def expand(node):
    """Bidirectional broadcast of the input with ``shape``."""
    t = itype(node, 0)
    shape = const_ints(node, 1)
    if shape is None:
        n = vector_len(node, 1)
        if n is None or t.shape is None:
            return [tt(None, t.dtype)]
        return [tt(unknown_dims(max(n, len(t.shape))), t.dtype)]
    return [tt(broadcast(t.shape, shape), t.dtype)]


@onnx_op("Tile", ["input", "repeats", "axis?"], ["output"])
def tile(node):
    """Dims multiplied by ``repeats`` (Tile-1: ``tiles`` copies along one ``axis``)."""
    t = itype(node, 0)
    x = t.shape
    if x is None:
        return [tt(None, t.dtype)]
    reps = const_ints(node, 1)
    if not operand_missing(node, 2):  # Tile-1
        axis = const_ints(node, 2)
        if reps is None or axis is None:
            return [tt(unknown_dims(len(x)), t.dtype)]
        a = norm_axis(axis[0], len(x))
        reps = [reps[0] if i == a else 1 for i in range(len(x))]
    if reps is None:
        return [tt(unknown_dims(len(x)), t.dtype)]
    if len(reps) != len(x):
        raise ValueError(f"repeats {reps} do not fit rank {len(x)}")
    return [tt([d * r if isinstance(d, int) else (d if r == 1 else UNKNOWN)
                for d, r in zip(x, reps)], t.dtype)]


@onnx_op("Shape", ["data"], ["shape"], attrs=("start", "end"))
def shape_(node):
    """int64 vector of the input's dims ``[start:end]``."""
    x = ishape(node, 0)
    if x is None:
        return [tt((UNKNOWN,), DType.INT64)]
    r = len(x)
    start, end = int(attr(node, "start", 0)), int(attr(node, "end", r))
    start = min(max(start + r if start < 0 else start, 0), r)
    end = min(max(end + r if end < 0 else end, 0), r)
    return [tt((max(end - start, 0),), DType.INT64)]


@onnx_op("Size", ["data"], ["size"])
def size(node):
    """int64 scalar."""
    return [tt((), DType.INT64)]


@onnx_op("ConstantOfShape", ["input"], ["output"], attrs=("value",))
def constant_of_shape(node):
    """Shape from the int64 operand; element type of ``value`` (default float32)."""
    value = attr(node, "value")
    dtype = DType.FLOAT32 if value is None else DType.from_numpy(np.asarray(value).dtype)
    shape = const_ints(node, 0)
    if shape is None:
        n = vector_len(node, 0)
        return [tt(None if n is None else unknown_dims(n), dtype)]
    if any(d < 0 for d in shape):
        raise ValueError(f"shape {shape} has a negative dim")
    return [tt(shape, dtype)]


@onnx_op("Range", ["start", "limit", "delta"], ["output"], attrs=("stash_type",))
def range_(node):
    """1-D ``max(ceil((limit - start) / delta), 0)`` elements."""
    dtype = same_dtype(node, [0, 1, 2])
    vals = [const(node, i) for i in range(3)]
    if any(v is None for v in vals):
        return [tt((UNKNOWN,), dtype)]
    start, limit, delta = (float(np.asarray(v).reshape(-1)[0]) for v in vals)
    if delta == 0:
        raise ValueError("delta is 0")
    return [tt((max(math.ceil((limit - start) / delta), 0),), dtype)]


@onnx_op("Constant", [], ["output"],
         attrs=("value", "value_float", "value_floats", "value_int", "value_ints",
                "value_string", "value_strings", "sparse_value"))
def constant(node):
    """Type of the one ``value*`` attribute."""
    a = node.attrs
    if "value" in a:
        arr = np.asarray(a["value"])
        return [tt(arr.shape, DType.from_numpy(arr.dtype))]
    for name, dtype in (("value_float", DType.FLOAT32), ("value_int", DType.INT64),
                        ("value_string", DType.STRING)):
        if name in a:
            return [tt((), dtype)]
    for name, dtype in (("value_floats", DType.FLOAT32), ("value_ints", DType.INT64),
                        ("value_strings", DType.STRING)):
        if name in a:
            return [tt((len(a[name]),), dtype)]
    return [None]  # sparse_value: not modelled


def _block(node, up: bool):
    t = itype(node, 0)
    x = t.shape
    b = int(attr(node, "blocksize", 0))
    if b <= 0:
        raise ValueError("attribute 'blocksize' must be positive")
    if x is None:
        return [tt(None, t.dtype)]
    if len(x) != 4:
        raise ValueError(f"input {list(x)} must be 4-D")
    n, c, h, w = x
    if up:
        if isinstance(c, int) and c % (b * b):
            raise ValueError(f"{c} channels do not divide by blocksize^2 = {b * b}")
        out = (n, c // (b * b) if isinstance(c, int) else UNKNOWN,
               h * b if isinstance(h, int) else UNKNOWN, w * b if isinstance(w, int) else UNKNOWN)
    else:
        for d in (h, w):
            if isinstance(d, int) and d % b:
                raise ValueError(f"spatial dim {d} does not divide by blocksize {b}")
        out = (n, c * b * b if isinstance(c, int) else UNKNOWN,
               h // b if isinstance(h, int) else UNKNOWN, w // b if isinstance(w, int) else UNKNOWN)
    return [tt(out, t.dtype)]


@onnx_op("DepthToSpace", ["input"], ["output"], attrs=("blocksize", "mode"))
def depth_to_space(node):
    """``[N, C/b^2, H*b, W*b]``."""
    return _block(node, True)


@onnx_op("SpaceToDepth", ["input"], ["output"], attrs=("blocksize", "mode"))
def space_to_depth(node):
    """``[N, C*b^2, H/b, W/b]``."""
    return _block(node, False)
