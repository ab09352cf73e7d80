"""Buffer plan for straight-line generated code, and C array text; shared with ``utensor``.

A *layer* reads some buffers and writes one; buffers live on the closed interval from the
layer that writes them (step 0 for the model input) to the last layer that reads them
(the last layer for model outputs).  In-place layers (TinyEngine's depthwise kernels)
write over their input: both values share one buffer whose size is the larger.  Offsets
come from the memory planner's :func:`~tinyir.passes.memory.offsets.assign_offsets`;
:func:`check_plan` then proves that no two buffers live at the same step overlap.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from tinyir.errors import PassError
from tinyir.passes.memory.lifetimes import LiveRange, align
from tinyir.passes.memory.offsets import assign_offsets


@dataclass(frozen=True)
class BufferPlan:
    offsets: dict[str, int]     # value name -> byte offset in the arena
    arena: int                  # bytes
    lower_bound: int
    ranges: tuple[LiveRange, ...]


def plan_buffers(layers: list[tuple[list[str], str, bool]], sizes: dict[str, int],
                 inputs: list[str], outputs: list[str], alignment: int = 4) -> BufferPlan:
    """``layers``: (values read, value written, in place over its first input) in order."""
    root: dict[str, str] = {}

    def find(v):
        while root.get(v, v) != v:
            v = root[v]
        return v

    first: dict[str, int] = {v: 0 for v in inputs}
    last: dict[str, int] = {v: 0 for v in inputs}
    for i, (reads, out, inplace) in enumerate(layers):
        for v in reads:
            last[v] = i
        first.setdefault(out, i)
        last[out] = max(last.get(out, i), i)
        if inplace and reads:
            root[out] = find(reads[0])
    n = max(len(layers) - 1, 0)
    for v in outputs:
        last[v] = n
    groups: dict[str, list[str]] = {}
    for v in first:
        groups.setdefault(find(v), []).append(v)
    ranges = []
    for r, vals in groups.items():
        size = align(max(sizes[v] for v in vals), alignment)
        ranges.append(LiveRange(r, size, min(first[v] for v in vals),
                                max(last[v] for v in vals), tuple(vals)))
    profile = [0] * (n + 1)
    for r in ranges:
        for s in range(r.first, r.last + 1):
            profile[s] += r.size
    lb = max(profile, default=0)
    a = assign_offsets(ranges, lb, budget_s=0.5)
    plan = BufferPlan({v: o for r, o in zip(ranges, a.offsets) for v in r.values}, a.arena, lb,
                      tuple(ranges))
    check_plan(plan, a.offsets)
    return plan


def check_plan(plan: BufferPlan, offsets) -> None:
    rs = plan.ranges
    for i in range(len(rs)):
        for j in range(i + 1, len(rs)):
            a, b = rs[i], rs[j]
            if a.overlaps(b) and offsets[i] < offsets[j] + b.size and offsets[j] < offsets[i] + a.size:
                raise PassError(f"buffer plan overlaps {a.name} and {b.name}")


def c_name(text: str) -> str:
    s = re.sub(r"[^A-Za-z0-9_]", "_", text)
    return s if s and not s[0].isdigit() else "t_" + s


def c_array(ctype: str, name: str, values, per_line: int = 16, const: bool = True) -> str:
    arr = np.asarray(values).reshape(-1)
    if ctype == "float":
        items = [repr(float(np.float32(x))) + "f" if np.isfinite(x) else "0.0f" for x in arr]
    elif ctype == "unsigned char":
        items = [f"0x{int(x) & 0xff:02x}" for x in arr]
    else:
        items = [str(int(x)) for x in arr]
    rows = [", ".join(items[i:i + per_line]) for i in range(0, len(items), per_line)]
    body = ",\n    ".join(rows)
    return f"{'const ' if const else ''}{ctype} {name}[{len(items)}] = {{\n    {body}\n}};\n"
