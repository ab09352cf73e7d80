"""TinyEngine rules for the convolution family (CONV_2D, DEPTHWISE_CONV_2D, FULLY_CONNECTED,
fused activations) and the graph-shape rules; the table itself is in ``tinyengine.py``.

Kernel selection (``operators/conv2d.py``) looks at ``kernel_h``, ``stride_h`` and a
padding of ``floor(kernel_h / 2)`` that the parser sets for every conv; with the default
``fp_requantize=True`` it appends ``_fpreq`` to the kernel name.  Kernels that exist:
``convolve_1x1_s8[_ch8/16/24/48]_fpreq`` (no stride, Cin % 4 == 0),
``convolve_s8_kernel3_inputch3_stride2_pad1_fpreq`` (Cin hard-coded to 3) and
``convolve_s8_kernel3_stride1_pad1`` (no ``_fpreq`` variant); depthwise kernels are
generated per (kh, kw, stride) and write their output over their input.
"""

from __future__ import annotations

from tinyir.op_support.graph_shape import subgraph_evidence
from tinyir.op_support.rules import GRAPH_SHAPE, WARNING
from tinyir.op_support.tinyengine import (CONVS, TABLE, const, dims, folding_conv, nhwc, readers,
                                          se_gate_start, tf_same_pads)

FC = "tfl.FULLY_CONNECTED"
DW = "tfl.DEPTHWISE_CONV_2D"
CONV = "tfl.CONV_2D"


def kernel(node) -> tuple[int, int] | None:
    if node.op == FC:
        return 1, 1
    w = dims(node.inputs[1])
    return (w[1], w[2]) if w is not None and len(w) == 4 else None


def strides(node) -> tuple[int, int]:
    return node.attrs.get("stride_h", 1), node.attrs.get("stride_w", 1)


def cin(node) -> int | None:
    x = dims(node.inputs[0])
    return x[-1] if x else None


def cout(node) -> int | None:
    y = dims(node.outputs[0])
    return y[-1] if y else None


def int8_layer(node) -> bool:
    """TinyEngine's int8 path; float layers are reported by the dtype rule alone."""
    x = node.inputs[0]
    return x is not None and x.type.dtype.value == "i8" and node.outputs[0].type.dtype.value == "i8"


def folded_pad(node, graph):
    """The PAD node TinyEngine folds into ``node``, if any."""
    p = node.inputs[0].producer if node.inputs[0] is not None else None
    if p is not None and p.op == "tfl.PAD" and folding_conv(p, graph) is node:
        return p
    return None


# ---- padding ------------------------------------------------------------------------------


@TABLE.rule("tinyengine.pad.amount", ops=CONVS)
def pad_amount(node, ctx):
    """TinyEngine folds PAD {pad} into this {kh}x{kw} {op} ({padding}) but never reads the pad
    amounts: it pads kernel_h//2 = {p} on every side of H and W instead, so the output
    differs from the model's."""
    pad = folded_pad(node, ctx.graph)
    k = kernel(node)
    if pad is None or k is None:
        return None
    p = k[0] // 2
    amounts = const(pad.inputs[1])
    want = [[0, 0], [p, p], [p, p], [0, 0]]
    if (amounts is not None and amounts.tolist() == want
            and node.attrs.get("padding", "VALID") == "VALID"):
        return None
    return {"pad": "?" if amounts is None else amounts.tolist(), "kh": k[0], "kw": k[1],
            "op": node.op, "padding": node.attrs.get("padding", "VALID"), "p": p}


