"""Hand a plan to TFLM: operator order plus the ``OfflineMemoryAllocation`` metadata.

TFLM runs operators in file order, and reads planned offsets from the model metadata
entry named ``OfflineMemoryAllocation``: int32 words ``[version, n_subgraphs, n,
offset_0 .. offset_{n-1}]``, one offset per tensor of every subgraph concatenated in
tensor-index order, ``-1`` meaning "plan this one online" (constants, scratch buffers and
anything tinyir did not plan).  TFLM does not validate the offsets, which is why
:func:`~tinyir.passes.memory.verify.verify_plan` must pass first.

Tensor indices are the exporter's (``tinyir.formats.tflite_format._Writer._subgraph``):
per subgraph, graph inputs, then constants (``graph.constants`` order), then node results
in ``graph.nodes`` order, then graph outputs not yet numbered.  :func:`tensor_order`
repeats that rule; a test reads the written file back to check that both agree.

Reordering rebuilds the graph with its nodes created in the planned order, so that
``graph.nodes`` (ready nodes by creation order) and hence the exporter follow it.
"""

from __future__ import annotations

import struct
from typing import Sequence

from tinyir.errors import PassError
from tinyir.graph import Graph, Node, Value

METADATA_KEY = "tflite.metadata.OfflineMemoryAllocation"
VERSION = 1


def tensor_order(g: Graph) -> list[Value]:
    """The values of ``g`` in the exporter's tensor numbering."""
    out: dict[str, Value] = {}
    for v in list(g.inputs) + list(g.constants):
        out.setdefault(v.name, v)
    for n in g.nodes:
        for v in n.outputs:
            out.setdefault(v.name, v)
    for v in g.outputs:
        out.setdefault(v.name, v)
    return list(out.values())


def reordered(graph: Graph, order: Sequence[Node] | None = None) -> Graph:
    """A rebuilt copy of ``graph`` (same constant arrays) whose ``nodes`` run in ``order``."""
    order = list(graph.nodes if order is None else order)
    if any(n.subgraphs() for n in graph.nodes):
        raise PassError(f"graph {graph.name}: reordering graphs with nested bodies is not "
                        "supported")
    g = Graph(graph.name, layout=graph.layout)
    g.opsets = dict(graph.opsets)
    g.metadata = dict(graph.metadata)
    vals: dict[str, Value] = {}
    for v in graph.inputs:
        vals[v.name] = g.add_input(v.name, v.type)
    for v in graph.constants:
        vals[v.name] = g.add_const(v.name, v.const, v.type)
    for n in order:
        ins = [None if v is None else vals[v.name] for v in n.inputs]
        new = g.add_node(n.op, ins, [(o.name, o.type) for o in n.outputs], dict(n.attrs),
                         name=n.name)
        for o in new.outputs:
            vals[o.name] = o
    g.outputs = [vals[v.name] for v in graph.outputs]
    if [n.name for n in g.nodes] != [n.name for n in order]:
        raise PassError("planned order is not a topological order of the graph")
    return g


def apply_plan(graph: Graph, plan) -> tuple[Graph, None, dict[str, int]]:
    """(graph in the plan's order, None, value name -> offset) for predict_tflm_arena."""
    by_name = {n.name: n for n in graph.nodes}
    g = reordered(graph, [by_name[name] for name in plan.order])
    return g, None, plan.value_offsets()


def offline_words(graph: Graph, offsets: dict[str, int]) -> list[int]:
    """The OfflineMemoryAllocation int32 words for ``graph`` (already in plan order)."""
    subs = [graph] + list(graph.metadata.get("tflite.subgraphs", []))
    words: list[int] = []
    for i, g in enumerate(subs):
        for v in tensor_order(g):
            words.append(offsets.get(v.name, -1) if i == 0 and not v.is_const else -1)
    return [VERSION, len(subs), len(words)] + words


def with_offline_plan(graph: Graph, plan) -> Graph:
    """``graph`` reordered as planned, carrying the plan as TFLM offline metadata.

    ``write_tflite_bytes`` of the result emits the metadata entry; the input graph is not
    modified.
    """
    g, _, offsets = apply_plan(graph, plan)
    words = offline_words(g, offsets)
    g.metadata[METADATA_KEY] = struct.pack(f"<{len(words)}i", *words)
    return g
