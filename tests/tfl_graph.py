"""Building small TFLite-dialect graphs in tests (one op, quantized types)."""

from __future__ import annotations

import numpy as np

from tinyir.graph import Graph
from tinyir.types import QuantParams, TensorType


def q(scale, zp=0, axis=None) -> QuantParams:
    """Quant params from a scale (or scales) and a zero point (or one per scale)."""
    scales = [float(s) for s in np.atleast_1d(scale)]
    zps = [int(z) for z in np.atleast_1d(zp)] if np.ndim(zp) else [zp] * len(scales)
    return QuantParams(scales, zps, axis)


def t(shape, dtype, quant=None) -> TensorType:
    return TensorType(tuple(shape), dtype, quant)


def one_op(op, inputs, out_types, attrs=None, metadata=None) -> Graph:
    """A graph with one ``tfl.<op>`` node.  inputs: TensorType (graph input),
    (array, TensorType) or array (constant), or None (omitted operand).  Intermediate
    results (``intermediates=N``) are not graph outputs."""
    g = Graph("main", layout="NHWC")
    operands = []
    for i, spec in enumerate(inputs):
        if spec is None:
            operands.append(None)
        elif isinstance(spec, TensorType):
            operands.append(g.add_input(f"in{i}", spec))
        elif isinstance(spec, tuple):
            operands.append(g.add_const(f"c{i}", spec[0], spec[1]))
        else:
            operands.append(g.add_const(f"c{i}", np.asarray(spec)))
    node = g.add_node(op if op.startswith("tfl.") else f"tfl.{op}", operands,
                      [(f"out{i}", ty) for i, ty in enumerate(out_types)], attrs or {})
    n_inter = (attrs or {}).get("intermediates", 0)
    g.outputs = list(node.outputs[:len(node.outputs) - n_inter])
    for k, v in (metadata or {}).items():
        g.metadata[k] = v
    return g
