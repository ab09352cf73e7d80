"""uTensor: what utensor_cgen (rearch backend, the default) turns into compilable C++.

utensor_cgen v1.0.0 reads one TFLite subgraph and lowers seven ops: CONV_2D, DEPTHWISE_CONV_2D,
FULLY_CONNECTED, MAX_POOL_2D, RESHAPE, QUANTIZE and DEQUANTIZE (int8 or float; fused
RELU/RELU6 on CONV_2D become separate ReLU ops).  Every other op becomes a
``_MissingOperator``: the generator only logs a warning and writes a FIXME block ending in
``static_assert(false, "<Op> is not currently supported ...")``, so the failure appears
when the generated C++ is compiled.  Its planner handles DAGs, but with no ADD,
CONCATENATION or PAD lowering only single-path chains compile in practice, which is what
``utensor.graph.feed-forward`` states.  Builtin codes newer than its 2019 schema crash the
parser.  The project is unmaintained (generator 2020, runtime 2021).

Facts come from uTensor/utensor_cgen@eccd685 (``frontend/tflite.py``,
``legalizer/tflite.py``, ``backend/utensor/code_generator/rearch/_operators/_impls.py``)
and uTensor/uTensor@23622ee, as summarised in ``shared/reference/tinyengine_utensor.md`` §2.
"""

from __future__ import annotations

import re

from tinyir.formats.tflite_options import BUILTIN_CODES
from tinyir.op_support.graph_shape import subgraph_evidence
from tinyir.op_support.rules import GRAPH_SHAPE, UNSUPPORTED_OP, Table

TABLE = Table("utensor", "uTensor",
              source="uTensor/utensor_cgen@eccd685 (v1.0.0): frontend/tflite.py, "
                     "legalizer/tflite.py, backend/utensor/code_generator/rearch; "
                     "uTensor/uTensor@23622ee (shared/reference/tinyengine_utensor.md §2)")

MAX_RANK = 4  # uTensor's TensorShape holds four uint16 dims
INT8_OR_FLOAT = [("i8", "i8"), ("f32", "f32")]

TABLE.op("tfl.CONV_2D", INT8_OR_FLOAT, MAX_RANK, "ReferenceOperators::Conv2dOperator (int8 = "
         "TFLM symmetric kernel); fused NONE/RELU/RELU6 only; dilation dropped")
TABLE.op("tfl.DEPTHWISE_CONV_2D", INT8_OR_FLOAT, MAX_RANK, "int8: TflmSymQuantOps::"
         "DepthwiseSeparableConvOperator (stride, padding, multiplier, dilation, activation)")
TABLE.op("tfl.FULLY_CONNECTED", INT8_OR_FLOAT, MAX_RANK, "filter transposed; a Reshape is "
         "inserted for inputs of rank > 2")
TABLE.op("tfl.MAX_POOL_2D", INT8_OR_FLOAT, MAX_RANK, "ReferenceOperators::MaxPoolOperator")
TABLE.op("tfl.RESHAPE", INT8_OR_FLOAT, MAX_RANK, "ReferenceOperators::ReshapeOperator")
TABLE.op("tfl.QUANTIZE", [("f32", "i8")], MAX_RANK, "TflmSymQuantOps::QuantizeOperator")
TABLE.op("tfl.DEQUANTIZE", [("i8", "f32")], MAX_RANK, "TflmSymQuantOps::DequantizeOperator")

SCHEMA_LAST = ("MATRIX_SET_DIAG", 115)  # last builtin code of utensor_cgen's tflite schema
WEIGHTED = ("tfl.CONV_2D", "tfl.DEPTHWISE_CONV_2D", "tfl.FULLY_CONNECTED")


def _distinct(nodes) -> list:
    out = []
    for n in nodes:
        if n not in out:
            out.append(n)
    return out


def _readers(value) -> list:
    return _distinct(n for n, _ in value.uses)


def _code(node) -> int | None:
    return BUILTIN_CODES.get(node.op_type) if node.dialect == "tfl" else None


def _dtype(value) -> str:
    return "-" if value is None else value.type.dtype.value


# ---- graph shape --------------------------------------------------------------------------


@TABLE.graph_rule("utensor.graph.feed-forward")
def feed_forward(graph, ctx):
    """uTensor compiles only single-path chains (utensor_cgen has no ADD, CONCATENATION or
    PAD lowering for TFLite, so a branch cannot be merged back); {why}."""
    why: dict = {}
    for v in graph.inputs:
        rs = _readers(v)
        if len(rs) > 1:
            names = ", ".join(n.name for n in rs)
            why.setdefault(rs[0], []).append(
                f"graph input %{v.name} is read by {len(rs)} nodes ({names})")
    for n in graph.nodes:
        for v in n.outputs:
            rs = _readers(v)
            if len(rs) > 1:
                why.setdefault(n, []).append(f"its result %{v.name} is read by {len(rs)} nodes "
                                             f"({', '.join(r.name for r in rs)})")
        live = _distinct(v for v in n.inputs if v is not None and not v.is_const)
        if len(live) > 1:
            why.setdefault(n, []).append(f"{n.name} ({n.op}) joins {len(live)} branches "
                                         f"({', '.join('%' + v.name for v in live)})")
    return [{"_node": n, "why": "; ".join(w)} for n, w in why.items()]


TABLE.own_unsupported_rule = True  # missing-stub below says what uTensor does instead


