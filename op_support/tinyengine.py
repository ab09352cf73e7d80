"""MIT TinyEngine (MCUNet): what its TFLite code generator accepts and what it gets right.

TinyEngine consumes an int8 ``.tflite``: ``TfliteConvertor`` walks subgraph 0's operators
in file order, turns ten builtin ops (plus the ADD->MUL->MUL squeeze-excite gate) into
layers, drops QUANTIZE / DEQUANTIZE / RESHAPE, and raises ``NotImplementedError`` for
anything else.  Acceptance is much wider than correctness: many layers are accepted and
then silently miscompiled, or call kernels that do not exist.  Those cases are the
``tinyengine.te-s<N>.*`` rules (numbered as in the silent-failure catalogue of the
reference, §1.4); each message says what TinyEngine would do wrong.

Facts come from mit-han-lab/tinyengine@47bb283 (``code_generator/TfliteConvertor.py``,
``converters/tflite_parser/*.py``, ``operators/*.py``, ``TinyEngine/src/kernels``) as
summarised in ``shared/reference/tinyengine_utensor.md`` §1.  The generator's defaults
(``GenerateSourceFilesFromTFlite``: in-place depthwise, ``fp_requantize=True``,
aggressive 1x1 unrolling) are assumed.  Node order stands for file order (the TFLite
importer creates nodes in file order).

This module holds the table, the op list and the rules for pooling, MEAN, PAD and the
dropped ops; the convolution family and the graph-shape rules are in
``tinyengine_rules.py``.
"""

from __future__ import annotations

import math

import numpy as np

from tinyir.op_support.rules import UNSUPPORTED_OP, Table

TABLE = Table("tinyengine", "MIT TinyEngine",
              source="mit-han-lab/tinyengine@47bb283: code_generator/TfliteConvertor.py, "
                     "converters/tflite_parser/*.py, operators/*.py, TinyEngine/src/kernels "
                     "(shared/reference/tinyengine_utensor.md §1)")

MAX_RANK = 4  # every parser unpacks shapes as (N, H, W, C) at most
I8 = [("i8", "i8")]

TABLE.op("tfl.CONV_2D", I8, MAX_RANK, "int8, per-channel weights, bias required; kernels for "
         "1x1 stride 1, 3x3 stride 1 (Cin % 4 == 0) and the 3x3 stride-2 stem with Cin == 3")
TABLE.op("tfl.DEPTHWISE_CONV_2D", I8, MAX_RANK, "int8, any k x k (kernel generated per "
         "shape), depth multiplier 1, symmetric padding k//2, runs in place")
TABLE.op("tfl.FULLY_CONNECTED", I8, MAX_RANK, "lowered to a 1x1 conv: bias required, "
         "Cin % 4 == 0, even Cout")
TABLE.op("tfl.ADD", I8, MAX_RANK, "two inputs of identical shape (no broadcasting); "
         "float requantisation (add_fpreq)")
TABLE.op("tfl.AVERAGE_POOL_2D", I8, MAX_RANK, "global average pooling only, VALID, "
         "same input/output quantisation")
TABLE.op("tfl.MAX_POOL_2D", I8, MAX_RANK, "window == stride, no padding, same "
         "input/output quantisation")
TABLE.op("tfl.MEAN", I8, MAX_RANK, "only as TRANSPOSE(NHWC->NCHW) -> MEAN -> MEAN "
         "(global average pooling)")
TABLE.op("tfl.TRANSPOSE", I8, MAX_RANK, "skipped; only NHWC->NCHW right before MEAN")
TABLE.op("tfl.PAD", I8, MAX_RANK, "folded into the next conv; must pad kernel_h//2 on "
         "each side of H and W")
TABLE.op("tfl.RESIZE_NEAREST_NEIGHBOR", I8, MAX_RANK, "integer factor, equal on H and W "
         "(upsample_byte)")
TABLE.op("tfl.MUL", I8, MAX_RANK, "only inside the ADD -> MUL -> MUL squeeze-excite gate")
TABLE.op("tfl.QUANTIZE", [("f32", "i8")], MAX_RANK, "dropped: only at the model input")
TABLE.op("tfl.DEQUANTIZE", [("i8", "f32")], MAX_RANK, "dropped: only at the model outputs")
TABLE.op("tfl.RESHAPE", I8, MAX_RANK, "dropped: only at the model input or outputs")

CONVS = ("tfl.CONV_2D", "tfl.DEPTHWISE_CONV_2D")
DROPPED = ("tfl.QUANTIZE", "tfl.DEQUANTIZE", "tfl.RESHAPE")

