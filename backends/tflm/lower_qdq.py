"""Lower an ONNX QDQ graph to int8 (or uint8) TFLite ops, keeping the file's params.

An ONNX QDQ model is a float graph whose tensors pass through fake quantization:
``x -> QuantizeLinear(s, z) -> DequantizeLinear(s, z) -> op`` on activations, and
``int8 initializer -> DequantizeLinear(s[c], z[c], axis) -> op`` on weights and int32
biases.  ``real = s * (q - z)``; a scalar scale is per tensor, a 1-D one per axis.

**The lowering** (``lower_qdq(graph) -> Lowered``) works in three steps:

1. *Strip* (:func:`strip_qdq`): every ``DequantizeLinear`` of a constant becomes the float
   constant ``float32((q - z) * s)`` (exact: ``round(w / s) + z`` gives ``q`` back), and a
   float constant behind a Q -> DQ pair (tf2onnx's fake-quantized weights) stays float;
   either way the params are remembered per reading node and operand (followed through
   constant Transpose/Reshape nodes, the axis moved along); every Q -> DQ pair on an
   activation is removed and the float tensor remembers ``(QuantParams, element type)``.  What is left is the
   float graph the QDQ model simulates.
2. *Lower* it with the float lowering (:mod:`lower`), unchanged: layouts, padding, flatten
   orders are handled once.
3. *Annotate* (a ``before_clean_up`` hook of the lowering, :func:`_annotate`): each lowered
   value bound to an ONNX tensor takes that tensor's params; values the lowering added
   (TRANSPOSE, RESHAPE, PAD, GATHER...) take their operand's params; an activation whose
   only reader is a RELU/RELU6 with params takes the RELU's params (TFLite fuses it).
   Weights of CONV_2D / DEPTHWISE_CONV_2D / FULLY_CONNECTED are re-quantized with the
   file's own scales (axis 0 / 3 / 0: the ONNX output channel), the bias with the file's
   int32 scales (or ``s_in * s_w`` when the file left the bias float).  Other float
   constants read by int8 ops get per-tensor params from their range (SAME-param ops: the
   output's).

Q/DQ nodes that do not fit this pattern (a Q read by an integer op, a DQ of a tensor no
Q made, non-constant scales) stay in the graph, and the float lowering names them
(``tflm.lowering.no-lowering``).

**QOperator** graphs are first rewritten into this form (:func:`qoperator_to_qdq`):
QLinearConv / QLinearMatMul / QGemm / QLinearAdd / QLinearMul become ``DQ -> float op -> Q``
(int32 bias scale ``s_x * s_w``), and the ops such a model runs directly on quantized
tensors (MaxPool, Reshape, Transpose, Split, Concat...) become ``Q(op(DQ(x)))`` with
x's params.

**Boundary.**  A graph input quantized by a QuantizeLinear stays float and a
``QUANTIZE`` follows it; a graph output produced by a DequantizeLinear stays float behind
a ``DEQUANTIZE`` (float I/O, like the ONNX model).  A graph input that is already int8
(read by a DequantizeLinear) stays int8 with its params; a graph output that is a
QuantizeLinear result stays int8.  Ops the QDQ model runs in float (no Q/DQ around them)
stay float between a ``DEQUANTIZE`` and a ``QUANTIZE``: an op whose computed operand has no
params, or a CONV/FC whose weight the file left float (or quantized along another axis
than the output channels), runs in float.  The lowering itself adds no findings; the
TFLM table then judges the mix of int8 and float ops it produced.

Params are kept exactly as the file has them: uint8 activations stay uint8 (TFLM's dtype
rules then say so), a softmax output at onnxruntime's calibrated scale stays there (the
``tflm.softmax.int8-output`` rule says so).  ONNX rounds half to even and TFLite half
away from zero, so a value on an exact .5 may differ by one step (1 LSB).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from tinyir.backends.lowering import Lowered
from tinyir.backends.tflm.lower import _Lowering
from tinyir.graph import Graph, Node, Value
from tinyir.passes.calibrate import asymmetric_params
from tinyir.passes.qdq import _node_params
from tinyir.types import DType, QuantParams, TensorType

Q, DQ = "onnx.QuantizeLinear", "onnx.DequantizeLinear"
WEIGHT_AXIS = {"tfl.CONV_2D": 0, "tfl.DEPTHWISE_CONV_2D": 3, "tfl.FULLY_CONNECTED": 0}
RELUS = {"tfl.RELU", "tfl.RELU6", "tfl.RELU_N1_TO_1"}
_INT_TYPES = {np.dtype("int8"): DType.INT8, np.dtype("uint8"): DType.UINT8,
              np.dtype("int16"): DType.INT16, np.dtype("int32"): DType.INT32}

Param = tuple[QuantParams, DType]


def is_qdq(graph: Graph) -> bool:
    """A DequantizeLinear is what makes a QDQ graph (dynamic/integer-op models have none);
    QOperator graphs (QLinearConv...) have one at their float outputs."""
    return any(n.op == DQ for n in graph.nodes)


# ---- QOperator -> QDQ ------------------------------------------------------------------------
# op -> (float op, [(x, scale, zp) operand indices of quantized inputs], (y_scale, y_zp),
#        index of an int32 bias (scale = s_x * s_w) or None)
_QOPS = {
    "onnx.QLinearConv": ("Conv", [(0, 1, 2), (3, 4, 5)], (6, 7), 8),
    "onnx.QLinearMatMul": ("MatMul", [(0, 1, 2), (3, 4, 5)], (6, 7), None),
    "onnx.com.microsoft.QGemm": ("Gemm", [(0, 1, 2), (3, 4, 5)], (7, 8), 6),
    "onnx.com.microsoft.QLinearAdd": ("Add", [(0, 1, 2), (3, 4, 5)], (6, 7), None),
    "onnx.com.microsoft.QLinearMul": ("Mul", [(0, 1, 2), (3, 4, 5)], (6, 7), None),
}


# ops a QOperator model runs directly on quantized tensors (output params = input's)
_PASS_THROUGH = {"onnx.MaxPool", "onnx.Reshape", "onnx.Transpose", "onnx.Split", "onnx.Flatten",
                 "onnx.Squeeze", "onnx.Unsqueeze", "onnx.Identity", "onnx.Slice",
                 "onnx.Concat", "onnx.Gather", "onnx.Resize", "onnx.DepthToSpace",
                 "onnx.SpaceToDepth"}


def _quant_of(v: Value) -> tuple[Value, Value | None] | None:
    """(scale, zero point) values of a tensor a QuantizeLinear made."""
    p = v.producer
    if p is None or p.op != Q:
        return None
    return p.inputs[1], _operand(p, 2)


def _pass_through_to_qdq(g: Graph, alias: dict[str, str]) -> None:
    """``op(x_q)`` on a quantized tensor becomes ``Q(op(DQ(x_q)))`` with x's params."""
    for n in list(g.nodes):
        if n.op not in _PASS_THROUGH or n.inputs[0] is None:
            continue
        qx = _quant_of(n.inputs[0])
        if qx is None or n.inputs[0].type.dtype == DType.FLOAT32:
            continue
        before = {m.name for m in g.nodes}
        ins = []
        for k, v in enumerate(n.inputs):
            qv = _quant_of(v) if v is not None and (k == 0 or n.op == "onnx.Concat") else None
            if qv is None:
                ins.append(v)
                continue
            ins.append(g.add_node(DQ, [v, *qv], [(g.unique_name(f"{v.name}_dq"),
                                                 TensorType(v.type.shape, DType.FLOAT32))],
                                  name=g.unique_name(f"{n.name}_dq{k}")).outputs[0])
        outs = [(g.unique_name(f"{o.name}_float"), TensorType(o.type.shape, DType.FLOAT32))
                for o in n.outputs]
        f = g.add_node(n.op, ins, outs, dict(n.attrs), name=g.unique_name(n.name))
        olds = list(n.outputs)
        new = []
        for o, fo in zip(olds, f.outputs):
            q = g.add_node(Q, [fo, *qx], [(g.unique_name(f"{o.name}_q"), o.type)],
                           name=g.unique_name(f"{n.name}_q")).outputs[0]
            g.replace_all_uses(o, q)
            new.append((q, o.name))
        g.remove(n)
        for q, name in new:
            g.rename(q, name)
        _alias_new(g, before, n.name, alias)


