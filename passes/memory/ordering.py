"""Operator order that minimises the peak of live bytes (the order's lower bound).

Memory model (matches :mod:`lifetimes` with closed intervals): after a set ``S`` of
operators has run, the live buffers are the graph inputs and results whose readers are
not all in ``S`` (graph outputs stay live).  Running operator ``v`` next costs
``live(S) + new buffers of v + scratch(v)``; the order's peak is the largest such cost.

* **Exact search**: dynamic programming over executed sets (downsets of the DAG), layer by
  layer (|S| = k), keeping for each set the smallest peak and its live bytes.
* **Decomposition**: an operator comparable to every other one (each other op is its
  ancestor or descendant) sits at the same position in every topological order, so the
  DAG splits there into segments searched one after another (single-tensor cuts on
  chains, residual blocks, dense blocks, fire modules).
* **Beyond the cap**: when a layer holds more than ``state_cap`` sets, only the best
  ``state_cap`` (by peak, then live bytes) are kept: a beam search; the result says
  whether the search stayed exact.  A deterministic work budget (operators examined) bounds
  the search: past it, open layers complete greedily and later segments keep file order.

Buffers follow the in-place decisions that do not depend on order (views share their
input's buffer).  The file order is kept unless the search finds a strictly lower peak.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass

from tinyir.graph import Graph, Node

from tinyir.passes.memory.lifetimes import (BackendRules, align, buffer_bytes, is_arena_value,
                                            rules_for, view_groups)


@dataclass(frozen=True)
class OrderResult:
    order: tuple[Node, ...]
    peak: int
    file_peak: int
    exact: bool
    states: int
    segments: int


class _Model:
    def __init__(self, graph: Graph, rules: BackendRules, inplace: bool):
        self.nodes = graph.nodes
        index = {id(n): i for i, n in enumerate(self.nodes)}
        n = len(self.nodes)
        root = view_groups(graph, rules) if inplace else {}
        bufs: dict[str, int] = {}
        self.size: list[int] = []
        self.readers: list[int] = []        # bitmask of ops reading the buffer
        self.pinned: list[bool] = []        # graph output: never freed
        self.creator: list[int] = []        # op index, -1 for graph inputs
        outs = {v.name for v in graph.outputs}

        def buf(v) -> int:
            r = root.get(v.name, v.name)
            if r not in bufs:
                bufs[r] = len(self.size)
                self.size.append(0)
                self.readers.append(0)
                self.pinned.append(False)
                self.creator.append(-1)
            b = bufs[r]
            self.size[b] = max(self.size[b], align(buffer_bytes(v), rules.alignment))
            self.pinned[b] |= v.name in outs
            return b

        for v in graph.inputs:
            if is_arena_value(v):
                buf(v)
        self.new: list[list[int]] = [[] for _ in range(n)]
        self.scratch = [0] * n
        self.preds = [0] * n
        for i, node in enumerate(self.nodes):
            for v in node.outputs:
                if is_arena_value(v):
                    b = buf(v)
                    if self.creator[b] == -1 and v.name == root.get(v.name, v.name):
                        self.creator[b] = i
                        self.new[i].append(b)
            for v in node.inputs:
                if v is not None and v.graph is graph and is_arena_value(v):
                    self.readers[buf(v)] |= 1 << i
                if v is not None and v.producer is not None and id(v.producer) in index:
                    self.preds[i] |= 1 << index[id(v.producer)]
            if rules.scratch is not None:
                self.scratch[i] = sum(align(s, rules.alignment) for s in rules.scratch(node))
        self.reads = [[] for _ in range(n)]
        for b, mask in enumerate(self.readers):
            for i in _bits(mask):
                self.reads[i].append(b)
        self.pred_list = [list(_bits(p)) for p in self.preds]
        self.newsz = [sum(self.size[b] for b in self.new[i]) for i in range(n)]
        self.grow = [self.newsz[i] + self.scratch[i] for i in range(n)]
        self.frees = [[b for b in self.reads[i] + self.new[i] if not self.pinned[b]]
                      for i in range(n)]
        self.initial = sum(self.size[b] for b in range(len(self.size)) if self.creator[b] == -1)

    def step(self, done: int, live: int, i: int) -> tuple[int, int]:
        """(cost of running op i after ``done``, live bytes afterwards)."""
        after = done | (1 << i)
        freed = 0
        readers, size = self.readers, self.size
        for b in self.frees[i]:
            if readers[b] & ~after == 0:
                freed += size[b]
        return live + self.grow[i], live + self.newsz[i] - freed

    def peak_of(self, order: list[int]) -> int:
        done, live, peak = 0, self.initial, self.initial
        for i in order:
            cost, live = self.step(done, live, i)
            done |= 1 << i
            peak = max(peak, cost)
        return peak


def _bits(mask: int):
    while mask:
        low = mask & -mask
        yield low.bit_length() - 1
        mask ^= low


def _cut_ops(m: _Model) -> list[int]:
    """Ops comparable to every other op (fixed position in every topological order)."""
    n = len(m.nodes)
    anc = [0] * n
    for i in range(n):  # nodes are in topological order
        a = m.preds[i]
        for p in m.pred_list[i]:
            a |= anc[p]
        anc[i] = a
    desc = [0] * n
    for i in reversed(range(n)):
        for p in m.pred_list[i]:
            desc[p] |= desc[i] | (1 << i)
    full = (1 << n) - 1
    return [i for i in range(n) if (anc[i] | desc[i] | (1 << i)) == full]


def best_order(graph: Graph, backend: str | BackendRules = "tflm", inplace: bool = False,
               state_cap: int = 64, max_work: int = 300_000) -> OrderResult:
    """An operator order with the smallest peak the search finds (see module docstring)."""
    budget = [max_work]
    rules = rules_for(backend)
    m = _Model(graph, rules, inplace)
    n = len(m.nodes)
    file_peak = m.peak_of(list(range(n)))
    if n == 0:
        return OrderResult((), file_peak, file_peak, True, 0, 0)
    cuts = _cut_ops(m) if n <= 4000 else []
    bounds = []
    start = 0
    for c in cuts:
        if c > start:
            bounds.append(list(range(start, c)))
        bounds.append([c])
        start = c + 1
    if start < n:
        bounds.append(list(range(start, n)))
    done, live, peak = 0, m.initial, m.initial
    order: list[int] = []
    exact = True
    states = 0
    for seg in bounds:
        if len(seg) == 1:
            cost, live = m.step(done, live, seg[0])
            peak = max(peak, cost)
            done |= 1 << seg[0]
            order.append(seg[0])
            continue
        seg_order, seg_peak, live, seg_exact, seg_states = _search(m, seg, done, live, state_cap,
                                                                   budget)
        exact &= seg_exact
        states += seg_states
        peak = max(peak, seg_peak)
        for i in seg_order:
            done |= 1 << i
        order.extend(seg_order)
    if peak >= file_peak:
        return OrderResult(tuple(m.nodes), file_peak, file_peak, exact, states, len(bounds))
    return OrderResult(tuple(m.nodes[i] for i in order), peak, file_peak, exact, states,
                       len(bounds))


def _search(m: _Model, seg: list[int], base: int, live0: int, cap: int, budget: list[int]):
    """Layered DP over the downsets of one segment; beam of ``cap`` sets per layer.

    ``budget[0]`` counts work left (ops examined per expanded set; shared by all
    segments, deterministic):
    when it runs out, the layer keeps only its best set (a greedy completion), and a
    segment not yet started keeps its file order.
    """
    layers: list[dict[int, tuple[int, int, int, int]]] = [{base: (0, live0, -1, -1)}]
    exact = True
    states = 1
    for depth in range(len(seg)):
        if budget[0] <= 0 and len(layers) > 1 and len(layers[-1]) >= 1:
            if len(layers[-1]) > 1:
                exact = False
            (key, val), = [min(layers[-1].items(), key=lambda kv: kv[1][:2])]
            tail, peak, live, n_states, chose = _greedy(m, seg, key, val[0], val[1])
            states += n_states
            order = []
            for layer in reversed(layers[1:]):
                _, _, parent, i = layer[key]
                order.append(i)
                key = parent
            return order[::-1] + tail, peak, live, exact and not chose, states
        if budget[0] <= 0 and len(layers) == 1:
            done, live, peak = base, live0, 0
            for i in seg:
                cost, live = m.step(done, live, i)
                done |= 1 << i
                peak = max(peak, cost)
            return list(seg), peak, live, False, states
        nxt: dict[int, tuple[int, int, int, int]] = {}
        if len(layers[-1]) > 1 and budget[0] <= 0:
            layers[-1] = dict([min(layers[-1].items(), key=lambda kv: kv[1][:2])])
            exact = False
        for done, (peak, live, _, _) in layers[-1].items():
            if nxt and budget[0] <= 0:
                exact = False
                break
            budget[0] -= len(seg)
            for i in seg:
                bit = 1 << i
                if done & bit or m.preds[i] & ~done:
                    continue
                cost, after = m.step(done, live, i)
                key = done | bit
                cand = (max(peak, cost), after, done, i)
                old = nxt.get(key)
                if old is None or cand[:2] < old[:2]:
                    nxt[key] = cand
        states += len(nxt)
        if len(nxt) > cap:
            exact = False
            nxt = dict(sorted(nxt.items(), key=lambda kv: kv[1][:2])[:cap])
        layers.append(nxt)
    (key, (peak, live, _, _)), = layers[-1].items()
    order = []
    for layer in reversed(layers[1:]):
        _, _, parent, i = layer[key]
        order.append(i)
        key = parent
    return order[::-1], peak, live, exact, states


def _greedy(m: _Model, seg: list[int], done: int, peak: int, live: int):
    """Greedy completion of one segment from the executed set ``done``.

    At each step it runs the ready op with the smallest (peak so far, live bytes after),
    ties to the earliest op in ``seg`` -- the choice the layered search makes when its
    beam holds a single set -- with the costs kept up to date incrementally (remaining
    readers per buffer) instead of re-evaluated for every ready op.
    """
    rank = {i: k for k, i in enumerate(seg)}
    todo = [i for i in seg if not done >> i & 1]
    rem = {}                      # buffer -> readers not yet run
    for i in todo:
        for b in m.reads[i]:
            if b not in rem:
                rem[b] = bin(m.readers[b] & ~done).count("1")
    npred = {}
    succ: dict[int, list[int]] = {}
    for i in todo:
        ps = [p for p in m.pred_list[i] if not done >> p & 1]
        npred[i] = len(ps)
        for p in ps:
            succ.setdefault(p, []).append(i)
    grow, freed = {}, {}
    for i in todo:
        new = sum(m.size[b] for b in m.new[i])
        grow[i] = new + m.scratch[i]
        f = sum(m.size[b] for b in m.new[i] if not m.pinned[b] and m.readers[b] == 0)
        f += sum(m.size[b] for b in m.reads[i] if not m.pinned[b] and rem[b] == 1)
        freed[i] = (new, f)
    ready = sorted((i for i in todo if npred[i] == 0), key=rank.__getitem__)
    order = []
    states = 0
    chose = False
    while ready:
        states += len(ready)
        chose |= len(ready) > 1
        best_k, best_key = 0, None
        for k, i in enumerate(ready):
            new, f = freed[i]
            c = live + grow[i]
            key = (c if c > peak else peak, live + new - f)
            if best_key is None or key < best_key:
                best_k, best_key = k, key
        i = ready.pop(best_k)
        peak, live = best_key
        done |= 1 << i
        order.append(i)
        for b in m.reads[i]:
            if b in rem:
                rem[b] -= 1
                if rem[b] == 1 and not m.pinned[b]:
                    j = (m.readers[b] & ~done).bit_length() - 1
                    if j in freed:
                        new, f = freed[j]
                        freed[j] = (new, f + m.size[b])
        for j in succ.get(i, ()):
            npred[j] -= 1
            if npred[j] == 0:
                bisect.insort(ready, j, key=rank.__getitem__)
    return order, peak, live, states, chose
