"""Tensor live ranges for one operator order, under a backend's rules.

Time is TFLM's "allocation scope": graph inputs are created at step 0, the ``k``-th
executed operator (0-based) runs at step ``k + 1``, and graph outputs stay live to the
last step ``n``.  Intervals are **closed**: a value is live from the step that creates it
to the step of its last reader, so an operator's inputs and outputs always coexist
(TFLM never runs an operator in place on its own).

* An **arena buffer** is every non-constant value with a non-zero static size (weights
  stay in flash; TFLM variable tensors are constants in tinyir and live in the
  persistent tail).  Sizes are rounded up to the backend alignment (16 for TFLM).
* **Scratch buffers** (``RequestScratchBufferInArena``) come from the backend's kernel
  table and live on ``[step, step]`` of their operator.
* **In-place** use merges values into one buffer whose interval is the union and whose
  size is the largest member: *view* ops (data unmodified, e.g. RESHAPE) may always
  share their input's buffer; *elementwise* ops (and depthwise conv where the backend's
  kernel does it) may overwrite an input that this operator reads last, of the same
  size, that is neither a graph input nor a graph output.  Which ops qualify is per
  backend (:data:`BACKENDS`); TFLM runs a RESHAPE in place only when an offline plan
  gives input and output the same offset (its kernel then skips the copy).

Buffer order (what TFLM's greedy planner uses to break ties) follows the exporter's
tensor numbering: graph inputs, constants, node results in execution order, then
scratch buffers in request order.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

from tinyir.errors import PassError
from tinyir.graph import Graph, Node, Value


@dataclass(frozen=True)
class LiveRange:
    """One arena buffer: ``size`` bytes live on the closed step interval [first, last]."""

    name: str
    size: int
    first: int
    last: int
    values: tuple[str, ...] = ()   # graph values stored in this buffer (several when in place)
    kind: str = "tensor"            # "tensor" or "scratch"
    node: str = ""                  # for scratch buffers: the operator that requests it

    def overlaps(self, other: "LiveRange") -> bool:
        return self.first <= other.last and other.first <= self.last


@dataclass(frozen=True)
class BackendRules:
    """How a backend allocates: alignment, scratch requests and in-place whitelists."""

    name: str
    alignment: int
    scratch: Callable[[Node], list[int]] | None = None
    views: frozenset[str] = frozenset()          # data-unmodified ops (share input buffer)
    elementwise: frozenset[str] = frozenset()    # may overwrite an input read last
    depthwise_inplace: bool = False


def _tflm_scratch(node: Node) -> list[int]:
    from tinyir.passes.memory.tflm_planner import scratch_requests

    return scratch_requests(node)


_VIEWS = frozenset({"tfl.RESHAPE", "tfl.SQUEEZE", "tfl.EXPAND_DIMS", "onnx.Reshape",
                    "onnx.Squeeze", "onnx.Unsqueeze", "onnx.Flatten", "onnx.Identity"})
_ELEMENTWISE = frozenset(
    f"tfl.{op}" for op in ("ADD", "SUB", "MUL", "RELU", "RELU6", "RELU_N1_TO_1", "LOGISTIC",
                           "TANH", "HARD_SWISH", "LEAKY_RELU", "ABS", "NEG", "DEQUANTIZE",
                           "QUANTIZE")) | frozenset(
    f"onnx.{op}" for op in ("Add", "Sub", "Mul", "Div", "Relu", "Clip", "Sigmoid", "Tanh",
                            "LeakyRelu", "HardSwish", "HardSigmoid", "Abs", "Neg",
                            "BatchNormalization"))

BACKENDS: dict[str, BackendRules] = {
    # TFLM: reshape is in place only through an offline plan (kernels/reshape.cc)
    "tflm": BackendRules("tflm", 16, _tflm_scratch, views=frozenset({"tfl.RESHAPE"})),
    # TinyEngine / tinyir's own C code: in-place elementwise and depthwise kernels
    "tinyengine": BackendRules("tinyengine", 16, None, _VIEWS, _ELEMENTWISE, True),
    "c": BackendRules("c", 16, None, _VIEWS, _ELEMENTWISE, True),
    "utensor": BackendRules("utensor", 16, None, _VIEWS),
    # ONNX graphs before lowering: every non-constant tensor is an arena buffer
    "generic": BackendRules("generic", 16, None, _VIEWS),
}


def rules_for(backend: str | BackendRules) -> BackendRules:
    if isinstance(backend, BackendRules):
        return backend
    try:
        return BACKENDS[backend]
    except KeyError:
        raise PassError(f"memory planning knows no backend {backend!r} "
                        f"(known: {', '.join(sorted(BACKENDS))})") from None


@dataclass(frozen=True)
class Lifetimes:
    """Live ranges of every arena buffer for one operator order."""

    order: tuple[str, ...]            # node names in execution order
    ranges: tuple[LiveRange, ...]     # buffers in tie-break order (see module docstring)
    steps: int                        # number of steps: len(order) + 1
    backend: str
    alignment: int
    value_buffer: dict[str, str] = field(default_factory=dict)  # value name -> buffer name

    def profile(self) -> list[int]:
        """Bytes live at each step."""
        delta = [0] * (self.steps + 1)
        for r in self.ranges:
            delta[r.first] += r.size
            delta[r.last + 1] -= r.size
        live, acc = [], 0
        for d in delta[:-1]:
            acc += d
            live.append(acc)
        return live

    @property
    def lower_bound(self) -> int:
        """max over steps of the bytes live at once: no offset assignment does better."""
        return max(self.profile(), default=0)

    def live_at(self, step: int) -> list[LiveRange]:
        return [r for r in self.ranges if r.first <= step <= r.last]


def align(n: int, a: int) -> int:
    return (n + a - 1) // a * a


def buffer_bytes(v: Value) -> int:
    """Storage bytes of a value; PassError for a symbolic shape."""
    n = v.type.nbytes
    if n is None:
        raise PassError(f"memory planning needs static shapes: %{v.name} has type {v.type}")
    if v.type.dtype.bits == 4:  # TFLM keeps int4 activations unpacked
        n = v.type.numel
    return n


def is_arena_value(v: Value) -> bool:
    return not v.is_const and buffer_bytes(v) != 0


def check_order(graph: Graph, order: Sequence[Node]) -> None:
    """PassError unless ``order`` lists every node of ``graph`` once, producers first."""
    nodes = graph.nodes
    if len(order) != len(nodes) or set(map(id, order)) != set(map(id, nodes)):
        raise PassError(f"operator order names {len(order)} nodes; graph {graph.name} has "
                        f"{len(nodes)}")
    done: set[int] = set()
    for n in order:
        for v in n.inputs:
            if v is not None and v.producer is not None and v.producer.graph is graph \
                    and id(v.producer) not in done:
                raise PassError(f"operator order runs {n.name} before {v.producer.name}, "
                                f"which produces its operand %{v.name}")
        done.add(id(n))


def view_groups(graph: Graph, rules: BackendRules) -> dict[str, str]:
    """value name -> root value name for outputs of view ops sharing their input buffer."""
    root: dict[str, str] = {}
    for n in graph.nodes:
        if n.op in rules.views and n.inputs and n.inputs[0] is not None \
                and is_arena_value(n.inputs[0]) and len(n.outputs) == 1:
            src = n.inputs[0].name
            root[n.outputs[0].name] = root.get(src, src)
    return root


def live_ranges(graph: Graph, order: Sequence[Node] | None = None,
                backend: str | BackendRules = "tflm", inplace: bool = False) -> Lifetimes:
    """Live ranges of ``graph``'s arena buffers when its nodes run in ``order``.

    ``inplace=False`` gives the backend's stock behaviour (for TFLM: what its own planner
    sees); ``inplace=True`` also merges the in-place candidates the backend allows.
    """
    rules = rules_for(backend)
    order = list(graph.nodes if order is None else order)
    check_order(graph, order)
    n_ops = len(order)
    first: dict[str, int] = {}
    last: dict[str, int] = {}
    numbering: list[Value] = []
    seen: set[str] = set()

    def number(v: Value) -> None:
        if v.name not in seen:
            seen.add(v.name)
            numbering.append(v)

    for v in graph.inputs:
        number(v)
        first.setdefault(v.name, 0)
        last[v.name] = 0
    for v in graph.constants:
        number(v)
    scratch: list[LiveRange] = []
    for k, n in enumerate(order):
        step = k + 1
        for v in n.outputs:
            number(v)
            first.setdefault(v.name, step)
        for v in n.inputs:
            if v is not None and v.graph is graph:
                last[v.name] = step
                first.setdefault(v.name, step)  # read but never written (Vela scratch)
        for v in n.outputs:
            last[v.name] = step
        if rules.scratch is not None:
            for i, nbytes in enumerate(rules.scratch(n)):
                scratch.append(LiveRange(f"{n.name}/scratch{i}", align(nbytes, rules.alignment),
                                         step, step, (), "scratch", n.name))
    for v in graph.outputs:
        number(v)
        first.setdefault(v.name, n_ops)
        last[v.name] = n_ops

    arena = [v for v in numbering if is_arena_value(v)]
    root: dict[str, str] = view_groups(graph, rules) if inplace else {}
    if inplace and (rules.elementwise or rules.depthwise_inplace):
        root.update(_overwrite_groups(graph, order, rules, root, last))
    groups: dict[str, list[Value]] = {}
    for v in arena:
        groups.setdefault(root.get(v.name, v.name), []).append(v)
    ranges = []
    value_buffer = {}
    for name, members in groups.items():
        ranges.append(LiveRange(
            name, max(align(buffer_bytes(v), rules.alignment) for v in members),
            min(first[v.name] for v in members), max(last[v.name] for v in members),
            tuple(v.name for v in members)))
        for v in members:
            value_buffer[v.name] = name
    return Lifetimes(tuple(n.name for n in order), tuple(ranges) + tuple(scratch), n_ops + 1,
                     rules.name, rules.alignment, value_buffer)


def _overwrite_groups(graph: Graph, order: Sequence[Node], rules: BackendRules,
                      root: dict[str, str], last: dict[str, int]) -> dict[str, str]:
    """Outputs of elementwise/depthwise ops that overwrite an input read last."""
    out: dict[str, str] = {}
    pinned = {v.name for v in graph.inputs} | {v.name for v in graph.outputs}
    group_last: dict[str, int] = {}
    members: dict[str, set[str]] = {}
    for v_name, step in last.items():
        r = root.get(v_name, v_name)
        group_last[r] = max(group_last.get(r, -1), step)
        members.setdefault(r, set()).add(v_name)
    for k, n in enumerate(order):
        step = k + 1
        ok_op = n.op in rules.elementwise or (rules.depthwise_inplace
                                              and n.op_type in ("DEPTHWISE_CONV_2D",))
        if not ok_op or len(n.outputs) != 1 or not is_arena_value(n.outputs[0]):
            continue
        o = n.outputs[0]
        if o.name in pinned:
            continue
        cands = [n.inputs[0]] if n.op_type == "DEPTHWISE_CONV_2D" else n.inputs
        for v in cands:
            if v is None or v.is_const or not is_arena_value(v):
                continue
            r = out.get(v.name) or root.get(v.name, v.name)
            if members.get(r, {v.name}) & pinned or group_last.get(r) != step:
                continue
            if buffer_bytes(v) < buffer_bytes(o):
                continue
            out[o.name] = r
            ro = root.get(o.name, o.name)
            group_last[r] = max(group_last[r], group_last.get(ro, step))
            members.setdefault(r, set()).update(members.get(ro, {o.name}))
            break
    # outputs of views of an overwritten value follow their new root
    for v, r in list(root.items()):
        if r in out:
            out[v] = out[r]
    return out
