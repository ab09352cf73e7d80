"""TFLM rules on operands, operator facts, custom ops and the graph as a whole.

* Operands TFLM reads once in Prepare must be constant tensors of the right type
  (paddings, perm, axis, size, slice bounds, indices).
* UNIDIRECTIONAL_SEQUENCE_LSTM runs only the plain 24-operand LSTM with variable states.
* Operator facts: intermediates must be empty, builtins must not carry custom options.
* Graph rules: TFLM has no dynamic shapes (it ignores ``shape_signature``), keeps at
  most six dims, and runs subgraphs only through IF / WHILE / CALL_ONCE.
"""

from __future__ import annotations

from tinyir.op_support.check import op_key
from tinyir.op_support.rules import GRAPH_SHAPE, UNSUPPORTED_OP, WARNING
from tinyir.op_support.tflm import MAX_RANK, TABLE
from tinyir.op_support.tflm_common import dt, operand

NOT_CONSTANT = "Non-constant >{}< tensor is not supported"


def _non_const(node, index: int, name: str):
    v = operand(node, index)
    if v is None or v.is_const:
        return None
    return {"op": node.op_type, "operand": name, "value": v.name,
            "tflm_error": NOT_CONSTANT.format(name)}


_CONST_MSG = """{op} reads its {operand} operand once when the model loads, so it must be a
constant tensor; %{value} is computed at run time and TFLM refuses the model
('{tflm_error}')."""


def _const_rule(rule_id: str, ops, operands):
    def rule(node, ctx):
        for index, name in operands:
            ev = _non_const(node, index, name)
            if ev:
                return ev
        return None

    rule.__doc__ = _CONST_MSG
    rule.__name__ = rule_id.replace(".", "_").replace("-", "_")
    TABLE.rule(rule_id, ops=ops)(rule)
    return rule


pad_const_paddings = _const_rule("tflm.pad.const-paddings", ["tfl.PAD", "tfl.PADV2"],
                                 [(1, "paddings")])
transpose_const_perm = _const_rule("tflm.transpose.const-perm", ["tfl.TRANSPOSE"],
                                   [(1, "perm")])
strided_slice_const = _const_rule("tflm.strided-slice.const-params", ["tfl.STRIDED_SLICE"],
                                  [(1, "begin"), (2, "end"), (3, "strides")])
split_const_axis = _const_rule("tflm.split.const-axis", ["tfl.SPLIT"], [(0, "axis")])
split_v_const_axis = _const_rule("tflm.split-v.const-axis", ["tfl.SPLIT_V"], [(2, "axis")])
resize_const_size = _const_rule("tflm.resize.const-size",
                                ["tfl.RESIZE_BILINEAR", "tfl.RESIZE_NEAREST_NEIGHBOR"],
                                [(1, "size")])


@TABLE.rule("tflm.expand-dims.const-int32-axis", ops=["tfl.EXPAND_DIMS"])
def expand_dims_axis(node, ctx):
    """EXPAND_DIMS needs a constant int32 axis; %{value} is {what}, and TFLM refuses the
    model when it loads ('{tflm_error}')."""
    v = operand(node, 1)
    if v is None:
        return None
    if dt(v) != "i32":
        return {"value": v.name, "what": f"{dt(v)}",
                "tflm_error": f"Axis type {dt(v).upper().replace('I', 'INT')} not supported "
                              "by Expand_Dims."}
    if not v.is_const:
        return {"value": v.name, "what": "computed at run time",
                "tflm_error": NOT_CONSTANT.format("axis")}
    return None


@TABLE.rule("tflm.resize.half-pixel-align-corners", ops=["tfl.RESIZE_BILINEAR"])
def resize_half_pixel_align_corners(node, ctx):
    """RESIZE_BILINEAR sets both half_pixel_centers and align_corners; TFLM allows at
    most one and refuses the model when it loads ('{tflm_error}')."""
    if node.attrs.get("half_pixel_centers") and node.attrs.get("align_corners"):
        return {"tflm_error": "If half_pixel_centers is True, align_corners must be False."}
    return None


@TABLE.rule("tflm.gather.int32-indices", ops=["tfl.GATHER", "tfl.GATHER_ND"])
def gather_int32_indices(node, ctx):
    """{op} indices %{indices} are {dtype}; TFLM's kernel takes int32 indices only and
    refuses the model when it loads ('{tflm_error}'). Cast the indices to int32 when
    converting."""
    v = operand(node, 1)
    if v is None or dt(v) == "i32":
        return None
    tname = {"i64": "INT64", "i16": "INT16", "i8": "INT8"}.get(dt(v), dt(v).upper())
    err = (f"Positions of type '{tname}' are not supported by gather."
           if node.op == "tfl.GATHER" else
           f"Indices of type '{tname}' are not supported by gather_nd.")
    return {"op": node.op_type, "indices": v.name, "dtype": dt(v), "tflm_error": err}