# ---- helpers shared with tinyengine_rules.py ---------------------------------------------


def order(graph) -> list:
    return list(graph.nodes)


def readers(value) -> list:
    """Distinct nodes reading ``value``, in first-use order."""
    out = []
    for node, _ in value.uses:
        if node not in out:
            out.append(node)
    return out


def dims(value) -> tuple | None:
    """The static shape of ``value`` or None."""
    return value.type.shape if value is not None and value.type.is_static else None


def nhwc(value) -> tuple | None:
    s = dims(value)
    return s if s is not None and len(s) == 4 else None


def const(value) -> np.ndarray | None:
    return None if value is None or not value.is_const else np.asarray(value.const)


def same_qparams(a, b) -> bool:
    qa, qb = a.type.quant, b.type.quant
    if qa is None or qb is None:
        return qa is qb
    return qa.scale == qb.scale and tuple(qa.zero_points()) == tuple(qb.zero_points())


def qstr(value) -> str:
    q = value.type.quant
    return "none" if q is None else f"scale {q.scale[0]:.6g} zero point {q.zero_point[0]}"


def tf_same_pads(size: int, k: int, stride: int, dilation: int = 1) -> tuple[int, int]:
    """TFLite SAME padding (before, after) along one spatial axis."""
    out = math.ceil(size / stride)
    total = max((out - 1) * stride + (k - 1) * dilation + 1 - size, 0)
    return total // 2, total - total // 2


# ---- PAD, pooling, MEAN, TRANSPOSE, resize, SE gate, dropped ops -------------------------


def folding_conv(pad, graph):
    """The conv TinyEngine folds ``pad`` into: the first conv parsed after it, if no other
    PAD comes first."""
    nodes = order(graph)
    for n in nodes[nodes.index(pad) + 1:]:
        if n.op == "tfl.PAD":
            return None
        if n.op in CONVS:
            return n
    return None


@TABLE.rule("tinyengine.pad.fold", ops=["tfl.PAD"])
def pad_fold(node, ctx):
    """TinyEngine never runs PAD: it only folds it into the next convolution it parses
    ({conv}); here %{value} is read by {readers}, which would read a tensor that nothing
    writes."""
    out = node.outputs[0]
    conv = folding_conv(node, ctx.graph)
    rs = readers(out)
    if conv is not None and rs == [conv] and conv.inputs[0] is out and out not in ctx.graph.outputs:
        return None
    bad = [n.name for n in rs if n is not conv or n.inputs[0] is not out]
    if out in ctx.graph.outputs:
        bad.append("the graph output")
    return {"conv": conv.name if conv is not None else "none", "value": out.name,
            "readers": ", ".join(bad) or "nothing"}


@TABLE.rule("tinyengine.te-s9.avgpool-global", ops=["tfl.AVERAGE_POOL_2D"])
def avgpool_global(node, ctx):
    """TinyEngine computes only global average pooling: it emits avg_pooling with a 1x1
    output, so a {fh}x{fw} pool of a {h}x{w} input with a {oh}x{ow} output would be
    miscompiled (TE-S9)."""
    x, y = nhwc(node.inputs[0]), nhwc(node.outputs[0])
    if x is None or y is None:
        return None
    fh, fw = node.attrs.get("filter_height", 1), node.attrs.get("filter_width", 1)
    if (y[1], y[2]) == (1, 1) and (fh, fw) == (x[1], x[2]):
        return None
    return {"fh": fh, "fw": fw, "h": x[1], "w": x[2], "oh": y[1], "ow": y[2]}


@TABLE.rule("tinyengine.avgpool.same-padding", ops=["tfl.AVERAGE_POOL_2D"])
def avgpool_same(node, ctx):
    """TinyEngine's AVERAGE_POOL_2D parser has no SAME branch (`pass  # no support for
    now`): padding {padding} leaves pad_h unbound and the generator crashes while parsing."""
    if node.attrs.get("padding", "VALID") == "SAME":
        return {"padding": "SAME"}
    return None