@TABLE.rule("tinyengine.te-s6.valid-padding", ops=CONVS)
def valid_padding(node, ctx):
    """TinyEngine ignores VALID padding: it runs this {kh}x{kw} {op} with padding
    kernel_h//2 = {p} on every side, so the {oh}x{ow} output it writes is shifted against
    the model's (TE-S6)."""
    k = kernel(node)
    if (k is None or k == (1, 1) or node.attrs.get("padding") != "VALID"
            or folded_pad(node, ctx.graph) is not None):
        return None
    y = nhwc(node.outputs[0]) or ("?", "?", "?")
    return {"kh": k[0], "kw": k[1], "op": node.op, "p": k[0] // 2, "oh": y[1], "ow": y[2]}


@TABLE.rule("tinyengine.te-s17.asymmetric-same", ops=CONVS)
def asymmetric_same(node, ctx):
    """TFLite pads this SAME {kh}x{kw} stride-{s} {op} on a {h}x{w} input by {pads}
    (top/bottom/left/right), but TinyEngine always pads kernel_h//2 = {p} on every side:
    the output is shifted (TE-S17; inferred from the source)."""
    k, x = kernel(node), nhwc(node.inputs[0])
    if k is None or x is None or node.attrs.get("padding") != "SAME":
        return None
    sh, sw = strides(node)
    dh, dw = node.attrs.get("dilation_h_factor", 1), node.attrs.get("dilation_w_factor", 1)
    pads = tf_same_pads(x[1], k[0], sh, dh) + tf_same_pads(x[2], k[1], sw, dw)
    p = k[0] // 2
    if pads == (p, p, p, p):
        return None
    return {"kh": k[0], "kw": k[1], "s": sh, "op": node.op, "h": x[1], "w": x[2],
            "pads": "/".join(map(str, pads)), "p": p}


# ---- kernel selection ---------------------------------------------------------------------


@TABLE.rule("tinyengine.conv.kernel", ops=[CONV])
def conv_kernel(node, ctx):
    """TinyEngine picks conv kernels by kernel height and stride only and has them for 1x1,
    3x3 stride 1 and the 3x3 stride-2 stem; a {kh}x{kw} stride-{sh} CONV_2D gets {what}."""
    k = kernel(node)
    if k is None:
        return None
    sh, _ = strides(node)
    if k == (1, 1) or (k == (3, 3) and sh in (1, 2)):
        return None
    if k[0] == 1:
        what = "the 1x1 kernel, which computes a different convolution"
    elif k[0] == 3 and sh in (1, 2):
        what = "the 3x3 kernel, which computes a different convolution"
    else:
        what = "no kernel: the generator raises NotImplementedError during code generation"
    return {"kh": k[0], "kw": k[1], "sh": sh, "what": what}


@TABLE.rule("tinyengine.conv.square-stride", ops=CONVS)
def square_stride(node, ctx):
    """TinyEngine reads only stride_h: this {op} with stride {sh}x{sw} (h x w) would be run
    with stride {sh} on both axes."""
    sh, sw = strides(node)
    return None if sh == sw else {"op": node.op, "sh": sh, "sw": sw}


@TABLE.rule("tinyengine.te-s1.conv1x1-stride", ops=[CONV])
def conv1x1_stride(node, ctx):
    """TinyEngine's 1x1 conv kernels have no stride parameter and map output pixel i to
    input pixel i: this 1x1 CONV_2D with stride {sh}x{sw} would write a wrong output
    (TE-S1)."""
    sh, sw = strides(node)
    if kernel(node) != (1, 1) or (sh, sw) == (1, 1):
        return None
    return {"sh": sh, "sw": sw}


@TABLE.rule("tinyengine.te-s2.conv3x3s2-cin", ops=[CONV])
def conv3x3s2_cin(node, ctx):
    """TinyEngine runs every 3x3 stride-2 CONV_2D with
    convolve_s8_kernel3_inputch3_stride2_pad1, which hard-codes 3 input channels; with
    {cin} input channels it computes garbage (TE-S2)."""
    if kernel(node) != (3, 3) or strides(node)[0] != 2 or cin(node) in (None, 3):
        return None
    return {"cin": cin(node)}


@TABLE.rule("tinyengine.te-s3.cin-multiple-of-4", ops=[CONV, FC])
def cin_multiple_of_4(node, ctx):
    """TinyEngine's {kernel} kernel needs input channels % 4 == 0 and returns
    PARAM_NO_SUPPORT for {cin}; the generated code ignores the return value, so the
    output is never written (TE-S3)."""
    k, c = kernel(node), cin(node)
    if c is None or c % 4 == 0:
        return None
    if node.op == FC or k == (1, 1):
        return {"kernel": "convolve_1x1_s8" + (" (FULLY_CONNECTED)" if node.op == FC else ""),
                "cin": c}
    if k == (3, 3) and strides(node)[0] == 1:
        return {"kernel": "convolve_s8_kernel3_stride1_pad1", "cin": c}
    return None


@TABLE.rule("tinyengine.te-s4.odd-cout", ops=[CONV, FC])
def odd_cout(node, ctx):
    """TinyEngine sends 1x1 convs and FULLY_CONNECTED with an odd number of output channels
    ({cout}) to convolve_1x1_s8_oddch_fpreq, which does not exist: the generated code fails
    to link (TE-S4)."""
    c = cout(node)
    if c is None or c % 2 == 0 or kernel(node) != (1, 1):
        return None
    return {"cout": c}


@TABLE.rule("tinyengine.te-s5.conv3x3s1", ops=[CONV])
def conv3x3s1(node, ctx):
    """TinyEngine emits convolve_s8_kernel3_stride1_pad1_fpreq for a 3x3 stride-1 CONV_2D,
    but only the non-_fpreq kernel exists: the generated code fails to link (TE-S5)."""
    if kernel(node) == (3, 3) and strides(node)[0] == 1:
        return {"kernel": "convolve_s8_kernel3_stride1_pad1_fpreq"}
    return None


# ---- depthwise ----------------------------------------------------------------------------


@TABLE.rule("tinyengine.te-s7.depth-multiplier", ops=[DW])
def depth_multiplier(node, ctx):
    """TinyEngine's depthwise kernel writes its output over its input: with depth multiplier
    {dm} ({cin} -> {cout} channels) it writes past the end of the input buffer (TE-S7)."""
    dm = node.attrs.get("depth_multiplier", 1)
    if dm in (0, 1) and cin(node) == cout(node):
        return None
    return {"dm": dm, "cin": cin(node), "cout": cout(node)}


@TABLE.rule("tinyengine.te-s8.dilation", ops=CONVS)
def dilation(node, ctx):
    """TinyEngine never reads dilation: this {op} with dilation {dh}x{dw} would be computed
    undilated (TE-S8)."""
    dh, dw = node.attrs.get("dilation_h_factor", 1), node.attrs.get("dilation_w_factor", 1)
    return None if (dh, dw) == (1, 1) else {"op": node.op, "dh": dh, "dw": dw}


@TABLE.rule("tinyengine.te-s13.inplace-depthwise", ops=[DW])
def inplace_depthwise(node, ctx):
    """TinyEngine runs DEPTHWISE_CONV_2D in place, over its input %{value}; but {others}
    also read(s) %{value} and would see the depthwise output instead (TE-S13)."""
    pad = folded_pad(node, ctx.graph)
    x = pad.inputs[0] if pad is not None else node.inputs[0]
    if x is None:
        return None
    others = [n.name for n in readers(x) if n is not node and n is not pad]
    if x in ctx.graph.outputs:
        others.append("the graph output")
    return {"value": x.name, "others": ", ".join(others)} if others else None


# ---- parameters ---------------------------------------------------------------------------


@TABLE.rule("tinyengine.te-s14.per-tensor-weights", ops=CONVS)
def per_tensor_weights(node, ctx):
    """TinyEngine needs per-channel weight scales for {op}; %{w} has {n} scale(s), and the
    generator crashes in getMultiplierShift (TypeError) (TE-S14)."""
    w = node.inputs[1]
    q = w.type.quant if w is not None else None
    if not int8_layer(node) or (q is not None and len(q.scale) > 1):
        return None
    return {"op": node.op, "w": w.name if w is not None else "?", "n": len(q.scale) if q else 0}


@TABLE.rule("tinyengine.te-s15.bias", ops=[CONV, DW, FC])
def bias_required(node, ctx):
    """TinyEngine requires a bias on {op}; this one has none (converters drop all-zero biases)
    and the generator crashes while parsing (TE-S15)."""
    if len(node.inputs) >= 3 and node.inputs[2] is not None:
        return None
    return {"op": node.op}


@TABLE.rule("tinyengine.conv.int8-weights", ops=CONVS)
def int8_weights(node, ctx):
    """TinyEngine asserts that a conv's input, output and weights share one type; {op} has
    {wt} weights and the generator stops with "tensor type not consistent"."""
    w = node.inputs[1]
    if w is None or not int8_layer(node) or w.type.dtype.value == "i8":
        return None
    return {"op": node.op, "wt": w.type.dtype.value}


@TABLE.rule("tinyengine.fc.input-shape", ops=[FC])
def fc_input_shape(node, ctx):
    """TinyEngine treats FULLY_CONNECTED as a 1x1 conv over the input's last axis ({c}
    values) and asserts it equals the weights' {k} inputs: flatten the input first."""
    x, w = dims(node.inputs[0]), dims(node.inputs[1])
    if x is None or w is None or len(w) != 2 or x[-1] == w[1]:
        return None
    return {"c": x[-1], "k": w[1]}


# ---- fused activations ----------------------------------------------------------------------

_ACT_RANGE = {"RELU": (0.0, None), "RELU6": (0.0, 6.0), "RELU_N1_TO_1": (-1.0, 1.0),
              "RELU_0_TO_1": (0.0, 1.0)}


@TABLE.rule("tinyengine.activation.fused-range", ops=[CONV, DW, FC, "tfl.ADD"])
def fused_activation(node, ctx):
    """TinyEngine never reads fused activations and clamps every int8 output to
    [-128, 127]; {act} on %{value} ({q}) would clamp to [{lo}, {hi}], so values outside
    the activation's range leak through."""
    act = node.attrs.get("fused_activation_function", "NONE")
    if act == "NONE" or not int8_layer(node):
        return None
    if node.op == "tfl.ADD" and se_gate_start(node, ctx.graph) is not None:
        return None
    y = node.outputs[0]
    q = y.type.quant
    ev = {"act": act, "value": y.name, "q": "no quantisation", "lo": "?", "hi": "?"}
    if act not in _ACT_RANGE or q is None:
        return ev
    s, z = q.scale[0], q.zero_point[0]
    lo_r, hi_r = _ACT_RANGE[act]
    lo = max(-128, z + round(lo_r / s))
    hi = 127 if hi_r is None else min(127, z + round(hi_r / s))
    if (lo, hi) == (-128, 127):
        return None
    ev.update(q=f"scale {s:.6g}, zero point {z}", lo=lo, hi=hi)
    return ev


# ---- graph shape ----------------------------------------------------------------------------


@TABLE.graph_rule("tinyengine.graph.subgraphs")
def subgraphs(graph, ctx):
    """TinyEngine reads subgraph 0 only; this model has {n} more subgraph(s){nodes}, whose
    operators would never run."""
    return subgraph_evidence(graph)


def symbolic_values(graph):
    """(producer or None, value) for every non-constant value whose shape is not static."""
    out = [(None, v) for v in graph.inputs if not v.type.is_static]
    for n in graph.nodes:
        bad = [v for v in n.outputs if not v.type.is_static]
        if bad:
            out.append((n, bad[0]))
    return out


@TABLE.graph_rule("tinyengine.graph.dynamic-shape")
def dynamic_shape(graph, ctx):
    """TinyEngine sizes every buffer when it generates code; %{value} has shape {shape},
    which is not static."""
    return [{"_node": n, "value": v.name,
             "shape": "unknown" if v.type.shape is None else list(v.type.shape)}
            for n, v in symbolic_values(graph)]


@TABLE.graph_rule("tinyengine.graph.multi-output", severity=WARNING)
def multi_output(graph, ctx):
    """TinyEngine's generated API exposes one output (NNoutput, the last int8 layer's);
    this model has {n} outputs ({names}): the others need the detection utilities."""
    if len(graph.outputs) <= 1:
        return []
    return [{"n": len(graph.outputs), "names": ", ".join(v.name for v in graph.outputs)}]


@TABLE.graph_rule("tinyengine.te-s16.numpy2", severity=WARNING, category=GRAPH_SHAPE)
def numpy2(graph, ctx):
    """Run TinyEngine's generator under NumPy < 2: it folds depthwise biases with int8
    arithmetic that NumPy >= 2 keeps in int8, and crashes (OverflowError) or wraps on
    the {n} depthwise layer(s) here, e.g. {first} (TE-S16)."""
    dws = [n for n in graph.nodes if n.op == DW]
    return [{"n": len(dws), "first": dws[0].name}] if dws else []
