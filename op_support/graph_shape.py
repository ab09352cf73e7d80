"""Graph-shape facts shared by the backend tables (control flow, extra subgraphs)."""

from __future__ import annotations

CONTROL_FLOW = ("tfl.IF", "tfl.WHILE", "tfl.CALL_ONCE", "tfl.CALL")


def subgraph_evidence(graph) -> list[dict]:
    """Evidence ``{n, nodes}`` for a model with subgraphs beyond the main one or with
    control-flow ops calling them (``[]`` for a single-graph model): for backends that
    run subgraph 0 only."""
    extra = graph.metadata.get("tflite.subgraphs") or []
    cf = [n for n in graph.nodes if n.op in CONTROL_FLOW]
    if not extra and not cf:
        return []
    names = ", ".join(f"{n.name} ({n.op})" for n in cf)
    return [{"n": len(extra), "nodes": f" (called by {names})" if names else ""}]
