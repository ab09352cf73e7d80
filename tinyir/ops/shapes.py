"""Shape arithmetic shared by op inference functions (broadcasting, conv windows)."""

from __future__ import annotations

from tinyir.types import Dim


def broadcast(*shapes) -> tuple[Dim, ...] | None:
    """Numpy-style broadcast of shapes; None if any rank is unknown."""
    if any(s is None for s in shapes):
        return None
    rank = max((len(s) for s in shapes), default=0)
    out: list[Dim] = []
    for i in range(rank):
        dims = [s[len(s) - rank + i] for s in shapes if len(s) - rank + i >= 0]
        known = {d for d in dims if isinstance(d, int) and d != 1}
        if len(known) > 1:
            raise ValueError(f"shapes {[list(s) for s in shapes]} do not broadcast")
        if known:
            out.append(known.pop())
        elif all(d == 1 for d in dims):
            out.append(1)
        else:
            out.append(next(d for d in dims if d != 1))
    return tuple(out)


def conv_out(size: Dim, kernel: int, stride: int, dilation: int, pad_total: int) -> Dim:
    """Output length of a convolution/pooling window over one spatial axis."""
    if not isinstance(size, int):
        return "?"
    eff = (kernel - 1) * dilation + 1
    return (size + pad_total - eff) // stride + 1


def same_pads(size: int, kernel: int, stride: int, dilation: int, upper: bool) -> tuple[int, int]:
    """(begin, end) padding for SAME_UPPER/SAME_LOWER (ONNX) or TFLite SAME."""
    out = -(-size // stride)
    eff = (kernel - 1) * dilation + 1
    total = max((out - 1) * stride + eff - size, 0)
    small = total // 2
    return (small, total - small) if upper else (total - small, small)


def normalize_axis(axis: int, rank: int) -> int:
    if not -rank <= axis < max(rank, 1):
        raise ValueError(f"axis {axis} is out of range for rank {rank}")
    return axis % rank if rank else 0
