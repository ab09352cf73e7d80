"""Lowering rules for convolutions, pooling, Gemm/MatMul and BatchNormalization.

Math (float; arrays are built in float64 and stored as float32):

* **Conv** ``W[O, I/g, kh, kw]`` -> CONV_2D filter ``W.transpose(0, 2, 3, 1)`` (OHWI);
  depthwise (``group == C_in`` and ``C_out = C_in * mult``) -> DEPTHWISE_CONV_2D filter
  ``W.transpose(1, 2, 3, 0)`` = ``[1, kh, kw, C_in * mult]`` (output channel
  ``c * mult + m`` reads input channel ``c`` in both).  A 1-D conv runs as a 2-D one on
  ``[N, 1, L, C]``.  ONNX pads become ``SAME`` when the windows sit where TFLite's SAME
  puts them (same output size, same leading pad ``total // 2``), ``VALID`` when there
  are none, else an explicit PAD before a VALID window.
* **Gemm** ``Y = alpha * A @ B' + beta * C`` -> FULLY_CONNECTED with weights
  ``alpha * B'.T`` (``[units, K]``) and bias ``beta * C`` when C is one row.
* **BatchNormalization** ``y = x * s + t`` with ``s = scale / sqrt(var + eps)`` and
  ``t = B - mean * s``: the fold-bn pass has already folded every BN where that is exact
  (see passes/fold_bn.py); what is left becomes MUL + ADD per channel.
"""

from __future__ import annotations

import numpy as np

from tinyir.backends.tflm.lower import NHWC, NLC, NoLowering, _Lowering, lowers
from tinyir.graph import Node, Value
from tinyir.types import DType

F32 = np.float32


def _attr(node: Node, name: str, default):
    return node.attrs.get(name, default)


# ---- windows ----------------------------------------------------------------------------

