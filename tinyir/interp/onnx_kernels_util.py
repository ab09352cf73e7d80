"""Shared helpers of the ONNX kernels: registration, attributes, opset, padding.

Every ONNX kernel registers through :func:`onnx_kernel`, which prefixes the op name
with ``onnx.`` and hands back results as arrays of the element type recorded on the
node's results (the interpreter's contract), whatever numpy promoted to inside.
"""

from __future__ import annotations

import numpy as np

from tinyir.errors import UnsupportedError, VerifyError
from tinyir.interp.core import kernel
from tinyir.ops.onnx_ops_common import attr  # noqa: F401  (re-exported for the kernels)
from tinyir.ops.onnx_ops_common import attr_str as astr  # noqa: F401
from tinyir.ops.onnx_ops_common import opset as _declared_opset
from tinyir.types import DType

LATEST_OPSET = 23  # assumed for hand-built graphs that record no opset


def onnx_kernel(*ops: str):
    """Register ``fn(node, args, interp)`` as the kernel of ``onnx.<op>`` for each op."""

    def deco(fn):
        def run(node, args, interp):
            try:
                results = fn(node, args, interp)
            except (ValueError, IndexError, TypeError) as e:  # numpy refusing the operands
                raise VerifyError(f"{node.name} ({node.op}): operands do not fit the op: "
                                  f"{str(e).splitlines()[0] if str(e) else type(e).__name__}"
                                  ) from e
            return [_as_declared(node, i, r) for i, r in enumerate(results)]

        run.__name__ = run.__qualname__ = fn.__name__
        run.__doc__ = fn.__doc__
        kernel(*(f"onnx.{op}" for op in ops))(run)
        return fn

    return deco


def _as_declared(node, i: int, r) -> np.ndarray:
    """Result ``i`` as an array of its recorded element type; a shape that contradicts
    the recorded (known) dims is an error, not something to pass on silently."""
    r = np.asarray(r)
    if i >= len(node.outputs):
        return r
    t = node.outputs[i].type
    if t.dtype != DType.STRING and r.dtype != t.dtype.numpy:
        r = r.astype(t.dtype.numpy)
    if t.shape is not None and (len(t.shape) != r.ndim or any(
            isinstance(d, int) and d != n for d, n in zip(t.shape, r.shape))):
        raise VerifyError(f"{node.name} ({node.op}): result %{node.outputs[i].name} computes "
                          f"shape {list(r.shape)}, but its type says {list(t.shape)}")
    return r


def opset(node, domain: str = "") -> int:
    """The opset in force for ``node`` (the declarations' lookup), LATEST_OPSET when the
    graph records none (hand-built graphs)."""
    version = _declared_opset(node, domain)
    return LATEST_OPSET if version is None else version


def ints(a) -> list[int]:
    """An operand or attribute holding integers, as a Python list."""
    return [int(x) for x in np.asarray(a).reshape(-1)]


def unsupported(node, what: str):
    """Raise: the (valid) node uses a form this interpreter does not handle."""
    raise UnsupportedError(f"{node.name} ({node.op}): {what}")


def malformed(node, what: str):
    """Raise: the node's operands break the op's definition."""
    raise VerifyError(f"{node.name} ({node.op}): {what}")


def spatial_pads(node, in_shape, kernel, strides, dilations):
    """(begin, end) pads per spatial axis from ``pads`` / ``auto_pad`` (ONNX conv/pool rules)."""
    n = len(kernel)
    auto = astr(node, "auto_pad", "NOTSET")
    if auto in ("SAME_UPPER", "SAME_LOWER"):
        out = []
        for size, k, s, d in zip(in_shape, kernel, strides, dilations):
            o = -(-size // s)
            total = max((o - 1) * s + (k - 1) * d + 1 - size, 0)
            small = total // 2
            out.append((small, total - small) if auto == "SAME_UPPER" else (total - small, small))
        return out
    if auto == "VALID":
        return [(0, 0)] * n
    pads = attr(node, "pads") or [0] * (2 * n)
    return [(pads[i], pads[i + n]) for i in range(n)]


def window_out(size: int, k: int, s: int, d: int, pb: int, pe: int, ceil_mode: bool) -> int:
    """Output length of a window over one axis; ceil mode drops windows starting in end padding."""
    eff = (k - 1) * d + 1
    span = size + pb + pe - eff
    out = (-(-span // s) if ceil_mode else span // s) + 1
    if ceil_mode and (out - 1) * s >= size + pb:
        out -= 1
    return out


def window_slices(offsets, strides, outs):
    """Index tuple selecting, for one kernel offset, every window's element (spatial axes)."""
    return tuple(slice(o, o + s * (n - 1) + 1, s) for o, s, n in zip(offsets, strides, outs))
