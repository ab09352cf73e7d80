"""The numpy reference interpreter: one kernel per op, run in topological order.

Kernels are registered per op name with :func:`kernel`; a kernel receives the node,
its operand arrays (``None`` for omitted optional operands) and the
:class:`Interpreter` (to run nested graphs), and returns one array per result.
Float kernels follow the ONNX/TFLite specifications; integer kernels reproduce
TFLM's arithmetic bit for bit.
"""

from __future__ import annotations

from typing import Callable, Mapping

import numpy as np

from tinyir.errors import UnsupportedError
from tinyir.graph import Graph, Node

Kernel = Callable[[Node, list, "Interpreter"], list]
KERNELS: dict[str, Kernel] = {}


def kernel(*ops: str):
    """Decorator: register the function as the kernel of each op in ``ops``."""

    def deco(fn: Kernel) -> Kernel:
        for op in ops:
            if op in KERNELS:
                raise ValueError(f"kernel for {op} registered twice")
            KERNELS[op] = fn
        return fn

    return deco


class Interpreter:
    """Runs a graph on numpy arrays.  ``env`` maps value names to arrays."""

    def __init__(self, graph: Graph):
        self.graph = graph
        self.env: dict[str, np.ndarray] = {}  # scope of the graph now running (for If/Loop)
        missing = sorted({n.op for _, n in graph.walk() if n.op not in KERNELS})
        if missing:
            raise UnsupportedError("the reference interpreter has no kernel for "
                                   + ", ".join(missing))

    def run(self, feeds: Mapping[str, np.ndarray], keep: bool = False) -> dict[str, np.ndarray]:
        """Outputs by name; with ``keep`` every intermediate value as well."""
        env: dict[str, np.ndarray] = {}
        out = self.run_graph(self.graph, feeds, env)
        return env if keep else out

    def run_graph(self, graph: Graph, feeds: Mapping[str, np.ndarray],
                  env: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run ``graph`` with ``env`` holding the enclosing scopes' values."""
        for v in graph.inputs:
            if v.name not in feeds:
                raise UnsupportedError(f"no array given for input %{v.name}")
            env[v.name] = np.asarray(feeds[v.name])
        for v in graph.constants:
            env[v.name] = v.const
        outer, self.env = self.env, env
        try:
            for node in graph.nodes:
                args = [None if v is None else env[v.name] for v in node.inputs]
                results = KERNELS[node.op](node, args, self)
                for v, r in zip(node.outputs, results):
                    env[v.name] = r
        finally:
            self.env = outer
        return {v.name: env[v.name] for v in graph.outputs}


def run(graph: Graph, feeds: Mapping[str, np.ndarray], keep: bool = False) -> dict[str, np.ndarray]:
    """Run ``graph`` on ``feeds`` (input name -> array) and return its outputs by name."""
    import tinyir.interp  # noqa: F401  (registers every kernel module)

    return Interpreter(graph).run(feeds, keep=keep)
