"""Data-free quantization (Nagel et al., ICCV 2019, arXiv:1906.04721) for the quantize pass.

**Cross-layer equalization** (:func:`equalize`).  For two weight layers joined by a
positively homogeneous function (fused NONE or RELU, and on the way only PAD, pooling,
a spatial MEAN or a flattening RESHAPE, which all commute with a positive per-channel
scale), channel ``i`` of layer 1's output has range ``r1_i = max|W1[i]|`` and layer 2
reads it with range ``r2_i = max|W2[:, i]|``.  With ``s_i = sqrt(r1_i / r2_i)``:
``W1[i] /= s_i``, ``b1[i] /= s_i``, ``W2[:, i] *= s_i``; the function is unchanged and
both ranges become ``sqrt(r1_i * r2_i)``.  Pairs are swept until the scales settle
(chains conv -> depthwise -> conv equalize through repeated sweeps).  RELU6 is not
homogeneous and blocks a pair.

**Activation ranges without data** (:func:`estimate`).  Each value gets per-channel
Gaussian statistics (mean, std) of its pre-activation: from the BatchNormalization that
followed the layer in the ONNX model (``N(beta, gamma^2)``, read before lowering folds
it: :func:`bn_statistics`), otherwise propagated through the layer
(``mu = W mu_in + b``; the std is the geometric mean of the independent-inputs bound
``sqrt(W^2 var_in)`` and the fully-correlated bound ``|W| std_in``).  MAX_POOL over ``k``
taps moves the pre-activation Gaussian to the largest of ``k`` samples.  A fused ReLU makes it a
rectified Gaussian (``E[x] = mu Phi(mu/sigma) + sigma phi(mu/sigma)``).  The int8 range
is ``[min_c(mu - n sigma), max_c(mu + n sigma)]`` (``n = sigmas``, 6 by default), clipped
by the activation.  The graph input is uniform on ``input_range``.

**Bias correction** (:func:`correct_bias`).  Quantizing weights shifts each output by
``E[(W~ - W) x] = (W~ - W) E[x]``; the bias absorbs it: ``b[o] -= sum (W~ - W)[o, ...] E[x]``,
with ``E[x]`` per input channel from the estimate (zero padding at borders ignored).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from tinyir.errors import PassError
from tinyir.graph import Graph, Node, Value

LAYERS = ("tfl.CONV_2D", "tfl.DEPTHWISE_CONV_2D", "tfl.FULLY_CONNECTED")
THROUGH = ("tfl.PAD", "tfl.MAX_POOL_2D", "tfl.AVERAGE_POOL_2D", "tfl.MEAN", "tfl.RESHAPE")


# ---- BN statistics from the ONNX graph -----------------------------------------------------

@dataclass
class BNStats:
    """Pre-activation (mean, std) per output channel, keyed by ONNX Conv/Gemm node name."""

    by_onnx: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    channels: dict[Node, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)

    def resolve(self, origin: dict[Node, str]) -> "BNStats":
        for node, name in origin.items():
            if node.op in LAYERS and name in self.by_onnx:
                self.channels[node] = self.by_onnx[name]
        return self


def bn_statistics(graph: Graph) -> BNStats:
    """BN shift and scale (beta, |gamma|) of every Conv/Gemm -> BatchNormalization pair."""
    from tinyir.passes.fold_bn import const_array

    out = BNStats()
    for n in graph.nodes:
        if n.op != "onnx.BatchNormalization":
            continue
        p = n.inputs[0].producer
        if p is None or p.op not in ("onnx.Conv", "onnx.Gemm", "onnx.MatMul"):
            continue
        gamma, beta = const_array(n.inputs[1]), const_array(n.inputs[2])
        if gamma is None or beta is None:
            continue
        out.by_onnx[p.name] = (np.asarray(beta, np.float64).reshape(-1),
                               np.abs(np.asarray(gamma, np.float64)).reshape(-1))
    return out


# ---- cross-layer equalization ------------------------------------------------------------

def _act(n: Node) -> str:
    return n.attrs.get("fused_activation_function", "NONE")


def _next_layer(n: Node, g: Graph) -> tuple[Node, list[Node]] | None:
    """The weight layer that alone reads ``n``'s output through channel-preserving ops."""
    v, path = n.outputs[0], []
    while True:
        if v in g.outputs or len(v.uses) != 1:
            return None
        user, idx = v.uses[0]
        if user.op in LAYERS:
            return (user, path) if idx == 0 else None
        if user.op not in THROUGH or idx != 0:
            return None
        if user.op == "tfl.MEAN" and not _spatial_mean(user):
            return None
        if user.op == "tfl.RESHAPE" and not _flattens(user):
            return None
        if user.op == "tfl.MAX_POOL_2D" or user.op == "tfl.AVERAGE_POOL_2D":
            if _act(user) not in ("NONE", "RELU"):
                return None
        path.append(user)
        v = user.outputs[0]


