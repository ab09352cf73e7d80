"""Lowering rules for elementwise ops, activations and shape ops.

Elementwise ops keep the layout of their first computed operand; constant operands are
broadcast to the result's rank and transposed the same way.  Shape ops that move
elements (Reshape, Flatten, Squeeze, Unsqueeze) need ONNX element order, which an NHWC
value already has when its non-unit dims appear in the same order (``[N,1,1,C]``);
otherwise a flatten read only by Gemm/MatMul with constant weights is done in NHWC
order and the weights permuted (``Laid.rows``), and anything else reads the value back
in ONNX order through a TRANSPOSE.
"""

from __future__ import annotations

import numpy as np

from tinyir.backends.tflm.lower import (Laid, NoLowering, _Lowering, lowers, norm_perm,
                                        physical_shape)
from tinyir.graph import Node, Value
from tinyir.types import DType

F32 = np.float32
NONE_ACT = {"fused_activation_function": "NONE"}


def _opset(ctx: _Lowering) -> int:
    return int(ctx.g.opsets.get("", 13)) if ctx.g.opsets else 13


def operands(ctx: _Lowering, node: Node, inputs) -> tuple[list[Value], tuple | None]:
    """Operands of an elementwise op in one common layout (constants re-laid)."""
    y = node.outputs[0]
    rank = len(y.type.shape)
    computed = [v for v in inputs if not ctx.laid(v).value.is_const]
    perm = None
    if computed and all(len(v.type.shape) == rank for v in computed):
        perm = ctx.laid(computed[0]).perm
    out = []
    for v in inputs:
        laid = ctx.laid(v)
        if laid.value.is_const:
            arr = np.asarray(laid.value.const)
            arr = arr.reshape((1,) * (rank - arr.ndim) + arr.shape)
            if perm is not None:
                arr = arr.transpose(perm)
            out.append(ctx.const(np.ascontiguousarray(arr.astype(F32)), f"{v.name}_nhwc"
                                 if perm is not None else v.name))
        else:
            out.append(ctx.get(v, perm))
    return out, perm


def _out_shape(y: Value, perm) -> tuple:
    return physical_shape(y.type.shape, perm)


# ---- elementwise ------------------------------------------------------------------------

_BINARY = {"Add": "ADD", "Sub": "SUB", "Mul": "MUL", "Div": "DIV", "Max": "MAXIMUM",
           "Min": "MINIMUM", "Sum": "ADD"}
_FUSED = {"ADD", "SUB", "MUL", "DIV"}


@lowers(*_BINARY)
def binary(ctx: _Lowering, node: Node) -> None:
    y = node.outputs[0]
    if node.op_type != "Sum" and len(node.inputs) != 2:
        raise NoLowering(f"{node.op_type} with {len(node.inputs)} operands has no TFLite form")
    op = _BINARY[node.op_type]
    vals, perm = operands(ctx, node, node.inputs)
    out = vals[0]
    for v in vals[1:]:
        shape = np.broadcast_shapes(tuple(out.type.shape), tuple(v.type.shape))
        out = ctx.emit(op, [out, v], shape, DType.FLOAT32, NONE_ACT if op in _FUSED else {})
    if len(vals) == 1:
        out = ctx.reshape(out, _out_shape(y, perm))
    ctx.bind(y, out, perm)


_UNARY = {"Relu": "RELU", "Sigmoid": "LOGISTIC", "Tanh": "TANH", "Exp": "EXP", "Abs": "ABS",
          "Neg": "NEG", "Sqrt": "SQRT", "Log": "LOG", "Floor": "FLOOR", "Ceil": "CEIL",
          "Sin": "SIN", "Cos": "COS", "HardSwish": "HARD_SWISH", "Round": "ROUND"}


def unary(ctx: _Lowering, node: Node, op: str, attrs: dict | None = None) -> None:
    (x,), perm = operands(ctx, node, node.inputs[:1])
    ctx.bind(node.outputs[0], ctx.emit(op, [x], x.type.shape, DType.FLOAT32, attrs), perm)


@lowers(*_UNARY)
def simple_unary(ctx: _Lowering, node: Node) -> None:
    unary(ctx, node, _UNARY[node.op_type])


@lowers("LeakyRelu")
def leaky_relu(ctx: _Lowering, node: Node) -> None:
    unary(ctx, node, "LEAKY_RELU", {"alpha": float(node.attrs.get("alpha", 0.01))})


@lowers("Elu")
def elu(ctx: _Lowering, node: Node) -> None:
    if float(node.attrs.get("alpha", 1.0)) != 1.0:
        raise NoLowering("TFLite ELU has alpha 1 only")
    unary(ctx, node, "ELU")


