"""fold-bn: fold inference-mode BatchNormalization into its neighbours (ONNX dialect).

Per channel c, BN computes ``y = x * s[c] + t[c]`` with ``s = gamma / sqrt(var + eps)``
and ``t = beta - mean * s`` (computed in float64, stored in the weights' dtype).

* **Conv -> BN** (any group, depthwise included; ONNX weights ``[O, I/g, kh, kw]``):
  ``W'[o] = W[o] * s[o]``, ``b' = b * s + t``.
* **ConvTranspose -> BN** (weights ``[Cin, Cout/g, kh, kw]``): output channel of
  ``W[i, j]`` is ``(i // (Cin/g)) * (Cout/g) + j``; scale by that channel's s.
* **Gemm -> BN** and **MatMul -> BN** on 2-D outputs: scale the output-feature axis of the
  constant weight (rows when ``transB=1``, columns otherwise); the bias becomes
  ``beta * C * s + t``.  MatMul becomes Gemm.
* **BN -> Conv** (forward folding, only when exact: group 1 and a 1x1 kernel or no
  padding, since padded taps would see ``t`` instead of 0):
  ``W'[o, c] = W[o, c] * s[c]``, ``b'[o] = b[o] + sum_{c,k} W[o, c, k] * t[c]``.
* **Standalone BN** becomes ``Mul(x, s) + Add(t)`` with ``[C, 1, ...]`` constants: a
  per-channel scale and shift every backend supports.

A fold is refused, with the reason in the stats, when the weight is shared with another
node (folding would change that node too), when the producer's result has other
readers, when parameters are not constant, or when BN is in training mode.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tinyir.graph import Graph, Node, Value, iter_graphs
from tinyir.passes.base import Pass, PassResult, register_pass
from tinyir.types import TensorType


def const_array(v: Value | None) -> np.ndarray | None:
    """The constant array behind ``v``: a constant value, or the result of an
    ``onnx.Constant`` or of an ``onnx.ConstantOfShape`` with a constant shape."""
    if v is None:
        return None
    if v.is_const:
        return v.const
    p = v.producer
    if p is None:
        return None
    if p.op == "onnx.Constant" and "value" in p.attrs:
        return np.asarray(p.attrs["value"])
    if p.op == "onnx.ConstantOfShape":
        shape = const_array(p.inputs[0])
        if shape is None:
            return None
        fill = np.asarray(p.attrs.get("value", np.zeros(1, np.float32))).reshape(-1)[0]
        return np.full([int(d) for d in shape], fill, dtype=v.type.dtype.numpy)
    return None


def bn_scale_shift(bn: Node) -> tuple[np.ndarray, np.ndarray] | str:
    """(s, t) in float64 for an inference-mode BN, or the reason it cannot be folded."""
    if bn.attrs.get("training_mode", 0):
        return "it is in training mode"
    if len(bn.outputs) > 1 and any(o.uses for o in bn.outputs[1:]):
        return "its running-statistics outputs are used"
    if bn.attrs.get("spatial", 1) == 0:
        return "it is a legacy per-activation (spatial=0) BatchNormalization"
    params = [const_array(v) for v in bn.inputs[1:5]]
    if any(p is None for p in params):
        return "its scale, bias, mean or variance is not a constant"
    gamma, beta, mean, var = (np.asarray(p, np.float64).reshape(-1) for p in params)
    eps = float(bn.attrs.get("epsilon", 1e-5))
    s = gamma / np.sqrt(var + eps)
    return s, beta - mean * s


def _channel_axis_len(v: Value) -> int | None:
    shape = v.type.shape
    if shape is None or len(shape) < 2 or not isinstance(shape[1], int):
        return None
    return shape[1]


def _shared_reason(w: Value, node: Node) -> str | None:
    others = {u.name for u, _ in w.uses if u is not node}
    if others:
        return f"weight %{w.name} is shared with {', '.join(sorted(others))}"
    return None


@register_pass
@dataclass(frozen=True)
class FoldBatchNorm(Pass):
    """Fold BatchNormalization into neighbouring Conv/ConvTranspose/Gemm/MatMul, or make it Mul+Add."""

    name = "fold-bn"
    standalone: bool = True  # turn BNs that fold nowhere into Mul + Add

    def run(self, graph: Graph) -> PassResult:
        stats = {"folded_into_producer": 0, "folded_into_consumer": 0, "to_mul_add": 0,
                 "refused": []}
        for g in list(iter_graphs(graph)):
            for bn in g.nodes:
                if bn.op != "onnx.BatchNormalization" or bn.graph is None:
                    continue
                st = bn_scale_shift(bn)
                channels = _channel_axis_len(bn.inputs[0])
                if not isinstance(st, str) and channels is not None and channels != st[0].size:
                    st = (f"it has {st[0].size} per-channel parameters but its input "
                          f"%{bn.inputs[0].name} has {channels} channels (malformed model)")
                if isinstance(st, str):
                    stats["refused"].append(f"{bn.name}: {st}")
                    continue
                why = _fold_backward(g, bn, *st)
                if why is None:
                    stats["folded_into_producer"] += 1
                    continue
                why2 = _fold_forward(g, bn, *st)
                if why2 is None:
                    stats["folded_into_consumer"] += 1
                    continue
                if self.standalone and _to_mul_add(g, bn, *st):
                    stats["to_mul_add"] += 1
                    stats["refused"].append(f"{bn.name}: kept as Mul+Add: {why}; {why2}")
                else:
                    stats["refused"].append(f"{bn.name}: {why}; {why2}")
            _drop_orphans(g)
        changed = bool(stats["folded_into_producer"] or stats["folded_into_consumer"]
                       or stats["to_mul_add"])
        return PassResult(graph, changed, stats)


def _drop_orphans(g: Graph) -> None:
    """Remove constants and constant-producing nodes that folding left without readers."""
    for node in reversed(g.nodes):
        if node.op in ("onnx.Constant", "onnx.ConstantOfShape") and not node.outputs[0].uses \
                and node.outputs[0] not in g.outputs:
            g.remove(node)
    for v in g.constants:
        if not v.uses and v not in g.outputs:
            g.remove_value(v)


def _replace_bn(g: Graph, bn: Node, new_value: Value) -> None:
    old = bn.outputs[0]
    g.replace_all_uses(old, new_value)
    for o in bn.outputs:
        if o.uses:
            raise AssertionError("BN statistics outputs were checked unused")
    g.remove(bn)
    # keep the user's value name on the result where nothing else has it
    g.rename(new_value, old.name) if old.name not in g._values else None


def _new_const(g: Graph, base: str, array: np.ndarray, like: Value) -> Value:
    arr = np.ascontiguousarray(array.astype(like.type.dtype.numpy))
    return g.add_const(g.unique_name(base), arr, TensorType(arr.shape, like.type.dtype))


def _fold_backward(g: Graph, bn: Node, s: np.ndarray, t: np.ndarray) -> str | None:
    """Fold into the producer of BN's input; None on success, else why not."""
    x = bn.inputs[0]
    p = x.producer
    if p is None or p.graph is not g:
        return "its input is not produced by a foldable op"
    if p.op not in ("onnx.Conv", "onnx.ConvTranspose", "onnx.Gemm", "onnx.MatMul"):
        return f"its input comes from {p.op_type}, which has no weights to fold into"
    if len(x.uses) != 1 or x in g.outputs:
        return f"the {p.op_type} result %{x.name} is also read elsewhere"
    w_val = p.inputs[1]
    w = const_array(w_val)
    if w is None:
        return f"{p.op_type} {p.name} has a non-constant weight"
    shared = _shared_reason(w_val, p)
    if shared:
        return shared
    b_val = p.inputs[2] if len(p.inputs) > 2 else None
    b = const_array(b_val)
    if b_val is not None and b is None:
        return f"{p.op_type} {p.name} has a non-constant bias"
    if b_val is not None and _shared_reason(b_val, p):
        return _shared_reason(b_val, p)
    w64 = np.asarray(w, np.float64)
    if p.op == "onnx.Conv":
        if w64.shape[0] != s.size:
            return f"BN has {s.size} channels but the conv has {w64.shape[0]} outputs"
        w_new = w64 * s.reshape((-1,) + (1,) * (w64.ndim - 1))
        b_new = (np.zeros(s.size) if b is None else np.asarray(b, np.float64)) * s + t
    elif p.op == "onnx.ConvTranspose":
        group = int(p.attrs.get("group", 1))
        cin, cout_g = w64.shape[0], w64.shape[1]
        if cout_g * group != s.size:
            return f"BN has {s.size} channels but the transposed conv has {cout_g * group}"
        idx = (np.arange(cin)[:, None] // (cin // group)) * cout_g + np.arange(cout_g)[None, :]
        w_new = w64 * s[idx].reshape(cin, cout_g, *([1] * (w64.ndim - 2)))
        b_new = (np.zeros(s.size) if b is None else np.asarray(b, np.float64)) * s + t
    else:
        out = bn.inputs[0].type.shape
        if out is None or len(out) != 2:
            return f"{p.op_type} output is not 2-D, so BN's channel axis is not its features"
        if p.op == "onnx.Gemm" and float(p.attrs.get("alpha", 1.0)) != 1.0:
            w64 = w64 * float(p.attrs["alpha"])
        if p.op == "onnx.Gemm" and p.attrs.get("transA", 0):
            return "Gemm with transA is not folded"
        trans_b = p.op == "onnx.Gemm" and bool(p.attrs.get("transB", 0))
        if (w64.shape[0] if trans_b else w64.shape[-1]) != s.size or w64.ndim != 2:
            return f"BN has {s.size} channels but {p.op_type} has a different width"
        w_new = w64 * (s[:, None] if trans_b else s[None, :])
        beta = float(p.attrs.get("beta", 1.0)) if p.op == "onnx.Gemm" else 1.0
        if b is not None and np.asarray(b).size not in (1, s.size):
            return f"{p.op_type} bias shape {list(np.shape(b))} is not per-feature"
        bias = np.zeros(s.size) if b is None else np.broadcast_to(
            np.asarray(b, np.float64).reshape(-1), (s.size,)) * beta
        b_new = bias * s + t
    w_const = _new_const(g, f"{w_val.name}_bnfold", w_new, w_val)
    b_const = _new_const(g, f"{p.name}_bias_bnfold", b_new, w_val)
    if p.op in ("onnx.Conv", "onnx.ConvTranspose"):
        g.set_input(p, 1, w_const)
        if len(p.inputs) > 2:
            g.set_input(p, 2, b_const)
        else:
            p._inputs.append(None)
            g.set_input(p, 2, b_const)
        _replace_bn(g, bn, x)
        return None
    attrs = {"transB": 1} if trans_b else {}
    if p.op == "onnx.Gemm":
        attrs.update({k: v for k, v in p.attrs.items() if k in ("transA",)})
    gemm = g.add_node("onnx.Gemm", [p.inputs[0], w_const, b_const],
                      [(g.unique_name(f"{x.name}_gemm"), x.type)], attrs, name=p.name)
    _replace_bn(g, bn, gemm.outputs[0])
    g.remove(p)
    return None


def _fold_forward(g: Graph, bn: Node, s: np.ndarray, t: np.ndarray) -> str | None:
    """Fold into the single Conv that reads BN's result, when that is exact."""
    y = bn.outputs[0]
    if len(y.uses) != 1 or y in g.outputs:
        return "its result has several readers"
    c, idx = y.uses[0]
    if c.op != "onnx.Conv" or idx != 0:
        return "it is not followed by a Conv either"
    w_val = c.inputs[1]
    w = const_array(w_val)
    if w is None or _shared_reason(w_val, c):
        return _shared_reason(w_val, c) or f"Conv {c.name} has a non-constant weight"
    if int(c.attrs.get("group", 1)) != 1:
        return f"the following Conv {c.name} is grouped"
    w64 = np.asarray(w, np.float64)
    pads = c.attrs.get("pads", [0] * (2 * (w64.ndim - 2)))
    auto = c.attrs.get("auto_pad", "NOTSET")
    one_by_one = all(k == 1 for k in w64.shape[2:])
    if not one_by_one and (any(pads) or auto in ("SAME_UPPER", "SAME_LOWER")):
        return (f"folding forward into {c.name} would be inexact: its {w64.shape[2:]} kernel "
                "reads zero padding, which BN would have shifted")
    if w64.shape[1] != s.size:
        return f"BN has {s.size} channels but {c.name} reads {w64.shape[1]}"
    b_val = c.inputs[2] if len(c.inputs) > 2 else None
    b = const_array(b_val)
    if b_val is not None and (b is None or _shared_reason(b_val, c)):
        return f"Conv {c.name} has a shared or non-constant bias"
    w_new = w64 * s.reshape(1, -1, *([1] * (w64.ndim - 2)))
    b_new = (np.zeros(w64.shape[0]) if b is None else np.asarray(b, np.float64)) + \
        w64.reshape(w64.shape[0], w64.shape[1], -1).sum(axis=2) @ t
    g.set_input(c, 1, _new_const(g, f"{w_val.name}_bnfold", w_new, w_val))
    if len(c.inputs) < 3:
        c._inputs.append(None)
    g.set_input(c, 2, _new_const(g, f"{c.name}_bias_bnfold", b_new, w_val))
    g.set_input(c, 0, bn.inputs[0])
    g.remove(bn)
    return None


def _to_mul_add(g: Graph, bn: Node, s: np.ndarray, t: np.ndarray) -> bool:
    x = bn.inputs[0]
    rank = x.type.rank
    if rank is None or rank < 2:
        return False
    shape = (s.size,) + (1,) * (rank - 2)
    sv = _new_const(g, f"{bn.name}_scale", s.reshape(shape), x)
    tv = _new_const(g, f"{bn.name}_shift", t.reshape(shape), x)
    out = bn.outputs[0]
    mul = g.add_node("onnx.Mul", [x, sv], [(g.unique_name(f"{out.name}_scaled"), out.type)],
                     name=g.unique_name(f"{bn.name}/scale"))
    add = g.add_node("onnx.Add", [mul.outputs[0], tv],
                     [(g.unique_name(f"{out.name}_shifted"), out.type)],
                     name=g.unique_name(f"{bn.name}/shift"))
    _replace_bn(g, bn, add.outputs[0])
    return True
