"""The numpy reference interpreter (the oracle for passes); see core.py."""

from tinyir.interp.core import KERNELS, Interpreter, kernel, run

__all__ = ["KERNELS", "Interpreter", "kernel", "run"]
