"""Small helpers shared by the TFLM rule families (``tflm_*.py``).

They read quantization parameters, constants and TFLite facts off values the way
TFLM's kernels do: per-tensor parameters are the first (only) scale and zero point,
an unquantized tensor has scale 0 and zero point 0.
"""

from __future__ import annotations

import numpy as np

from tinyir.graph import Node, Value

INT_Q = ("i8", "i16")  # activation types whose kernels take the quantized path


def dt(v: Value | None) -> str:
    """Element type name of a value ("-" when the operand is omitted)."""
    return "-" if v is None else v.type.dtype.value


def operand(node: Node, i: int) -> Value | None:
    return node.inputs[i] if i < len(node.inputs) else None


def scale(v: Value) -> float:
    q = v.type.quant
    return q.scale[0] if q else 0.0


def zp(v: Value) -> int:
    q = v.type.quant
    return q.zero_point[0] if q else 0


def zps(v: Value) -> list[int]:
    q = v.type.quant
    return [int(z) for z in q.zero_point] if q else [0]


def n_scales(v: Value) -> int:
    q = v.type.quant
    return len(q.scale) if q else 0


def ints(v: Value | None) -> list[int] | None:
    """A constant operand's values as a flat list of ints (None when not constant)."""
    if v is None or v.const is None:
        return None
    return [int(x) for x in np.asarray(v.const).reshape(-1)]


def fact(v: Value, name: str, default=None):
    """A TFLite tensor fact (``tflite.tensor.<value>.<fact>``) from the owning graph."""
    g = v.graph
    while g is not None:
        key = f"tflite.tensor.{v.name}.{name}"
        if key in g.metadata:
            return g.metadata[key]
        g = g.parent
    return default


def is_variable(v: Value) -> bool:
    return bool(fact(v, "is_variable", False))


def fmt(x: float) -> str:
    """A scale in a message: short but exact enough to see the difference."""
    return f"{x:.9g}"
