"""prune: structured channel pruning over dependency groups (ONNX dialect, NCHW).

Groups come from :mod:`tinyir.passes.prune_groups` (DepGraph coupling rules).  A removed
channel leaves its producer (weight rows, bias), every per-channel parameter on the way
(BN, elementwise constants), depthwise convs (rows and ``group``), and every consumer
(weight columns; Flatten->Gemm feature blocks) at once.

**Importance** (``criterion=``), per channel of a group, summed over each member's slice
and averaged over members (DepGraph ``GroupMagnitudeImportance``, no p-th root):
``l1`` sum |w|, ``l2`` sum w^2, ``bn`` |gamma| of the group's BatchNormalizations (l1 where
a group has none), ``act`` (needs ``calib=``) E|x_c| * ||W[:, c]||_2 at each consumer,
``recon`` (needs ``calib=``; the default with calibration data) the consumer's output
energy that removing the channel loses, after the refit bias absorbs its mean.

**How many** (``ratio=`` or ``macs=``): uniform keeps ``int(n * (1 - ratio))`` per group,
rounded *down* to ``round_to`` and never below ``min_channels`` (DepGraph's ``_round_to``);
``scope=global`` ranks mean-normalised importances of all groups together.  ``macs=0.7``
searches the smallest ratio whose MACs are at most 70 % of the original (MACs of a
Conv/Gemm scale with the kept fraction of its weight).

**Recovery** (``calib=`` and ``recover=true``): see :mod:`tinyir.passes.prune_recover`.
**Budget** (``fit=tflm`` with ``board=``/``sram=``/``flash=``): see
:mod:`tinyir.passes.prune_budget`.

Exactness (no recovery): the pruned graph computes what the original computes with the
pruned channels zeroed at every consumer's input.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from tinyir.errors import PassError
from tinyir.graph import Graph, Node
from tinyir.ops import lookup
from tinyir.passes.base import Pass, PassResult, register_pass
from tinyir.passes.fold_bn import const_array
from tinyir.passes.prune_groups import Analysis, ChannelGroup, analyze, materialize_constants
from tinyir.types import TensorType

CRITERIA = ("l1", "l2", "bn", "act", "recon")
WEIGHT_OPS = ("Conv", "Gemm", "MatMul")


@register_pass
@dataclass(frozen=True)
class Prune(Pass):
    """Remove whole channels by dependency group (ratio, MACs or budget), optionally refit."""

    name = "prune"

    def explain(self, graph: Graph) -> str:
        """The dependency groups this pass would prune (``tinyir opt --explain``)."""
        return explain_groups(graph, self)

    ratio: float = 0.0         # fraction of each group's channels removed
    macs: float = 0.0          # fraction of MACs to keep (0 = unused), e.g. 0.7
    scope: str = "uniform"     # uniform | global
    criterion: str = ""        # l1 | l2 | bn | act | recon (default: recon with calib, else l1)
    calib: str = ""            # .npz of calibration inputs (act, recon, recovery)
    samples: int = 200         # calibration samples used (at most)
    recover: bool = True       # with calib: least-squares refit of the consumers
    round_to: int = 1          # kept channels rounded down to a multiple of this
    min_channels: int = 1      # never keep fewer channels in a group
    max_ratio: float = 0.9     # global scope: never remove more of one group
    exclude: str = ""          # node names or patterns, separated by ';' or '|'
    fit: str = ""              # backend whose `tinyir check` must pass (budget search)
    board: str = ""            # board preset for fit=
    sram: str = ""             # SRAM budget for fit=, e.g. 64KiB
    flash: str = ""            # flash budget for fit=, e.g. 256KiB
    int8: bool = False         # fit=: check the model after quantize{calib=...}

    def __post_init__(self):
        if self.scope not in ("uniform", "global"):
            raise ValueError(f"scope must be uniform or global, not {self.scope!r}")
        if self.criterion and self.criterion not in CRITERIA:
            raise ValueError(f"criterion must be one of {', '.join(CRITERIA)}")
        if not 0 <= self.ratio < 1 or not 0 <= self.macs <= 1:
            raise ValueError("ratio must be in [0, 1) and macs in (0, 1]")
        if self.round_to < 1 or self.min_channels < 1:
            raise ValueError("round_to and min_channels must be at least 1")

    @property
    def excluded(self) -> tuple[str, ...]:
        return tuple(p.strip() for p in self.exclude.replace("|", ";").split(";") if p.strip())

    @property
    def crit(self) -> str:
        if self.criterion:
            return self.criterion
        return "recon" if self.calib and self.recover else "l1"

    def run(self, graph: Graph) -> PassResult:
        if self.fit:
            from tinyir.passes.prune_budget import fit_budget
            return fit_budget(graph, self)
        if not self.ratio and not self.macs:
            raise PassError("prune needs ratio=, macs= or fit= (how much to remove)")
        if self.crit in ("act", "recon") and not self.calib:
            raise PassError(f"prune: criterion={self.crit} needs calibration data (calib=FILE.npz)")
        return prune_graph(graph, self)


# ---- the pass body ---------------------------------------------------------------------------

def prune_graph(graph: Graph, p: Prune, ratio: float | None = None) -> PassResult:
    materialize_constants(graph)
    before = layer_table(graph)
    a = analyze(graph, p.excluded)
    groups = [gr for gr in a.groups if gr.frozen is None]
    samples = None
    if p.calib:
        from tinyir.passes.calibrate import load_samples
        samples = load_samples(p.calib, graph, p.samples)
    scores = {gr.id: importance(a, gr, p.crit if p.crit != "recon" else "l1", samples)
              for gr in groups}
    if ratio is not None:
        counts = plan_counts(a, groups, scores, p, ratio)
    elif p.macs:
        counts = counts_for_macs(a, groups, scores, p, p.macs)
    else:
        counts = plan_counts(a, groups, scores, p, p.ratio)
    refit = {}
    if samples is not None and (p.recover or p.crit == "recon"):
        from tinyir.passes.prune_recover import recover
        pruned, refit = recover(a, groups, counts, samples, p.recover, p.crit == "recon", scores)
    else:
        pruned = set()
        for gr in groups:
            order = np.argsort(scores[gr.id], kind="stable")
            pruned.update(gr.classes[i] for i in order[:gr.width - counts[gr.id]])
    apply_pruning(a, pruned)
    after = layer_table(graph)
    stats = report(before, after, a, counts)
    stats["criterion"] = p.crit
    stats["refit_layers"] = sorted(refit)
    return PassResult(graph, bool(pruned), stats)


def plan_counts(a: Analysis, groups: list[ChannelGroup], scores: dict, p: Prune,
                ratio: float) -> dict[int, int]:
    """Channels kept per group for ``ratio`` (uniform or global)."""
    counts = {}
    if p.scope == "uniform":
        for gr in groups:
            counts[gr.id] = _rounded(gr.width, int(gr.width * (1 - ratio)), p)
        return counts
    pool = []
    for gr in groups:
        s = np.asarray(scores[gr.id], np.float64)
        s = s / (s.mean() or 1.0)
        pool += [(v, gr.id) for v in s]
    pool.sort()
    total = len(pool)
    k = total - int(total * (1 - ratio))
    removed = {gr.id: 0 for gr in groups}
    width = {gr.id: gr.width for gr in groups}
    for _, gid in pool:
        if k <= 0:
            break
        cap = math.floor(width[gid] * p.max_ratio)
        if removed[gid] < cap and width[gid] - removed[gid] > p.min_channels:
            removed[gid] += 1
            k -= 1
    return {gid: _rounded(width[gid], width[gid] - removed[gid], p) for gid in width}


def _rounded(n: int, keep: int, p: Prune) -> int:
    keep = keep // p.round_to * p.round_to
    floor = min(n, math.ceil(p.min_channels / p.round_to) * p.round_to)
    return max(keep, floor)


def counts_for_macs(a: Analysis, groups, scores, p: Prune, keep_frac: float) -> dict[int, int]:
    """The least ratio whose estimated MACs are at most ``keep_frac`` of the original."""
    base = estimate_macs(a, {})
    lo, hi = 0.0, 0.999
    best = plan_counts(a, groups, scores, p, hi)
    for _ in range(24):
        mid = (lo + hi) / 2
        c = plan_counts(a, groups, scores, p, mid)
        if estimate_macs(a, c) <= keep_frac * base:
            hi, best = mid, c
        else:
            lo = mid
    return best


def kept_widths(a: Analysis, counts: dict[int, int]) -> dict[str, int]:
    kept = dict(a.width)
    for gr in a.groups:
        if gr.id in counts:
            gone = gr.width - counts[gr.id]
            for name, per in gr.elements.items():
                kept[name] -= gone * len(per[0])
    return kept


def estimate_macs(a: Analysis, counts: dict[int, int]) -> float:
    """MACs when each group keeps ``counts[id]`` channels (weight-size scaling)."""
    kept = kept_widths(a, counts)
    total = 0.0
    for n in a.graph.nodes:
        d = lookup(n.op)
        if d is None or d.macs is None:
            continue
        try:
            m = float(d.macs(n))
        except (TypeError, ValueError, IndexError, KeyError):
            continue
        if n.op_type in WEIGHT_OPS:
            x, y = n.inputs[0], n.outputs[0]
            fy = kept.get(y.name, 1) / a.width.get(y.name, 1)
            fx = kept.get(x.name, 1) / a.width.get(x.name, 1)
            dw = n.op_type == "Conv" and int(n.attrs.get("group", 1)) == a.width.get(x.name, -1) > 1
            m *= fy if dw else fy * fx
        total += m
    return total


# ---- importance --------------------------------------------------------------------------

def importance(a: Analysis, gr: ChannelGroup, crit: str, samples=None) -> np.ndarray:
    """One score per channel of ``gr`` (higher = keep)."""
    acts = _mean_abs(a, gr, samples) if crit == "act" else {}
    per_member = []
    for vname, per in gr.elements.items():
        for t in a.touches.get(vname, []):
            w = None
            if t.role in ("out", "in", "dw"):
                w = np.asarray(const_array(t.node.inputs[1]), np.float64)
            if crit == "bn":
                if t.role == "param" and t.node.op_type == "BatchNormalization" and t.operand == 1:
                    g = np.abs(np.asarray(t.node.inputs[1].const, np.float64).reshape(-1))
                    per_member.append([g[idx].sum() for idx in per])
                continue
            if w is None:
                continue
            if crit == "act" and t.role != "in":
                continue
            sl = [_slice(t.node, w, t.role, idx) for idx in per]
            if crit == "act":
                m = acts.get(vname)
                per_member.append([np.sqrt((s ** 2).sum()) * (m[idx].sum() if m is not None else 1)
                                   for s, idx in zip(sl, per)])
            else:
                pw = 1 if crit == "l1" else 2
                per_member.append([(np.abs(s) ** pw).sum() for s in sl])
    if not per_member:
        return importance(a, gr, "l1", samples) if crit != "l1" else np.ones(gr.width)
    return np.mean(np.asarray(per_member, np.float64), axis=0)


def _slice(n: Node, w: np.ndarray, role: str, idx: list[int]) -> np.ndarray:
    if n.op_type == "Conv":
        if role == "in":
            cin_g = w.shape[1]
            return w[:, sorted({c % cin_g for c in idx})]
        return w[idx]
    trans = n.op_type == "Gemm" and n.attrs.get("transB", 0)
    if role == "in":
        return w[:, idx] if trans else w[idx, :]
    return w[idx, :] if trans else w[:, idx]


def _mean_abs(a: Analysis, gr: ChannelGroup, samples) -> dict[str, np.ndarray]:
    from tinyir import interp
    names = [v for v in gr.elements if any(t.role == "in" for t in a.touches.get(v, []))]
    sums = {}
    for feeds in samples:
        env = interp.run(a.graph, feeds, keep=True)
        for nm in names:
            x = np.abs(np.asarray(env[nm], np.float64))
            ax = a.axis[nm]
            s = np.moveaxis(x, ax, 0).reshape(x.shape[ax], -1).mean(axis=1)
            sums[nm] = sums.get(nm, 0) + s
    return sums


# ---- physical removal ------------------------------------------------------------------------

def apply_pruning(a: Analysis, pruned: set[int]) -> None:
    """Slice every member of every group so the ``pruned`` channels (class roots) vanish."""
    g = a.graph
    keep = {}
    for name, base in a.base.items():
        k = [c for c in range(a.width[name]) if a.class_of[base + c] not in pruned]
        if len(k) != a.width[name]:
            keep[name] = k
    if not keep:
        return
    for n in g.nodes:
        x, y = n.inputs[0] if n.inputs else None, n.outputs[0]
        kx = keep.get(x.name) if x is not None else None
        ky = keep.get(y.name)
        if n.op_type in WEIGHT_OPS and (kx or ky) and n.inputs[1].is_const:
            _slice_weights(g, n, kx, ky, a)
        for t in a.touches.get(x.name if x is not None else "", []) + a.touches.get(y.name, []):
            if t.node is not n:
                continue
            if t.role == "param":
                v = n.inputs[t.operand]
                k = keep.get(x.name) or keep.get(y.name)
                if k is not None and v.const.shape[t.axis] != len(k):
                    _set_const(g, n, t.operand, np.take(v.const, k, axis=t.axis))
            elif t.role == "reshape" and n.op_type == "Reshape" and (kx or ky):
                shape = np.asarray(const_array(n.inputs[1])).copy()
                new = _new_shape(y, keep, a)
                for i, s in enumerate(shape):
                    if s > 0:
                        shape[i] = new[i]
                _set_const(g, n, 1, shape)
            elif t.role == "split" and kx:
                sizes = [len(keep.get(o.name, range(a.width[o.name]))) for o in n.outputs]
                if len(n.inputs) > 1 and n.inputs[1] is not None:
                    _set_const(g, n, 1, np.asarray(sizes, np.int64))
                elif "split" in n.attrs:
                    n.attrs["split"] = sizes
    for name, k in keep.items():
        v = g.value(name)
        v.type = TensorType(_new_shape(v, keep, a), v.type.dtype, v.type.quant)
    for v in g.constants:
        if not v.uses and v not in g.outputs:
            g.remove_value(v)


def _new_shape(v, keep, a) -> tuple:
    shape = list(v.type.shape)
    if v.name in keep:
        shape[a.axis[v.name]] = len(keep[v.name])
    return tuple(shape)


def _slice_weights(g: Graph, n: Node, kx, ky, a: Analysis) -> None:
    w = n.inputs[1].const
    x = n.inputs[0]
    if n.op_type == "Conv":
        group = int(n.attrs.get("group", 1))
        if ky:
            w = w[ky]
        if group > 1 and group == a.width[x.name]:
            n.attrs["group"] = len(kx) if kx else group
        elif kx:
            cin_g = w.shape[1]
            w = w[:, sorted({c % cin_g for c in kx})] if group > 1 else w[:, kx]
        _set_const(g, n, 1, w)
        if ky and len(n.inputs) > 2 and n.inputs[2] is not None:
            _set_const(g, n, 2, n.inputs[2].const[ky])
        return
    trans = n.op_type == "Gemm" and n.attrs.get("transB", 0)
    if kx:
        w = w[:, kx] if trans else w[kx, :]
    if ky:
        w = w[ky, :] if trans else w[:, ky]
    _set_const(g, n, 1, w)
    c = n.inputs[2] if len(n.inputs) > 2 else None
    if ky and c is not None and c.const.size > 1:
        _set_const(g, n, 2, c.const.reshape(-1)[ky].reshape(
            (len(ky),) if c.const.ndim == 1 else (1, len(ky))))


def _set_const(g: Graph, n: Node, i: int, arr: np.ndarray) -> None:
    old = n.inputs[i]
    arr = np.ascontiguousarray(arr)
    new = g.add_const(g.unique_name(old.name + "_pruned"), arr,
                      TensorType(arr.shape, old.type.dtype))
    g.set_input(n, i, new)


# ---- reports ---------------------------------------------------------------------------------

def layer_table(g: Graph) -> dict[str, dict]:
    """Per weight layer: in/out widths, params, MACs."""
    rows = {}
    for n in g.nodes:
        if n.op_type not in WEIGHT_OPS or not n.inputs[1].is_const:
            continue
        d = lookup(n.op)
        try:
            macs = int(d.macs(n)) if d and d.macs else 0
        except (TypeError, ValueError, IndexError, KeyError):
            macs = 0
        params = sum(v.const.size for v in n.inputs[1:] if v is not None and v.is_const)
        xs, ys = n.inputs[0].type.shape, n.outputs[0].type.shape
        rows[n.name] = {"in": xs[1] if xs and len(xs) > 1 else None,
                        "out": ys[1] if ys and len(ys) > 1 else None,
                        "params": int(params), "macs": macs}
    return rows


def report(before: dict, after: dict, a: Analysis, counts: dict[int, int]) -> dict:
    from tinyir.summary import summarize
    s = summarize(a.graph)
    layers = []
    for name, b in before.items():
        af = after.get(name, b)
        layers.append({"layer": name, "in": [b["in"], af["in"]], "out": [b["out"], af["out"]],
                       "params": [b["params"], af["params"]], "macs": [b["macs"], af["macs"]]})
    tot = lambda t, k: sum(r[k] for r in t.values())  # noqa: E731
    return {"groups": len(a.groups), "groups_pruned": sum(
                1 for gr in a.groups if gr.id in counts and counts[gr.id] < gr.width),
            "frozen": {f"group {gr.id}": gr.frozen for gr in a.groups if gr.frozen},
            "layers": layers,
            "params": [tot(before, "params"), tot(after, "params")],
            "macs": [tot(before, "macs"), tot(after, "macs")],
            "total_params_after": s.params, "total_macs_after": s.macs}


def explain_groups(graph: Graph, pass_obj: Prune) -> str:
    """The dependency groups of ``graph`` as text (``tinyir opt M -p prune{...} --explain``)."""
    g = graph.copy()
    materialize_constants(g)
    a = analyze(g, pass_obj.excluded)
    lines = [f"{len(a.groups)} channel groups ({sum(1 for x in a.groups if not x.frozen)} "
             "prunable); a channel is removed from every member at once"]
    for gr in a.groups:
        state = f"frozen: {gr.frozen}" if gr.frozen else "prunable"
        lines.append(f"group {gr.id}: {gr.width} channels, {state}")
        lines.append(f"  producers: {', '.join(gr.producers) or '-'}")
        lines.append(f"  consumers: {', '.join(gr.consumers) or '-'}")
        if gr.passthrough:
            lines.append(f"  coupled:   {', '.join(gr.passthrough)}")
        maps = [f"%{v} x{len(per[0])}" for v, per in gr.elements.items() if len(per[0]) > 1]
        if maps:
            lines.append(f"  index maps (features per channel): {', '.join(maps)}")
    return "\n".join(lines)
