"""Retraining-free recovery for prune: channel choice by reconstruction error and a
least-squares refit of the consumers (He, Zhang, Sun, ICCV 2017, "Channel Pruning").

Groups are handled in graph order on a *masked* copy of the weights (pruned channels are
zero columns at their consumers, which the physical slicing later removes; by the
exactness property the two graphs compute the same).  For each group:

1. Run the current (partly pruned) graph on the calibration samples; at each consumer
   (Conv with group 1, Gemm, MatMul) with input ``X`` (im2col patches for a Conv) and
   weight ``W``, channel ``c`` contributes ``Z_c = X_c W_c^T`` to the output.
2. Score ``c`` by ``sum_consumers ||Z_c - mean(Z_c)||^2 / ||Y - mean(Y)||^2``: the output
   energy lost by removing it, once the refit bias has absorbed its mean.  The lowest
   scores are removed (``criterion=recon``; other criteria keep their own choice).
3. Refit every consumer on its kept input channels: ``[W', b'] = argmin ||[X_S, 1][W'; b'] -
   Y_0||^2`` where ``Y_0`` is the *original* model's output of that consumer, so errors of
   earlier groups are corrected too (a tiny ridge term keeps the solve stable).
"""

from __future__ import annotations

import numpy as np

from tinyir import interp
from tinyir.graph import Graph, Node
from tinyir.passes.prune_groups import Analysis, ChannelGroup

MAX_ROWS = 6000


def _run(g: Graph, samples, names) -> dict[str, np.ndarray]:
    out = {n: [] for n in names}
    for feeds in samples:
        env = interp.run(g, feeds, keep=True)
        for n in names:
            out[n].append(np.asarray(env[n], np.float64))
    return {n: np.concatenate(v, axis=0) for n, v in out.items()}