def _spatial_mean(n: Node) -> bool:
    axes = n.inputs[1].const if n.inputs[1] is not None and n.inputs[1].is_const else None
    rank = n.inputs[0].type.rank
    return axes is not None and rank == 4 and sorted(int(a) % 4 for a in np.ravel(axes)) == [1, 2]


def _flattens(n: Node) -> bool:
    a, b = n.inputs[0].type.shape, n.outputs[0].type.shape
    return (a is not None and b is not None and len(b) == 2 and a[0] == b[0]
            and b[1] == math.prod(a[1:]))


def _in_channels(layer: Node, channels: int) -> np.ndarray:
    """Channel of each input feature of ``layer`` (FC after a flatten: feature % C)."""
    w = layer.inputs[1].const
    k = w.shape[-1] if layer.op != "tfl.DEPTHWISE_CONV_2D" else w.shape[3]
    return np.arange(k) % channels


def _w2_ranges(layer: Node, chan_of: np.ndarray, channels: int) -> np.ndarray:
    w = np.abs(np.asarray(layer.inputs[1].const, np.float64))
    per_feature = w.reshape(-1, w.shape[-1]).max(axis=0) if layer.op != "tfl.FULLY_CONNECTED" \
        else w.max(axis=0)
    r = np.zeros(channels)
    np.maximum.at(r, chan_of, per_feature)
    return r


def _set_const(g: Graph, node: Node, i: int, arr: np.ndarray) -> None:
    v = node.inputs[i]
    new = g.add_const(g.unique_name(f"{v.name}_cle"), arr.astype(v.const.dtype), v.type)
    g.set_input(node, i, new)


def equalize(g: Graph, bn: "BNStats | None" = None, sweeps: int = 20) -> int:
    """Cross-layer equalization of every eligible pair; returns how many pairs."""
    pairs = []
    for n in g.nodes:
        if n.op not in LAYERS or _act(n) not in ("NONE", "RELU"):
            continue
        nxt = _next_layer(n, g)
        if nxt is None:
            continue
        l2 = nxt[0]
        if l2.op == "tfl.DEPTHWISE_CONV_2D" and l2.inputs[1].shape[3] != n.outputs[0].shape[-1]:
            continue
        if l2.op == "tfl.CONV_2D" and l2.inputs[1].shape[3] != l2.inputs[0].shape[-1]:
            continue  # grouped conv
        if any(u is not n for u, _ in n.inputs[1].uses) or any(u is not l2 for u, _ in
                                                                l2.inputs[1].uses):
            continue  # shared weights
        pairs.append((n, l2))
    for _ in range(sweeps):
        worst = 0.0
        for l1, l2 in pairs:
            axis1 = 3 if l1.op == "tfl.DEPTHWISE_CONV_2D" else 0
            w1 = np.asarray(l1.inputs[1].const, np.float64)
            c = w1.shape[axis1]
            r1 = np.abs(np.moveaxis(w1, axis1, 0)).reshape(c, -1).max(axis=1)
            chan_of = _in_channels(l2, c)
            r2 = _w2_ranges(l2, chan_of, c)
            ok = (r1 > 0) & (r2 > 0)
            s = np.ones(c)
            s[ok] = np.sqrt(r1[ok] / r2[ok])
            worst = max(worst, float(np.abs(np.log(s)).max()))
            shape1 = [1] * w1.ndim
            shape1[axis1] = -1
            _set_const(g, l1, 1, w1 / s.reshape(shape1))
            if len(l1.inputs) > 2 and l1.inputs[2] is not None:
                _set_const(g, l1, 2, np.asarray(l1.inputs[2].const, np.float64) / s)
            w2 = np.asarray(l2.inputs[1].const, np.float64)
            _set_const(g, l2, 1, w2 * s[chan_of])
            if bn is not None and l1 in bn.channels:
                mu, sd = bn.channels[l1]
                bn.channels[l1] = (mu / s, sd / s)
        if worst < 1e-6:
            break
    g.prune_unused()
    return len(pairs)


