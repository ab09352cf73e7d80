"""Model figures shown by ``tinyir check``: ops by type, parameters, MACs, activations.

Counting conventions (stated in every report):

* **MACs**: one multiply-accumulate per weight use in Conv/Gemm/MatMul-like ops, as
  declared by each op's ``macs`` function in the registry; bias adds, activations,
  pooling and other elementwise ops count zero.  Ops inside control-flow bodies count
  once (as if each body ran once).
* **Parameters**: elements of constant tensors, except 64-bit integer constants (ONNX
  shapes, axes and indices).  **Weight bytes**: the storage of those constants.
* **Largest activation**: the biggest non-constant tensor (graph inputs and node
  results) with a static shape.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from tinyir.graph import Graph, iter_graphs
from tinyir.ops import lookup
from tinyir.types import DType

MAC_CONVENTION = ("1 MAC = one multiply-accumulate of a Conv/Gemm/MatMul-like op; bias, "
                  "activations, pooling and elementwise ops count 0")
PARAM_CONVENTION = "elements of constant tensors other than int64 (shapes/axes)"


@dataclass(frozen=True)
class Activation:
    name: str
    shape: tuple
    dtype: str
    nbytes: int


@dataclass
class Summary:
    """Figures of one model; see the module docstring for the conventions."""

    graph_name: str
    layout: str | None
    n_nodes: int
    ops: dict[str, int]
    opaque_ops: list[str]
    params: int
    weight_bytes: int
    macs: int
    macs_unknown: list[str]
    largest_activation: Activation | None
    inputs: list[tuple[str, str]] = field(default_factory=list)
    outputs: list[tuple[str, str]] = field(default_factory=list)
    n_subgraphs: int = 0

    def to_json(self) -> dict:
        act = self.largest_activation
        return {
            "graph": self.graph_name, "layout": self.layout, "nodes": self.n_nodes,
            "ops": self.ops, "opaque_ops": self.opaque_ops,
            "params": self.params, "weight_bytes": self.weight_bytes,
            "macs": self.macs, "macs_unknown_nodes": self.macs_unknown,
            "mac_convention": MAC_CONVENTION, "param_convention": PARAM_CONVENTION,
            "largest_activation": None if act is None else {
                "name": act.name, "shape": list(act.shape), "dtype": act.dtype,
                "bytes": act.nbytes},
            "inputs": [{"name": n, "type": t} for n, t in self.inputs],
            "outputs": [{"name": n, "type": t} for n, t in self.outputs],
            "subgraphs": self.n_subgraphs,
        }


def summarize(graph: Graph) -> Summary:
    ops: Counter[str] = Counter()
    opaque: set[str] = set()
    macs = 0
    macs_unknown: list[str] = []
    params = weight_bytes = 0
    largest: Activation | None = None
    graphs = list(iter_graphs(graph))
    for g in graphs:
        for v in g.constants:
            if v.type.dtype in (DType.INT64, DType.STRING):
                continue
            params += v.const.size
            weight_bytes += v.type.nbytes or 0
        for v in list(g.inputs) + [o for n in g.nodes for o in n.outputs]:
            nb = v.type.nbytes
            if nb is not None and (largest is None or nb > largest.nbytes):
                largest = Activation(v.name, v.type.shape, v.type.dtype.value, nb)
        for node in g.nodes:
            ops[node.op] += 1
            d = lookup(node.op)
            if d is None:
                opaque.add(node.op)
                continue
            if d.macs is None:
                continue
            try:
                macs += int(d.macs(node))
            except (TypeError, ValueError, IndexError, KeyError):
                macs_unknown.append(node.name)  # symbolic shapes: count not knowable
    return Summary(
        graph_name=graph.name, layout=graph.layout, n_nodes=sum(ops.values()),
        ops=dict(sorted(ops.items(), key=lambda kv: (-kv[1], kv[0]))),
        opaque_ops=sorted(opaque), params=params, weight_bytes=weight_bytes, macs=macs,
        macs_unknown=macs_unknown, largest_activation=largest,
        inputs=[(v.name, str(v.type)) for v in graph.inputs],
        outputs=[(v.name, str(v.type)) for v in graph.outputs],
        n_subgraphs=len(graphs) - 1,
    )