def _patches(n: Node, x: np.ndarray, rows: np.ndarray | None) -> np.ndarray:
    """im2col for a group-1 NCHW Conv: [rows, C, kh*kw] (all rows, or the chosen ones)."""
    w = n.inputs[1].const
    k = w.shape[2:]
    nd = len(k)
    strides = n.attrs.get("strides", [1] * nd)
    dil = n.attrs.get("dilations", [1] * nd)
    pads = list(n.attrs.get("pads", [0] * 2 * nd))
    auto = n.attrs.get("auto_pad", "NOTSET")
    if auto in ("SAME_UPPER", "SAME_LOWER"):
        pads = []
        for i in range(nd):
            size = x.shape[2 + i]
            out = -(-size // strides[i])
            tot = max(0, (out - 1) * strides[i] + (k[i] - 1) * dil[i] + 1 - size)
            lo = tot // 2 if auto == "SAME_UPPER" else tot - tot // 2
            pads.append((lo, tot - lo))
        pads = [p[0] for p in pads] + [p[1] for p in pads]
    xp = np.pad(x, [(0, 0), (0, 0)] + [(pads[i], pads[i + nd]) for i in range(nd)])
    span = [(k[i] - 1) * dil[i] + 1 for i in range(nd)]
    win = np.lib.stride_tricks.sliding_window_view(xp, span, axis=tuple(range(2, 2 + nd)))
    sl = (slice(None), slice(None)) + tuple(slice(None, None, s) for s in strides) + \
        tuple(slice(None, None, d) for d in dil)
    win = win[sl]                                   # N, C, O1.., k1..
    N, C = win.shape[:2]
    osz = win.shape[2:2 + nd]
    win = np.moveaxis(win, 1, 1 + nd)               # N, O1.., C, k1..
    flat = win.reshape(N * int(np.prod(osz)), C, -1)
    return flat if rows is None else flat[rows]


def _design(n: Node, x: np.ndarray, y0: np.ndarray, rng) -> tuple[np.ndarray, np.ndarray]:
    """(X [rows, C, k], Y0 [rows, O]) sampled consistently."""
    if n.op_type == "Conv":
        total = y0.shape[0] * int(np.prod(y0.shape[2:]))
        rows = rng.choice(total, MAX_ROWS, replace=False) if total > MAX_ROWS else None
        X = _patches(n, x, rows)
        Y = np.moveaxis(y0, 1, -1).reshape(-1, y0.shape[1])
        return X, (Y if rows is None else Y[rows])
    return x[:, :, None], y0


def _wmat(n: Node) -> np.ndarray:
    """Weight as [O, C, k]."""
    w = np.asarray(n.inputs[1].const, np.float64)
    if n.op_type == "Conv":
        return w.reshape(w.shape[0], w.shape[1], -1)
    trans = n.op_type == "Gemm" and n.attrs.get("transB", 0)
    return (w if trans else w.T)[:, :, None]


def _store(n: Node, wm: np.ndarray, b: np.ndarray) -> None:
    from tinyir.passes.prune import _set_const
    g = n.graph
    old = n.inputs[1].const
    if n.op_type == "Conv":
        w = wm.reshape(old.shape)
    else:
        trans = n.op_type == "Gemm" and n.attrs.get("transB", 0)
        w = wm[:, :, 0] if trans else wm[:, :, 0].T
    _set_const(g, n, 1, w.astype(old.dtype))
    bias = b.astype(old.dtype)
    if len(n.inputs) < 3:
        n._inputs.append(None)
    if n.inputs[2] is None:
        g.set_input(n, 2, g.add_const(g.unique_name(n.name + "_bias_refit"), bias))
    else:
        _set_const(g, n, 2, bias.reshape(n.inputs[2].const.shape))


def _consumers(a: Analysis, gr: ChannelGroup):
    for vname in gr.elements:
        for t in a.touches.get(vname, []):
            if t.role == "in":
                yield vname, t.node


def _refittable(n: Node) -> bool:
    return (n.op_type == "Conv" and int(n.attrs.get("group", 1)) == 1) or \
        (n.op_type == "Gemm" and not n.attrs.get("transA", 0)
         and float(n.attrs.get("alpha", 1.0)) == 1.0 and float(n.attrs.get("beta", 1.0)) == 1.0) \
        or n.op_type == "MatMul" and False


def recover(a: Analysis, groups: list[ChannelGroup], counts: dict[int, int], samples,
            refit: bool, by_recon: bool, scores: dict) -> tuple[set[int], set[str]]:
    """Choose (by reconstruction error when ``by_recon``) and refit; returns the pruned
    class roots and the names of the refitted layers."""
    g = a.graph
    rng = np.random.default_rng(0)
    cons = {n.name: (v, n) for gr in groups for v, n in _consumers(a, gr)}
    y0 = _run(g, samples, [n.outputs[0].name for _, n in cons.values()])
    pruned: set[int] = set()
    dead: dict[str, set[int]] = {}                  # value -> zeroed channels
    refitted: set[str] = set()
    for gr in groups:
        drop = gr.width - counts[gr.id]
        if drop <= 0:
            continue
        members = list(_consumers(a, gr))
        acts = _run(g, samples, sorted({v for v, _ in members}))
        design = {}
        for vname, n in members:
            design[n.name] = _design(n, acts[vname], y0[n.outputs[0].name], rng)
        if by_recon:
            score = np.zeros(gr.width)
            for vname, n in members:
                X, Y = design[n.name]
                W = _wmat(n)
                if n.op_type == "Conv" and int(n.attrs.get("group", 1)) != 1:
                    continue
                ref = ((Y - Y.mean(0)) ** 2).sum() or 1.0
                for j, idx in enumerate(gr.elements[vname]):
                    Z = np.einsum("rck,ock->ro", X[:, idx], W[:, idx])
                    score[j] += ((Z - Z.mean(0)) ** 2).sum() / ref
        else:
            score = np.asarray(scores[gr.id])
        order = np.argsort(score, kind="stable")[:drop]
        pruned.update(gr.classes[i] for i in order)
        for vname, per in gr.elements.items():
            dead.setdefault(vname, set()).update(c for i in order for c in per[i])
        for vname, n in members:
            W = _wmat(n).copy()
            gone = sorted(dead.get(vname, ()))
            if n.op_type == "Conv" and int(n.attrs.get("group", 1)) > 1:
                cin_g = W.shape[1]
                W[:, sorted({c % cin_g for c in gone})] = 0
            else:
                W[:, gone] = 0
            b = n.inputs[2].const.reshape(-1).astype(np.float64) if len(n.inputs) > 2 \
                and n.inputs[2] is not None else np.zeros(W.shape[0])
            if refit and _refittable(n):
                X, Y = design[n.name]
                keep = [c for c in range(W.shape[1]) if c not in dead.get(vname, ())]
                A = np.concatenate([X[:, keep].reshape(X.shape[0], -1),
                                    np.ones((X.shape[0], 1))], axis=1)
                lam = 1e-6 * (np.trace(A.T @ A) / A.shape[1])
                theta = np.linalg.solve(A.T @ A + lam * np.eye(A.shape[1]), A.T @ Y)
                W[:, keep] = theta[:-1].T.reshape(W.shape[0], len(keep), W.shape[2])
                b = theta[-1]
                refitted.add(n.name)
            if b.size != W.shape[0]:
                b = np.broadcast_to(b, (W.shape[0],))
            _store(n, W, b)
    return pruned, refitted
