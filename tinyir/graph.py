"""The tinyir graph: nodes, values and a small facade over networkx.

Vocabulary (this docstring is the spec):

* A :class:`Value` is an SSA tensor: a unique ``name``, a :class:`~tinyir.types.TensorType`
  and, for constants, a numpy array in ``const``.  Graph inputs, constants and node
  outputs are all ordinary values.  A value has at most one producer.
* A :class:`Node` is ``op, inputs, outputs, attrs``.  ``op`` is a dialect-qualified
  name: ``onnx.Conv``, ``onnx.com.microsoft.QLinearAdd`` (domain between the dialect
  and the last dot), ``tfl.CONV_2D``.  ``inputs`` is an ordered tuple in which ``None``
  stands for an omitted optional operand; operand order is explicit.  ``attrs`` maps
  names to ``int``, ``float``, ``str``, ``bytes``, lists of those, numpy arrays
  (tensor attributes) or nested :class:`Graph` objects (control-flow bodies).
* A :class:`Graph` owns its nodes and values, lists its ``inputs`` and ``outputs``
  in order, records the ``layout`` the model was imported in (``NCHW``/``NHWC``; it
  is never changed silently) and keeps format metadata (``opsets``, ``metadata``).
  A nested graph (an ``If`` branch) may read values of its enclosing graphs; as in
  ONNX, a nested graph must not define a name that it or its enclosing graphs read
  from outside (no shadowing), and ``verify`` reports such a name as undefined.

Passes use only this facade (``producer``, ``uses``, ``replace_all_uses``, ``remove``,
``verify``, ``nodes``); networkx stays inside this module.  Node iteration is a
deterministic topological order: among ready nodes, the one created first.
"""

from __future__ import annotations

import itertools
from typing import Any, Iterable, Iterator, Sequence

import networkx as nx
import numpy as np

from tinyir.errors import VerifyError
from tinyir.types import DType, TensorType

_SEQ = itertools.count()


class Value:
    """An SSA tensor value; see the module docstring."""

    __slots__ = ("name", "type", "const", "graph", "_producer", "_uses")

    def __init__(self, name: str, type: TensorType, const: np.ndarray | None = None):
        self.name = name
        self.type = type
        self.const = const
        self.graph: Graph | None = None
        self._producer: tuple[Node, int] | None = None
        self._uses: list[tuple[Node, int]] = []

    @property
    def is_const(self) -> bool:
        return self.const is not None

    @property
    def producer(self) -> "Node | None":
        return self._producer[0] if self._producer else None

    @property
    def uses(self) -> list[tuple["Node", int]]:
        """(node, operand index) pairs that read this value, in a stable order."""
        return list(self._uses)

    @property
    def shape(self):
        return self.type.shape

    @property
    def dtype(self) -> DType:
        return self.type.dtype

    def __repr__(self) -> str:
        return f"%{self.name}: {self.type}"


class Node:
    """An operation ``outputs = op(inputs) {attrs}``; see the module docstring."""

    __slots__ = ("op", "name", "attrs", "_inputs", "_outputs", "graph", "_seq")

    def __init__(self, op: str, name: str, attrs: dict[str, Any] | None = None):
        self.op = op
        self.name = name
        self.attrs: dict[str, Any] = dict(attrs or {})
        self._inputs: list[Value | None] = []
        self._outputs: list[Value] = []
        self.graph: Graph | None = None
        self._seq = next(_SEQ)

    @property
    def inputs(self) -> tuple[Value | None, ...]:
        return tuple(self._inputs)

    @property
    def outputs(self) -> tuple[Value, ...]:
        return tuple(self._outputs)

    @property
    def dialect(self) -> str:
        return self.op.split(".", 1)[0]

    @property
    def op_type(self) -> str:
        """The op name without dialect or domain: ``Conv``, ``CONV_2D``."""
        return self.op.rsplit(".", 1)[-1]

    @property
    def domain(self) -> str:
        """The domain between dialect and name (``com.microsoft``), or ``""``."""
        parts = self.op.split(".")
        return ".".join(parts[1:-1])

    def subgraphs(self) -> list["Graph"]:
        out = []
        for v in self.attrs.values():
            if isinstance(v, Graph):
                out.append(v)
            elif isinstance(v, list) and v and all(isinstance(g, Graph) for g in v):
                out.extend(v)
        return out

    def __repr__(self) -> str:
        ins = ", ".join("_" if v is None else f"%{v.name}" for v in self._inputs)
        outs = ", ".join(f"%{v.name}" for v in self._outputs)
        return f"<{outs} = {self.op}({ins}) @{self.name}>"