def _alias_new(g: Graph, before: set[str], original: str, alias: dict[str, str]) -> None:
    for m in g.nodes:
        if m.name not in before:
            alias[m.name] = alias.get(original, original)


def _operand(node: Node, i: int) -> Value | None:
    return node.inputs[i] if i < len(node.inputs) else None


def qoperator_to_qdq(g: Graph, alias: dict[str, str] | None = None) -> int:
    """Rewrite QLinearConv / QLinearMatMul / QGemm / QLinearAdd / QLinearMul as
    ``DequantizeLinear -> float op -> QuantizeLinear`` (the QDQ form of the same math).
    ``alias`` collects new node name -> the QOperator node it stands for."""
    alias = {} if alias is None else alias
    count = 0
    for n in list(g.nodes):
        spec = _QOPS.get(n.op)
        if spec is None:
            continue
        op, quantized, (ys, yz), bias = spec
        before = {m.name for m in g.nodes}
        ins = []
        for k, (xi, si, zi) in enumerate(quantized):
            x = n.inputs[xi]
            attrs = {}
            scale = n.inputs[si]
            if x.is_const and scale.type.shape and int(np.prod(scale.type.shape)) > 1:
                trans_b = op == "Gemm" and n.attrs.get("transB", 0)
                attrs["axis"] = 0 if op in ("Conv",) or trans_b else 1
            ins.append(g.add_node(DQ, [x, scale, _operand(n, zi)],
                                  [(g.unique_name(f"{x.name}_dq"),
                                    TensorType(x.type.shape, DType.FLOAT32))], attrs,
                                  name=g.unique_name(f"{n.name}_dq{k}")).outputs[0])
        b = _operand(n, bias) if bias is not None else None
        if b is not None:
            from tinyir.passes.fold_bn import const_array

            s_x, s_w = const_array(n.inputs[1]), const_array(n.inputs[4])
            if s_x is None or s_w is None:
                continue
            bs = (np.float32(np.ravel(s_x)[0]) * np.ravel(s_w).astype(np.float32))
            bs = np.broadcast_to(bs, b.type.shape).astype(np.float32)
            sv = g.add_const(g.unique_name(f"{b.name}_scale"), bs)
            zv = g.add_const(g.unique_name(f"{b.name}_zero_point"), np.zeros(bs.shape, np.int32))
            ins.append(g.add_node(DQ, [b, sv, zv], [(g.unique_name(f"{b.name}_dq"),
                                                    TensorType(b.type.shape, DType.FLOAT32))],
                                  {"axis": 0}, name=g.unique_name(f"{n.name}_dqb")).outputs[0])
        y = n.outputs[0]
        attrs = {k: v for k, v in n.attrs.items() if op != "Gemm" or k in
                 ("alpha", "transA", "transB")}
        shape = y.type.shape
        if shape is None and op == "Gemm" and all(v.type.shape for v in ins[:2]):
            a, bw = ins[0].type.shape, ins[1].type.shape
            shape = (a[1] if attrs.get("transA") else a[0],
                     bw[0] if attrs.get("transB") else bw[1])
        if y.type.shape is None and shape is not None:
            y.type = TensorType(shape, y.type.dtype, y.type.quant)
        f = g.add_node(f"onnx.{op}", ins, [(g.unique_name(f"{y.name}_float"),
                                           TensorType(shape, DType.FLOAT32))], attrs,
                       name=g.unique_name(n.name)).outputs[0]
        if _operand(n, ys) is None:  # QGemm without y_scale has a float result
            g.replace_all_uses(y, f)
        else:
            q = g.add_node(Q, [f, n.inputs[ys], _operand(n, yz)],
                           [(g.unique_name(f"{y.name}_q"), y.type)], {},
                           name=g.unique_name(f"{n.name}_q")).outputs[0]
            g.replace_all_uses(y, q)
        name = y.name
        g.remove(n)
        g.rename(q if _operand(n, ys) is not None else f, name)
        _alias_new(g, before, n.name, alias)
        count += 1
    if count:
        _pass_through_to_qdq(g, alias)
    return count


