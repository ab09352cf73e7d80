"""The pass contract: ``run(graph) -> PassResult(graph, changed, stats)``.

A pass is a frozen dataclass with a ``name`` and its options as fields; its docstring's
first line is what ``tinyir passes`` shows.  A failed precondition raises
:class:`~tinyir.errors.PassError` with a sentence saying what is missing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from tinyir.graph import Graph


@dataclass
class PassResult:
    graph: Graph
    changed: bool
    stats: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Pass:
    """Base class of all passes."""

    name: ClassVar[str] = ""

    def run(self, graph: Graph) -> PassResult:  # pragma: no cover - interface
        raise NotImplementedError

    @classmethod
    def summary(cls) -> str:
        return (cls.__doc__ or "").strip().splitlines()[0]


PASSES: dict[str, type[Pass]] = {}


def register_pass(cls: type[Pass]) -> type[Pass]:
    """Class decorator: make the pass available to pipelines by its ``name``."""
    if not cls.name or cls.name in PASSES:
        raise ValueError(f"pass name {cls.name!r} is empty or taken")
    PASSES[cls.name] = cls
    return cls