class Graph:
    """A dataflow graph of :class:`Node` and :class:`Value`; see the module docstring."""

    def __init__(self, name: str = "main", layout: str | None = None,
                 parent: "Graph | None" = None):
        self.name = name
        self.layout = layout
        self.parent = parent
        self.opsets: dict[str, int] = {}
        self.metadata: dict[str, Any] = {}
        self.inputs: list[Value] = []
        self.outputs: list[Value] = []
        self._values: dict[str, Value] = {}
        self._nx = nx.MultiDiGraph()
        self._order: list[Node] | None = None

    # ---- construction -------------------------------------------------------------
    def _own(self, value: Value) -> Value:
        if value.name in self._values and self._values[value.name] is not value:
            raise VerifyError(f"value name %{value.name} is defined twice")
        value.graph = self
        self._values[value.name] = value
        return value

    def unique_name(self, base: str) -> str:
        """A value/node name not yet used in this graph, derived from ``base``."""
        if base not in self._values and not self._has_node_name(base):
            return base
        for i in itertools.count(1):
            cand = f"{base}_{i}"
            if cand not in self._values and not self._has_node_name(cand):
                return cand
        raise AssertionError("unreachable")

    def _has_node_name(self, name: str) -> bool:
        return any(n.name == name for n in self._nx.nodes)

    def add_input(self, name: str, type: TensorType) -> Value:
        v = self._own(Value(name, type))
        self.inputs.append(v)
        return v

    def add_const(self, name: str, array: np.ndarray, type: TensorType | None = None) -> Value:
        """A constant value.  ``type`` defaults to the array's shape and dtype."""
        array = np.asarray(array)
        if type is None:
            type = TensorType(array.shape, DType.from_numpy(array.dtype))
        return self._own(Value(name, type, const=array))

    def add_node(self, op: str, inputs: Sequence[Value | None], outputs: Sequence[Value | tuple],
                 attrs: dict[str, Any] | None = None, name: str | None = None) -> Node:
        """Append a node.  ``outputs`` are new Values or ``(name, TensorType)`` pairs."""
        node = Node(op, name or "", attrs)
        node.graph = self
        self._nx.add_node(node)
        for out in outputs:
            v = out if isinstance(out, Value) else Value(out[0], out[1])
            if v._producer is not None:
                raise VerifyError(f"value %{v.name} already has a producer")
            self._own(v)
            v._producer = (node, len(node._outputs))
            node._outputs.append(v)
        if not node.name:
            node.name = node._outputs[0].name if node._outputs else self.unique_name(node.op_type)
        for i, v in enumerate(inputs):
            node._inputs.append(None)
            self.set_input(node, i, v)
        for sub in node.subgraphs():
            sub.parent = self
        self._order = None
        return node

    def set_input(self, node: Node, index: int, value: Value | None) -> None:
        """Make operand ``index`` of ``node`` read ``value`` (or nothing)."""
        old = node._inputs[index]
        if old is not None:
            old._uses.remove((node, index))
            if old._producer and old._producer[0].graph is self:
                self._nx.remove_edge(old._producer[0], node, key=index)
        node._inputs[index] = value
        if value is not None:
            value._uses.append((node, index))
            if value._producer and value._producer[0].graph is self:
                self._nx.add_edge(value._producer[0], node, key=index)
        self._order = None

    # ---- queries ------------------------------------------------------------------
    def producer(self, value: Value) -> Node | None:
        return value.producer

    def uses(self, value: Value) -> list[tuple[Node, int]]:
        return value.uses

    def value(self, name: str) -> Value:
        try:
            return self._values[name]
        except KeyError:
            raise KeyError(f"no value %{name} in graph {self.name}") from None

    def lookup(self, name: str) -> Value | None:
        """The value called ``name`` here or in an enclosing graph."""
        g: Graph | None = self
        while g is not None:
            if name in g._values:
                return g._values[name]
            g = g.parent
        return None

    @property
    def values(self) -> list[Value]:
        """Every value owned by this graph: inputs, constants, then node outputs in order."""
        consts = [v for v in self._values.values() if v.is_const]
        return list(self.inputs) + consts + [o for n in self.nodes for o in n._outputs]

    @property
    def constants(self) -> list[Value]:
        return [v for v in self._values.values() if v.is_const]

    def __len__(self) -> int:
        return self._nx.number_of_nodes()

    @property
    def nodes(self) -> list[Node]:
        """Nodes in deterministic topological order (ready nodes by creation order)."""
        if self._order is None:
            g = self._nx
            extra = self._capture_edges()
            if extra:
                g = g.copy()
                g.add_edges_from(extra)
            try:
                self._order = list(nx.lexicographical_topological_sort(g, key=lambda n: n._seq))
            except nx.NetworkXUnfeasible:
                cycle = nx.find_cycle(g)
                raise VerifyError("graph has a cycle through "
                                  + " -> ".join(e[0].name for e in cycle)) from None
        return list(self._order)

    def __iter__(self) -> Iterator[Node]:
        return iter(self.nodes)

    def _capture_edges(self) -> list[tuple[Node, Node]]:
        """Edges producer -> node for values a node's subgraphs read from this graph."""
        edges = []
        for node in self._nx.nodes:
            for sub in node.subgraphs():
                for v in sub.captured_values():
                    p = v.producer
                    if p is not None and p.graph is self:
                        edges.append((p, node))
        return edges

    def captured_values(self) -> list[Value]:
        """Values of enclosing graphs that nodes of this graph (or deeper) read."""
        seen: dict[str, Value] = {}
        for node in self._nx.nodes:
            for v in node._inputs:
                if v is not None and v.graph is not self and v.graph is not None:
                    seen.setdefault(v.name, v)
            for sub in node.subgraphs():
                for v in sub.captured_values():
                    if v.graph is not self:
                        seen.setdefault(v.name, v)
        for v in self.outputs:
            if v.graph is not self:
                seen.setdefault(v.name, v)
        return list(seen.values())

    def successors(self, node: Node) -> list[Node]:
        return sorted(set(self._nx.successors(node)), key=lambda n: n._seq)

    def predecessors(self, node: Node) -> list[Node]:
        return sorted(set(self._nx.predecessors(node)), key=lambda n: n._seq)

    def walk(self) -> Iterator[tuple["Graph", Node]]:
        """(graph, node) for every node here and in nested graphs, depth first."""
        for node in self.nodes:
            yield self, node
            for sub in node.subgraphs():
                yield from sub.walk()

    # ---- rewriting ----------------------------------------------------------------
    def replace_all_uses(self, old: Value, new: Value) -> None:
        """Every reader of ``old`` (and the graph outputs) reads ``new`` instead."""
        for node, idx in list(old._uses):
            node.graph.set_input(node, idx, new)
        self.outputs = [new if v is old else v for v in self.outputs]

    def remove(self, node: Node) -> None:
        """Delete a node whose outputs are no longer read."""
        for v in node._outputs:
            if v._uses or v in self.outputs:
                raise VerifyError(f"cannot remove {node.name}: its output %{v.name} is still used")
        for i in range(len(node._inputs)):
            self.set_input(node, i, None)
        for v in node._outputs:
            del self._values[v.name]
            v._producer = None
            v.graph = None
        self._nx.remove_node(node)
        node.graph = None
        self._order = None

    def remove_value(self, value: Value) -> None:
        """Delete an unused constant or graph input."""
        if value._uses or value in self.outputs or value.producer is not None:
            raise VerifyError(f"cannot remove %{value.name}: it is still used or produced")
        self._values.pop(value.name, None)
        if value in self.inputs:
            self.inputs.remove(value)
        value.graph = None

    def prune_unused(self) -> int:
        """Remove nodes and constants nothing reads; returns how many nodes went."""
        removed = 0
        for node in reversed(self.nodes):
            if all(not v._uses and v not in self.outputs for v in node._outputs):
                self.remove(node)
                removed += 1
        for v in self.constants:
            if not v._uses and v not in self.outputs:
                self.remove_value(v)
        return removed

    def rename(self, value: Value, new_name: str) -> None:
        if new_name in self._values:
            raise VerifyError(f"value name %{new_name} is already used")
        del self._values[value.name]
        value.name = new_name
        self._values[new_name] = value

    # ---- checking -----------------------------------------------------------------
    def verify(self) -> None:
        """Raise :class:`VerifyError` naming the first broken invariant.

        Structure (SSA, defined operands, acyclic, constant arrays matching their
        types) is checked for every graph; each node whose op is registered is also
        checked against its declaration: operand counts, attributes and the output
        types its inference computes.  Unknown ops are opaque and pass.
        """
        from tinyir.ops import verify_node

        names = {}
        for v in self._values.values():
            if v.graph is not self:
                raise VerifyError(f"value %{v.name} is listed in {self.name} but owned elsewhere")
            names[v.name] = v
            if v.is_const:
                _check_const(v)
        for v in self.inputs:
            if v.producer is not None or v.is_const:
                raise VerifyError(f"graph input %{v.name} must be neither produced nor constant")
        order = self.nodes  # raises on cycles
        for node in order:
            for i, v in enumerate(node._inputs):
                if v is None:
                    continue
                if self.lookup(v.name) is not v:
                    raise VerifyError(f"{node.name}: operand {i} %{v.name} is not defined in scope")
                if v.graph is self and v.producer is None and not v.is_const \
                        and v not in self.inputs:
                    raise VerifyError(
                        f"{node.name}: operand {i} %{v.name} has no producer and is neither "
                        "a graph input nor a constant")
            for sub in node.subgraphs():
                if sub.parent is not self:
                    raise VerifyError(f"{node.name}: subgraph {sub.name} has the wrong parent")
                sub.verify()
            verify_node(node)
        for v in self.outputs:
            if self.lookup(v.name) is not v:
                raise VerifyError(f"graph output %{v.name} is not defined")

    # ---- copying ------------------------------------------------------------------
    def copy(self) -> "Graph":
        """A deep structural copy (constant arrays are copied too)."""
        from tinyir.formats.tir import parse_tir, print_tir  # exact by the round-trip contract

        return parse_tir(print_tir(self))


def _check_const(v: Value) -> None:
    arr = v.const
    t = v.type
    if not isinstance(arr, np.ndarray):
        raise VerifyError(f"constant %{v.name} does not hold a numpy array")
    if t.shape is None or tuple(arr.shape) != tuple(t.shape):
        raise VerifyError(f"constant %{v.name} has array shape {list(arr.shape)} "
                          f"but type {t}")
    if t.dtype != DType.STRING and arr.dtype != t.dtype.numpy:
        raise VerifyError(f"constant %{v.name} holds {arr.dtype} but its type says {t.dtype.value}")


def iter_graphs(graph: Graph) -> Iterable[Graph]:
    """The graph and every nested graph, depth first."""
    yield graph
    for node in graph.nodes:
        for sub in node.subgraphs():
            yield from iter_graphs(sub)