@lowers("Clip")
def clip(ctx: _Lowering, node: Node) -> None:
    lo, hi = node.attrs.get("min"), node.attrs.get("max")
    if len(node.inputs) > 1 and node.inputs[1] is not None:
        lo = float(ctx.onnx_const(node, 1, "min").reshape(-1)[0])
    if len(node.inputs) > 2 and node.inputs[2] is not None:
        hi = float(ctx.onnx_const(node, 2, "max").reshape(-1)[0])
    lo = -np.inf if lo is None else float(lo)
    hi = np.inf if hi is None else float(hi)
    named = {(0.0, np.inf): "RELU", (0.0, 6.0): "RELU6", (-1.0, 1.0): "RELU_N1_TO_1"}
    if (lo, hi) in named:  # RELU_N1_TO_1 is fused into its producer or expanded later
        unary(ctx, node, named[(lo, hi)])
        return
    (x,), perm = operands(ctx, node, node.inputs[:1])
    out = x
    rank = len(x.type.shape)
    for op, bound in (("MAXIMUM", lo), ("MINIMUM", hi)):
        if np.isfinite(bound):
            out = ctx.emit(op, [out, ctx.const(np.full((1,) * rank, bound, F32), op.lower())],
                           x.type.shape, DType.FLOAT32)
    ctx.bind(node.outputs[0], out, perm)


@lowers("PRelu")
def prelu(ctx: _Lowering, node: Node) -> None:
    vals, perm = operands(ctx, node, node.inputs)
    ctx.bind(node.outputs[0], ctx.emit("PRELU", vals, vals[0].type.shape, DType.FLOAT32), perm)


@lowers("Softmax", "LogSoftmax")
def softmax(ctx: _Lowering, node: Node) -> None:
    x, y = node.inputs[0], node.outputs[0]
    rank = len(x.type.shape)
    legacy = _opset(ctx) < 13
    axis = int(node.attrs.get("axis", 1 if legacy else -1)) % rank
    if legacy and any(d != 1 for d in x.type.shape[axis + 1:]):
        raise NoLowering("opset < 13 Softmax over several flattened axes has no TFLite form")
    perm = ctx.laid(x).perm
    if ctx.laid(x).rows is not None or (perm.index(axis) if perm else axis) != rank - 1:
        perm = None
        if axis != rank - 1:
            perm = tuple(i for i in range(rank) if i != axis) + (axis,)
    xv = ctx.get(x, perm)
    op, attrs = ("SOFTMAX", {"beta": 1.0}) if node.op_type == "Softmax" else ("LOG_SOFTMAX", {})
    ctx.bind(y, ctx.emit(op, [xv], xv.type.shape, DType.FLOAT32, attrs), perm)


# ---- plumbing ---------------------------------------------------------------------------

@lowers("Identity", "Dropout")
def identity(ctx: _Lowering, node: Node) -> None:
    if any(o.uses for o in node.outputs[1:] if o is not None):
        raise NoLowering("the Dropout mask has no TFLite form")
    ctx.env[node.outputs[0]] = ctx.laid(node.inputs[0])


@lowers("Transpose")
def transpose(ctx: _Lowering, node: Node) -> None:
    """No node: the result is the same tensor with a different recorded layout."""
    x = node.inputs[0]
    rank = len(x.type.shape)
    p = [int(i) for i in node.attrs.get("perm", list(range(rank))[::-1])]
    laid = ctx.laid(x)
    if laid.rows is not None:
        laid = Laid(ctx.get(x))
    q = laid.perm if laid.perm is not None else tuple(range(rank))
    inv = np.argsort(p)
    ctx.env[node.outputs[0]] = Laid(laid.value, norm_perm([int(inv[k]) for k in q]))


def _order_preserving(shape, perm) -> bool:
    """True when the layout ``perm`` stores the elements of ``shape`` in ONNX order."""
    if perm is None:
        return True
    big = [p for p in perm if shape[p] != 1]
    return big == sorted(big)


def _fc_readers_only(ctx: _Lowering, y: Value) -> bool:
    if y in ctx.g.outputs or not y.uses:
        return False
    for n, i in y.uses:
        if i != 0 or n.op not in ("onnx.Gemm", "onnx.MatMul") or node_b_dynamic(ctx, n) or \
                n.attrs.get("transA", 0):
            return False
    return True


def node_b_dynamic(ctx: _Lowering, n: Node) -> bool:
    return len(n.inputs) < 2 or n.inputs[1] is None or not ctx.laid(n.inputs[1]).value.is_const


