"""The op registry and the op declarations (one module per dialect)."""

from tinyir.ops.registry import (REGISTRY, OpDef, infer_node, is_known, lookup, register,
                                 verify_node)
from tinyir.ops import onnx_ops as _onnx_ops  # noqa: F401  (registers the onnx dialect)
from tinyir.ops import tflite_ops as _tflite_ops  # noqa: F401  (registers the tfl dialect)

__all__ = ["REGISTRY", "OpDef", "infer_node", "is_known", "lookup", "register", "verify_node"]