@TABLE.rule("tflm.arg-max.int32-axis", ops=["tfl.ARG_MAX", "tfl.ARG_MIN"])
def arg_max_int32_axis(node, ctx):
    """{op} has a {dtype} axis %{axis}; TFLM takes int32 only, and because the op has no
    Prepare step the model loads and then fails on every invoke ('{tflm_error}')."""
    v = operand(node, 1)
    if v is None or dt(v) == "i32":
        return None
    return {"op": node.op_type, "axis": v.name, "dtype": dt(v),
            "tflm_error": f"Only int32_t are supported currently, got {dt(v).upper()}."}


@TABLE.rule("tflm.reduce.int32-axis", ops=["tfl.MEAN", "tfl.SUM", "tfl.REDUCE_MAX",
                                           "tfl.REDUCE_MIN", "tfl.REDUCE_ALL"])
def reduce_int32_axis(node, ctx):
    """{op} has a {dtype} axis %{axis}; TFLM's reductions take an int32 axis only and
    refuse the model when it loads."""
    v = operand(node, 1)
    if v is None or dt(v) == "i32":
        return None
    return {"op": node.op_type, "axis": v.name, "dtype": dt(v)}


@TABLE.rule("tflm.space-batch.min-rank", ops=["tfl.SPACE_TO_BATCH_ND", "tfl.BATCH_TO_SPACE_ND"])
def space_batch_min_rank(node, ctx):
    """{op} input %{input} has rank {rank}; TFLM runs it on rank 3 or 4 only and refuses
    the model when it loads."""
    x = node.inputs[0]
    if x is None or x.type.rank is None or x.type.rank >= 3:
        return None
    return {"op": node.op_type, "input": x.name, "rank": x.type.rank}


# ---- UNIDIRECTIONAL_SEQUENCE_LSTM ---------------------------------------------------------

LSTM = ["tfl.UNIDIRECTIONAL_SEQUENCE_LSTM"]
_PEEPHOLE, _PROJECTION, _LAYER_NORM = (9, 10, 11), (16, 17), (20, 21, 22, 23)
_INPUT_GATE = (1, 5, 12)  # input_to_input, recurrent_to_input weights, input gate bias


@TABLE.rule("tflm.lstm.operands", ops=LSTM)
def lstm_operands(node, ctx):
    """UNIDIRECTIONAL_SEQUENCE_LSTM has {count} operands; TFLM needs exactly 24 and
    refuses the model when it loads ('{tflm_error}')."""
    n = len(node.inputs)
    if n == 24:
        return None
    return {"count": n, "tflm_error": f"node->inputs->size != 24 ({n} != 24)"}


@TABLE.rule("tflm.lstm.variant", ops=LSTM)
def lstm_variant(node, ctx):
    """UNIDIRECTIONAL_SEQUENCE_LSTM uses {variant}; TFLM runs only the plain LSTM (input
    gate present, no peephole, projection or layer norm) and refuses the model when it
    loads."""
    have = lambda idx: any(operand(node, i) is not None for i in idx)  # noqa: E731
    if len(node.inputs) != 24:
        return None
    for idx, what in ((_PEEPHOLE, "peephole connections"), (_PROJECTION, "a projection"),
                      (_LAYER_NORM, "layer normalization")):
        if have(idx):
            return {"variant": what}
    if not all(operand(node, i) is not None for i in _INPUT_GATE):
        return {"variant": "coupled input and forget gates (CIFG: no input gate)"}
    return None


@TABLE.rule("tflm.lstm.variable-state", ops=LSTM)
def lstm_variable_state(node, ctx):
    """The {which} state %{value} of UNIDIRECTIONAL_SEQUENCE_LSTM is not a variable
    tensor; TFLM keeps LSTM state in variable tensors only and refuses the model when it
    loads ('{tflm_error}')."""
    from tinyir.op_support.tflm_common import is_variable

    for i, which in ((18, "output (hidden)"), (19, "cell")):
        v = operand(node, i)
        if v is None or not is_variable(v):
            return {"which": which, "value": v.name if v is not None else "(omitted)",
                    "tflm_error": "internal_tensors_[kLstm"
                                  f"{'OutputState' if i == 18 else 'CellState'}Tensor]"
                                  "->is_variable was not true."}
    return None


# ---- operator facts and custom ops ----------------------------------------------------------

@TABLE.rule("tflm.intermediate.non-zero-size")
def intermediate_non_zero_size(node, ctx):
    """{op} has the intermediate tensor %{value} of shape {shape}; TFLM allocates no
    intermediates, needs them empty and refuses the model when it loads
    ('{tflm_error}')."""
    k = node.attrs.get("intermediates", 0) or 0
    for v in node.outputs[len(node.outputs) - k:] if k else ():
        if v.type.shape is not None and (v.type.numel is None or v.type.numel != 0):
            return {"op": node.op_type, "value": v.name, "shape": list(v.type.shape),
                    "tflm_error": "Does not support intermediate tensor with non-zero size: "
                                  f"{v.type.nbytes}"}
    return None


@TABLE.rule("tflm.builtin-custom-options")
def builtin_custom_options(node, ctx):
    """The builtin op {op} carries custom options; TFLM refuses such operators when the
    model loads ('{tflm_error}')."""
    if node.op == "tfl.CUSTOM" or "custom_options" not in node.attrs:
        return None
    return {"op": node.op_type,
            "tflm_error": f"Unsupported behavior: found builtin operator {node.op_type} "
                          "with custom options."}


