"""SRAM planner: lifetimes, TFLM's greedy planner, order search, offsets, verify_plan.

Property tests run the whole planner on random DAGs (hypothesis): every plan passes the
independent ``verify_plan``, never beats the lower bound of its order, never loses to
TFLM's greedy planner, and the order search never raises the peak.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import corpus
from tinyir.errors import PassError
from tinyir.formats import load
from tinyir.graph import Graph
from tinyir.passes.memory import live_ranges, plan_memory, verify_plan
from tinyir.passes.memory.lifetimes import LiveRange
from tinyir.passes.memory.offsets import assign_offsets
from tinyir.passes.memory.ordering import best_order
from tinyir.passes.memory.tflm_planner import greedy_offsets, head_size
from tinyir.types import DType, TensorType


def t(n: int) -> TensorType:
    return TensorType((n,), DType.INT8)


def chain(sizes) -> Graph:
    g = Graph("chain")
    v = g.add_input("x", t(sizes[0]))
    for i, s in enumerate(sizes[1:]):
        v = g.add_node("test.Op", [v], [(f"v{i}", t(s))]).outputs[0]
    g.outputs = [v]
    return g


def test_lifetimes_follow_tflm_scopes():
    g = chain([100, 200, 50])
    lt = live_ranges(g, backend="tflm")
    got = {r.name: (r.size, r.first, r.last) for r in lt.ranges}
    # input created at 0, read by op 1; v0 made by op 1, read by op 2; output lives to the end
    assert got == {"x": (112, 0, 1), "v0": (208, 1, 2), "v1": (64, 2, 2)}
    assert lt.profile() == [112, 320, 272]
    assert lt.lower_bound == 320


def test_greedy_ties_go_later_added_first():
    # TFLM copies online buffers to the array's end in reverse order before its stable
    # sort, so of two equal sizes the later-added one is placed first (at offset 0).
    ranges = [LiveRange("a", 32, 0, 1), LiveRange("b", 32, 1, 2), LiveRange("c", 16, 2, 3)]
    assert greedy_offsets(ranges) == [32, 0, 32]
    assert greedy_offsets(ranges, [64, -1, -1]) == [64, 0, 32]


def test_greedy_first_fit_uses_gaps():
    ranges = [LiveRange("big", 64, 0, 0), LiveRange("late", 48, 2, 3),
              LiveRange("mid", 32, 0, 2), LiveRange("small", 16, 3, 3)]
    off = greedy_offsets(ranges)
    assert off == [0, 0, 64, 48]
    assert head_size(ranges, off) == 96


def test_verify_plan_catches_overlap():
    g = chain([64, 64, 64, 64])
    r = plan_memory(g, "generic", reorder=False)
    verify_plan(g, r.optimized)
    bad = dataclasses.replace(r.optimized, offsets=tuple(0 for _ in r.optimized.offsets))
    with pytest.raises(PassError, match="live together and overlap"):
        verify_plan(g, bad)
    odd = dataclasses.replace(r.optimized, offsets=tuple(o + 1 for o in r.optimized.offsets))
    with pytest.raises(PassError, match="aligned"):
        verify_plan(g, odd)


def test_order_search_finds_the_better_branch_order():
    # x -> a (big) -> a2 (small) ; x -> b (small) -> b2 ; concat(a2, b2)
    # file order a, b, a2, b2 keeps a and b alive together; a, a2, b, b2 does not.
    g = Graph("branches")
    x = g.add_input("x", t(16))
    a = g.add_node("test.Op", [x], [("a", t(1000))]).outputs[0]
    b = g.add_node("test.Op", [x], [("b", t(1000))]).outputs[0]
    a2 = g.add_node("test.Op", [a], [("a2", t(16))]).outputs[0]
    b2 = g.add_node("test.Op", [b], [("b2", t(16))]).outputs[0]
    out = g.add_node("test.Cat", [a2, b2], [("y", t(32))]).outputs[0]
    g.outputs = [out]
    res = best_order(g, "generic")
    assert res.exact and res.peak < res.file_peak
    assert [n.outputs[0].name for n in res.order][:3] in (["a", "a2", "b"], ["b", "b2", "a"])
    r = plan_memory(g, "generic")
    assert r.optimized.arena_bytes == r.lower_bound < r.baseline.arena_bytes
    verify_plan(g, r.optimized)


def test_reshape_is_in_place_only_when_asked():
    g = Graph("view")
    x = g.add_input("x", t(256))
    a = g.add_node("test.Op", [x], [("a", t(256))]).outputs[0]
    shape = g.add_const("s", np.array([16, 16], np.int32))
    r = g.add_node("tfl.RESHAPE", [a, shape], [("r", TensorType((16, 16), DType.INT8))],
                   {"new_shape": [16, 16]}).outputs[0]
    y = g.add_node("test.Op", [r], [("y", t(256))]).outputs[0]
    g.outputs = [y]
    plain = live_ranges(g, backend="tflm")
    merged = live_ranges(g, backend="tflm", inplace=True)
    assert len(merged.ranges) == len(plain.ranges) - 1
    assert merged.value_buffer["r"] == merged.value_buffer["a"] == "a"
    assert plain.profile()[2] == 512 and merged.profile()[2] == 256  # the RESHAPE step


# ---- random DAGs -----------------------------------------------------------------------

@st.composite
def dags(draw):
    n = draw(st.integers(1, 14))
    g = Graph("random")
    vals = [g.add_input("x", t(draw(st.integers(1, 300))))]
    for i in range(n):
        k = draw(st.integers(1, min(3, len(vals))))
        ins = draw(st.lists(st.sampled_from(vals), min_size=k, max_size=k, unique_by=id))
        kind = draw(st.sampled_from(["test.Op", "test.Op", "onnx.Relu", "onnx.Reshape"]))
        if kind == "onnx.Reshape":
            ins = ins[:1]
            size = ins[0].type.shape[0]
        elif kind == "onnx.Relu":
            ins = ins[:1]
            size = ins[0].type.shape[0]
        else:
            size = draw(st.integers(1, 300))
        vals.append(g.add_node(kind, ins, [(f"v{i}", t(size))]).outputs[0])
    outs = draw(st.lists(st.sampled_from(vals[1:]), min_size=1, max_size=2, unique_by=id))
    g.outputs = outs
    return g


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(dags(), st.sampled_from(["generic", "c", "tflm"]))
def test_random_dag_plans_are_valid_and_bounded(g, backend):
    r = plan_memory(g, backend)
    verify_plan(g, r.optimized)
    verify_plan(g, r.baseline)
    assert r.optimized.arena_bytes >= r.optimized.lower_bound
    assert r.baseline.arena_bytes >= r.baseline.lower_bound
    assert r.optimized.arena_bytes <= r.baseline.arena_bytes
    res = best_order(g, backend)
    assert res.peak <= res.file_peak
    lt = live_ranges(g, list(res.order), backend)
    assert lt.lower_bound == res.peak


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 40), st.integers(0, 12), st.integers(0, 6)),
                min_size=1, max_size=25))
def test_offsets_never_overlap_live_buffers(specs):
    ranges = [LiveRange(f"b{i}", 16 * s, f, f + d) for i, (s, f, d) in enumerate(specs)]
    lb = max(sum(r.size for r in ranges if r.first <= k <= r.last) for k in range(20))
    for off in (greedy_offsets(ranges), list(assign_offsets(ranges, lb).offsets)):
        for i, a in enumerate(ranges):
            for j, b in enumerate(ranges[:i]):
                if a.overlaps(b):
                    assert off[i] + a.size <= off[j] or off[j] + b.size <= off[i]
        assert head_size(ranges, off) >= lb
    assert assign_offsets(ranges, lb).arena <= head_size(ranges, greedy_offsets(ranges))


# ---- corpus ----------------------------------------------------------------------------

CHAINS = ["mlperf_ic_resnet8_int8.tflite", "mlperf_vww_mbv1_int8.tflite",
          "tflm_person_detect_int8.tflite", "mlperf_kws_dscnn_int8.tflite",
          "tinyengine_vww_int8.tflite", "tinyengine_detection_int8.tflite",
          "tf_mobilenet_v1_025_128_fp32.tflite"]


@pytest.mark.parametrize("name", CHAINS)
def test_chains_and_residual_nets_reach_the_lower_bound(name):
    g = load(corpus.model(f"tflite/{name}"))
    r = plan_memory(g, "tflm")
    assert r.optimized.arena_bytes == r.lower_bound
    assert r.optimized.arena_bytes <= r.baseline.arena_bytes
    assert r.tflm_optimized.min_arena <= r.tflm.min_arena
    assert r.plan_seconds < 1.0


def test_onnx_graphs_plan_with_generic_rules():
    g = load(corpus.model("onnx/onnxlight_squeezenet.onnx"))
    r = plan_memory(g, "tflm")
    assert r.backend == "generic" and r.tflm is None
    assert r.optimized.arena_bytes <= r.baseline.arena_bytes
    verify_plan(g, r.optimized)


# ---- placement speed-ups keep the plain semantics ------------------------------------

def _plain_fit(ranges, order, best=False, fixed=None, first_at_zero=False):
    """The scalar loop the vectorised Placer replaces (address order, insertion order ties)."""
    off = [-1] * len(ranges)
    placed = []  # (offset, seq, index)
    for i, o in (fixed or {}).items():
        off[i] = o
        placed.append((o, len(placed), i))
    for k, i in enumerate(order):
        if off[i] >= 0:
            continue
        r = ranges[i]
        cand, chosen, gap = 0, None, None
        for lo, _, j in sorted(placed):
            q = ranges[j]
            if q.first > r.last or r.first > q.last:
                continue
            if lo - cand >= r.size:
                if not best:
                    chosen = cand
                    break
                if gap is None or lo - cand < gap:
                    chosen, gap = cand, lo - cand
            cand = max(cand, lo + q.size)
        off[i] = cand if chosen is None else chosen
        placed.append((off[i], len(placed), i))
    return off


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from([0, 16, 32, 48, 64, 128, 1008]),
                          st.integers(0, 12), st.integers(0, 5)), min_size=1, max_size=30),
       st.randoms(use_true_random=False))
def test_vectorised_placement_matches_the_plain_loop(specs, rnd):
    from tinyir.passes.memory.offsets import place

    ranges = [LiveRange(f"b{k}", s, f, f + d) for k, (s, f, d) in enumerate(specs)]
    order = list(range(len(ranges)))
    rnd.shuffle(order)
    fixed = {order[0]: 32} if len(order) > 2 else None
    for best in (False, True):
        assert place(ranges, order, None, best, fixed) == _plain_fit(ranges, order, best, fixed)
    # TFLM's order: reverse insertion order, then a stable sort by size, descending
    tflm = sorted(reversed(range(len(ranges))), key=lambda i: -ranges[i].size)
    off = greedy_offsets(ranges)
    assert off == _plain_fit(ranges, tflm)


def test_densenet_plans_fast_paths_without_losing_bytes():
    """The greedy completion of the order search and the vectorised placement give the
    same plan as before on the largest corpus graph (timing is in bench_memory.py)."""
    g = load(corpus.model("onnx/onnxlight_densenet121.onnx"))
    r = plan_memory(g, "generic")
    verify_plan(g, r.optimized)
    assert r.stats["searched_peak"] <= 35_779_744 < r.stats["file_peak"]
    assert r.optimized.arena_bytes <= 36_181_152
    assert r.optimized.arena_bytes <= r.baseline.arena_bytes
