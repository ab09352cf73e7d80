"""What a model becomes in a backend's op set, and where each lowered node came from.

Checks run on the lowered graph; every finding must name the user's own node, so a
lowering returns :class:`Lowered`: the graph, ``origin`` (lowered node -> name of the
original node) and the findings for what it could not lower (category ``lowering``).
Ops it cannot lower stay in the graph unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from tinyir.graph import Graph, Node
from tinyir.op_support.rules import Finding


@dataclass
class Lowered:
    graph: Graph
    origin: dict[Node, str] = field(default_factory=dict)
    findings: list[Finding] = field(default_factory=list)

    def origin_of(self, node: Node) -> str:
        return self.origin.get(node, node.name)


def lower_for(backend: str, graph: Graph) -> Lowered:
    """Lower ``graph`` (not modified) for ``backend``; TFLite graphs are already lowered."""
    dialects = {n.dialect for _, n in graph.walk()}
    if dialects <= {"tfl"}:
        return Lowered(graph)
    from tinyir.backends.tflm.lower import lower_onnx_to_tfl

    return lower_onnx_to_tfl(graph.copy())
