"""Dead-code elimination: drop nodes and constants that no graph output depends on."""

from __future__ import annotations

from dataclasses import dataclass

from tinyir.graph import Graph, iter_graphs
from tinyir.passes.base import Pass, PassResult, register_pass


@register_pass
@dataclass(frozen=True)
class DeadCodeElimination(Pass):
    """Remove nodes and constants whose results nothing reads."""

    name = "dce"

    def run(self, graph: Graph) -> PassResult:
        nodes_before = sum(len(g) for g in iter_graphs(graph))
        consts_before = sum(len(g.constants) for g in iter_graphs(graph))
        for g in reversed(list(iter_graphs(graph))):  # bodies first: they may free outer values
            g.prune_unused()
        nodes = nodes_before - sum(len(g) for g in iter_graphs(graph))
        consts = consts_before - sum(len(g.constants) for g in iter_graphs(graph))
        return PassResult(graph, bool(nodes or consts),
                          {"nodes_removed": nodes, "constants_removed": consts})
