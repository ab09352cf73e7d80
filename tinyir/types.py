"""Value types of the IR: element types, quantization parameters and tensor types.

A value in a tinyir graph has a :class:`TensorType`: a shape, an element type and,
for quantized tensors, :class:`QuantParams`.  Quantization parameters live on
values, never on nodes.  ``real = scale * (q - zero_point)``; per-axis parameters
carry one scale and zero point per slice of ``axis``.

Shapes are tuples whose entries are ``int`` (a known size) or ``str`` (a symbolic
size such as ``"batch"``); a shape of ``None`` means the rank is unknown.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass
from typing import Union

import numpy as np

Dim = Union[int, str]


class DType(enum.Enum):
    """Element types.  The value is the canonical name used in the textual IR."""

    FLOAT32 = "f32"
    FLOAT16 = "f16"
    BFLOAT16 = "bf16"
    FLOAT64 = "f64"
    INT4 = "i4"
    INT8 = "i8"
    INT16 = "i16"
    INT32 = "i32"
    INT64 = "i64"
    UINT4 = "u4"
    UINT8 = "u8"
    UINT16 = "u16"
    UINT32 = "u32"
    UINT64 = "u64"
    BOOL = "bool"
    STRING = "str"
    COMPLEX64 = "c64"
    COMPLEX128 = "c128"

    @property
    def numpy(self) -> np.dtype:
        """The numpy dtype that holds this element type (int4 values unpacked to int8)."""
        return np.dtype(_NUMPY[self])

    @property
    def bits(self) -> int:
        """Storage size of one element in bits (strings count as 0)."""
        return _BITS[self]

    @property
    def is_float(self) -> bool:
        return self in (DType.FLOAT32, DType.FLOAT16, DType.BFLOAT16, DType.FLOAT64)

    @property
    def is_int(self) -> bool:
        return self.name.startswith(("INT", "UINT"))

    @classmethod
    def from_numpy(cls, dtype) -> "DType":
        """The DType of a numpy dtype; raises ValueError for ones tinyir has no name for."""
        dt = np.dtype(dtype)
        for member, name in _NUMPY.items():
            if member not in (DType.INT4, DType.UINT4, DType.BFLOAT16) and np.dtype(name) == dt:
                return member
        if dt.kind in ("U", "S", "O"):
            return DType.STRING
        raise ValueError(f"numpy dtype {dt} has no tinyir element type")

    @classmethod
    def parse(cls, text: str) -> "DType":
        try:
            return cls(text)
        except ValueError:
            raise ValueError(f"unknown element type {text!r}") from None


_NUMPY = {
    DType.FLOAT32: "float32", DType.FLOAT16: "float16", DType.BFLOAT16: "float32",
    DType.FLOAT64: "float64", DType.INT4: "int8", DType.INT8: "int8", DType.INT16: "int16",
    DType.INT32: "int32", DType.INT64: "int64", DType.UINT4: "uint8", DType.UINT8: "uint8",
    DType.UINT16: "uint16", DType.UINT32: "uint32", DType.UINT64: "uint64",
    DType.BOOL: "bool", DType.STRING: "object", DType.COMPLEX64: "complex64",
    DType.COMPLEX128: "complex128",
}
_BITS = {
    DType.FLOAT32: 32, DType.FLOAT16: 16, DType.BFLOAT16: 16, DType.FLOAT64: 64, DType.INT4: 4,
    DType.INT8: 8, DType.INT16: 16, DType.INT32: 32, DType.INT64: 64, DType.UINT4: 4,
    DType.UINT8: 8, DType.UINT16: 16, DType.UINT32: 32, DType.UINT64: 64, DType.BOOL: 8,
    DType.STRING: 0, DType.COMPLEX64: 64, DType.COMPLEX128: 128,
}


@dataclass(frozen=True)
class QuantParams:
    """Affine quantization: ``real = scale * (q - zero_point)``.

    Per-tensor parameters have ``axis=None`` and one scale and zero point; per-axis
    (per-channel) parameters have the quantized dimension in ``axis`` and one entry
    per slice along it.  Scales are kept as Python floats of float32 values so that
    they survive every format without rounding.
    """

    scale: tuple[float, ...]
    zero_point: tuple[int, ...]
    axis: int | None = None

    def __post_init__(self):
        object.__setattr__(self, "scale", tuple(float(np.float32(s)) for s in self.scale))
        object.__setattr__(self, "zero_point", tuple(int(z) for z in self.zero_point))
        if len(self.scale) != len(self.zero_point) and len(self.zero_point) != 1:
            raise ValueError(
                f"quantization has {len(self.scale)} scales but {len(self.zero_point)} zero points")
        if self.axis is None and len(self.scale) != 1:
            raise ValueError("per-tensor quantization needs exactly one scale")

    @property
    def per_axis(self) -> bool:
        return self.axis is not None

    def scales(self) -> np.ndarray:
        return np.asarray(self.scale, dtype=np.float32)

    def zero_points(self) -> np.ndarray:
        zp = np.asarray(self.zero_point, dtype=np.int64)
        if zp.size == 1 and len(self.scale) > 1:
            zp = np.repeat(zp, len(self.scale))
        return zp


@dataclass(frozen=True)
class TensorType:
    """Shape, element type and optional quantization of a value.

    ``shape`` is a tuple of ``int`` or ``str`` (symbolic) dims, or ``None`` when even
    the rank is unknown.
    """

    shape: tuple[Dim, ...] | None
    dtype: DType
    quant: QuantParams | None = None

    def __post_init__(self):
        if self.shape is not None:
            object.__setattr__(self, "shape", tuple(
                d if isinstance(d, str) else int(d) for d in self.shape))

    @property
    def rank(self) -> int | None:
        return None if self.shape is None else len(self.shape)

    @property
    def is_static(self) -> bool:
        """True when every dimension is a known integer."""
        return self.shape is not None and all(isinstance(d, int) and d >= 0 for d in self.shape)

    @property
    def numel(self) -> int | None:
        """Number of elements, or None when the shape is not static."""
        if not self.is_static:
            return None
        return math.prod(self.shape)

    @property
    def nbytes(self) -> int | None:
        """Storage size in bytes (sub-byte types packed), or None when not static."""
        n = self.numel
        if n is None:
            return None
        return (n * self.dtype.bits + 7) // 8

    def with_shape(self, shape) -> "TensorType":
        return TensorType(None if shape is None else tuple(shape), self.dtype, self.quant)

    def with_dtype(self, dtype: DType, quant: QuantParams | None = None) -> "TensorType":
        return TensorType(self.shape, dtype, quant)

    def with_quant(self, quant: QuantParams | None) -> "TensorType":
        return TensorType(self.shape, self.dtype, quant)

    def __str__(self) -> str:
        from tinyir.formats.tir.printer import format_type  # one spelling, the printer's

        return format_type(self)
