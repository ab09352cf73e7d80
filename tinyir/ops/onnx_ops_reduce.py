"""ONNX reductions (ReduceMean, ReduceSum, ...), ArgMax/ArgMin and TopK.

``axes`` is an attribute before opset 18 (ReduceSum: before 13) and an operand after;
both are read.  No axes reduces every dim unless ``noop_with_empty_axes`` is set.
All cost 0 MACs.
"""

from __future__ import annotations

from tinyir.ops.onnx_ops_common import (UNKNOWN, attr, const_ints, ishape, itype, norm_axis,
                                        onnx_op, tt)
from tinyir.types import DType

REDUCE_ATTRS = ("axes", "keepdims", "noop_with_empty_axes")


def _reduce_shape(x, axes, keepdims: bool):
    axes = {norm_axis(a, len(x)) for a in axes}
    if keepdims:
        return [1 if i in axes else d for i, d in enumerate(x)]
    return [d for i, d in enumerate(x) if i not in axes]


def reduce_(node):
    """Reduce over ``axes`` (all dims when none); ``keepdims`` keeps them as 1."""
    t = itype(node, 0)
    x = t.shape
    keep = bool(attr(node, "keepdims", 1))
    if "axes" in node.attrs:
        axes = [int(a) for a in node.attrs["axes"]]
    elif len(node.inputs) > 1 and node.inputs[1] is not None:
        axes = const_ints(node, 1)
        if axes is None:
            return [tt((UNKNOWN,) * len(x) if keep and x is not None else None, t.dtype)]
    else:
        axes = []
    if x is None:
        return [tt(None, t.dtype)]
    if not axes:
        if attr(node, "noop_with_empty_axes", 0):
            return [tt(x, t.dtype)]
        axes = list(range(len(x)))
    return [tt(_reduce_shape(x, axes, keep), t.dtype)]


for _name in ("ReduceMean", "ReduceSum", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL1",
              "ReduceL2", "ReduceLogSum", "ReduceLogSumExp", "ReduceSumSquare"):
    onnx_op(_name, ["data", "axes?"], ["reduced"], attrs=REDUCE_ATTRS)(reduce_)


def arg_reduce(node):
    """int64 indices along ``axis`` (kept as 1 unless keepdims=0)."""
    x = ishape(node, 0)
    if x is None:
        return [tt(None, DType.INT64)]
    axis = int(attr(node, "axis", 0))
    return [tt(_reduce_shape(x, [axis], bool(attr(node, "keepdims", 1))), DType.INT64)]


for _name in ("ArgMax", "ArgMin"):
    onnx_op(_name, ["data"], ["reduced"], attrs=("axis", "keepdims", "select_last_index"))(
        arg_reduce)


@onnx_op("TopK", ["X", "K?"], ["Values", "Indices"], attrs=("axis", "k", "largest", "sorted"))
def topk(node):
    """``k`` largest (or smallest) along ``axis``: values and int64 indices."""
    t = itype(node, 0)
    x = t.shape
    if x is None:
        return [tt(None, t.dtype), tt(None, DType.INT64)]
    axis = norm_axis(int(attr(node, "axis", -1)), len(x))
    k = attr(node, "k")
    if k is None:
        ks = const_ints(node, 1)
        k = ks[0] if ks else UNKNOWN
    if isinstance(k, int) and isinstance(x[axis], int) and k > x[axis]:
        raise ValueError(f"k={k} is larger than dim {axis} ({x[axis]})")
    out = (*x[:axis], k, *x[axis + 1:])
    return [tt(out, t.dtype), tt(out, DType.INT64)]