@dataclass
class QDQInfo:
    """What :func:`strip_qdq` removed: params of activations and of constant operands."""

    act: dict[Value, Param] = field(default_factory=dict)
    # ONNX node name -> operand index -> params of the constant it read through a DQ
    consts: dict[str, dict[int, Param]] = field(default_factory=dict)
    int_inputs: set[str] = field(default_factory=set)
    int_outputs: set[int] = field(default_factory=set)  # positions in graph.outputs
    alias: dict[str, str] = field(default_factory=dict)  # new node -> the user's node


def _params(node: Node) -> Param | None:
    p = _node_params(node)
    if p is None:
        return None
    zp = node.inputs[2] if len(node.inputs) > 2 else None
    # ONNX: without a zero point the quantized type is uint8
    dt = DType.UINT8 if zp is None else _INT_TYPES.get(np.dtype(zp.type.dtype.numpy))
    if p.per_axis and len(p.scale) == 1:  # a one-element 1-D scale is per tensor
        p = QuantParams(p.scale, p.zero_point[:1])
    elif p.per_axis and p.axis < 0:
        p = QuantParams(p.scale, p.zero_point, p.axis + len(node.inputs[0].type.shape))
    return (p, dt) if dt is not None else None


def _dequantize(q: np.ndarray, p: QuantParams) -> np.ndarray:
    s, z = p.scales(), p.zero_points()
    if p.axis is not None:
        shape = [1] * q.ndim
        shape[p.axis] = -1
        s, z = s.reshape(shape), z.reshape(shape)
    return ((q.astype(np.float32) - z.astype(np.float32)) * s).astype(np.float32)


