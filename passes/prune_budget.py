"""prune to a budget: the least uniform pruning that makes ``tinyir check`` pass.

``prune{fit=tflm,board=B}`` or ``prune{fit=tflm,sram=64KiB,flash=256KiB}`` (``int8=true``
with ``calib=``: the checked model is the pruned one after ``quantize{calib=...}``).
The ratio is searched by bisection over [0, 0.95] (footprints shrink monotonically with
the ratio up to rounding): first ratio 0 (nothing to do when the model already fits), then
the strongest pruning (when even that fails, the error names what limits it: findings that
are not budget findings, or the figure still over budget and the tensors that set it),
then ~7 bisection steps.  Each probe prunes a copy with the pass's own options.
"""

from __future__ import annotations

import dataclasses

from tinyir.errors import PassError
from tinyir.graph import Graph
from tinyir.passes.base import PassResult

MAX_RATIO = 0.95
STEPS = 7


def _probe(graph: Graph, p, ratio: float, backend: str):
    from tinyir.op_support.boards import get_board, parse_size
    from tinyir.op_support.report import check_model
    from tinyir.passes.prune import prune_graph

    g = graph.copy()
    res = prune_graph(g, p, ratio=ratio) if ratio > 0 else None
    checked = g
    if p.int8:
        from tinyir.passes.quantize import Quantize
        checked = Quantize(calib=p.calib, samples=p.samples).run(g.copy()).graph
    board = get_board(p.board) if p.board else None
    rep = check_model(checked, "model", backend, board,
                      parse_size(p.sram, "sram=") if p.sram else None,
                      parse_size(p.flash, "flash=") if p.flash else None)
    return g, res, rep


def _figures(rep) -> dict:
    return {"sram": rep.footprint.sram.bytes, "flash": rep.footprint.flash.bytes,
            "sram_method": rep.footprint.sram.method, "passed": rep.passed}


def fit_budget(graph: Graph, p) -> PassResult:
    if p.int8 and not p.calib:
        raise PassError("prune: int8=true checks the quantized model, so it needs calib=FILE.npz")
    if not (p.board or p.sram or p.flash):
        raise PassError("prune: fit= needs a budget: board=, sram= or flash=")
    q = dataclasses.replace(p, fit="")
    _, _, rep0 = _probe(graph, q, 0.0, p.fit)
    if rep0.passed:
        return PassResult(graph, False, {"fit": p.fit, "ratio": 0.0, "before": _figures(rep0),
                                         "after": _figures(rep0), "note": "already fits"})
    g_max, _, rep_max = _probe(graph, q, MAX_RATIO, p.fit)
    if not rep_max.passed:
        other = [f.message for f in rep_max.errors if f.category != "budget"]
        over = [f.message for f in rep_max.errors if f.category == "budget"]
        why = ("findings that pruning cannot fix: " + "; ".join(other[:3])) if other else \
            ("even with every prunable group at its minimum width: " + "; ".join(over[:2]) +
             f" (SRAM {rep_max.footprint.sram.method}); frozen channels (graph inputs/"
             "outputs) and unprunable layers set this floor")
        raise PassError(f"prune: no pruning makes the model pass `tinyir check` for "
                        f"{p.fit}: {why}")
    lo, hi, best = 0.0, MAX_RATIO, (g_max, rep_max)
    for _ in range(STEPS):
        mid = (lo + hi) / 2
        g, _, rep = _probe(graph, q, mid, p.fit)
        if rep.passed:
            hi, best = mid, (g, rep)
        else:
            lo = mid
    # redo the chosen ratio on the caller's graph so the result is this graph, pruned
    from tinyir.passes.prune import prune_graph
    res = prune_graph(graph, q, ratio=hi)
    res.stats.update({"fit": p.fit, "ratio": round(hi, 4), "before": _figures(rep0),
                      "after": _figures(best[1]),
                      "widths": {r["layer"]: r["out"] for r in res.stats["layers"]}})
    return res
