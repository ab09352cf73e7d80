"""TFLM rules for conv-like ops: CONV_2D, DEPTHWISE_CONV_2D, TRANSPOSE_CONV, FULLY_CONNECTED.

TFLM runs these only with matching activation and weight types (no hybrid models),
computes per-channel multipliers along the output-channel dimension (0 for conv,
transpose conv and fully connected, 3 for depthwise), never reads an int8 weight's
zero point or an int16 conv input's zero point, and honours only the RELU family of
fused activations (``CalculateActivationRange`` in ``tensorflow/lite/kernels/kernel_util.cc``).
"""

from __future__ import annotations

from tinyir.op_support.rules import UNSUPPORTED_OP
from tinyir.op_support.tflm import TABLE
from tinyir.op_support.tflm_common import INT_Q, dt, fmt, n_scales, operand, scale, zps

CONV = ("tfl.CONV_2D", "tfl.DEPTHWISE_CONV_2D", "tfl.TRANSPOSE_CONV")
CONV_FC = CONV + ("tfl.FULLY_CONNECTED",)
# operand index of (activation input, weights, bias) and the output-channel dim of weights
_LAYOUT = {"tfl.CONV_2D": (0, 1, 2, 0), "tfl.DEPTHWISE_CONV_2D": (0, 1, 2, 3),
           "tfl.TRANSPOSE_CONV": (2, 1, 3, 0), "tfl.FULLY_CONNECTED": (0, 1, 2, 0)}
_TFL_NAMES = {"f32": "FLOAT32", "f16": "FLOAT16", "i4": "INT4", "i8": "INT8", "i16": "INT16",
              "i32": "INT32", "i64": "INT64", "u8": "UINT8", "bool": "BOOL"}
CONV_TYPES = {("f32", "f32"), ("i8", "i8"), ("i8", "i4"), ("i16", "i8")}
HONOURED_ACTIVATIONS = ("NONE", "RELU", "RELU6", "RELU_N1_TO_1")


def tfl_type(name: str) -> str:
    """TFLM's spelling of an element type (``INT8``) for quoted error texts."""
    return _TFL_NAMES.get(name, name.upper())


def _parts(node):
    i, w, b, ch = _LAYOUT[node.op]
    return operand(node, i), operand(node, w), operand(node, b), ch


@TABLE.rule("tflm.conv.hybrid", ops=CONV, category=UNSUPPORTED_OP)
def conv_hybrid(node, ctx):
    """{op} has {act} activations with {weights} weights: TFLM runs it only as f32/f32,
    i8/i8 (or packed i4), or i16/i8, and refuses the model when it loads
    ('{tflm_error}'). {hint}"""
    x, w, _, _ = _parts(node)
    if x is None or w is None or (dt(x), dt(w)) in CONV_TYPES:
        return None
    hint = ("Legacy uint8 quantization: re-convert with int8 (full-integer) quantization."
            if "u8" in (dt(x), dt(w)) else
            "Dynamic-range (hybrid) quantization: convert with a representative dataset "
            "so that activations are int8 too." if dt(x) == "f32" else "")
    return {"op": node.op_type, "act": dt(x), "weights": dt(w), "hint": hint,
            "tflm_error": "Hybrid models are not supported on TFLite Micro."}


@TABLE.rule("tflm.fc.hybrid", ops=["tfl.FULLY_CONNECTED"], category=UNSUPPORTED_OP)
def fc_hybrid(node, ctx):
    """FULLY_CONNECTED has {act} input with {weights} weights: TFLM runs it only as
    f32/f32, i8/i8 (or i4), or i16/i8, and refuses the model when it loads
    ('{tflm_error}'). Hybrid (dynamic-range) models must be fully integer-quantized."""
    x, w, _, _ = _parts(node)
    if x is None or w is None or (dt(x), dt(w)) in CONV_TYPES:
        return None
    return {"act": dt(x), "weights": dt(w),
            "tflm_error": f"Input type: {tfl_type(dt(x))} with filter type: "
                          f"{tfl_type(dt(w))} not supported."}


@TABLE.rule("tflm.conv.scale-count", ops=CONV_FC)
def conv_scale_count(node, ctx):
    """The weights %{weights} of {op} carry {count} scales (and {zps} zero points); TFLM
    needs 1 (per-tensor) or one per output channel ({channels}), matching zero points,
    and refuses the model when it loads ('{tflm_error}')."""
    x, w, _, ch = _parts(node)
    if x is None or w is None or dt(x) not in INT_Q or w.type.rank is None:
        return None
    count, channels = n_scales(w), w.type.shape[ch]
    n_zp = len(w.type.quant.zero_point) if w.type.quant else 0
    ok = count in (1, channels)
    if node.op != "tfl.CONV_2D":  # depthwise/transpose conv: zero points per scale too
        ok = ok and n_zp == count
    if ok:
        return None
    return {"weights": w.name, "op": node.op_type, "count": count, "zps": n_zp,
            "channels": channels,
            "tflm_error": "affine_quantization->scale->size == 1 || "
                          "affine_quantization->scale->size == filter->dims->data["
                          "kConvQuantizedDimension] was not true."}