def strip_qdq(g: Graph) -> QDQInfo:
    """Remove Q/DQ nodes, leaving the float graph they simulate (see the module doc)."""
    info = QDQInfo()
    out_names = [v.name for v in g.outputs]
    for n in list(g.nodes):  # constants read through a DequantizeLinear
        if n.op != DQ or not n.inputs[0].is_const:
            continue
        p = _params(n)
        if p is None:  # left in place: the float lowering names it
            continue
        y = n.outputs[0]
        c = g.add_const(g.unique_name(f"{y.name}_float"), _dequantize(n.inputs[0].const, p[0]))
        for reader, i in list(y.uses):
            info.consts.setdefault(reader.name, {})[i] = p
        g.replace_all_uses(y, c)
        g.remove(n)
    for n in list(g.nodes):  # activation Q -> DQ pairs (and fake-quantized float constants)
        if n.op != Q:
            continue
        p = _params(n)
        x, xq = n.inputs[0], n.outputs[0]
        if p is None or any(r.op != DQ for r, _ in xq.uses):
            continue
        for r, _ in list(xq.uses):
            if x.is_const:  # a float weight fake-quantized in the file: Q -> DQ -> Conv
                for reader, i in r.outputs[0].uses:
                    info.consts.setdefault(reader.name, {})[i] = p
            g.replace_all_uses(r.outputs[0], x)
            g.remove(r)
        if xq in g.outputs:
            info.int_outputs.add(g.outputs.index(xq))
            g.replace_all_uses(xq, x)
        g.remove(n)
        if not x.is_const:
            info.act.setdefault(x, p)
    _follow_layout_ops(g, info)
    for n in list(g.nodes):  # int8 graph inputs read through a DequantizeLinear
        if n.op != DQ:
            continue
        x = n.inputs[0]
        p = _params(n)
        if x not in g.inputs or p is None:
            continue
        info.int_inputs.add(x.name)
        info.act[x] = p
        x.type = TensorType(x.type.shape, DType.FLOAT32)
        g.replace_all_uses(n.outputs[0], x)
        g.remove(n)
    for v, name in zip(list(g.outputs), out_names):
        if v.name != name and g.lookup(name) is None:
            g.rename(v, name)
    g.prune_unused()
    return info


