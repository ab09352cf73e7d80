"""quantize: full-int8 quantization to the TFLite spec, on the TFLite dialect.

An ONNX graph is lowered first (``lower_onnx_to_tfl``); then every float activation
becomes int8 with parameters on its value, and every weight and bias is quantized:

* **Weights** (CONV_2D, FULLY_CONNECTED: axis 0; DEPTHWISE_CONV_2D: axis 3): symmetric
  per channel, ``s_w[c] = max|w_c| / 127`` and ``q = clamp(round(w * (127 / max|w_c|)),
  -127, 127)`` in float32 (the converter's recipe, ``quantization_utils.cc``).  An
  all-zero channel (a BN with gamma = 0) gets the median scale of the other channels,
  never 0.
* **Bias**: int32, per channel, ``s_b[c] = float32(s_in * s_w[c])``, zp 0, ``q =
  round(b / s_b[c])``.  Where ``|q|`` would pass INT32_MAX the channel's weight scale is
  widened until it fits (``AdjustWeightsForBiasScale``).
* **Activations**: asymmetric per tensor, from calibration (``calibrate.py``), from a JSON
  file of explicit params, or estimated without data (``datafree.py``).
* **Fixed outputs**: SOFTMAX and LOGISTIC (1/256, -128), TANH and L2_NORMALIZATION
  (1/128, 0), LOG_SOFTMAX (16/256, 127): TFLM's kernels assume these.
* **Equal params**: pooling, reshape-like ops, PAD, TRANSPOSE, SLICE, GATHER, SPLIT and
  friends have one set of params on input and outputs; CONCATENATION, PACK, MAXIMUM and
  MINIMUM on every input and the output.  The values tied this way form one class whose
  range is the union of its members' (the converter unifies producers the same way).
  A fixed-param value that cannot join a class (a softmax output concatenated with a
  conv output) is requantized with a QUANTIZE op on that edge.
* **I/O**: ``io=int8`` (default) makes graph inputs and outputs int8 with their params;
  ``io=float`` keeps them float with QUANTIZE / DEQUANTIZE at the boundary.

A graph that already carries quantization (TFLite int8, ONNX QDQ or QOperator) is left
as it is: its params are kept and the pass reports that it did nothing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tinyir.errors import PassError
from tinyir.graph import Graph, Node, Value
from tinyir.interp.tfl_quant import round_away
from tinyir.passes.base import Pass, PassResult, register_pass
from tinyir.passes.calibrate import METHODS, asymmetric_params, choose_range, collect, load_samples
from tinyir.types import DType, QuantParams, TensorType

I32_MAX = (1 << 31) - 1

WEIGHT_AXIS = {"tfl.CONV_2D": 0, "tfl.DEPTHWISE_CONV_2D": 3, "tfl.FULLY_CONNECTED": 0}
FIXED = {"tfl.SOFTMAX": (1 / 256, -128), "tfl.LOGISTIC": (1 / 256, -128),
         "tfl.TANH": (1 / 128, 0), "tfl.L2_NORMALIZATION": (1 / 128, 0),
         "tfl.LOG_SOFTMAX": (16 / 256, 127)}
# ops whose data operand (index) and results share params
SAME = {"tfl.MAX_POOL_2D": 0, "tfl.AVERAGE_POOL_2D": 0, "tfl.RESHAPE": 0, "tfl.SQUEEZE": 0,
        "tfl.EXPAND_DIMS": 0, "tfl.TRANSPOSE": 0, "tfl.PAD": 0, "tfl.PADV2": 0, "tfl.SLICE": 0,
        "tfl.STRIDED_SLICE": 0, "tfl.GATHER": 0, "tfl.SPACE_TO_DEPTH": 0,
        "tfl.DEPTH_TO_SPACE": 0, "tfl.BATCH_TO_SPACE_ND": 0, "tfl.SPACE_TO_BATCH_ND": 0,
        "tfl.RESIZE_BILINEAR": 0, "tfl.RESIZE_NEAREST_NEIGHBOR": 0, "tfl.SPLIT": 1,
        "tfl.SPLIT_V": 0, "tfl.UNPACK": 0}
# ops whose every float operand and the result share params
SAME_ALL = {"tfl.CONCATENATION", "tfl.PACK", "tfl.MAXIMUM", "tfl.MINIMUM"}
# ops with free output params (int8 kernels rescale)
FREE = {"tfl.ADD", "tfl.SUB", "tfl.MUL", "tfl.MEAN", "tfl.RELU", "tfl.RELU6",
        "tfl.RELU_N1_TO_1", "tfl.LEAKY_RELU", "tfl.HARD_SWISH", "tfl.QUANTIZE"}
QUANT_OPS = ("onnx.QuantizeLinear", "onnx.DequantizeLinear", "onnx.QLinearConv",
             "onnx.QLinearMatMul", "onnx.ConvInteger", "onnx.MatMulInteger",
             "onnx.DynamicQuantizeLinear", "tfl.QUANTIZE", "tfl.DEQUANTIZE")


@register_pass
@dataclass(frozen=True)
class Quantize(Pass):
    """Quantize to full int8 (TFLite spec): calibrated, explicit or data-free activation params."""

    name = "quantize"
    calib: str = ""            # .npz of calibration inputs
    method: str = "minmax"     # minmax | percentile | entropy
    percentile: float = 99.99
    scales: str = ""           # JSON of explicit params {value: {scale, zero_point} | {min, max}}
    datafree: bool = False     # cross-layer equalization + bias correction, no data
    io: str = "int8"           # int8 | float
    samples: int = 200         # calibration samples used (at most)
    save_scales: str = ""      # write the chosen activation params to this JSON file
    input_range: str = ""      # datafree: range of the model input, LO:HI
    sigmas: float = 6.0        # datafree: activation range = mean +- sigmas * std
    bias_correction: bool = True  # absorb E[(W~ - W) x] into the bias (calibrated or estimated E[x])

    def __post_init__(self):
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {', '.join(METHODS)}, not {self.method!r}")
        if self.io not in ("int8", "float"):
            raise ValueError(f"io must be int8 or float, not {self.io!r}")
        if not 50.0 < self.percentile <= 100.0:
            raise ValueError(f"percentile must be in (50, 100], not {self.percentile}")

    def run(self, graph: Graph) -> PassResult:
        already = already_quantized(graph)
        if already:
            return PassResult(graph, False, {"already_quantized": already,
                                             "note": "existing quantization params kept"})
        if not (self.calib or self.scales or self.datafree):
            raise PassError("quantize needs calibration data (calib=FILE.npz), explicit scales "
                            "(scales=FILE.json) or datafree=1")
        if self.datafree and not self.input_range:
            raise PassError("quantize datafree=1 needs the range of the model input "
                            "(input_range=LO:HI, e.g. input_range=0:1)")
        stats: dict = {}
        bn_stats = None
        if any(n.dialect == "onnx" for _, n in graph.walk()):
            if self.datafree:
                from tinyir.passes.datafree import bn_statistics

                bn_stats = bn_statistics(graph)
            lowered = _lower(graph)
            graph = lowered.graph
            if bn_stats is not None:
                bn_stats = bn_stats.resolve(lowered.origin)
        _check_ops(graph)
        input_means: dict[str, np.ndarray] = {}
        if self.datafree:
            from tinyir.passes import datafree

            stats["equalized_pairs"] = datafree.equalize(graph, bn_stats)
            est = datafree.estimate(graph, bn_stats, _parse_range(self.input_range),
                                    self.sigmas)
            ranges = {n: e.range() for n, e in est.items()}
            if self.bias_correction:
                input_means = {n: e.mean for n, e in est.items()}
            stats["bn_statistics"] = 0 if bn_stats is None else len(bn_stats.channels)
            if not stats["bn_statistics"]:
                stats["note"] = ("no BatchNormalization statistics: ranges propagated from "
                                 "input_range only (run quantize before fold-bn for BN ranges)")
        plan = Plan(graph)
        if self.scales and not (self.calib or self.datafree):
            ranges = None
        elif not self.datafree:
            samples = load_samples(self.calib, graph, self.samples)
            names = [v.name for v in plan.activations]
            bins = 0 if self.method == "minmax" else 2048
            st = collect(graph, samples, names, bins, means=self.bias_correction)
            ranges = {}
            for n, s in st.items():
                # graph outputs keep their whole range: clipping logits changes the arg-max
                method = "minmax" if graph.value(n) in graph.outputs else self.method
                ranges[n] = choose_range(s, method, self.percentile)
            if self.bias_correction:
                input_means = {n: s.channel_mean for n, s in st.items()
                               if s.channel_mean is not None}
            stats["samples"] = sum(next(iter(f.values())).shape[0] for f in samples)
            stats["method"] = self.method
        explicit = _read_scales(self.scales) if self.scales else {}
        params = plan.params(ranges, explicit)
        if self.save_scales:
            _write_scales(self.save_scales, plan, params, ranges)
        rw = _rewrite(graph, plan, params, self.io, input_means)
        stats.update(rw)
        graph.prune_unused()
        return PassResult(graph, True, stats)


# ---- preconditions -----------------------------------------------------------------------

def already_quantized(graph: Graph) -> str:
    """Why the graph counts as quantized already ('' when it does not)."""
    for _, n in graph.walk():
        if n.op in QUANT_OPS or n.op.startswith("onnx.com.microsoft.QLinear"):
            return f"it has {n.op_type} nodes ({n.name})"
    for v in graph.values:
        if v.type.quant is not None and v.type.dtype in (DType.INT8, DType.UINT8, DType.INT16):
            return f"%{v.name} is already {v.type.dtype.value} with quantization params"
    return ""


def _lower(graph: Graph):
    from tinyir.backends.tflm.lower import lower_onnx_to_tfl

    lowered = lower_onnx_to_tfl(graph)
    if lowered.findings:
        what = "; ".join(f.message for f in lowered.findings[:3])
        more = f" (and {len(lowered.findings) - 3} more)" if len(lowered.findings) > 3 else ""
        raise PassError(f"quantize works on TFLite ops, and lowering left ONNX ops: {what}{more}")
    return lowered


def _check_ops(graph: Graph) -> None:
    if any(n.subgraphs() for n in graph.nodes):
        raise PassError("quantize does not handle control flow (nested graphs)")
    unknown = {}
    for n in graph.nodes:
        floats = [v for v in list(n.inputs) + list(n.outputs)
                  if v is not None and v.type.dtype == DType.FLOAT32]
        if not floats:
            continue
        if n.op not in WEIGHT_AXIS and n.op not in FIXED and n.op not in SAME \
                and n.op not in SAME_ALL and n.op not in FREE:
            unknown.setdefault(n.op, n.name)
        if n.op in WEIGHT_AXIS and not n.inputs[1].is_const:
            raise PassError(f"quantize: {n.op_type} {n.name} has non-constant weights "
                            f"(%{n.inputs[1].name}); int8 needs them constant")
    if unknown:
        raise PassError("quantize has no int8 rule for " + ", ".join(
            f"{op} (node {name})" for op, name in sorted(unknown.items())))


# ---- which values share params -----------------------------------------------------------

class Plan:
    """Activation values of the graph grouped into classes that must share params."""

    def __init__(self, graph: Graph):
        self.graph = graph
        self.activations = [v for v in graph.values
                            if not v.is_const and v.type.dtype == DType.FLOAT32]
        self.parent: dict[str, str] = {v.name: v.name for v in self.activations}
        self.fixed: dict[str, tuple[float, int]] = {}
        self.requant: list[tuple[Node, int]] = []  # edges that need a QUANTIZE op
        for n in graph.nodes:
            if n.op in FIXED:
                self.fixed[n.outputs[0].name] = FIXED[n.op]
        for n in graph.nodes:
            if n.op in SAME:
                x = n.inputs[SAME[n.op]]
                for o in n.outputs:
                    if not self._union(x, o):
                        self.requant.append((n, SAME[n.op]))
            elif n.op in SAME_ALL:
                out = n.outputs[0]
                for i, x in enumerate(n.inputs):
                    if x is None or x.is_const or x.type.dtype != DType.FLOAT32:
                        continue
                    if self._root(x.name) in self.fixed or not self._union(x, out):
                        self.requant.append((n, i))

    def _root(self, name: str) -> str:
        while self.parent[name] != name:
            self.parent[name] = self.parent[self.parent[name]]
            name = self.parent[name]
        return name

    def _union(self, a: Value, b: Value) -> bool:
        if a.is_const or a.name not in self.parent:
            return True
        ra, rb = self._root(a.name), self._root(b.name)
        if ra == rb:
            return True
        fa, fb = self.fixed.get(ra), self.fixed.get(rb)
        if fa and fb and fa != fb:
            return False
        self.parent[rb] = ra
        if fb and not fa:
            self.fixed[ra] = fb
        return True

    def classes(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for v in self.activations:
            out.setdefault(self._root(v.name), []).append(v.name)
        return out

    def params(self, ranges: dict[str, tuple[float, float]] | None,
               explicit: dict[str, dict]) -> dict[str, tuple[float, int]]:
        """(scale, zp) for every activation value."""
        out: dict[str, tuple[float, int]] = {}
        missing = []
        for root, members in self.classes().items():
            p = self.fixed.get(root)
            if p is None:
                given = [explicit[m] for m in members if m in explicit]
                exact = [g for g in given if "scale" in g]
                if exact:
                    p = (float(exact[0]["scale"]), int(exact[0].get("zero_point", 0)))
                else:
                    rs = [(float(g["min"]), float(g["max"])) for g in given if "min" in g]
                    if not rs and ranges is not None:
                        rs = [ranges[m] for m in members if m in ranges]
                    if not rs:
                        missing.extend(members)
                        continue
                    p = asymmetric_params(min(r[0] for r in rs), max(r[1] for r in rs))
            if not p[0] > 0:
                raise PassError(f"quantize: %{members[0]} would get scale {p[0]}; scales must be "
                                "positive")
            for m in members:
                out[m] = (float(np.float32(p[0])), int(p[1]))
        if missing:
            shown = ", ".join(f"%{m}" for m in missing[:8])
            raise PassError(f"quantize: the scales file gives no params for {shown}"
                            + (f" and {len(missing) - 8} more" if len(missing) > 8 else ""))
        return out


def _parse_range(text: str) -> tuple[float, float]:
    try:
        lo, hi = (float(t) for t in text.split(":"))
    except ValueError:
        raise PassError(f"quantize: input_range={text!r} is not LO:HI") from None
    if not hi > lo:
        raise PassError(f"quantize: input_range={text!r} is empty")
    return lo, hi


# ---- explicit params files ---------------------------------------------------------------

def _read_scales(path: str) -> dict[str, dict]:
    p = Path(path)
    if not p.is_file():
        raise PassError(f"quantize: scales file {path} does not exist")
    try:
        doc = json.loads(p.read_text())
    except (OSError, ValueError) as e:
        raise PassError(f"quantize: cannot read scales file {path}: {e}") from None
    doc = doc.get("values", doc) if isinstance(doc, dict) else doc
    if not isinstance(doc, dict) or not all(
            isinstance(v, dict) and ("scale" in v or ("min" in v and "max" in v))
            for v in doc.values()):
        raise PassError(f"quantize: {path} must map value names to {{\"scale\", \"zero_point\"}} "
                        "or {\"min\", \"max\"}")
    return doc


def _write_scales(path: str, plan: Plan, params: dict, ranges: dict | None) -> None:
    doc = {}
    for v in plan.activations:
        s, z = params[v.name]
        entry = {"scale": s, "zero_point": z}
        if ranges and v.name in ranges:
            entry.update({"min": float(ranges[v.name][0]), "max": float(ranges[v.name][1])})
        doc[v.name] = entry
    Path(path).write_text(json.dumps({"values": doc}, indent=1) + "\n")


# ---- weights and biases ------------------------------------------------------------------

def weight_scales(w: np.ndarray, axis: int) -> np.ndarray:
    """Per-channel symmetric scales max|w_c|/127 (float32); zero channels borrow the median."""
    moved = np.moveaxis(np.asarray(w, np.float32), axis, 0).reshape(w.shape[axis], -1)
    half = np.abs(moved).max(axis=1).astype(np.float32)
    scales = (half / np.float32(127)).astype(np.float32)
    zero = scales == 0
    if zero.all():
        scales[:] = np.float32(1.0 / 127)
    elif zero.any():
        scales[zero] = np.float32(np.median(scales[~zero]))
    return scales


def quantize_weights(w: np.ndarray, axis: int, scales: np.ndarray) -> np.ndarray:
    """``clamp(round(w * (1 / s_c)), -127, 127)`` per channel, in float32."""
    shape = [1] * w.ndim
    shape[axis] = -1
    inv = (np.float32(1) / scales.astype(np.float32)).reshape(shape)
    q = round_away(np.asarray(w, np.float32) * inv)
    return np.clip(q, -127, 127).astype(np.int8)


def quantize_bias(b: np.ndarray, s_in: float, w_scales: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """int32 bias and its per-channel scales float32(s_in * s_w[c])."""
    scales = (np.float32(s_in) * w_scales.astype(np.float32)).astype(np.float32)
    q = round_away(np.asarray(b, np.float32) * (np.float32(1) / scales))
    return np.clip(q, -I32_MAX, I32_MAX).astype(np.int32), scales


def fit_bias(b: np.ndarray | None, s_in: float, w_scales: np.ndarray) -> np.ndarray:
    """Widen weight scales so that each bias fits int32 (AdjustWeightsForBiasScale)."""
    if b is None:
        return w_scales
    need = np.abs(np.asarray(b, np.float64)) / (0.5 * float(s_in) * I32_MAX)
    return np.maximum(w_scales, need.astype(np.float32)).astype(np.float32)


# ---- the rewrite -------------------------------------------------------------------------

def _qtype(v: Value, p: tuple[float, int]) -> TensorType:
    return TensorType(v.type.shape, DType.INT8, QuantParams((p[0],), (p[1],)))


def _const_act(g: Graph, v: Value, p: tuple[float, int]) -> Value:
    """A float constant operand of an activation op, as int8 with params ``p``."""
    q = np.clip(round_away(np.asarray(v.const, np.float32) / np.float32(p[0])) + p[1],
                -128, 127).astype(np.int8)
    return g.add_const(g.unique_name(f"{v.name}_int8"), q, _qtype(v, p))


def _rewrite(g: Graph, plan: Plan, params: dict[str, tuple[float, int]], io: str,
             input_means: dict[str, np.ndarray]) -> dict:
    n_weights = n_requant = 0
    # weights, biases and constant operands first: they read the float params
    for node in g.nodes:
        if node.op in WEIGHT_AXIS:
            x, w = node.inputs[0], node.inputs[1]
            b = node.inputs[2] if len(node.inputs) > 2 else None
            s_in = params[x.name][0]
            axis = WEIGHT_AXIS[node.op]
            wf = np.asarray(w.const, np.float32)
            bf = None if b is None else np.asarray(b.const, np.float32)
            scales = fit_bias(bf, s_in, weight_scales(wf, axis))
            wq = quantize_weights(wf, axis, scales)
            mean = input_means.get(x.name)
            if mean is not None and bf is not None:
                from tinyir.passes.datafree import correct_bias

                bf = correct_bias(node, wf, wq, scales, bf, mean)
            wv = g.add_const(g.unique_name(f"{w.name}_int8"), wq, TensorType(
                wq.shape, DType.INT8, QuantParams(tuple(scales), (0,) * scales.size, axis)))
            g.set_input(node, 1, wv)
            if bf is not None:
                bq, bs = quantize_bias(bf, s_in, scales)
                bv = g.add_const(g.unique_name(f"{b.name}_int32"), bq, TensorType(
                    bq.shape, DType.INT32, QuantParams(tuple(bs), (0,) * bs.size, 0)))
                g.set_input(node, 2, bv)
            n_weights += 1
            continue
        for i, v in enumerate(node.inputs):
            if v is None or not v.is_const or v.type.dtype != DType.FLOAT32:
                continue
            if node.op in SAME or node.op in SAME_ALL:
                p = params[node.outputs[0].name]
            else:
                arr = np.asarray(v.const, np.float32)
                p = asymmetric_params(float(arr.min()), float(arr.max()))
            g.set_input(node, i, _const_act(g, v, p))
    # requantize edges whose params cannot be shared
    for node, i in plan.requant:
        x = node.inputs[i]
        target = params[node.outputs[0].name]
        q = g.add_node("tfl.QUANTIZE", [x], [(g.unique_name(f"{x.name}_requant"), x.type)],
                       name=g.unique_name(f"{x.name}_requant"))
        params[q.outputs[0].name] = target
        g.set_input(node, i, q.outputs[0])
        n_requant += 1
    # activations become int8
    for v in [v for v in g.values if not v.is_const and v.type.dtype == DType.FLOAT32]:
        v.type = _qtype(v, params[v.name])
    if io == "float":
        _float_boundary(g)
    return {"weights": n_weights, "activations": len(params), "requantize_ops": n_requant,
            "io": io}


def _float_boundary(g: Graph) -> None:
    """Float graph inputs/outputs with QUANTIZE / DEQUANTIZE behind and before them."""
    for v in list(g.inputs):
        if v.type.dtype != DType.INT8:
            continue
        qtype = v.type
        v.type = TensorType(qtype.shape, DType.FLOAT32)
        q = g.add_node("tfl.QUANTIZE", [v], [(g.unique_name(f"{v.name}_int8"), qtype)],
                       name=g.unique_name(f"{v.name}_quantize"))
        for user, idx in list(v.uses):
            if user is not q:
                g.set_input(user, idx, q.outputs[0])
    outs = []
    for v in g.outputs:
        if v.type.dtype != DType.INT8:
            outs.append(v)
            continue
        name = v.name
        g.rename(v, g.unique_name(f"{name}_int8"))
        d = g.add_node("tfl.DEQUANTIZE", [v], [(name, TensorType(v.type.shape, DType.FLOAT32))],
                       name=g.unique_name(f"{name}_dequantize"))
        outs.append(d.outputs[0])
    g.outputs = outs
