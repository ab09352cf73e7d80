"""Calibration for the quantize pass: feed samples, collect ranges, choose int8 params.

**Samples.**  ``load_samples(path, graph, limit)`` reads a ``.npz`` with one array per graph
input name (or a single array for a single-input model), batch on axis 0, in the model's
own input layout (ONNX NCHW for an ONNX model: lowering keeps graph inputs in their ONNX
shape and transposes inside the graph, so no layout change is needed here).  Each graph
run takes ``batch`` rows, where ``batch`` is the input's static leading dimension.

**Statistics.**  ``collect(graph, samples, names, bins)`` runs the float graph in the
reference interpreter (``tinyir.interp.run(..., keep=True)``) and keeps, per value, the
running min/max (pass 1) and, when ``bins`` is set, a histogram of ``bins`` equal bins
over ``[min, max]`` (pass 2: the edges are fixed by pass 1, so the histogram is exact and
independent of sample order).

**Ranges.**  ``choose_range(stats, method, percentile)``:

* ``minmax``: the observed ``[min, max]``.
* ``percentile``: cut ``(100 - p) / 2`` percent on each side (onnxruntime's asymmetric
  rule), clipped to the observed range.
* ``entropy``: the TensorRT KL-divergence threshold (onnxruntime ``Entropy``): over
  candidate thresholds ``T``, the reference distribution ``p`` is the histogram up to
  ``T`` with the tail folded into the last bin, ``q`` is ``p`` merged into the number of
  int8 levels the range gets and spread back over ``p``'s non-empty bins; the ``T`` with
  the smallest ``KL(p || q)`` wins.  Non-negative tensors (ReLU outputs) use the 256
  levels of ``[0, T]``; signed tensors use ``|x|`` with 128 levels per side.

**Params** (TFLite converter, ``quantization_utils.cc``): the range is widened to hold 0,
``scale = (max - min) / 255`` and ``zp = clamp(round(-128 - min / scale), -128, 127)``,
in float32.  An all-zero tensor gets scale 1/255 (never a zero scale).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tinyir.errors import PassError
from tinyir.graph import Graph
from tinyir.interp.tfl_quant import round_away

METHODS = ("minmax", "percentile", "entropy")
HIST_BINS = 2048


# ---- samples ------------------------------------------------------------------------------

def load_samples(path: str, graph: Graph, limit: int) -> list[dict[str, np.ndarray]]:
    """Feeds (input name -> array) for each graph run, from a ``.npz`` of calibration data."""
    p = Path(path)
    if not p.is_file():
        raise PassError(f"quantize: calibration file {path} does not exist")
    try:
        data = np.load(p, allow_pickle=False)
        arrays = {k: np.asarray(data[k]) for k in data.files}
    except Exception as e:  # noqa: BLE001 - a user's file: say what is wrong, no traceback
        raise PassError(f"quantize: cannot read calibration file {path}: {e}") from None
    names = [v.name for v in graph.inputs]
    if len(names) == 1 and names[0] not in arrays:
        if len(arrays) != 1:
            raise PassError(f"quantize: {path} holds {sorted(arrays)}; the model has one input "
                            f"%{names[0]}, so give one array (or one named {names[0]!r})")
        arrays = {names[0]: next(iter(arrays.values()))}
    missing = [n for n in names if n not in arrays]
    if missing:
        raise PassError(f"quantize: {path} has no array for input(s) {', '.join(missing)} "
                        f"(it holds {', '.join(sorted(arrays))})")
    counts = set()
    for v in graph.inputs:
        a = arrays[v.name]
        shape = v.type.shape
        if shape is None or a.ndim != len(shape) or any(
                isinstance(d, int) and d != s for d, s in zip(shape[1:], a.shape[1:])):
            raise PassError(f"quantize: calibration array {v.name!r} has shape {list(a.shape)}; "
                            f"input %{v.name} is {list(shape or [])} (batch on axis 0, in the "
                            "model's own layout)")
        counts.add(a.shape[0])
    n = min(min(counts), limit) if limit > 0 else min(counts)
    if n == 0:
        raise PassError(f"quantize: calibration file {path} holds no samples")
    batch = graph.inputs[0].type.shape[0]
    batch = batch if isinstance(batch, int) and batch > 0 else 1
    feeds = []
    for start in range(0, n - batch + 1, batch):
        feeds.append({v.name: arrays[v.name][start:start + batch].astype(v.type.dtype.numpy)
                      for v in graph.inputs})
    if not feeds:
        raise PassError(f"quantize: calibration file {path} holds {n} samples; the model "
                        f"takes batches of {batch}")
    return feeds


# ---- statistics ---------------------------------------------------------------------------

@dataclass
class Stats:
    """What calibration saw of one value: its range, and a histogram over that range."""

    lo: float = np.inf
    hi: float = -np.inf
    hist: np.ndarray | None = None
    count: int = 0
    zeros: int = 0
    sums: np.ndarray | None = field(default=None, repr=False)  # per-channel sums (last axis)

    def add_range(self, a: np.ndarray) -> None:
        self.lo = min(self.lo, float(a.min()))
        self.hi = max(self.hi, float(a.max()))

    def add_hist(self, a: np.ndarray, bins: int) -> None:
        if self.hist is None:
            self.hist = np.zeros(bins, np.int64)
        if self.hi > self.lo:
            h, _ = np.histogram(a, bins=bins, range=(self.lo, self.hi))
            self.hist += h
            self.zeros += int(np.count_nonzero(a == 0))

    def add_mean(self, a: np.ndarray) -> None:
        flat = a.reshape(-1, a.shape[-1]).astype(np.float64)
        s = flat.sum(axis=0)
        self.sums = s if self.sums is None else self.sums + s
        self.count += flat.shape[0]

    @property
    def channel_mean(self) -> np.ndarray | None:
        return None if self.sums is None else self.sums / max(self.count, 1)


def collect(graph: Graph, samples: list[dict], names: list[str], bins: int = 0,
            means: bool = False) -> dict[str, Stats]:
    """Per-value statistics of the float graph over ``samples`` (see the module docstring)."""
    from tinyir.interp import Interpreter

    interp = Interpreter(graph)
    stats = {n: Stats() for n in names}
    envs_needed = 2 if bins else 1
    for pass_no in range(envs_needed):
        for feeds in samples:
            env = interp.run(feeds, keep=True)
            for n, st in stats.items():
                a = np.asarray(env[n], np.float32)
                if pass_no == 0:
                    st.add_range(a)
                    if means and a.ndim >= 1:
                        st.add_mean(a)
                else:
                    st.add_hist(a, bins)
    return stats


# ---- ranges -------------------------------------------------------------------------------

def choose_range(st: Stats, method: str, percentile: float = 99.99) -> tuple[float, float]:
    """The ``[lo, hi]`` a value's int8 grid should cover (see the module docstring)."""
    lo, hi = st.lo, st.hi
    if method == "minmax" or st.hist is None or not hi > lo:
        return lo, hi
    edges = np.linspace(lo, hi, st.hist.size + 1)
    if method == "percentile":
        cdf = np.cumsum(st.hist) / max(st.hist.sum(), 1)
        cut = (100.0 - percentile) / 200.0
        i_lo = int(np.searchsorted(cdf, cut, side="left"))
        i_hi = int(np.searchsorted(cdf, 1.0 - cut, side="left"))
        return max(lo, float(edges[i_lo])), min(hi, float(edges[min(i_hi + 1, st.hist.size)]))
    if method == "entropy":
        # exact zeros (ReLU's clipped half) are exact on every grid: they do not vote
        hist = st.hist.copy()
        zero_bin = min(int((0.0 - lo) / (hi - lo) * hist.size), hist.size - 1)
        if 0 <= zero_bin:
            hist[zero_bin] = max(hist[zero_bin] - st.zeros, 0)
        if lo >= 0.0:
            t = kl_threshold(hist, 256)
            return lo, lo + (hi - lo) * t
        # |x| histogram on a grid over [0, max|x|]
        m = max(-lo, hi)
        centers = (edges[:-1] + edges[1:]) / 2
        habs, _ = np.histogram(np.abs(centers), bins=st.hist.size, range=(0.0, m),
                               weights=hist)
        t = kl_threshold(habs, 128) * m
        return max(lo, -t), min(hi, t)
    raise PassError(f"quantize: unknown calibration method {method!r} "
                    f"(methods: {', '.join(METHODS)})")


