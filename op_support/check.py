"""Run a backend's table over a lowered graph and collect every finding.

Three generic rules apply to every backend (their docstrings are the messages); the
backend's own rules follow.  Custom ops are looked up as ``tfl.CUSTOM:<custom_code>``
so that a table can register them by name and a finding can name the custom op.
"""

from __future__ import annotations

import importlib
from typing import Callable

from tinyir.graph import Graph, Node
from tinyir.op_support.rules import (CONSTRAINT, ERROR, UNSUPPORTED_OP, Context, Finding, Rule,
                                     Table)

BACKENDS = ("tflm", "tinyengine", "utensor")


def load_table(backend: str) -> Table:
    """The op-support table of ``backend`` (module ``tinyir.op_support.<backend>``)."""
    if backend not in BACKENDS:
        raise ValueError(f"no op-support table for backend {backend!r}")
    return importlib.import_module(f"tinyir.op_support.{backend}").TABLE


def op_key(node: Node) -> str:
    """The table key of a node: its op, or ``tfl.CUSTOM:<name>`` for custom ops."""
    if node.op == "tfl.CUSTOM":
        return f"tfl.CUSTOM:{node.attrs.get('custom_code', '')}"
    return node.op


def _op_supported(node, ctx):
    """{backend} has no kernel for {op}{custom}: the runtime cannot run this node, and
    fails when it loads the model."""


def _dtype_supported(node, ctx):
    """{backend} runs {op} on {allowed}, not on {got} (first input -> first output)."""


def _rank_supported(node, ctx):
    """{backend} runs {op} on tensors of rank at most {max_rank}; %{value} has rank {rank}."""


def generic_rules(backend: str) -> list[Rule]:
    return [
        Rule(f"{backend}.op.unsupported", _op_supported, None, ERROR, UNSUPPORTED_OP),
        Rule(f"{backend}.op.dtype", _dtype_supported, None, ERROR, CONSTRAINT),
        Rule(f"{backend}.op.rank", _rank_supported, None, ERROR, CONSTRAINT),
    ]


def _first_dtypes(node: Node) -> tuple[str, str]:
    ins = [v for v in node.inputs if v is not None]
    i = ins[0].type.dtype.value if ins else "-"
    o = node.outputs[0].type.dtype.value if node.outputs else "-"
    return i, o


def check_graph(graph: Graph, backend: str, origin: Callable[[Node], str] | None = None,
                options: dict | None = None) -> list[Finding]:
    """Every finding of ``backend``'s table on ``graph`` (already lowered), in node order.

    ``origin`` maps a lowered node to the name of the user's node it came from.
    """
    table = load_table(backend)
    origin = origin or (lambda n: n.name)
    ctx = Context(graph, backend, dict(options or {}))
    unsupported, dtype_rule, rank_rule = generic_rules(backend)
    findings: list[Finding] = []

    def add(rule: Rule, node: Node | None, evidence: dict) -> None:
        findings.append(Finding(rule.id, rule.severity, rule.category, rule.message(evidence),
                                node=origin(node) if node is not None else evidence.get("node"),
                                op=op_key(node) if node is not None else None,
                                evidence=evidence))

    for _, node in graph.walk():
        if node.dialect == "onnx":
            continue  # not lowered: the lowering reported it, naming the user's node
        key = op_key(node)
        spec = table.ops.get(key)
        if spec is None:
            if table.own_unsupported_rule:
                continue
            custom = f" (custom op {node.attrs.get('custom_code')!r})" if node.op == "tfl.CUSTOM" \
                else ""
            add(unsupported, node, {"backend": backend, "op": node.op, "custom": custom})
            continue
        if spec.dtypes:
            got = _first_dtypes(node)
            if got not in spec.dtypes:
                allowed = ", ".join(f"{a}->{b}" for a, b in spec.dtypes)
                add(dtype_rule, node, {"backend": backend, "op": key, "allowed": allowed,
                                       "got": f"{got[0]}->{got[1]}"})
        if spec.max_rank is not None:
            for v in list(node.inputs) + list(node.outputs):
                if v is None or v.is_const or v.type.rank is None:
                    continue
                if v.type.rank > spec.max_rank:
                    add(rank_rule, node, {"backend": backend, "op": key,
                                          "max_rank": spec.max_rank, "value": v.name,
                                          "rank": v.type.rank})
                    break
        for rule in table.rules:
            if rule.graph_level or (rule.ops is not None and key not in rule.ops
                                    and node.op not in rule.ops):
                continue
            evidence = rule.fn(node, ctx)
            if evidence:
                add(rule, node, evidence)
    for rule in table.rules:
        if rule.graph_level:
            for evidence in rule.fn(graph, ctx) or []:
                node = evidence.pop("_node", None)
                add(rule, node, evidence)
    return findings
