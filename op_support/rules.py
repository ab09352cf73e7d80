"""Rules, findings and backend tables: the vocabulary of ``tinyir check``.

A **rule** is a small function whose docstring is the message a user reads.  It
receives a node of the graph lowered for the backend (and a :class:`Context`) and
returns ``None`` when the node is fine, or its *evidence*: a dict of the concrete
values that break the rule.  The message is the docstring's first paragraph
formatted with that evidence, so a rule reads like this::

    @table.rule("tflm.concat.same-qparams", ops=["tfl.CONCATENATION"])
    def concat_same_qparams(node, ctx):
        '''Every int8 input of CONCATENATION must have the output's scale and zero
        point ({input} has scale {scale} and zero point {zp}; the output has
        {out_scale} and {out_zp}): TFLM does not requantize inside CONCATENATION.'''
        ...
        return {"input": ..., "scale": ..., ...}

Graph rules (``@table.graph_rule``) see the whole graph and return a list of
evidence dicts, each with a ``"node"`` key when it is about one node.

A **backend table** is data: which ops it registers (:class:`OpSpec`: allowed
element types per operand role, rank limits, a note), plus its rules.  Checking
collects every finding as data; nothing here prints, and nothing stops at the first
failure.
"""

from __future__ import annotations

import inspect
import textwrap
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

ERROR, WARNING, INFO = "error", "warning", "info"

# categories of findings
UNSUPPORTED_OP = "unsupported-op"   # the backend has no kernel for this op
CONSTRAINT = "constraint"           # a kernel exists, but refuses (or silently mis-runs) this use
GRAPH_SHAPE = "graph-shape"         # the graph's structure is outside what the backend runs
MALFORMED = "malformed"             # the model itself is broken
BUDGET = "budget"                   # SRAM or flash over the board's budget
LOWERING = "lowering"               # no lowering to the backend's op set


@dataclass(frozen=True)
class Finding:
    """One reason a model does not deploy (or a warning about how it will run).

    ``node`` names the node of the user's original model (not of the lowered graph);
    ``op`` is the op the rule saw (lowered); ``evidence`` holds the concrete values.
    """

    rule: str
    severity: str
    category: str
    message: str
    node: str | None = None
    op: str | None = None
    evidence: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict:
        return {"rule": self.rule, "severity": self.severity, "category": self.category,
                "node": self.node, "op": self.op, "message": self.message,
                "evidence": _jsonable(self.evidence)}


def _jsonable(x):
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, (str, int, float, bool)) or x is None:
        return x
    if hasattr(x, "item"):
        return x.item()
    return str(x)


@dataclass(frozen=True)
class Rule:
    """A named check; its docstring's first paragraph is the message template."""

    id: str
    fn: Callable
    ops: tuple[str, ...] | None  # None: every node
    severity: str
    category: str
    graph_level: bool = False

    @property
    def template(self) -> str:
        doc = inspect.getdoc(self.fn) or self.id
        return textwrap.dedent(doc).split("\n\n")[0].replace("\n", " ").strip()

    def message(self, evidence: dict) -> str:
        try:
            return self.template.format(**evidence)
        except (KeyError, IndexError, ValueError):
            return self.template


@dataclass(frozen=True)
class OpSpec:
    """What a backend supports of one op.

    ``dtypes`` lists the accepted combinations as tuples of element type names
    (``"f32"``, ``"i8"`` ...) of the node's *first input and first output*; an empty
    tuple means any.  ``max_rank`` bounds every non-constant operand and result.
    """

    op: str
    dtypes: tuple[tuple[str, str], ...] = ()
    max_rank: int | None = None
    note: str = ""


@dataclass
class Context:
    """What a rule may look at besides its node: the lowered graph and the backend."""

    graph: Any
    backend: str
    options: dict[str, Any] = field(default_factory=dict)


class Table:
    """A backend's op-support table: op specs plus rules."""

    def __init__(self, backend: str, title: str, source: str):
        self.backend = backend
        self.title = title
        self.source = source
        self.ops: dict[str, OpSpec] = {}
        self.rules: list[Rule] = []
        # True when the table reports unlisted ops with rules of its own (whose message says
        # what that runtime does with them) instead of the generic "<backend>.op.unsupported"
        self.own_unsupported_rule = False

    def op(self, op: str, dtypes: Iterable[tuple[str, str]] = (), max_rank: int | None = None,
           note: str = "") -> None:
        self.ops[op] = OpSpec(op, tuple(tuple(d) for d in dtypes), max_rank, note)

    def rule(self, rule_id: str, ops: Iterable[str] | None = None, severity: str = ERROR,
             category: str = CONSTRAINT):
        """Decorator: a per-node rule for ``ops`` (every node when None)."""

        def deco(fn):
            self._add(Rule(rule_id, fn, None if ops is None else tuple(ops), severity, category))
            return fn

        return deco

    def graph_rule(self, rule_id: str, severity: str = ERROR, category: str = GRAPH_SHAPE):
        """Decorator: a rule over the whole graph returning a list of evidence dicts."""

        def deco(fn):
            self._add(Rule(rule_id, fn, None, severity, category, graph_level=True))
            return fn

        return deco

    def _add(self, r: Rule) -> None:
        if any(x.id == r.id for x in self.rules):
            raise ValueError(f"rule {r.id} is defined twice in {self.backend}")
        self.rules.append(r)

    def rule_ids(self) -> list[str]:
        return [r.id for r in self.rules]