@lowers("Reshape", "Flatten", "Squeeze", "Unsqueeze")
def reshape(ctx: _Lowering, node: Node) -> None:
    x, y = node.inputs[0], node.outputs[0]
    laid = ctx.laid(x)
    shape = tuple(y.type.shape)
    xs = tuple(x.type.shape)
    if laid.rows is None and _order_preserving(xs, laid.perm):
        ctx.bind(y, ctx.reshape(laid.value, shape))
        return
    if laid.rows is None and len(shape) == 2 and shape[0] == xs[0] and laid.perm[0] == 0 \
            and _fc_readers_only(ctx, y):
        logical = np.arange(int(np.prod(xs[1:]))).reshape(xs[1:])
        rows = logical.transpose([p - 1 for p in laid.perm[1:]]).reshape(-1)
        ctx.bind(y, ctx.reshape(laid.value, shape), rows=rows)
        return
    ctx.bind(y, ctx.reshape(ctx.get(x), shape))


@lowers("Concat")
def concat(ctx: _Lowering, node: Node) -> None:
    y = node.outputs[0]
    vals, perm = operands(ctx, node, node.inputs)
    rank = len(y.type.shape)
    axis = int(node.attrs.get("axis", 0)) % rank
    axis = perm.index(axis) if perm else axis
    ctx.bind(y, ctx.emit("CONCATENATION", vals, _out_shape(y, perm), DType.FLOAT32,
                         {"axis": axis, **NONE_ACT}), perm)


@lowers("Split")
def split(ctx: _Lowering, node: Node) -> None:
    x = node.inputs[0]
    (xv,), perm = operands(ctx, node, [x])
    rank = len(x.type.shape)
    axis = int(node.attrs.get("axis", 0)) % rank
    sizes = [o.type.shape[axis] for o in node.outputs]
    paxis = perm.index(axis) if perm else axis
    shapes = [_out_shape(o, perm) for o in node.outputs]
    n = len(sizes)
    ax = ctx.const(np.asarray([paxis], np.int32), "axis")
    if len(set(sizes)) == 1:
        outs = ctx.emit_multi("SPLIT", [ax, xv], shapes, DType.FLOAT32, {"num_splits": n})
    else:
        outs = ctx.emit_multi("SPLIT_V", [xv, ctx.const(np.asarray(sizes, np.int32), "sizes"), ax],
                              shapes, DType.FLOAT32, {"num_splits": n})
    for o, v in zip(node.outputs, outs):
        ctx.bind(o, v, perm)


@lowers("Pad")
def pad(ctx: _Lowering, node: Node) -> None:
    x, y = node.inputs[0], node.outputs[0]
    rank = len(x.type.shape)
    pads = node.attrs.get("pads")
    pads = np.asarray(pads if pads is not None and len(node.inputs) < 2
                      else ctx.onnx_const(node, 1, "pads"), np.int64).reshape(-1)
    if len(node.inputs) > 3 and node.inputs[3] is not None:
        raise NoLowering("Pad with axes is not lowered")
    if (pads < 0).any():
        raise NoLowering("negative pads (cropping) have no PAD form")
    value = float(node.attrs.get("value", 0.0))
    if len(node.inputs) > 2 and node.inputs[2] is not None:
        value = float(ctx.onnx_const(node, 2, "constant_value").reshape(-1)[0])
    mode = node.attrs.get("mode", "constant")
    (xv,), perm = operands(ctx, node, [x])
    both = np.stack([pads[:rank], pads[rank:]], axis=1)
    if perm is not None:
        both = both[list(perm)]
    pv = ctx.const(both.astype(np.int32), "paddings")
    shape = _out_shape(y, perm)
    if mode == "reflect":
        out = ctx.emit("MIRROR_PAD", [xv, pv], shape, DType.FLOAT32, {"mode": "REFLECT"})
    elif mode != "constant":
        raise NoLowering(f"Pad mode {mode!r} has no TFLM form")
    elif value == 0.0:
        out = ctx.emit("PAD", [xv, pv], shape, DType.FLOAT32)
    else:
        out = ctx.emit("PADV2", [xv, pv, ctx.const(np.asarray([value], F32), "value")],
                       shape, DType.FLOAT32)
    ctx.bind(y, out, perm)


_REDUCE = {"ReduceMean": "MEAN", "ReduceSum": "SUM", "ReduceMax": "REDUCE_MAX",
           "ReduceMin": "REDUCE_MIN"}