_LAYOUT_OPS = {"onnx.Transpose", "onnx.Reshape", "onnx.Identity", "onnx.Squeeze",
               "onnx.Unsqueeze", "onnx.Flatten"}


def _follow_layout_ops(g: Graph, info: QDQInfo) -> None:
    """A dequantized weight that reaches its conv through constant Transpose/Reshape nodes
    (tf2onnx writes ``DQ -> Transpose -> Conv``) keeps its params, the axis moved along."""
    for n in g.nodes:
        p = info.consts.get(n.name, {}).get(0)
        if n.op not in _LAYOUT_OPS or p is None or not n.inputs[0].is_const:
            continue
        qp, dt = p
        if qp.per_axis:
            out_shape = n.outputs[0].type.shape or ()
            if n.op == "onnx.Transpose":
                perm = [int(i) for i in n.attrs.get("perm", range(len(out_shape))[::-1])]
                axis = perm.index(qp.axis)
            else:
                hits = [i for i, d in enumerate(out_shape) if d == len(qp.scale)]
                if len(hits) != 1:
                    continue
                axis = hits[0]
            qp = QuantParams(qp.scale, qp.zero_point, axis)
        for reader, i in n.outputs[0].uses:
            info.consts.setdefault(reader.name, {})[i] = (qp, dt)


def lower_qdq(graph: Graph) -> Lowered:
    """Lower a QDQ graph (modified in place and returned) to int TFLite ops."""
    alias: dict[str, str] = {}
    qoperator_to_qdq(graph, alias)
    info = strip_qdq(graph)
    info.alias.update(alias)
    _bn_as_depthwise(graph, info)
    low = _Lowering(graph)
    low.before_clean_up.append(lambda ctx: _annotate(ctx, info))
    lowered = low.run()
    lowered.origin = {n: info.alias.get(o, o) for n, o in lowered.origin.items()}
    lowered.findings = [replace(f, node=info.alias.get(f.node, f.node))
                        for f in lowered.findings]
    return lowered


def _bn_as_depthwise(g: Graph, info: QDQInfo) -> None:
    """A BatchNormalization between two quantized tensors (never folded: the file quantizes
    both) becomes a depthwise 1x1 Conv ``y = x * s + t``, weights per channel int8 with
    scale ``|s_c| / 127``, bias ``t`` int32 (TFLite has no int8 batch norm)."""
    from tinyir.passes.fold_bn import const_array

    for n in list(g.nodes):
        if n.op != "onnx.BatchNormalization" or any(o is not None and o.uses
                                                    for o in n.outputs[1:]):
            continue
        x, y = n.inputs[0], n.outputs[0]
        arrs = [const_array(v) for v in n.inputs[1:5]]
        if x.type.shape is None or len(x.type.shape) not in (3, 4) or any(a is None for a in arrs):
            continue
        gamma, beta, mean, var = (np.asarray(a, np.float64).reshape(-1) for a in arrs)
        s = gamma / np.sqrt(var + float(n.attrs.get("epsilon", 1e-5)))
        t = beta - mean * s
        c, k = s.size, len(x.type.shape) - 2
        w = g.add_const(g.unique_name(f"{n.name}_scale"),
                        s.reshape((c, 1) + (1,) * k).astype(np.float32))
        b = g.add_const(g.unique_name(f"{n.name}_shift"), t.astype(np.float32))
        name = g.unique_name(f"{n.name}_dw")
        conv = g.add_node("onnx.Conv", [x, w, b], [(g.unique_name(y.name), y.type)],
                          {"group": c, "kernel_shape": [1] * k}, name=name)
        info.alias[name] = info.alias.get(n.name, n.name)
        ws = np.abs(s).astype(np.float32) / np.float32(127)
        ws[ws == 0] = np.float32(1.0 / 127)
        info.consts[name] = {1: (QuantParams(tuple(ws), (0,) * c, 0), DType.INT8)}
        if y in info.act:
            info.act[conv.outputs[0]] = info.act[y]
        outs = [i for i, v in enumerate(g.outputs) if v is y]
        g.replace_all_uses(y, conv.outputs[0])
        g.remove(n)
        if outs:
            g.rename(conv.outputs[0], y.name)