@TABLE.rule("tflm.custom.ethos-u", ops=["tfl.CUSTOM:ethos-u"], category=UNSUPPORTED_OP)
def custom_ethos_u(node, ctx):
    """The custom op 'ethos-u' is a Vela-compiled command stream for an Arm Ethos-U NPU:
    it runs only in a TFLM build for an Ethos-U NPU (with its driver); a plain Cortex-M
    build has no kernel for it and fails when the model loads ('{tflm_error}'). Check
    the model before Vela compilation, or pass the Ethos-U option for an NPU build."""
    if ctx.options.get("npu") == "ethos-u":
        return None
    return {"tflm_error": "Failed to get registration from op code CUSTOM"}


# ---- graph rules -------------------------------------------------------------------------------

# ops whose kernels compute their output shape (RESHAPE resolves one -1; GATHER writes dims)
_SHAPE_COMPUTING = ("tfl.RESHAPE", "tfl.GATHER")


def _dynamic_dims(shape) -> list:
    if shape is None:
        return ["unknown rank"]
    if len(shape) == 1 and shape[0] == 0:
        return []  # legacy scalar
    return [d for d in shape if isinstance(d, str) or d <= 0]


@TABLE.graph_rule("tflm.shape.dynamic")
def shape_dynamic(graph, ctx):
    """%{value} has shape {shape}: TFLM has no dynamic tensors (it reads the static
    `shape`, never `shape_signature`) and refuses any tensor with an unknown, -1 or 0
    dimension when the model loads ('{tflm_error}'). Fix the batch and other sizes
    when converting."""
    found = []
    values = [(v, None) for v in graph.inputs]
    for node in graph.nodes:
        if node.op not in _SHAPE_COMPUTING:
            values += [(v, node) for v in node.outputs]
    seen = set()
    for v, node in values:
        if v.name in seen or v.is_const:
            continue
        seen.add(v.name)
        bad = _dynamic_dims(v.type.shape)
        if bad:
            shape = "unknown" if v.type.shape is None else \
                "[" + ", ".join(str(d) for d in v.type.shape) + "]"
            found.append({"value": v.name, "shape": shape, "_node": node,
                          "tflm_error": "Dynamic tensors are not supported"})
    return found


@TABLE.graph_rule("tflm.shape.rank")
def shape_rank(graph, ctx):
    """%{value} has rank {rank}; TFLM's RuntimeShape holds at most 6 dims and only a debug
    check guards it, so a release build runs such a model with undefined behaviour."""
    found = []
    for v in graph.values:
        if v.type.rank is None or v.type.rank <= MAX_RANK:
            continue
        nodes = [n for n in [v.producer] + [u for u, _ in v.uses] if n is not None]
        specs = [TABLE.ops.get(op_key(n)) for n in nodes]
        if not v.is_const and any(s is not None and s.max_rank is not None for s in specs):
            continue  # reported by tflm.op.rank on that node
        found.append({"value": v.name, "rank": v.type.rank,
                      "_node": nodes[0] if nodes else None})
    return found


_CALLERS = {"tfl.IF": ("then_subgraph_index", "else_subgraph_index"),
            "tfl.WHILE": ("cond_subgraph_index", "body_subgraph_index"),
            "tfl.CALL_ONCE": ("init_subgraph_index",)}


def _bodies(graph):
    return list(graph.metadata.get("tflite.subgraphs", []) or [])


def _callers(graph) -> dict[int, str]:
    calls = {}
    for g in [graph] + _bodies(graph):
        for node in g.nodes:
            for attr in _CALLERS.get(node.op, ()):
                if isinstance(node.attrs.get(attr), int):
                    calls.setdefault(node.attrs[attr], f"{node.op_type} {node.name}")
    return calls


@TABLE.graph_rule("tflm.subgraph.unreferenced", severity=WARNING)
def subgraph_unreferenced(graph, ctx):
    """Subgraph {index} ({name}) is not called by any IF, WHILE or CALL_ONCE: TFLM runs
    subgraph 0 only (signatures are not entry points) but still allocates and prepares
    this one, so its ops must be supported and its tensors cost arena memory."""
    calls = _callers(graph)
    return [{"index": i, "name": body.name} for i, body in enumerate(_bodies(graph), 1)
            if i not in calls]


@TABLE.graph_rule("tflm.subgraph.finding", category=GRAPH_SHAPE)
def subgraph_finding(graph, ctx):
    """In subgraph {index} (run by {caller}), node {node}: {message}"""
    from tinyir.op_support.check import check_graph

    calls = _callers(graph)
    found = []
    for i, body in enumerate(_bodies(graph), 1):
        for f in check_graph(body, ctx.backend, options=ctx.options):
            if f.severity == "error":
                found.append({"index": i, "caller": calls.get(i, "nothing"),
                              "node": f.node, "message": f.message, "rule": f.rule})
    return found
