"""SRAM planning: lifetimes -> operator order -> offsets, checked by :func:`verify_plan`.

``plan_memory(graph, backend)`` returns a :class:`MemoryReport`: TFLM's own plan for the
model as it is (for ``tflm``: the predicted minimum arena of the real interpreter), the
optimised plan (order search, in-place views, offset portfolio and hill climb) and the
lower bound of the optimised order.  Results are typed objects, never node attributes.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from tinyir.errors import UnsupportedError
from tinyir.graph import Graph

from tinyir.passes.memory.lifetimes import BACKENDS, LiveRange, Lifetimes, live_ranges, rules_for
from tinyir.passes.memory.offsets import assign_offsets
from tinyir.passes.memory.ordering import best_order
from tinyir.passes.memory.tflm_planner import (TflmArena, greedy_offsets, head_size,
                                               predict_tflm_arena)
from tinyir.passes.memory.verify import verify_plan


@dataclass(frozen=True)
class MemoryPlan:
    """Offsets for every buffer of one operator order (``arena_bytes`` = head size)."""

    backend: str
    lifetimes: Lifetimes
    offsets: tuple[int, ...]
    arena_bytes: int
    method: str

    @property
    def order(self) -> tuple[str, ...]:
        return self.lifetimes.order

    @property
    def alignment(self) -> int:
        return self.lifetimes.alignment

    @property
    def lower_bound(self) -> int:
        return self.lifetimes.lower_bound

    def value_offsets(self) -> dict[str, int]:
        out = {}
        for r, o in zip(self.lifetimes.ranges, self.offsets):
            for v in r.values:
                out[v] = o
        return out

    def scratch_offsets(self) -> list[tuple[str, int, int, int]]:
        """(name, offset, size, step) of each scratch buffer."""
        return [(r.name, o, r.size, r.first) for r, o in zip(self.lifetimes.ranges, self.offsets)
                if r.kind == "scratch"]


@dataclass(frozen=True)
class MemoryReport:
    """Baseline and optimised plans, bounds and timings for one graph."""

    backend: str
    baseline: MemoryPlan                # the backend's own planner, file order
    optimized: MemoryPlan               # order search + in-place + offsets
    tflm: TflmArena | None = None       # TFLM prediction (tfl graphs, backend tflm)
    tflm_optimized: TflmArena | None = None
    order_exact: bool = True
    plan_seconds: float = 0.0
    stats: dict = field(default_factory=dict)

    @property
    def lower_bound(self) -> int:
        return self.optimized.lower_bound

    @property
    def gap(self) -> int:
        return self.optimized.arena_bytes - self.optimized.lower_bound

    def to_json(self) -> dict:
        doc = {
            "backend": self.backend,
            "baseline_head_bytes": self.baseline.arena_bytes,
            "baseline_lower_bound_bytes": self.baseline.lower_bound,
            "optimized_arena_bytes": self.optimized.arena_bytes,
            "lower_bound_bytes": self.lower_bound,
            "gap_bytes": self.gap,
            "optimized_method": self.optimized.method,
            "order_changed": self.optimized.order != self.baseline.order,
            "order_search_exact": self.order_exact,
            "plan_seconds": round(self.plan_seconds, 4),
        }
        if self.tflm is not None:
            doc.update({
                "tflm_arena_bytes": self.tflm.min_arena,
                "tflm_recommended_arena_bytes": self.tflm.recommended,
                "tflm_head_bytes": self.tflm.head,
                "tflm_tail_bytes": self.tflm.tail,
                "tflm_mcu32_arena_bytes_estimate": self.tflm.mcu_min_arena,
            })
            if self.tflm.unmodeled:
                doc["tflm_unmodeled_ops"] = list(self.tflm.unmodeled)
        if self.tflm_optimized is not None:
            doc["tflm_optimized_arena_bytes"] = self.tflm_optimized.min_arena
        return doc


def _plan(graph: Graph, order, backend: str, inplace: bool, budget_s: float) -> MemoryPlan:
    lt = live_ranges(graph, order, backend, inplace=inplace)
    a = assign_offsets(lt.ranges, lt.lower_bound, budget_s=budget_s)
    return MemoryPlan(backend, lt, a.offsets, a.arena, a.method)


def plan_memory(graph: Graph, backend: str = "tflm", inplace: bool = True,
                reorder: bool = True, budget_s: float = 2.0) -> MemoryReport:
    """Plan the arena of ``graph`` for ``backend`` (``generic`` for ONNX graphs)."""
    rules_for(backend)
    t0 = time.perf_counter()
    is_tfl = all(n.dialect == "tfl" for n in graph.nodes)
    if backend == "tflm" and not is_tfl:
        backend = "generic"
    base_lt = live_ranges(graph, None, backend)
    base_off = greedy_offsets(base_lt.ranges)
    baseline = MemoryPlan(backend, base_lt, tuple(base_off), head_size(base_lt.ranges, base_off),
                          "tflm-greedy")
    cands = [_plan(graph, None, backend, inplace, budget_s)]
    exact = True
    stats = {}
    if reorder:
        res = best_order(graph, backend, inplace=inplace)
        exact = res.exact
        stats.update(order_states=res.states, order_segments=res.segments,
                     file_peak=res.file_peak, searched_peak=res.peak)
        if res.peak < res.file_peak:
            cands.append(_plan(graph, list(res.order), backend, inplace, budget_s))
    cands.append(baseline)
    best = min(cands, key=lambda p: (p.arena_bytes, p.lower_bound))
    tflm = tflm_opt = None
    if backend == "tflm":
        from tinyir.passes.memory.offline import apply_plan

        try:
            tflm = predict_tflm_arena(graph)
            if tflm.unmodeled:
                stats["tflm_unmodeled_ops"] = list(tflm.unmodeled)
            tflm_opt = predict_tflm_arena(*apply_plan(graph, best))
        except UnsupportedError as e:
            stats["tflm_prediction"] = str(e)
    report = MemoryReport(backend, baseline, best, tflm, tflm_opt, exact,
                          time.perf_counter() - t0, stats)
    verify_plan(graph, best)
    return report


__all__ = ["BACKENDS", "LiveRange", "Lifetimes", "MemoryPlan", "MemoryReport", "TflmArena",
           "live_ranges", "plan_memory", "predict_tflm_arena", "verify_plan"]