@TABLE.rule("tinyengine.te-s10.maxpool-window", ops=["tfl.MAX_POOL_2D"])
def maxpool_window(node, ctx):
    """TinyEngine's max_pooling uses the stride as the window and no padding: a
    {fh}x{fw} stride {sh}x{sw} {padding} max pool (pads {pads}) would be computed with a
    {sh}x{sw} window (TE-S10)."""
    a = node.attrs
    fh, fw = a.get("filter_height", 1), a.get("filter_width", 1)
    sh, sw = a.get("stride_h", 1), a.get("stride_w", 1)
    pads = (0, 0, 0, 0)
    x = nhwc(node.inputs[0])
    if a.get("padding") == "SAME" and x is not None:
        pads = tf_same_pads(x[1], fh, sh) + tf_same_pads(x[2], fw, sw)
    if (fh, fw) == (sh, sw) and not any(pads):
        return None
    return {"fh": fh, "fw": fw, "sh": sh, "sw": sw, "padding": a.get("padding", "VALID"),
            "pads": "/".join(map(str, pads))}


_NO_REQUANT = ("tfl.AVERAGE_POOL_2D", "tfl.MAX_POOL_2D", "tfl.MEAN", "tfl.TRANSPOSE", "tfl.PAD",
               "tfl.RESIZE_NEAREST_NEIGHBOR", "tfl.RESHAPE")


@TABLE.rule("tinyengine.requant.same-qparams", ops=_NO_REQUANT)
def no_requant(node, ctx):
    """TinyEngine's {op} kernel moves or pools int8 codes without requantising, but the
    input has {qin} and the output {qout}: the output would be read with the wrong scale."""
    x, y = node.inputs[0], node.outputs[0]
    if x is None or same_qparams(x, y):
        return None
    return {"op": node.op, "qin": qstr(x), "qout": qstr(y)}


def mean_partner(node, graph):
    """(first MEAN, second MEAN or None): TinyEngine pairs MEANs in file order."""
    means = [n for n in order(graph) if n.op == "tfl.MEAN"]
    i = means.index(node)
    first = means[i - i % 2]
    second = means[i - i % 2 + 1] if i - i % 2 + 1 < len(means) else None
    return first, second


@TABLE.rule("tinyengine.te-s11.single-mean", ops=["tfl.MEAN"])
def single_mean(node, ctx):
    """TinyEngine turns only a pair of consecutive 1-D MEANs into a global average pool; this
    MEAN {why}, so TinyEngine drops it and {reader} reads a tensor nothing writes (TE-S11)."""
    first, second = mean_partner(node, ctx.graph)
    if node is not first:
        return None
    out = node.outputs[0]
    rs = readers(out)
    if second is None:
        why = "has no second MEAN after it"
    elif rs != [second] or out in ctx.graph.outputs:
        why = f"is paired with {second.name}, which does not alone read its result %{out.name}"
    else:
        return None
    return {"why": why, "reader": rs[0].name if rs else "the graph output"}


@TABLE.rule("tinyengine.mean.global-pool-pattern", ops=["tfl.MEAN"])
def mean_pattern(node, ctx):
    """TinyEngine reads a MEAN pair as TRANSPOSE(NHWC->NCHW) -> MEAN -> MEAN over the two
    spatial axes and pools the (C, H, W) it finds there; {why}, so it would average the
    wrong axes."""
    first, second = mean_partner(node, ctx.graph)
    if node is not first or second is None:
        return None
    t = node.inputs[0].producer
    perm = const(t.inputs[1]) if t is not None and t.op == "tfl.TRANSPOSE" else None
    axes = [const(n.inputs[1]) for n in (first, second)]
    if perm is None or tuple(perm.reshape(-1)) != (0, 3, 1, 2):
        why = f"the first MEAN's input %{node.inputs[0].name} is not an NHWC->NCHW TRANSPOSE"
    elif any(a is None or a.size != 1 for a in axes):
        why = "each MEAN must reduce exactly one constant axis"
    else:
        x, y = nhwc(t.inputs[0]), dims(second.outputs[0])
        if x is None or y is None or math.prod(y) != x[0] * x[3]:
            why = f"the pair does not reduce %{t.inputs[0].name} to its {x and x[3]} channels"
        else:
            return None
    return {"why": why}


@TABLE.rule("tinyengine.transpose.before-mean", ops=["tfl.TRANSPOSE"])
def transpose_before_mean(node, ctx):
    """TinyEngine skips TRANSPOSE and only re-targets a following MEAN to its input; %{value}
    is read by {readers} (perm {perm}), which would read a tensor nothing writes."""
    out = node.outputs[0]
    rs = readers(out)
    perm = const(node.inputs[1])
    ok_perm = perm is not None and tuple(perm.reshape(-1)) == (0, 3, 1, 2)
    if ok_perm and rs and all(n.op == "tfl.MEAN" for n in rs) and out not in ctx.graph.outputs:
        return None
    names = [n.name for n in rs if n.op != "tfl.MEAN"] or [n.name for n in rs]
    if out in ctx.graph.outputs:
        names.append("the graph output")
    return {"value": out.name, "readers": ", ".join(names) or "nothing",
            "perm": "?" if perm is None else list(perm.reshape(-1).tolist())}