# ---- range estimation --------------------------------------------------------------------

@dataclass
class Estimate:
    """Per-channel statistics of a value (last axis); ``lo``/``hi`` bound it if known."""

    mean: np.ndarray
    std: np.ndarray
    lo: float = -np.inf
    hi: float = np.inf
    sigmas: float = 6.0
    pre: tuple | None = None  # (mean, std, activation) before a fused activation

    def range(self) -> tuple[float, float]:
        lo = float(np.min(self.mean - self.sigmas * self.std))
        hi = float(np.max(self.mean + self.sigmas * self.std))
        return max(lo, self.lo), min(hi, self.hi)


def _phi(z):
    return np.exp(-0.5 * z * z) / math.sqrt(2 * math.pi)


def _Phi(z):
    from scipy.special import ndtr

    return ndtr(z)


def _activate(mu: np.ndarray, sd: np.ndarray, act: str, sigmas: float) -> Estimate:
    if act == "NONE":
        return Estimate(mu, sd, sigmas=sigmas)
    if act not in ("RELU", "RELU6"):
        raise PassError(f"quantize datafree: cannot estimate through fused activation {act}")
    sd = np.maximum(sd, 1e-12)
    z = mu / sd
    m1 = mu * _Phi(z) + sd * _phi(z)
    m2 = (mu * mu + sd * sd) * _Phi(z) + mu * sd * _phi(z)
    std = np.sqrt(np.maximum(m2 - m1 * m1, 0.0))
    hi = float(np.max(mu + sigmas * sd))
    return Estimate(m1, std, 0.0, max(hi, 0.0) if act == "RELU" else min(max(hi, 0.0), 6.0),
                    sigmas, (mu, sd, act))


def _max_of(k: int) -> tuple[float, float]:
    """Mean and std of the largest of ``k`` independent standard normal samples."""
    z = np.linspace(-8, 8, 4001)
    pdf = k * _phi(z) * _Phi(z) ** (k - 1)
    dz = z[1] - z[0]
    m = float((z * pdf).sum() * dz)
    return m, float(np.sqrt(max((z * z * pdf).sum() * dz - m * m, 0.0)))