# ---- annotate the lowered graph ------------------------------------------------------------

def _annotate(ctx: _Lowering, info: QDQInfo) -> None:
    from tinyir.passes.quantize import SAME, SAME_ALL

    g = ctx.g
    want: dict[Value, Param] = {}
    for v, p in info.act.items():
        laid = ctx.env.get(v)
        lv = laid.value if laid is not None else v
        if lv.graph is g and not lv.is_const:
            want.setdefault(lv, p)
    nodes = [n for n in g.nodes if n.dialect == "tfl"]
    for n in reversed(nodes):  # an activation read only by a RELU takes the RELU's params
        x = n.inputs[0] if n.inputs else None
        if n.op in RELUS and x not in want and n.outputs[0] in want and len(x.uses) == 1:
            want[x] = want[n.outputs[0]]
    for n in nodes:  # values the lowering added share their operand's params
        if n.op in SAME and n.inputs[SAME[n.op]] in want:
            for o in n.outputs:
                want.setdefault(o, want[n.inputs[SAME[n.op]]])
    inputs = set(g.inputs)
    for v, (p, dt) in want.items():
        if v.type.dtype == DType.FLOAT32 and (v not in inputs or v.name in info.int_inputs):
            v.type = TensorType(v.type.shape, dt, p)
    quantized: dict[Value, Value] = {}
    dequantized: dict[Value, Value] = {}
    for n in nodes:
        is_int = not all(o.type.dtype == DType.FLOAT32 for o in n.outputs)
        if is_int and not _int_ready(ctx, n, info, want):  # the QDQ model runs it in float
            for o in n.outputs:
                o.type = TensorType(o.type.shape, DType.FLOAT32)
            is_int = False
        if n.op in WEIGHT_AXIS and is_int:
            _weights(ctx, n, info, want)
        for i, v in enumerate(n.inputs):
            if v is None:
                continue
            if is_int and v.is_const and v.type.dtype == DType.FLOAT32:
                same = n.op in SAME or n.op in SAME_ALL
                g.set_input(n, i, _const_param(g, v, n.outputs[0].type if same else None))
            elif is_int and not v.is_const and v.type.dtype == DType.FLOAT32:
                if v not in want:  # a SAME-params op: its operand takes the output's params
                    want[v] = (n.outputs[0].type.quant, n.outputs[0].type.dtype)
                if v not in quantized:
                    p, dt = want[v]
                    quantized[v] = _boundary(g, "QUANTIZE", v, TensorType(v.type.shape, dt, p))
                    ctx.origin[quantized[v].producer] = ctx.origin.get(n, n.name)
                g.set_input(n, i, quantized[v])
            elif not is_int and not v.is_const and v.type.quant is not None \
                    and n.op != "tfl.QUANTIZE":
                if v not in dequantized:
                    dequantized[v] = _boundary(g, "DEQUANTIZE", v,
                                               TensorType(v.type.shape, DType.FLOAT32))
                    ctx.origin[dequantized[v].producer] = ctx.origin.get(n, n.name)
                g.set_input(n, i, dequantized[v])
    outs = []  # float graph outputs behind a DEQUANTIZE (run() gives them the ONNX names)
    for i, v in enumerate(g.outputs):
        if v.type.quant is not None and i not in info.int_outputs:
            d = _boundary(g, "DEQUANTIZE", v, TensorType(v.type.shape, DType.FLOAT32))
            if v.producer is not None:
                ctx.origin[d.producer] = ctx.origin.get(v.producer, v.producer.name)
            v = d
        outs.append(v)
    g.outputs = outs


def _boundary(g: Graph, op: str, v: Value, t: TensorType) -> Value:
    base = f"{v.name}_{op.lower()}"
    node = g.add_node(f"tfl.{op}", [v], [(g.unique_name(base), t)], name=g.unique_name(base))
    return node.outputs[0]


