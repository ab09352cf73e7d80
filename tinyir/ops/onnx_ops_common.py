"""Helpers shared by the ONNX dialect declarations (``onnx_ops_*.py``).

They read a node the way the ONNX spec describes it: attributes with their spec
defaults, optional operands that may be omitted, constant operands (``v.const``) that
decide result shapes, and the opset of the model (``graph.opsets[""]``, looked up
through enclosing graphs for nested bodies).

Dims that cannot be known statically are :data:`UNKNOWN` (a symbolic dim, ``"?"``);
a result whose rank is unknown has shape ``None``.  Only operands that genuinely
contradict each other raise ``ValueError`` (the verifier reports it as a
``VerifyError``); missing knowledge never does.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from tinyir.ops.registry import register
from tinyir.types import Dim, DType, TensorType

UNKNOWN: Dim = "?"

# TensorProto.DataType codes (the ``to`` of Cast, ``output_dtype``, ``stash_type``).
ONNX_DTYPES: dict[int, DType] = {
    1: DType.FLOAT32, 2: DType.UINT8, 3: DType.INT8, 4: DType.UINT16, 5: DType.INT16,
    6: DType.INT32, 7: DType.INT64, 8: DType.STRING, 9: DType.BOOL, 10: DType.FLOAT16,
    11: DType.FLOAT64, 12: DType.UINT32, 13: DType.UINT64, 14: DType.COMPLEX64,
    15: DType.COMPLEX128, 16: DType.BFLOAT16, 21: DType.UINT4, 22: DType.INT4,
}
# Cast-1 spelled ``to`` as a string.
_DTYPE_NAMES = {"FLOAT": 1, "UINT8": 2, "INT8": 3, "UINT16": 4, "INT16": 5, "INT32": 6,
                "INT64": 7, "STRING": 8, "BOOL": 9, "FLOAT16": 10, "DOUBLE": 11, "UINT32": 12,
                "UINT64": 13, "COMPLEX64": 14, "COMPLEX128": 15, "BFLOAT16": 16}


def onnx_op(name: str, inputs, outputs, attrs=(), macs=None, domain: str = ""):
    """Register ``onnx.<domain>.<name>``; the decorated function is its inference."""
    full = f"onnx.{domain}.{name}" if domain else f"onnx.{name}"
    return register(full, inputs, outputs, attrs=attrs, macs=macs)


def dtype_of_code(code) -> DType:
    """The element type named by an ONNX TensorProto data type code (or Cast-1 name)."""
    if isinstance(code, (bytes, str)):
        name = code.decode() if isinstance(code, bytes) else code
        code = _DTYPE_NAMES.get(name.upper(), -1)
    if code not in ONNX_DTYPES:
        raise ValueError(f"ONNX data type {code} has no tinyir element type")
    return ONNX_DTYPES[code]


# ---- reading nodes -------------------------------------------------------------------
def opset(node, domain: str = "") -> int | None:
    """The opset version of ``domain`` in force for ``node`` (None when not recorded).

    Nested graphs ask their parents; the default domain may be recorded as ``""`` or
    ``"ai.onnx"`` (both spellings occur in real files).
    """
    keys = ("", "ai.onnx") if domain in ("", "ai.onnx") else (domain,)
    g = node.graph
    while g is not None:
        for k in keys:
            if k in g.opsets:
                return g.opsets[k]
        g = g.parent
    return None


def attr(node, name: str, default=None):
    return node.attrs.get(name, default)


def attr_str(node, name: str, default: str) -> str:
    v = node.attrs.get(name, default)
    return v.decode() if isinstance(v, bytes) else v


def operand(node, i: int):
    """Operand ``i`` or None when it is omitted."""
    return node.inputs[i] if i < len(node.inputs) else None


def itype(node, i: int) -> TensorType | None:
    v = operand(node, i)
    return None if v is None else v.type


def ishape(node, i: int):
    t = itype(node, i)
    return None if t is None else t.shape


def const(node, i: int) -> np.ndarray | None:
    """The array of constant operand ``i``, or None when omitted or computed.

    A constant is a value with ``const`` or the result of an ``onnx.Constant`` node
    (importers keep those nodes; onnx's own inference reads through them too).
    """
    v = operand(node, i)
    if v is None:
        return None
    if v.const is not None:
        return v.const
    p = v.producer
    if p is not None and p.op == "onnx.Constant":
        return constant_value(p.attrs)
    return None


def constant_value(attrs) -> np.ndarray | None:
    """The array an ``onnx.Constant`` node with these attributes produces."""
    if "value" in attrs:
        return np.asarray(attrs["value"])
    for name, dtype in (("value_float", np.float32), ("value_floats", np.float32),
                        ("value_int", np.int64), ("value_ints", np.int64)):
        if name in attrs:
            return np.asarray(attrs[name], dtype=dtype)
    return None


def const_ints(node, i: int) -> list[int] | None:
    a = const(node, i)
    return None if a is None else [int(x) for x in np.asarray(a).reshape(-1)]


def const_floats(node, i: int) -> list[float] | None:
    a = const(node, i)
    return None if a is None else [float(x) for x in np.asarray(a).reshape(-1)]


def vector_len(node, i: int) -> int | None:
    """Length of 1-D operand ``i`` when its type says so (used when it is not constant)."""
    s = ishape(node, i)
    if s is not None and len(s) == 1 and isinstance(s[0], int):
        return s[0]
    return None


def one_of(node, attr_name: str, index: int) -> list[int] | None:
    """An int list that is an attribute in old opsets and an operand in new ones."""
    if attr_name in node.attrs:
        return [int(x) for x in node.attrs[attr_name]]
    return const_ints(node, index)


# ---- dims ----------------------------------------------------------------------------
def known(*dims) -> bool:
    return all(isinstance(d, int) for d in dims)


def dprod(dims: Sequence[Dim]) -> Dim:
    return math.prod(dims) if known(*dims) else UNKNOWN


def same_dim(a: Dim, b: Dim, what: str) -> Dim:
    """Two dims that must be equal: the known one, or ValueError when they differ."""
    if isinstance(a, int) and isinstance(b, int):
        if a != b:
            raise ValueError(f"{what}: {a} vs {b}")
        return a
    return a if isinstance(a, int) else b


def norm_axis(axis: int, rank: int) -> int:
    if not -rank <= axis < rank:
        raise ValueError(f"axis {axis} is out of range for rank {rank}")
    return axis % rank


def unknown_dims(n: int) -> tuple:
    return (UNKNOWN,) * n


def tt(shape, dtype: DType) -> TensorType:
    return TensorType(None if shape is None else tuple(shape), dtype)


def same_dtype(node, indices: Sequence[int]) -> DType:
    """The common element type of the given (present) operands."""
    types = [itype(node, i) for i in indices]
    types = [t for t in types if t is not None]
    for t in types[1:]:
        if t.dtype != types[0].dtype:
            raise ValueError(f"operands have element types {types[0].dtype.value} "
                             f"and {t.dtype.value}")
    return types[0].dtype


def out_shape(node, i: int = 0, inferred=None):
    """Result ``i``'s shape merged from the recorded and the inferred type."""
    rec = node.outputs[i].type.shape if i < len(node.outputs) else None
    inf = None
    if inferred is not None and i < len(inferred) and inferred[i] is not None:
        inf = inferred[i].shape
    if rec is None:
        return inf
    if inf is None or len(inf) != len(rec):
        return rec
    return tuple(a if isinstance(a, int) else b for a, b in zip(rec, inf))