class Window:
    """The 2-D geometry of one conv/pool node (a 1-D node has H = 1)."""

    def __init__(self, node: Node, kernel: list[int]):
        x, y = node.inputs[0].type.shape, node.outputs[0].type.shape
        self.one_d = len(x) == 3
        n = len(x) - 2
        if n not in (1, 2):
            raise NoLowering(f"{n}-D windows have no TFLite form (CONV_2D and pooling are 2-D)")
        strides = list(_attr(node, "strides", [1] * n))
        dil = list(_attr(node, "dilations", [1] * n))
        pads = list(_attr(node, "pads", [0] * 2 * n))
        auto = _attr(node, "auto_pad", "NOTSET")
        spatial, outs = list(x[2:]), list(y[2:])
        begin = []
        for i in range(n):
            eff = (kernel[i] - 1) * dil[i] + 1
            if auto in ("SAME_UPPER", "SAME_LOWER"):
                total = max((outs[i] - 1) * strides[i] + eff - spatial[i], 0)
                begin.append(total // 2 if auto == "SAME_UPPER" else total - total // 2)
            elif auto == "VALID":
                begin.append(0)
            else:
                begin.append(pads[i])
        if self.one_d:
            kernel, strides, dil, spatial, outs, begin = ([1] + kernel, [1] + strides,
                                                          [1] + dil, [1] + spatial,
                                                          [1] + outs, [0] + begin)
        self.kernel, self.strides, self.dil = kernel, strides, dil
        self.spatial, self.outs, self.begin = spatial, outs, begin
        self.padding = self._tfl_padding()

    def eff(self, i: int) -> int:
        return (self.kernel[i] - 1) * self.dil[i] + 1

    def _tfl_padding(self) -> str | None:
        if all(self._valid(i) for i in range(2)):
            return "VALID"
        if all(self._same(i) for i in range(2)):
            return "SAME"
        return None

    def _valid(self, i: int) -> bool:
        return self.begin[i] == 0 and \
            self.outs[i] == (self.spatial[i] - self.eff(i)) // self.strides[i] + 1

    def _same(self, i: int) -> bool:
        s, size = self.strides[i], self.spatial[i]
        out = -(-size // s)
        total = max((out - 1) * s + self.eff(i) - size, 0)
        return self.outs[i] == out and self.begin[i] == total // 2

    def explicit_pads(self) -> list[tuple[int, int]]:
        """(before, after) per spatial dim so that a VALID window gives the ONNX output."""
        out = []
        for i in range(2):
            after = (self.outs[i] - 1) * self.strides[i] + self.eff(i) - self.spatial[i] \
                - self.begin[i]
            if self.begin[i] < 0 or after < 0:
                raise NoLowering("negative padding has no TFLite form")
            out.append((self.begin[i], after))
        return out

    def attrs(self, padding: str) -> dict:
        return {"padding": padding, "stride_h": int(self.strides[0]),
                "stride_w": int(self.strides[1])}


def window_input(ctx: _Lowering, x: Value) -> Value:
    """``x`` as an NHWC 4-D value (a 1-D input ``[N, C, L]`` becomes ``[N, 1, L, C]``)."""
    if len(x.type.shape) == 4:
        return ctx.get(x, NHWC)
    n, c, length = x.type.shape
    return ctx.reshape(ctx.get(x, NLC), (n, 1, length, c))


def window_output(ctx: _Lowering, onnx_out: Value, v: Value) -> None:
    """Bind ``onnx_out`` to the NHWC result ``v`` (back to ``[N, L, C]`` for 1-D)."""
    if len(onnx_out.type.shape) == 4:
        ctx.bind(onnx_out, v, NHWC)
    else:
        n, _, length, c = v.type.shape
        ctx.bind(onnx_out, ctx.reshape(v, (n, length, c)), NLC)


def pad_for(ctx: _Lowering, x4: Value, win: Window, value: float = 0.0) -> tuple[Value, str]:
    """The window's input and TFLite padding: SAME/VALID, or an explicit PAD + VALID."""
    if win.padding is not None:
        return x4, win.padding
    (pt, pb), (pl, pr) = win.explicit_pads()
    pads = np.asarray([[0, 0], [pt, pb], [pl, pr], [0, 0]], np.int32)
    n, h, w, c = x4.type.shape
    shape = (n, h + pt + pb, w + pl + pr, c)
    base = f"{ctx.cur.outputs[0].name}_pad"
    if value == 0.0:
        out = ctx.emit("PAD", [x4, ctx.const(pads, "paddings")], shape, x4.type.dtype, base=base)
    else:
        out = ctx.emit("PADV2", [x4, ctx.const(pads, "paddings"),
                                 ctx.const(np.asarray([value], F32), "pad_value")],
                       shape, x4.type.dtype, base=base)
    return out, "VALID"


def out_nhwc(onnx_out: Value) -> tuple[int, ...]:
    s = onnx_out.type.shape
    return (s[0], s[2], s[3], s[1]) if len(s) == 4 else (s[0], 1, s[2], s[1])


# ---- convolution ------------------------------------------------------------------------

@lowers("Conv")
def conv(ctx: _Lowering, node: Node) -> None:
    x, y = node.inputs[0], node.outputs[0]
    w = ctx.onnx_const(node, 1, "the weight").astype(np.float64)
    if w.ndim not in (3, 4):
        raise NoLowering(f"{w.ndim - 2}-D convolution has no TFLite form")
    win = Window(node, list(w.shape[2:]))
    if w.ndim == 3:
        w = w[:, :, None, :]
    group = int(_attr(node, "group", 1))
    c_in, c_out = x.type.shape[1], w.shape[0]
    b = ctx.onnx_const(node, 2, "the bias").astype(np.float64) \
        if len(node.inputs) > 2 and node.inputs[2] is not None else np.zeros(c_out)
    x4, padding = pad_for(ctx, window_input(ctx, x), win)
    attrs = {**win.attrs(padding), "fused_activation_function": "NONE",
             "dilation_h_factor": int(win.dil[0]), "dilation_w_factor": int(win.dil[1])}
    if group == 1 or group != c_in:
        if group != 1 and (c_in % group or c_out % group):
            raise NoLowering(f"group={group} does not divide {c_in} input channels")
        op, filt = "CONV_2D", w.transpose(0, 2, 3, 1)
    else:
        op, filt = "DEPTHWISE_CONV_2D", w.transpose(1, 2, 3, 0)
        attrs["depth_multiplier"] = c_out // c_in
    out = ctx.emit(op, [x4, ctx.const(filt.astype(F32), "filter"),
                        ctx.const(b.astype(F32), "bias")],
                   out_nhwc(y), DType.FLOAT32, attrs)
    window_output(ctx, y, out)


# ---- pooling ----------------------------------------------------------------------------

def _pool(ctx: _Lowering, node: Node, op: str, pad_value: float) -> None:
    x, y = node.inputs[0], node.outputs[0]
    if len(node.outputs) > 1 and node.outputs[1] is not None and node.outputs[1].uses:
        raise NoLowering("the Indices result has no TFLite form")
    kernel = list(_attr(node, "kernel_shape", []))
    if any(d != 1 for d in _attr(node, "dilations", [])):
        raise NoLowering("dilated pooling has no TFLite form")
    win = Window(node, kernel)
    rescale = None
    if op == "AVERAGE_POOL_2D" and win.padding != "VALID":
        if _attr(node, "count_include_pad", 0):
            win.padding = None  # padded zeros count: pad explicitly, then VALID
        elif win.padding is None:
            # PAD + VALID averages count the padded zeros; undo that per output position
            rescale = win.kernel[0] * win.kernel[1] / _tap_counts(win)
    x4, padding = pad_for(ctx, window_input(ctx, x), win, pad_value)
    attrs = {**win.attrs(padding), "filter_height": int(win.kernel[0]),
             "filter_width": int(win.kernel[1]), "fused_activation_function": "NONE"}
    out = ctx.emit(op, [x4], out_nhwc(y), DType.FLOAT32, attrs)
    if rescale is not None:
        out = ctx.emit("MUL", [out, ctx.const(rescale.reshape(1, *rescale.shape, 1).astype(F32),
                                              "pool_count")],
                       out.type.shape, DType.FLOAT32, {"fused_activation_function": "NONE"},
                       base=f"{y.name}_recount")
    window_output(ctx, y, out)


def _tap_counts(win: Window) -> np.ndarray:
    """``[oh, ow]``: how many taps of each window fall inside the (unpadded) input."""
    per_dim = []
    for i in range(2):
        start = np.arange(win.outs[i]) * win.strides[i] - win.begin[i]
        lo, hi = np.maximum(start, 0), np.minimum(start + win.kernel[i], win.spatial[i])
        per_dim.append(np.maximum(hi - lo, 0).astype(np.float64))
    return np.outer(per_dim[0], per_dim[1])


@lowers("MaxPool")
def max_pool(ctx: _Lowering, node: Node) -> None:
    if _attr(node, "storage_order", 0):
        raise NoLowering("storage_order=1 has no TFLite form")
    _pool(ctx, node, "MAX_POOL_2D", float(np.finfo(F32).min))


@lowers("AveragePool")
def average_pool(ctx: _Lowering, node: Node) -> None:
    _pool(ctx, node, "AVERAGE_POOL_2D", 0.0)


@lowers("GlobalAveragePool", "GlobalMaxPool")
def global_pool(ctx: _Lowering, node: Node) -> None:
    x, y = node.inputs[0], node.outputs[0]
    rank = len(x.type.shape)
    if rank not in (3, 4):
        raise NoLowering(f"rank-{rank} global pooling has no TFLite form")
    perm = NHWC if rank == 4 else NLC
    xin = ctx.get(x, perm)
    axes = np.arange(1, rank - 1, dtype=np.int32)
    shape = tuple(1 if i in axes else d for i, d in enumerate(xin.type.shape))
    op = "MEAN" if node.op_type == "GlobalAveragePool" else "REDUCE_MAX"
    out = ctx.emit(op, [xin, ctx.const(axes, "axes")], shape, DType.FLOAT32, {"keep_dims": True})
    ctx.bind(y, out, perm)


# ---- fully connected --------------------------------------------------------------------

def _fc(ctx: _Lowering, node: Node, a: Value, weights: np.ndarray, bias: np.ndarray | None,
        y: Value) -> Value:
    """FULLY_CONNECTED ``a @ weights.T + bias`` with ``weights[units, K]`` in ONNX feature
    order (permuted here when ``a`` was flattened in NHWC order)."""
    laid = ctx.laid(a)
    if laid.rows is not None:
        weights, av = weights[:, laid.rows], laid.value
    else:
        av = ctx.get(a)
    units = weights.shape[0]
    bias = np.zeros(units) if bias is None else bias
    rank = len(a.type.shape)
    attrs = {"fused_activation_function": "NONE", "keep_num_dims": rank > 2}
    return ctx.emit("FULLY_CONNECTED", [av, ctx.const(weights.astype(F32), "weights"),
                                        ctx.const(np.asarray(bias, F32), "bias")],
                    y.type.shape, DType.FLOAT32, attrs)


@lowers("Gemm")
def gemm(ctx: _Lowering, node: Node) -> None:
    a, y = node.inputs[0], node.outputs[0]
    if _attr(node, "transA", 0):
        raise NoLowering("transA=1 (a transposed activation operand) has no FULLY_CONNECTED form")
    b = ctx.onnx_const(node, 1, "the weight B").astype(np.float64)
    w = (b if _attr(node, "transB", 0) else b.T) * float(_attr(node, "alpha", 1.0))
    beta = float(_attr(node, "beta", 1.0))
    c = node.inputs[2] if len(node.inputs) > 2 else None
    bias, add = None, None
    if c is not None:
        if ctx.laid(c).value.is_const:
            full = np.broadcast_to(ctx.onnx_const(node, 2, "C") * beta, y.type.shape)
            if (full == full[:1]).all():
                bias = full[0]
            else:
                add = full
        else:
            add = c
    out = _fc(ctx, node, a, w, bias, y)
    if add is not None:
        other = ctx.const(add.astype(F32), "c") if isinstance(add, np.ndarray) else ctx.get(add)
        if not isinstance(add, np.ndarray) and beta != 1.0:
            raise NoLowering("beta != 1 with a computed C has no lowering")
        out = ctx.emit("ADD", [out, other], y.type.shape, DType.FLOAT32,
                       {"fused_activation_function": "NONE"})
    ctx.bind(y, out)


@lowers("MatMul")
def matmul(ctx: _Lowering, node: Node) -> None:
    a, y = node.inputs[0], node.outputs[0]
    b = ctx.onnx_const(node, 1, "the weight B")
    if b.ndim != 2 or len(a.type.shape) < 2:
        raise NoLowering("only a constant 2-D B and an operand of rank >= 2 map to "
                         "FULLY_CONNECTED")
    ctx.bind(y, _fc(ctx, node, a, b.astype(np.float64).T, None, y))


# ---- batch normalization ------------------------------------------------------------------

@lowers("BatchNormalization")
def batch_norm(ctx: _Lowering, node: Node) -> None:
    x, y = node.inputs[0], node.outputs[0]
    if any(o is not None and o.uses for o in node.outputs[1:]):
        raise NoLowering("training-mode outputs (running mean/var) have no TFLite form")
    scale, bias, mean, var = (ctx.onnx_const(node, i, n).astype(np.float64) for i, n in
                              ((1, "scale"), (2, "B"), (3, "mean"), (4, "var")))
    channels = x.type.shape[1] if len(x.type.shape) > 1 else 1
    if any(p.size != channels for p in (scale, bias, mean, var)):
        raise NoLowering(f"its parameters have {scale.size} entries but %{x.name} has "
                         f"{channels} channels")
    s = scale / np.sqrt(var + float(_attr(node, "epsilon", 1e-5)))
    t = bias - mean * s
    laid = ctx.laid(x)
    xv = ctx.get(x, laid.perm)
    rank = len(x.type.shape)
    shape = [1] * rank
    shape[laid.perm.index(1) if laid.perm is not None else 1] = -1
    mul = ctx.emit("MUL", [xv, ctx.const(s.reshape(shape).astype(F32), "bn_scale")],
                   xv.type.shape, DType.FLOAT32, {"fused_activation_function": "NONE"},
                   base=f"{y.name}_scaled")
    add = ctx.emit("ADD", [mul, ctx.const(t.reshape(shape).astype(F32), "bn_shift")],
                   xv.type.shape, DType.FLOAT32, {"fused_activation_function": "NONE"})
    ctx.bind(y, add, laid.perm)