def _const_param(g: Graph, v: Value, like: TensorType | None) -> Value:
    arr = np.asarray(v.const, np.float32)
    if like is not None and like.quant is not None and not like.quant.per_axis:
        s, z, dt = like.quant.scale[0], like.quant.zero_point[0], like.dtype
    else:
        (s, z), dt = asymmetric_params(float(arr.min()), float(arr.max())), DType.INT8
    info = np.iinfo(dt.numpy)
    with np.errstate(over="ignore"):  # a -FLT_MAX pad value saturates to the lowest step
        q = np.clip(np.rint(arr / np.float32(s)) + z, info.min, info.max).astype(dt.numpy)
    return g.add_const(g.unique_name(f"{v.name}_q"), q,
                       TensorType(q.shape, dt, QuantParams((s,), (z,))))


def _weight_params(ctx: _Lowering, n: Node, info: QDQInfo) -> Param | None:
    """The file's params of the weight of a CONV_2D / DEPTHWISE / FC, along its channels."""
    w = n.inputs[1]
    p = info.consts.get(ctx.origin.get(n, n.name), {}).get(1)
    if p is None or not w.is_const or w.type.dtype != DType.FLOAT32:
        return None
    if p[0].per_axis and len(p[0].scale) != w.type.shape[WEIGHT_AXIS[n.op]]:
        return None  # quantized along another axis than the output channels
    return p


def _int_ready(ctx: _Lowering, n: Node, info: QDQInfo, want: dict[Value, Param]) -> bool:
    """Whether ``n`` can run on integers: every computed float operand has params (or ``n``
    shares its output's), a weighted op has the file's weight params."""
    from tinyir.passes.quantize import SAME, SAME_ALL

    if n.op in WEIGHT_AXIS and _weight_params(ctx, n, info) is None:
        return False
    return all(v is None or v.is_const or v.type.dtype != DType.FLOAT32 or v in want
               or n.op in SAME or n.op in SAME_ALL for v in n.inputs)


def _weights(ctx: _Lowering, n: Node, info: QDQInfo, want: dict[Value, Param]) -> None:
    g = ctx.g
    axis = WEIGHT_AXIS[n.op]
    w = n.inputs[1]
    channels = w.type.shape[axis]
    p, dt = _weight_params(ctx, n, info)
    given = info.consts.get(ctx.origin.get(n, n.name), {})
    wp = QuantParams(p.scale, p.zero_point, axis) if p.per_axis else p
    scales = np.broadcast_to(p.scales(), (channels,)).astype(np.float32)
    zps = np.broadcast_to(p.zero_points(), (channels,))
    shape = [1] * len(w.type.shape)
    shape[axis] = -1
    lim = np.iinfo(dt.numpy)
    q = np.rint(np.asarray(w.const, np.float32) / scales.reshape(shape)) + zps.reshape(shape)
    q = np.clip(q, lim.min, lim.max).astype(dt.numpy)
    g.set_input(n, 1, g.add_const(g.unique_name(f"{w.name}_q"), q,
                                  TensorType(q.shape, dt, wp)))
    b = n.inputs[2] if len(n.inputs) > 2 else None
    if b is None or not b.is_const or b.type.dtype != DType.FLOAT32:
        return
    pb = given.get(2)
    if pb is not None:
        bs = np.broadcast_to(pb[0].scales(), (channels,)).astype(np.float32)
    else:  # a float bias in the file: the TFLite convention s_in * s_w
        x = want.get(n.inputs[0])
        if x is None:
            return
        bs = (np.float32(x[0].scale[0]) * scales).astype(np.float32)
    bq = np.clip(np.rint(np.asarray(b.const, np.float64) / bs), -(2 ** 31 - 1), 2 ** 31 - 1)
    bq = bq.astype(np.int32)
    g.set_input(n, 2, g.add_const(g.unique_name(f"{b.name}_q"), bq, TensorType(
        bq.shape, DType.INT32, QuantParams(tuple(bs), (0,) * channels, 0))))