@TABLE.rule("tinyengine.resize.integer-factor", ops=["tfl.RESIZE_NEAREST_NEIGHBOR"])
def resize_factor(node, ctx):
    """TinyEngine's upsample_byte repeats each pixel by one integer factor taken from the
    widths (out_w / in_w, truncated) and ignores align_corners; {in_hw} -> {out_hw}
    (align_corners {ac}) would be resized wrongly."""
    x, y = nhwc(node.inputs[0]), nhwc(node.outputs[0])
    if x is None or y is None:
        return None
    ac = bool(node.attrs.get("align_corners", False))
    fw = y[2] / x[2]
    if fw == int(fw) and y[1] == x[1] * int(fw) and not ac:
        return None
    return {"in_hw": f"{x[1]}x{x[2]}", "out_hw": f"{y[1]}x{y[2]}", "ac": ac}


def se_gate_start(node, graph):
    """The ADD that starts an ADD -> MUL -> MUL squeeze-excite gate containing ``node``.

    Mirrors ``TfliteConvertor.parseOperatorInfo``: the triple is matched by op sequence in
    file order, only while ``i + 2 < len(ops) - 2``, and consumes the ops it matches.
    """
    nodes = order(graph)
    i, n = 0, len(nodes)
    while i < n:
        if (i + 2 < n - 2 and nodes[i].op == "tfl.ADD" and nodes[i + 1].op == "tfl.MUL"
                and nodes[i + 2].op == "tfl.MUL"):
            if node in nodes[i:i + 3]:
                return nodes[i]
            i += 3
            continue
        if nodes[i] is node:
            return None
        i += 1
    return None


@TABLE.rule("tinyengine.mul.se-gate-only", ops=["tfl.MUL"], category=UNSUPPORTED_OP)
def mul_se_gate(node, ctx):
    """TinyEngine runs MUL only inside the ADD -> MUL -> MUL squeeze-excite gate matched by
    op order; this MUL (after {prev}) is parsed alone and the generator stops with
    NotImplementedError("Unsupported MUL")."""
    if se_gate_start(node, ctx.graph) is not None:
        return None
    nodes = order(ctx.graph)
    i = nodes.index(node)
    return {"prev": nodes[i - 1].op if i else "nothing"}


@TABLE.rule("tinyengine.add.same-shape", ops=["tfl.ADD"])
def add_same_shape(node, ctx):
    """TinyEngine's ADD needs two inputs of the output's shape (no broadcasting); {a} + {b}
    -> {y} fails the parser's "tensor shpae not consistent" assertion."""
    if se_gate_start(node, ctx.graph) is not None:
        return None
    a, b = (dims(v) for v in node.inputs[:2])
    y = dims(node.outputs[0])
    if a is None or b is None or y is None:
        return None
    if len(node.inputs) == 2 and a == b == y:
        return None
    return {"a": list(a), "b": list(b), "y": list(y)}


def _leading(value) -> bool:
    """A graph input, or reached from one through dropped ops only."""
    p = value.producer
    if p is None:
        return not value.is_const
    return p.op in DROPPED and p.inputs and p.inputs[0] is not None and _leading(p.inputs[0])


def _trailing(value, graph) -> bool:
    """Read only by dropped ops that are themselves trailing, or by nothing at all."""
    return all(n.op in DROPPED and _trailing(n.outputs[0], graph) for n in readers(value))


@TABLE.rule("tinyengine.te-s12.dropped-op", ops=DROPPED)
def dropped_mid_graph(node, ctx):
    """TinyEngine drops {op} without aliasing its input and output: between {producer} and
    {reader} the reader reads %{value}, which nothing writes; it comes out right only if
    the memory planner happens to put both tensors at the same address (TE-S12)."""
    x = node.inputs[0]
    if x is None or _leading(x) or _trailing(node.outputs[0], ctx.graph):
        return None
    rs = [n for n in readers(node.outputs[0]) if n.op not in DROPPED] or readers(node.outputs[0])
    return {"op": node.op, "producer": x.producer.name if x.producer else f"%{x.name}",
            "reader": rs[0].name if rs else "the graph output", "value": node.outputs[0].name}


from tinyir.op_support import tinyengine_rules  # noqa: E402,F401  (registers the rest)
