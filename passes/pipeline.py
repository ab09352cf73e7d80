"""Pipelines: ``"dce,quantize{calib=data.npz,method=entropy}"`` -> a list of passes.

Grammar: ``pipeline := item ("," item)*``, ``item := NAME ("{" opt ("," opt)* "}")?``,
``opt := KEY "=" VALUE``.  Option values are converted to the type of the pass's
dataclass field (int, float, bool, str).  :func:`run_passes` runs a plain list of passes,
verifies the graph after each one and names the pass that broke it.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Callable, Sequence

from tinyir.errors import InputError, PassError, VerifyError
from tinyir.graph import Graph
from tinyir.passes.base import PASSES, Pass, PassResult

_ITEM = re.compile(r"\s*([A-Za-z][\w-]*)\s*(?:\{([^{}]*)\})?\s*(?:,|$)")
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def parse_pipeline(text: str) -> list[Pass]:
    """Instantiate the passes a pipeline string names (InputError when it is malformed)."""
    passes: list[Pass] = []
    pos = 0
    text = text.strip()
    while pos < len(text):
        m = _ITEM.match(text, pos)
        if not m or m.end() == pos:
            raise InputError(f"pipeline {text!r}: cannot read it at column {pos + 1}")
        passes.append(_make(m.group(1), m.group(2)))
        pos = m.end()
    if not passes:
        raise InputError("pipeline is empty")
    return passes


PASS_MODULES = ("tinyir.passes.dce", "tinyir.passes.fold_bn", "tinyir.passes.quantize",
                "tinyir.passes.prune", "tinyir.backends.tflm.lower")


def all_passes() -> dict[str, type[Pass]]:
    """Every registered pass by name (imports the pass modules on first use)."""
    import importlib

    for module in PASS_MODULES:
        importlib.import_module(module)
    return PASSES


def _make(name: str, opts: str | None) -> Pass:
    cls = all_passes().get(name)
    if cls is None:
        known = ", ".join(sorted(PASSES))
        raise InputError(f"unknown pass {name!r}; known passes: {known}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    kwargs = {}
    for part in (opts or "").split(","):
        if not part.strip():
            continue
        key, eq, value = part.partition("=")
        key, value = key.strip(), value.strip()
        if not eq or key not in fields:
            valid = ", ".join(fields) or "none"
            raise InputError(f"pass {name}: unknown option {part.strip()!r} (options: {valid})")
        kwargs[key] = _convert(name, key, value, fields[key].type)
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as e:
        raise InputError(f"pass {name}: {e}") from None


def _convert(pass_name: str, key: str, value: str, ftype) -> object:
    t = ftype if isinstance(ftype, str) else getattr(ftype, "__name__", str(ftype))
    try:
        if t.startswith("bool"):
            if value.lower() in _TRUE:
                return True
            if value.lower() in _FALSE:
                return False
            raise ValueError
        if t.startswith("int"):
            return int(value)
        if t.startswith("float"):
            return float(value)
    except ValueError:
        raise InputError(f"pass {pass_name}: option {key}={value!r} is not a valid {t}") from None
    return value


def run_passes(graph: Graph, passes: Sequence[Pass] | str, verify: bool = True,
               callback: Callable[[Pass, PassResult], None] | None = None
               ) -> tuple[Graph, list[PassResult]]:
    """Run passes in order, verifying after each; returns the graph and every result."""
    if isinstance(passes, str):
        passes = parse_pipeline(passes)
    results = []
    for p in passes:
        result = p.run(graph)
        graph = result.graph
        if verify:
            try:
                graph.verify()
            except VerifyError as e:
                raise PassError(f"pass {p.name} left an invalid graph: {e}") from None
        results.append(result)
        if callback:
            callback(p, result)
    return graph, results