@lowers(*_REDUCE)
def reduce(ctx: _Lowering, node: Node) -> None:
    x, y = node.inputs[0], node.outputs[0]
    rank = len(x.type.shape)
    axes = node.attrs.get("axes")
    if len(node.inputs) > 1 and node.inputs[1] is not None:
        axes = ctx.onnx_const(node, 1, "axes").reshape(-1).tolist()
    if not axes:
        if node.attrs.get("noop_with_empty_axes", 0):
            raise NoLowering("noop_with_empty_axes is not lowered")
        axes = list(range(rank))
    axes = sorted(int(a) % rank for a in axes)
    keep = bool(node.attrs.get("keepdims", 1))
    (xv,), perm = operands(ctx, node, [x])
    paxes = sorted(perm.index(a) if perm else a for a in axes)
    out_perm = perm
    if perm is not None and not keep:
        kept = [p for p in perm if p not in axes]
        out_perm = tuple(int(r) for r in np.argsort(np.argsort(kept)))
    shape = physical_shape(y.type.shape, norm_perm(out_perm))
    out = ctx.emit(_REDUCE[node.op_type], [xv, ctx.const(np.asarray(paxes, np.int32), "axes")],
                   shape, DType.FLOAT32, {"keep_dims": keep})
    ctx.bind(y, out, out_perm)


@lowers("Resize", "Upsample")
def resize(ctx: _Lowering, node: Node) -> None:
    x, y = node.inputs[0], node.outputs[0]
    xs, ys = x.type.shape, y.type.shape
    if node.attrs.get("mode", "nearest") != "nearest":
        raise NoLowering(f"Resize mode {node.attrs.get('mode')!r} is not lowered "
                         "(only nearest maps exactly)")
    if len(xs) != 4 or xs[0] != ys[0] or xs[1] != ys[1]:
        raise NoLowering("only 4-D resizing of H and W maps to RESIZE_NEAREST_NEIGHBOR")
    ctm = node.attrs.get("coordinate_transformation_mode",
                         "asymmetric" if node.op_type == "Upsample" else "half_pixel")
    nm = node.attrs.get("nearest_mode", "floor" if node.op_type == "Upsample"
                        else "round_prefer_floor")
    for align, half in ((False, False), (False, True), (True, False)):
        if all(np.array_equal(_onnx_nearest(xs[i], ys[i], ctm, nm), _tfl_nearest(xs[i], ys[i],
                                                                                  align, half))
               for i in (2, 3)):
            break
    else:
        raise NoLowering(f"coordinate_transformation_mode={ctm!r} with nearest_mode={nm!r} "
                         "picks other pixels than RESIZE_NEAREST_NEIGHBOR")
    xv = ctx.get(x, (0, 2, 3, 1))
    out = ctx.emit("RESIZE_NEAREST_NEIGHBOR",
                   [xv, ctx.const(np.asarray(ys[2:], np.int32), "size")],
                   (ys[0], ys[2], ys[3], ys[1]), DType.FLOAT32,
                   {"align_corners": align, "half_pixel_centers": half})
    ctx.bind(y, out, (0, 2, 3, 1))


def _onnx_nearest(n_in: int, n_out: int, ctm: str, nm: str) -> np.ndarray:
    d = np.arange(n_out, dtype=np.float64)
    scale = n_out / n_in
    if ctm == "half_pixel":
        src = (d + 0.5) / scale - 0.5
    elif ctm == "asymmetric":
        src = d / scale
    elif ctm == "align_corners":
        src = d * (n_in - 1) / (n_out - 1) if n_out > 1 else d * 0
    elif ctm == "pytorch_half_pixel":
        src = (d + 0.5) / scale - 0.5 if n_out > 1 else d * 0
    else:
        return np.full(n_out, -1)
    rnd = {"floor": np.floor, "ceil": np.ceil,
           "round_prefer_floor": lambda s: np.ceil(s - 0.5),
           "round_prefer_ceil": lambda s: np.floor(s + 0.5)}[nm]
    return np.clip(rnd(src), 0, n_in - 1).astype(int)


def _tfl_nearest(n_in: int, n_out: int, align: bool, half: bool) -> np.ndarray:
    """TFLite's reference resize_nearest_neighbor index map."""
    d = np.arange(n_out, dtype=np.float64)
    scale = (n_in - 1) / (n_out - 1) if align and n_out > 1 else n_in / n_out
    off = 0.5 if half else 0.0
    src = (d + off) * scale
    src = np.round(src) if align else np.floor(src)
    return np.minimum(src, n_in - 1).astype(int)