@TABLE.rule("tflm.conv.per-channel-axis", ops=CONV_FC)
def conv_per_channel_axis(node, ctx):
    """The weights %{weights} of {op} are quantized per channel along axis {axis}; TFLM
    applies per-channel scales along the output-channel axis {expected} only, so it
    either refuses the model or, when both axes have {channels} entries, silently
    applies each scale to the wrong channel."""
    x, w, _, ch = _parts(node)
    q = w.type.quant if w is not None else None
    if x is None or q is None or not q.per_axis or len(q.scale) == 1 or w.type.rank is None:
        return None
    if q.axis == ch or len(q.scale) != w.type.shape[ch]:
        return None  # correct, or reported by tflm.conv.scale-count
    return {"weights": w.name, "op": node.op_type, "axis": q.axis, "expected": ch,
            "channels": w.type.shape[ch]}


@TABLE.rule("tflm.weights.zero-point", ops=CONV_FC)
def weights_zero_point(node, ctx):
    """The int8 weights %{weights} of {op} have zero point {zp}; TFLM's integer kernels
    assume symmetric weights and ignore it, so the model runs but computes wrong
    answers. Quantize weights symmetrically (zero point 0)."""
    x, w, _, _ = _parts(node)
    if w is None or dt(w) not in ("i8", "i4") or dt(x) not in INT_Q:
        return None
    bad = [z for z in zps(w) if z != 0]
    if not bad:
        return None
    return {"weights": w.name, "op": node.op_type, "zp": bad[0]}


@TABLE.rule("tflm.conv.int16-input-zero-point", ops=CONV)
def conv_int16_input_zero_point(node, ctx):
    """The int16 input %{input} of {op} has zero point {zp}; TFLM's 16x8 conv kernels
    never read it, so the model runs but computes wrong answers. int16 activations
    must be symmetric (zero point 0)."""
    x, _, _, _ = _parts(node)
    if x is None or dt(x) != "i16" or zps(x)[0] == 0:
        return None
    return {"input": x.name, "op": node.op_type, "zp": zps(x)[0]}


@TABLE.rule("tflm.conv.int16-bias", ops=["tfl.CONV_2D"])
def conv_int16_bias(node, ctx):
    """CONV_2D with int16 activations has a {bias_type} bias %{bias}; TFLM takes only
    int32 or int64 biases there and fails when the model is invoked ('{tflm_error}')."""
    x, _, b, _ = _parts(node)
    if x is None or b is None or dt(x) != "i16" or dt(b) in ("i32", "i64"):
        return None
    return {"bias": b.name, "bias_type": dt(b),
            "tflm_error": f"Bias type {tfl_type(dt(b))} not supported."}


@TABLE.rule("tflm.fc.bias-scale", ops=["tfl.FULLY_CONNECTED"])
def fc_bias_scale(node, ctx):
    """The bias %{bias} of per-tensor FULLY_CONNECTED has scale {bias_scale}, but input
    scale x weight scale is {product}: the difference is {ratio} of the output scale
    {out_scale}, above the 0.02 TFLM allows, so it refuses the model when it loads
    ('{tflm_error}')."""
    x, w, b, _ = _parts(node)
    if x is None or w is None or b is None or dt(x) not in INT_Q or n_scales(w) != 1:
        return None
    out = node.outputs[0]
    product = scale(x) * scale(w)
    s_out = scale(out)
    diff = abs(product - scale(b))
    if s_out > 0 and diff / s_out <= 0.02:
        return None
    return {"bias": b.name, "bias_scale": fmt(scale(b)), "product": fmt(product),
            "out_scale": fmt(s_out),
            "ratio": f"{diff / s_out:.3g}" if s_out > 0 else "inf",
            "tflm_error": "scale_diff / output_scale <= 0.02 was not true."}


FUSED = ("tfl.ADD", "tfl.SUB", "tfl.MUL", "tfl.DIV", "tfl.CONV_2D", "tfl.DEPTHWISE_CONV_2D",
         "tfl.FULLY_CONNECTED", "tfl.TRANSPOSE_CONV", "tfl.AVERAGE_POOL_2D", "tfl.MAX_POOL_2D",
         "tfl.L2_POOL_2D")


@TABLE.rule("tflm.fused-activation.ignored", ops=FUSED)
def fused_activation_ignored(node, ctx):
    """{op} carries the fused activation {act}; TFLM applies only RELU, RELU6 and
    RELU_N1_TO_1 and silently skips anything else, so the model runs but its answers
    lack the {act}. Use a separate {act} op."""
    act = node.attrs.get("fused_activation_function", "NONE")
    if act in HONOURED_ACTIVATIONS:
        return None
    return {"op": node.op_type, "act": act}
