"""Memory report rendering: the per-step live-memory table and an SVG timeline.

The timeline draws each buffer as a rectangle: x = steps [first, last + 1), y = bytes
[offset, offset + size); the dashed line is the lower bound of the order and the solid
line the arena.  The SVG is written by hand (no plotting dependency).
"""

from __future__ import annotations

from html import escape

from tinyir.passes.memory.lifetimes import Lifetimes


def step_rows(lt: Lifetimes) -> list[dict]:
    """One row per step: step, operator, live bytes, live buffers (largest first)."""
    prof = lt.profile()
    rows = []
    for t in range(lt.steps):
        live = sorted(lt.live_at(t), key=lambda r: -r.size)
        rows.append({"step": t, "op": "(inputs)" if t == 0 else lt.order[t - 1],
                     "live_bytes": prof[t], "buffers": [r.name for r in live]})
    return rows


_COLORS = ["#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1",
           "#ff9da7", "#9c755f", "#bab0ac"]


def timeline_svg(plan, title: str = "") -> str:
    """An SVG picture of ``plan`` (a MemoryPlan)."""
    lt = plan.lifetimes
    width, height, left, top, bottom = 900, 420, 70, 30, 40
    arena = max(plan.arena_bytes, 1)
    steps = max(lt.steps, 1)
    sx = (width - left - 20) / steps
    sy = (height - top - bottom) / arena

    def y(b: int) -> float:
        return height - bottom - b * sy

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'font-family="sans-serif" font-size="11">',
             f'<text x="{left}" y="18" font-size="13">{escape(title)} arena {plan.arena_bytes:,}'
             f' B, lower bound {plan.lower_bound:,} B ({escape(plan.method)})</text>']
    for k, (r, off) in enumerate(zip(lt.ranges, plan.offsets)):
        x0 = left + r.first * sx
        w = max((r.last - r.first + 1) * sx - 1, 1)
        color = "#999999" if r.kind == "scratch" else _COLORS[k % len(_COLORS)]
        parts.append(f'<rect x="{x0:.1f}" y="{y(off + r.size):.1f}" width="{w:.1f}" '
                     f'height="{max(r.size * sy, 0.5):.1f}" fill="{color}" fill-opacity="0.75" '
                     f'stroke="#333" stroke-width="0.3"><title>{escape(r.name)}: {r.size} B @ '
                     f'{off}, steps {r.first}-{r.last}</title></rect>')
    for value, dash in ((plan.arena_bytes, ""), (plan.lower_bound, ' stroke-dasharray="6 4"')):
        parts.append(f'<line x1="{left}" x2="{width - 20}" y1="{y(value):.1f}" '
                     f'y2="{y(value):.1f}" stroke="#000"{dash}/>')
    parts.append(f'<line x1="{left}" x2="{left}" y1="{top}" y2="{height - bottom}" '
                 f'stroke="#000"/>')
    parts.append(f'<text x="{left - 5}" y="{y(arena):.1f}" text-anchor="end">{arena:,}</text>')
    parts.append(f'<text x="{left - 5}" y="{height - bottom}" text-anchor="end">0</text>')
    parts.append(f'<text x="{(width + left) / 2:.0f}" y="{height - 10}" text-anchor="middle">'
                 f'step (operator), {lt.steps - 1} operators</text>')
    parts.append("</svg>")
    return "\n".join(parts) + "\n"
