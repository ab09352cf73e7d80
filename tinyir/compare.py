"""Structural equality of graphs: the contract behind ``parse(print(g)) == g``."""

from __future__ import annotations

from typing import Any

import numpy as np

from tinyir.graph import Graph, Value


def graph_diff(a: Graph, b: Graph, where: str = "") -> str | None:
    """The first difference between two graphs as a sentence, or None if equal.

    Compared: name, layout, opsets, metadata, inputs, outputs, constants (type and
    exact bytes), and nodes in order (op, name, operands, results with types, attrs,
    nested graphs recursively).
    """
    w = where or a.name
    for field in ("name", "layout", "opsets"):
        if getattr(a, field) != getattr(b, field):
            return f"{w}: {field} {getattr(a, field)!r} != {getattr(b, field)!r}"
    d = _diff_attr(a.metadata, b.metadata, f"{w}: metadata")
    if d:
        return d
    for label, xs, ys in (("inputs", a.inputs, b.inputs), ("outputs", a.outputs, b.outputs)):
        if [v.name for v in xs] != [v.name for v in ys]:
            return f"{w}: {label} {[v.name for v in xs]} != {[v.name for v in ys]}"
        for x, y in zip(xs, ys):
            if x.type != y.type:
                return f"{w}: {label[:-1]} %{x.name} type {x.type!r} != {y.type!r}"
    ca = {v.name: v for v in a.constants}
    cb = {v.name: v for v in b.constants}
    if sorted(ca) != sorted(cb):
        return f"{w}: constants differ: {sorted(set(ca) ^ set(cb))[:5]}"
    for name, x in ca.items():
        d = _diff_value(x, cb[name], w)
        if d:
            return d
    na, nb = a.nodes, b.nodes
    if len(na) != len(nb):
        return f"{w}: {len(na)} nodes != {len(nb)} nodes"
    for x, y in zip(na, nb):
        if (x.op, x.name) != (y.op, y.name):
            return f"{w}: node {x.name} ({x.op}) != {y.name} ({y.op})"
        xi = [None if v is None else v.name for v in x.inputs]
        yi = [None if v is None else v.name for v in y.inputs]
        if xi != yi:
            return f"{w}: node {x.name} operands {xi} != {yi}"
        if [v.name for v in x.outputs] != [v.name for v in y.outputs]:
            return f"{w}: node {x.name} results differ"
        for u, v in zip(x.outputs, y.outputs):
            if u.type != v.type:
                return f"{w}: %{u.name} type {u.type!r} != {v.type!r}"
        d = _diff_attr(x.attrs, y.attrs, f"{w}: node {x.name} attrs")
        if d:
            return d
    return None


def _diff_value(x: Value, y: Value, w: str) -> str | None:
    if x.type != y.type:
        return f"{w}: constant %{x.name} type {x.type!r} != {y.type!r}"
    return _diff_array(x.const, y.const, f"{w}: constant %{x.name}")


def _diff_array(x: np.ndarray, y: np.ndarray, w: str) -> str | None:
    if x.dtype != y.dtype or x.shape != y.shape:
        return f"{w}: array {x.dtype}{list(x.shape)} != {y.dtype}{list(y.shape)}"
    if x.dtype == object:
        return None if x.tolist() == y.tolist() else f"{w}: string arrays differ"
    if np.ascontiguousarray(x).tobytes() != np.ascontiguousarray(y).tobytes():
        return f"{w}: array bytes differ"
    return None


def _diff_attr(x: Any, y: Any, w: str) -> str | None:
    if isinstance(x, Graph) and isinstance(y, Graph):
        return graph_diff(x, y, f"{w}/{x.name}")
    if isinstance(x, np.ndarray) and isinstance(y, np.ndarray):
        return _diff_array(x, y, w)
    if isinstance(x, dict) and isinstance(y, dict):
        if sorted(x) != sorted(y):
            return f"{w}: keys {sorted(x)} != {sorted(y)}"
        for k in x:
            d = _diff_attr(x[k], y[k], f"{w}.{k}")
            if d:
                return d
        return None
    if isinstance(x, (list, tuple)) and isinstance(y, (list, tuple)):
        if type(x) is not type(y) or len(x) != len(y):
            return f"{w}: {x!r} != {y!r}"
        for i, (p, q) in enumerate(zip(x, y)):
            d = _diff_attr(p, q, f"{w}[{i}]")
            if d:
                return d
        return None
    if type(x) is not type(y) or x != y:
        if isinstance(x, float) and isinstance(y, float) and np.isnan(x) and np.isnan(y):
            return None
        return f"{w}: {x!r} != {y!r}"
    return None


def graphs_equal(a: Graph, b: Graph) -> bool:
    return graph_diff(a, b) is None
