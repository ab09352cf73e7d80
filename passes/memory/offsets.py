"""Offset assignment for fixed lifetimes: a portfolio of greedy placements plus local search.

The problem is dynamic storage allocation (rectangles with fixed x-intervals; NP-hard).
Every heuristic here places buffers one at a time in some *placement order*:

* **first fit**: the lowest address where the buffer fits between the already-placed
  buffers that overlap it in time;
* **best fit**: the smallest such gap (TFLite's ``SimpleMemoryArena``), else the end.

Placement orders tried: size descending (ties: earlier start; TFLite's greedy by size),
size descending with longer lifetime first, Vela's "urgency" (largest live total over the
buffer's lifetime), lifetime length, and TFLM's own GreedyMemoryPlanner (so the result is
never worse than TFLM's).  The best seeds then go through a bottleneck hill climb (the
Vela / TVM USMP idea): take a buffer that ends at the arena top, move it (or a buffer that
conflicts with it) earlier in the placement order, re-place, keep improvements; it stops
at the order's lower bound ``max_t sum(live sizes)``, which no assignment can beat.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from typing import Sequence

from tinyir.passes.memory.lifetimes import LiveRange
from tinyir.passes.memory.tflm_planner import Placer, greedy_offsets


@dataclass(frozen=True)
class Assignment:
    offsets: tuple[int, ...]
    arena: int
    method: str


def place(ranges: Sequence[LiveRange], order: Sequence[int], conf: list[list[int]] | None = None,
          best: bool = False, fixed: dict[int, int] | None = None) -> list[int]:
    """Offsets from placing buffers in ``order`` by first fit (or best fit).

    ``conf`` is accepted for compatibility and not needed (see ``Placer``).
    """
    placer = Placer(ranges)
    off = [-1] * len(ranges)
    for i, o in (fixed or {}).items():
        off[i] = o
        placer.add(i, o)
    for i in order:
        if off[i] >= 0:
            continue
        off[i] = placer.fit(i, best)
        placer.add(i, off[i])
    return off


def arena_of(ranges: Sequence[LiveRange], offsets: Sequence[int]) -> int:
    return max((o + r.size for r, o in zip(ranges, offsets)), default=0)


def _orders(ranges: Sequence[LiveRange], profile: list[int]) -> dict[str, list[int]]:
    n = range(len(ranges))
    urgency = [max(profile[r.first:r.last + 1]) for r in ranges]
    length = [r.last - r.first for r in ranges]
    return {
        "size": sorted(n, key=lambda i: (-ranges[i].size, ranges[i].first, i)),
        "size-long": sorted(n, key=lambda i: (-ranges[i].size, -length[i], i)),
        "urgency": sorted(n, key=lambda i: (-urgency[i], -length[i], ranges[i].first,
                                            -ranges[i].size, i)),
        "lifetime": sorted(n, key=lambda i: (-length[i], -ranges[i].size, i)),
    }


def assign_offsets(ranges: Sequence[LiveRange], lower_bound: int, budget_s: float = 2.0,
                   seed: int = 0) -> Assignment:
    """The best assignment the portfolio and the hill climb find within ``budget_s``."""
    if not ranges:
        return Assignment((), 0, "empty")
    conf = _LazyConflicts(ranges)
    delta = [0] * (max(r.last for r in ranges) + 2)
    for r in ranges:
        delta[r.first] += r.size
        delta[r.last + 1] -= r.size
    profile, acc = [], 0
    for d in delta[:-1]:
        acc += d
        profile.append(acc)
    tflm = greedy_offsets(ranges)
    cands = [Assignment(tuple(tflm), arena_of(ranges, tflm), "tflm-greedy")]
    seeds: list[tuple[int, str, list[int], bool]] = []
    fits = (False, True) if len(ranges) <= 300 else (False,)
    orders = _orders(ranges, profile)
    if len(ranges) > 300:
        orders = {k: orders[k] for k in ("size", "urgency")}
    for name, order in orders.items():
        for best in fits:
            off = place(ranges, order, conf, best)
            a = arena_of(ranges, off)
            label = f"{'best' if best else 'first'}-fit/{name}"
            cands.append(Assignment(tuple(off), a, label))
            seeds.append((a, label, order, best))
    win = min(cands, key=lambda c: c.arena)
    if win.arena <= lower_bound:
        return win
    seeds.sort(key=lambda s: s[0])
    rng = random.Random(seed)
    deadline = time.perf_counter() + budget_s
    for arena0, label, order, best in seeds[:2 if len(ranges) <= 300 else 1]:
        climbed = _hill_climb(ranges, list(order), conf, best, arena0, lower_bound, rng,
                              deadline)
        if climbed is not None and climbed.arena < win.arena:
            win = Assignment(climbed.offsets, climbed.arena, label + "+climb")
        if win.arena <= lower_bound or time.perf_counter() > deadline:
            break
    return win


class _LazyConflicts:
    """``conflicts(ranges)[i]`` (same order), computed only for the buffers asked for."""

    def __init__(self, ranges: Sequence[LiveRange]):
        self.ranges = ranges
        self.cache: dict[int, list[int]] = {}

    def __getitem__(self, i: int) -> list[int]:
        if i not in self.cache:
            rs = self.ranges
            f, last = rs[i].first, rs[i].last
            self.cache[i] = sorted((j for j, r in enumerate(rs)
                                    if j != i and r.first <= last and f <= r.last),
                                   key=lambda j: (rs[j].first, j))
        return self.cache[i]


def _hill_climb(ranges, order, conf, best, arena, lower_bound, rng, deadline):
    """Move bottleneck buffers earlier in the placement order while the arena shrinks."""
    best_off = None
    iters = 0
    n = len(ranges)
    max_iters = min(2000, max(2, 2_000_000 // (n * n)))  # deterministic work bound
    while arena > lower_bound and time.perf_counter() < deadline and iters < max_iters:
        iters += 1
        off = place(ranges, order, conf, best) if best_off is None else best_off
        top = [i for i in range(len(ranges)) if off[i] + ranges[i].size == arena]
        victim = rng.choice(top)
        pool = [victim] + conf[victim]
        a = rng.choice(pool)
        pos = {b: k for k, b in enumerate(order)}
        new = list(order)
        if rng.random() < 0.5 or a == victim:
            k = pos[a]
            j = rng.randrange(0, k + 1)
            new.insert(j, new.pop(k))
        else:
            b = rng.choice(pool)
            new[pos[a]], new[pos[b]] = new[pos[b]], new[pos[a]]
        new_off = place(ranges, new, conf, best)
        new_arena = arena_of(ranges, new_off)
        if new_arena <= arena:
            order, arena, best_off = new, new_arena, new_off
    if best_off is None:
        return None
    return Assignment(tuple(best_off), arena, "climb")
