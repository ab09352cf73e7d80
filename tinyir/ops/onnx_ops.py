"""Declarations of the ONNX dialect (``onnx.*``): operands, attributes, inference, MACs.

Ops follow the ONNX operator specification; where the form changed across opsets
(for instance ``axes`` moving from attribute to operand) both forms are accepted.
"""

from __future__ import annotations

from tinyir.ops.registry import register
from tinyir.ops.shapes import broadcast
from tinyir.types import TensorType


def _same(node):
    """Result has the type of the first operand."""
    t = node.inputs[0].type
    return [TensorType(t.shape, t.dtype)]


for _name in ("Relu", "Sigmoid", "Tanh", "Abs", "Neg", "Sqrt", "Exp", "Log"):
    register(f"onnx.{_name}", ["X"], ["Y"])(_same)


def _elementwise(node):
    a, b = node.inputs[0].type, node.inputs[1].type
    return [TensorType(broadcast(a.shape, b.shape), a.dtype)]


for _name in ("Add", "Sub", "Mul", "Div", "Pow"):
    register(f"onnx.{_name}", ["A", "B"], ["C"])(_elementwise)