@TABLE.graph_rule("utensor.op.missing-stub", category=UNSUPPORTED_OP)
def missing_stub(graph, ctx):
    """utensor_cgen has no lowering for {op}{custom}: it only logs "{name} is missing" and
    emits a static_assert(false, "{name} is not currently supported") stub in its place,
    so the generated C++ does not compile."""
    out = []
    for n in graph.nodes:
        code = _code(n)
        if n.op in TABLE.ops or (code is not None and code > SCHEMA_LAST[1]):
            continue
        custom = f" (custom op {n.attrs.get('custom_code')!r})" if n.op == "tfl.CUSTOM" else ""
        name = "".join(s.capitalize() for s in n.op_type.split("_"))
        out.append({"_node": n, "op": n.op, "custom": custom, "name": name})
    return out


@TABLE.graph_rule("utensor.op.schema", category=UNSUPPORTED_OP)
def schema(graph, ctx):
    """utensor_cgen's TFLite schema (2019) ends at builtin code {last}; {op} has code {code},
    so parsing the model crashes with KeyError: {code} before any code is generated."""
    return [{"_node": n, "op": n.op, "code": _code(n), "last": "%d (%s)" % SCHEMA_LAST[::-1]}
            for n in graph.nodes if (_code(n) or 0) > SCHEMA_LAST[1]]


@TABLE.graph_rule("utensor.graph.subgraphs")
def subgraphs(graph, ctx):
    """utensor_cgen asserts "only 1 subgraph is supported"; this model has {n} more
    subgraph(s){nodes} and the generator stops while parsing it."""
    return subgraph_evidence(graph)


@TABLE.graph_rule("utensor.graph.dynamic-shape")
def dynamic_shape(graph, ctx):
    """utensor_cgen declares every tensor as a RamTensor of fixed shape and sizes its arena
    ahead of time; %{value} has shape {shape}, which is not static."""
    out = [{"_node": None, "value": v.name, "shape": _shape(v)}
           for v in graph.inputs if not v.type.is_static]
    for n in graph.nodes:
        bad = [v for v in n.outputs if not v.type.is_static]
        if bad:
            out.append({"_node": n, "value": bad[0].name, "shape": _shape(bad[0])})
    return out


def _shape(v):
    return "unknown" if v.type.shape is None else list(v.type.shape)


_BAD_CHARS = re.compile(r"[^A-Za-z0-9_:/]")


@TABLE.graph_rule("utensor.names.c-identifier", category=GRAPH_SHAPE)
def c_identifiers(graph, ctx):
    """utensor_cgen turns tensor names into C++ identifiers stripping only ':' and '/';
    {count} tensor name(s) here contain other characters ({chars}), e.g. {examples}, and
    the generated C++ does not compile: rename the tensors."""
    bad = []
    for v in graph.values:
        name = graph.metadata.get(f"tflite.tensor.{v.name}.name", v.name)
        if isinstance(name, str) and _BAD_CHARS.search(name):
            bad.append(name)
    if not bad:
        return []
    chars = sorted({c for name in bad for c in _BAD_CHARS.findall(name)})
    return [{"count": len(bad), "chars": " ".join(repr(c) for c in chars),
             "examples": ", ".join(repr(b) for b in bad[:3])}]


# ---- per-op constraints ---------------------------------------------------------------------


@TABLE.rule("utensor.conv.activation", ops=["tfl.CONV_2D"])
def conv_activation(node, ctx):
    """utensor_cgen lowers a CONV_2D's fused activation only for NONE, RELU and RELU6; {act}
    stops the legaliser with "legalization fail, unknown activation"."""
    act = node.attrs.get("fused_activation_function", "NONE")
    return None if act in ("NONE", "RELU", "RELU6") else {"act": act}


@TABLE.rule("utensor.conv.dilation", ops=["tfl.CONV_2D"])
def conv_dilation(node, ctx):
    """utensor_cgen passes only strides and padding to Conv2dOperator: dilation {dh}x{dw}
    is dropped and the convolution would be computed undilated."""
    dh, dw = node.attrs.get("dilation_h_factor", 1), node.attrs.get("dilation_w_factor", 1)
    return None if (dh, dw) == (1, 1) else {"dh": dh, "dw": dw}


@TABLE.rule("utensor.depthwise.float", ops=["tfl.DEPTHWISE_CONV_2D"])
def depthwise_float(node, ctx):
    """utensor_cgen lowers a float DEPTHWISE_CONV_2D to ReferenceOperators::
    DepthwiseSeparableConvOperator, a fused depthwise + pointwise op whose third input is a
    pointwise filter, not a bias, and passes it only strides and padding (fused {act},
    depth multiplier {dm} and dilation are dropped): quantise the model to int8."""
    if _dtype(node.inputs[0]) != "f32":
        return None
    return {"act": node.attrs.get("fused_activation_function", "NONE"),
            "dm": node.attrs.get("depth_multiplier", 1)}


@TABLE.rule("utensor.weights.hybrid", ops=WEIGHTED)
def hybrid_weights(node, ctx):
    """uTensor has no hybrid kernels: {op} has {act} activations but {wt} weights, and its
    {act} operator would read the {wt} weights as {act}."""
    w = node.inputs[1] if len(node.inputs) > 1 else None
    act = _dtype(node.inputs[0])
    if w is None or act != "f32" or _dtype(w) == "f32":
        return None
    return {"op": node.op, "act": act, "wt": _dtype(w)}


@TABLE.rule("utensor.fc.float-activation", ops=["tfl.FULLY_CONNECTED"])
def fc_float_activation(node, ctx):
    """utensor_cgen fuses {act} into a float FULLY_CONNECTED as Fuseable::{fuse}, which the
    uTensor runtime does not define: the generated C++ does not compile."""
    act = node.attrs.get("fused_activation_function", "NONE")
    fuse = {"RELU_N1_TO_1": "ReLU1", "TANH": "Tanh", "SIGN_BIT": "SignBit"}.get(act)
    if fuse is None or _dtype(node.inputs[0]) != "f32":
        return None
    return {"act": act, "fuse": fuse}
