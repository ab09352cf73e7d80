"""The numpy reference interpreter (the oracle for passes); see core.py."""

from tinyir.interp.core import KERNELS, Interpreter, kernel, run
from tinyir.interp import onnx_kernels as _onnx_kernels  # noqa: F401  (registers kernels)
from tinyir.interp import tfl_kernels as _tfl_kernels  # noqa: F401

__all__ = ["KERNELS", "Interpreter", "kernel", "run"]