def kl_threshold(hist: np.ndarray, levels: int) -> float:
    """The fraction of the histogram's range that minimises KL(p || q), q with ``levels``."""
    hist = np.asarray(hist, np.float64)
    n = hist.size
    if n <= levels or hist.sum() == 0:
        return 1.0
    best_i, best_kl = n, np.inf
    step = max(1, (n - levels) // 512)
    for i in list(range(levels, n, step)) + [n]:
        p = hist[:i].copy()
        p[-1] += hist[i:].sum()
        nz = p > 0
        # merge into `levels` groups, spread each group's mass over its non-empty bins
        groups = np.minimum((np.arange(i) * levels) // i, levels - 1)
        mass = np.bincount(groups, weights=hist[:i], minlength=levels)
        filled = np.bincount(groups, weights=nz.astype(np.float64), minlength=levels)
        q = np.where(nz, mass[groups] / np.maximum(filled[groups], 1), 0.0)
        ps, qs = p[nz] / p.sum(), q[nz] / max(q.sum(), 1e-300)
        kl = float(np.sum(ps * np.log(ps / np.maximum(qs, 1e-300))))
        if kl < best_kl:
            best_i, best_kl = i, kl
    return best_i / n


# ---- params -------------------------------------------------------------------------------

def asymmetric_params(lo: float, hi: float) -> tuple[float, int]:
    """(scale, zero point) of an int8 activation covering ``[lo, hi]`` (and 0)."""
    lo, hi = np.float32(min(lo, 0.0)), np.float32(max(hi, 0.0))
    if not hi > lo:
        return float(np.float32(1.0 / 255)), -128
    scale = np.float32((hi - lo) / np.float32(255))
    zp = int(np.clip(round_away(np.float32(-128) - lo / scale), -128, 127))
    return float(scale), zp