def estimate(g: Graph, bn: "BNStats | None", input_range: tuple[float, float],
             sigmas: float = 6.0) -> dict[str, Estimate]:
    """Estimated statistics of every float activation value (see the module docstring)."""
    lo, hi = input_range
    est: dict[str, Estimate] = {}
    for v in g.inputs:
        est[v.name] = Estimate(np.array([(lo + hi) / 2]), np.array([(hi - lo) / math.sqrt(12)]),
                               lo, hi, sigmas)
    channels = {} if bn is None else bn.channels
    for n in g.nodes:
        ins = [est.get(v.name) if v is not None else None for v in n.inputs]
        out = n.outputs[0]
        if n.op in LAYERS:
            if n in channels:
                mu, sd = channels[n]
            else:
                mu, sd = _propagate(n, ins[0])
            est[out.name] = _activate(mu, sd, _act(n), sigmas)
        elif n.op == "tfl.MAX_POOL_2D" and ins[0].pre is not None:
            mu, sd, act = ins[0].pre
            em, es = _max_of(int(n.attrs.get("filter_height", 1)) * int(n.attrs.get("filter_width", 1)))
            est[out.name] = _activate(mu + em * sd, es * sd, act, sigmas)
        elif n.op in ("tfl.TRANSPOSE", "tfl.MAX_POOL_2D", "tfl.AVERAGE_POOL_2D", "tfl.MEAN",
                      "tfl.PAD", "tfl.SQUEEZE", "tfl.EXPAND_DIMS"):
            e = ins[0]
            est[out.name] = Estimate(e.mean, e.std, min(e.lo, 0.0) if n.op == "tfl.PAD" else e.lo,
                                     e.hi, sigmas, e.pre)
        elif n.op == "tfl.RESHAPE":
            e = ins[0]
            k = out.type.shape[-1] if out.type.shape else 1
            c = e.mean.size
            if c > 1 and isinstance(k, int) and k % c == 0:
                est[out.name] = Estimate(np.tile(e.mean, k // c), np.tile(e.std, k // c),
                                         e.lo, e.hi, sigmas)
            else:
                est[out.name] = Estimate(np.array([e.mean.mean()]), np.array([e.std.max()]),
                                         e.lo, e.hi, sigmas)
        elif n.op in ("tfl.ADD", "tfl.SUB"):
            a, b = ins[0], ins[1] if ins[1] is not None else _const_est(n.inputs[1])
            sign = -1.0 if n.op == "tfl.SUB" else 1.0
            est[out.name] = _activate(a.mean + sign * b.mean, np.sqrt(a.std ** 2 + b.std ** 2),
                                      _act(n), sigmas)
        elif n.op in ("tfl.RELU", "tfl.RELU6"):
            e = ins[0]
            est[out.name] = _activate(e.mean, e.std, n.op[4:], sigmas)
        elif n.op in ("tfl.SOFTMAX", "tfl.LOGISTIC", "tfl.TANH"):
            est[out.name] = Estimate(np.array([0.5]), np.array([0.5]), 0.0, 1.0, sigmas)
        else:
            raise PassError(f"quantize datafree: cannot estimate ranges through {n.op_type} "
                            f"({n.name}); give its params in scales=FILE.json")
    return est


def _const_est(v: Value) -> Estimate:
    a = np.asarray(v.const, np.float64)
    return Estimate(np.array([a.mean()]), np.array([0.0]))


def _propagate(n: Node, e: Estimate) -> tuple[np.ndarray, np.ndarray]:
    """Mean and std of a layer's pre-activation output from its input's."""
    w = np.asarray(n.inputs[1].const, np.float64)
    b = n.inputs[2].const if len(n.inputs) > 2 and n.inputs[2] is not None else None
    b = np.zeros(1) if b is None else np.asarray(b, np.float64)
    if n.op == "tfl.FULLY_CONNECTED":
        mean_in = np.broadcast_to(e.mean, (w.shape[1],))
        var_in = np.broadcast_to(e.std ** 2, (w.shape[1],))
        return w @ mean_in + b, _spread(w, var_in)
    cin = w.shape[3]
    if n.op == "tfl.DEPTHWISE_CONV_2D":
        mean_in = np.broadcast_to(e.mean, (cin,))
        var_in = np.broadcast_to(e.std ** 2, (cin,))
        ws = w.reshape(-1, cin)
        return ws.sum(0) * mean_in + b, _spread(ws.T, var_in, depthwise=True)
    mean_in = np.broadcast_to(e.mean, (cin,))
    var_in = np.broadcast_to(e.std ** 2, (cin,))
    ws = w.reshape(w.shape[0], -1, cin)
    return ws.sum(1) @ mean_in + b, _spread(ws, var_in)


def _spread(w: np.ndarray, var_in: np.ndarray, depthwise: bool = False) -> np.ndarray:
    """Std of a weighted sum: between independent inputs (sqrt(sum w^2 var)) and fully
    correlated ones (sum |w| std); neighbouring activations are strongly correlated, so
    the geometric mean of the two bounds."""
    sd = np.sqrt(var_in)
    if depthwise:   # w: [C, taps]
        ind, cor = np.sqrt((w * w).sum(1) * var_in), np.abs(w).sum(1) * sd
    elif w.ndim == 3:  # conv: [O, taps, C]
        ind, cor = np.sqrt((w * w).sum(1) @ var_in), np.abs(w).sum(1) @ sd
    else:
        ind, cor = np.sqrt((w * w) @ var_in), np.abs(w) @ sd
    return np.sqrt(ind * cor)


# ---- bias correction ---------------------------------------------------------------------

def correct_bias(node: Node, w: np.ndarray, wq: np.ndarray, scales: np.ndarray, b: np.ndarray,
                 mean_in: np.ndarray) -> np.ndarray:
    """``b - (W~ - W) E[x]`` for the layer's quantized weights (see the module docstring)."""
    axis = 3 if node.op == "tfl.DEPTHWISE_CONV_2D" else 0
    shape = [1] * w.ndim
    shape[axis] = -1
    err = wq.astype(np.float64) * scales.astype(np.float64).reshape(shape) - w.astype(np.float64)
    if node.op == "tfl.FULLY_CONNECTED":
        mean = np.broadcast_to(mean_in, (w.shape[1],))
        shift = err @ mean
    elif node.op == "tfl.DEPTHWISE_CONV_2D":
        mean = np.broadcast_to(mean_in, (w.shape[3],))
        shift = err.reshape(-1, w.shape[3]).sum(0) * mean
    else:
        mean = np.broadcast_to(mean_in, (w.shape[3],))
        shift = err.reshape(w.shape[0], -1, w.shape[3]).sum(1) @ mean
    return (np.asarray(b, np.float64) - shift).astype(np.float32)
