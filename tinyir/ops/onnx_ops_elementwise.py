"""ONNX elementwise ops: activations, arithmetic, comparisons, logic, Cast, Clip, Where.

All of them cost 0 MACs.  Binary ops broadcast numpy-style (opset >= 7); the legacy
form (opset < 7, ``broadcast``/``axis`` attributes) broadcasts B into A, so the result
has A's shape.
"""

from __future__ import annotations

from tinyir.ops.onnx_ops_common import (attr, dtype_of_code, ishape, itype, norm_axis, onnx_op,
                                        opset, same_dtype, tt)
from tinyir.ops.shapes import broadcast
from tinyir.types import DType

LEGACY = ("consumed_inputs",)
LEGACY_BCAST = ("axis", "broadcast")


def same_as_input(node):
    """Result has the shape and element type of the first operand."""
    t = itype(node, 0)
    return [tt(t.shape, t.dtype)]


def bool_like_input(node):
    """Boolean result shaped like the first operand."""
    return [tt(ishape(node, 0), DType.BOOL)]


_UNARY = {
    # op: attribute names over all opsets
    "Relu": LEGACY, "Sigmoid": LEGACY, "Tanh": LEGACY, "Abs": LEGACY, "Neg": LEGACY,
    "Sqrt": LEGACY, "Exp": LEGACY, "Log": LEGACY, "Floor": LEGACY, "Ceil": LEGACY,
    "Reciprocal": LEGACY, "Round": (), "Erf": (), "Sign": (), "Sin": (), "Cos": (), "Tan": (),
    "Softplus": (), "Softsign": (), "Mish": (), "HardSwish": (), "Identity": (),
    "LeakyRelu": ("alpha",) + LEGACY, "Elu": ("alpha",) + LEGACY,
    "Selu": ("alpha", "gamma") + LEGACY, "HardSigmoid": ("alpha", "beta") + LEGACY,
    "Celu": ("alpha",), "ThresholdedRelu": ("alpha",), "Shrink": ("bias", "lambd"),
    "Gelu": ("approximate",), "LRN": ("alpha", "beta", "bias", "size"),
}
for _name, _attrs in _UNARY.items():
    onnx_op(_name, ["X"], ["Y"], attrs=_attrs)(same_as_input)

onnx_op("Not", ["X"], ["Y"])(same_as_input)


def softmax_like(node):
    """Result like the input; ``axis`` must name one of its dims."""
    t = itype(node, 0)
    if t.shape is not None:
        norm_axis(attr(node, "axis", -1 if (opset(node) or 99) >= 13 else 1), max(len(t.shape), 1))
    return [tt(t.shape, t.dtype)]


for _name in ("Softmax", "LogSoftmax", "Hardmax"):
    onnx_op(_name, ["input"], ["output"], attrs=("axis",))(softmax_like)
onnx_op("IsNaN", ["X"], ["Y"])(bool_like_input)
onnx_op("IsInf", ["X"], ["Y"], attrs=("detect_negative", "detect_positive"))(bool_like_input)


def _binary_shape(node):
    a, b = ishape(node, 0), ishape(node, 1)
    if "broadcast" in node.attrs or (opset(node) or 99) < 7:
        return a  # legacy: B is broadcast into A
    return broadcast(a, b)


def binary_arith(node):
    """Numpy broadcast of A and B; both must have one element type."""
    return [tt(_binary_shape(node), same_dtype(node, [0, 1]))]


def binary_compare(node):
    """Boolean numpy broadcast of A and B (same element type)."""
    same_dtype(node, [0, 1])
    return [tt(_binary_shape(node), DType.BOOL)]


for _name in ("Add", "Sub", "Mul", "Div"):
    onnx_op(_name, ["A", "B"], ["C"], attrs=LEGACY_BCAST + LEGACY)(binary_arith)
for _name in ("And", "Or", "Xor"):
    onnx_op(_name, ["A", "B"], ["C"], attrs=LEGACY_BCAST)(binary_compare)
for _name in ("Equal", "Less", "Greater"):
    onnx_op(_name, ["A", "B"], ["C"], attrs=LEGACY_BCAST)(binary_compare)
for _name in ("LessOrEqual", "GreaterOrEqual"):
    onnx_op(_name, ["A", "B"], ["C"])(binary_compare)
onnx_op("Mod", ["A", "B"], ["C"], attrs=("fmod",))(binary_arith)
onnx_op("BitShift", ["X", "Y"], ["Z"], attrs=("direction",))(binary_arith)


@onnx_op("Pow", ["X", "Y"], ["Z"], attrs=LEGACY_BCAST)
def pow_(node):
    """Numpy broadcast; the exponent may have another element type (opset >= 12)."""
    return [tt(_binary_shape(node), itype(node, 0).dtype)]


@onnx_op("PRelu", ["X", "slope"], ["Y"], attrs=LEGACY)
def prelu(node):
    """Result is shaped like X; slope broadcasts into X."""
    x, s = ishape(node, 0), ishape(node, 1)
    if (opset(node) or 99) >= 7 and x is not None and s is not None:
        b = broadcast(x, s)
        if len(b) != len(x) or any(isinstance(p, int) and isinstance(q, int) and p != q
                                   for p, q in zip(b, x)):
            raise ValueError(f"slope {list(s)} does not broadcast into X {list(x)}")
    return [tt(x, same_dtype(node, [0, 1]))]


def variadic(node):
    """Numpy broadcast of every operand (one element type)."""
    shapes = [v.type.shape for v in node.inputs if v is not None]
    if not shapes:
        raise ValueError("needs at least one operand")
    return [tt(broadcast(*shapes), same_dtype(node, range(len(node.inputs))))]


for _name, _out in (("Sum", "sum"), ("Min", "min"), ("Max", "max"), ("Mean", "mean")):
    onnx_op(_name, ["data_0*"], [_out], attrs=LEGACY)(variadic)


@onnx_op("Cast", ["input"], ["output"], attrs=("to", "saturate", "round_mode"))
def cast(node):
    """Element type from ``to`` (a TensorProto code; Cast-1 used the type's name)."""
    if "to" not in node.attrs:
        raise ValueError("attribute 'to' is required")
    return [tt(ishape(node, 0), dtype_of_code(node.attrs["to"]))]


@onnx_op("CastLike", ["input", "target_type"], ["output"], attrs=("saturate", "round_mode"))
def cast_like(node):
    """Shape of input, element type of target_type."""
    return [tt(ishape(node, 0), itype(node, 1).dtype)]


@onnx_op("Clip", ["input", "min?", "max?"], ["output"], attrs=("min", "max") + LEGACY)
def clip(node):
    """Bounds are attributes before opset 11 and scalar operands from opset 11."""
    return same_as_input(node)


@onnx_op("Where", ["condition", "X", "Y"], ["output"])
def where(node):
    """Broadcast of condition, X and Y; element type of X and Y."""
    shape = broadcast(ishape(node, 0), ishape(node, 1), ishape(node, 2))
    return [tt(shape, same_dtype(node, [1, 2]))]


@onnx_op("Dropout", ["data", "ratio?", "training_mode?"], ["output", "mask?"],
         attrs=("ratio", "is_test", "seed") + LEGACY)
def dropout(node):
    """Output like data; the mask is bool from opset 10, data's element type before."""
    t = itype(node, 0)
    mask = DType.BOOL if (opset(node) or 99) >= 10 else t.dtype
    return [tt(t.shape, t.dtype), tt(t.shape, mask)]

