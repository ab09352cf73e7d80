"""TFLM rules on the quantization parameters of activations.

TFLM's integer kernels do not requantize where TFLite's reference does: concatenation
and pooling pass values through, softmax and logistic write into a fixed output
range, and several int16 paths assume symmetric (zero point 0) tensors.  Each rule
quotes the check in ``tensorflow/lite/micro/kernels/*`` that refuses the model.
"""

from __future__ import annotations

import math

from tinyir.op_support.tflm import TABLE
from tinyir.op_support.tflm_common import dt, fmt, n_scales, operand, scale, zp

_ACT_CODES = {"NONE": 0, "RELU": 1, "RELU_N1_TO_1": 2, "RELU6": 3, "TANH": 4, "SIGN_BIT": 5}
MAX_CONCAT_INPUTS = 10  # kMaxInputNum in concatenation.cc


@TABLE.rule("tflm.concat.max-inputs", ops=["tfl.CONCATENATION"])
def concat_max_inputs(node, ctx):
    """CONCATENATION has {count} inputs; TFLM's kernel takes at most {limit} and refuses
    the model when it loads ('{tflm_error}'). Split it into a tree of concatenations."""
    n = len([v for v in node.inputs if v is not None])
    if n <= MAX_CONCAT_INPUTS:
        return None
    return {"count": n, "limit": MAX_CONCAT_INPUTS,
            "tflm_error": "num_inputs <= kMaxInputNum was not true."}


@TABLE.rule("tflm.concat.no-activation", ops=["tfl.CONCATENATION"])
def concat_no_activation(node, ctx):
    """CONCATENATION carries the fused activation {act}; TFLM's kernel accepts none and
    refuses the model when it loads ('{tflm_error}'). Use a separate activation op."""
    act = node.attrs.get("fused_activation_function", "NONE")
    if act == "NONE":
        return None
    code = _ACT_CODES.get(act, act)
    return {"act": act,
            "tflm_error": f"params->activation != kTfLiteActNone ({code} != 0)"}


@TABLE.rule("tflm.concat.same-qparams", ops=["tfl.CONCATENATION"])
def concat_same_qparams(node, ctx):
    """Every int8 input of CONCATENATION must have exactly the output's scale and zero
    point (%{input} has scale {scale} and zero point {zp}; the output has {out_scale}
    and {out_zp}): TFLM does not requantize inside CONCATENATION and refuses the model
    when it loads ('{tflm_error}')."""
    out = node.outputs[0]
    if dt(out) != "i8":
        return None
    for v in node.inputs:
        if v is None or dt(v) != "i8":
            continue
        if scale(v) != scale(out) or zp(v) != zp(out):
            what = "scale" if scale(v) != scale(out) else "zero_point"
            return {"input": v.name, "scale": fmt(scale(v)), "zp": zp(v),
                    "out_scale": fmt(scale(out)), "out_zp": zp(out),
                    "tflm_error": f"input->params.{what} != output->params.{what}"}
    return None


@TABLE.rule("tflm.concat.int16-zero-point", ops=["tfl.CONCATENATION"])
def concat_int16_zero_point(node, ctx):
    """The int16 tensor %{value} of CONCATENATION has zero point {zp}; TFLM needs 0 on
    every int16 input and the output and refuses the model when it loads."""
    for v in list(node.inputs) + list(node.outputs):
        if v is not None and dt(v) == "i16" and zp(v) != 0:
            return {"value": v.name, "zp": zp(v)}
    return None


@TABLE.rule("tflm.softmax.int8-output", ops=["tfl.SOFTMAX"])
def softmax_int8_output(node, ctx):
    """The int8 output %{output} of SOFTMAX has scale {scale} and zero point {zp}; TFLM
    requires exactly 1/256 and -128 (the fixed [0, 1) range its kernel writes) and
    refuses the model when it loads ('{tflm_error}')."""
    x, out = node.inputs[0], node.outputs[0]
    if dt(x) != "i8" or dt(out) != "i8":
        return None
    if zp(out) != -128:
        err = f"output->params.zero_point != -128 ({zp(out)} != -128)"
    elif scale(out) != 1 / 256:
        err = "output->params.scale == 1.f / 256 was not true."
    else:
        return None
    return {"output": out.name, "scale": fmt(scale(out)), "zp": zp(out), "tflm_error": err}


def _near(s: float, want: float) -> bool:
    return abs(s - want) <= 0.001 * want


@TABLE.rule("tflm.softmax.int16-output", ops=["tfl.SOFTMAX"])
def softmax_int16_output(node, ctx):
    """The int16 output %{output} of {kind} SOFTMAX has scale {scale} and zero point {zp};
    TFLM requires scale {want_scale} and zero point {want_zp}{input_zp} and refuses the
    model when it loads."""
    x, out = node.inputs[0], node.outputs[0]
    if dt(out) != "i16" or dt(x) not in ("i8", "i16"):
        return None
    if dt(x) == "i8":
        want_s, want_zp, extra = 1 / 65536, -32768, ""
        ok = zp(out) == want_zp and _near(scale(out), want_s)
    else:
        want_s, want_zp, extra = 1 / 32768, 0, " (and input zero point 0)"
        ok = zp(out) == 0 and zp(x) == 0 and _near(scale(out), want_s)
    if ok:
        return None
    return {"output": out.name, "kind": f"{dt(x)}->i16", "scale": fmt(scale(out)),
            "zp": zp(out), "want_scale": f"1/{round(1 / want_s)}", "want_zp": want_zp,
            "input_zp": extra}


@TABLE.rule("tflm.logistic.int8-output", ops=["tfl.LOGISTIC"])
def logistic_int8_output(node, ctx):
    """The int8 output %{output} of LOGISTIC has zero point {zp}; TFLM requires -128 (its
    kernel writes the [0, 1) range with scale 1/256) and refuses the model when it
    loads ('{tflm_error}')."""
    out = node.outputs[0]
    if dt(out) != "i8" or zp(out) == -128:
        return None
    return {"output": out.name, "zp": zp(out),
            "tflm_error": "output->params.zero_point != std::numeric_limits<int8_t>::min() "
                          f"({zp(out)} != -128)"}


def _int16_pot_output(node):
    x, out = node.inputs[0], node.outputs[0]
    if dt(x) != "i16":
        return None
    s = scale(out)
    log2 = math.log2(s) if s > 0 else float("-inf")
    if zp(x) == 0 and zp(out) == 0 and abs(log2 + 15) < 1e-3:
        return None
    return {"op": node.op_type, "input_zp": zp(x), "output": out.name, "zp": zp(out),
            "scale": fmt(s)}


@TABLE.rule("tflm.logistic.int16", ops=["tfl.LOGISTIC"])
def logistic_int16(node, ctx):
    """int16 {op} needs zero point 0 on input and output and output scale 2^-15 (input
    zero point {input_zp}; %{output} has zero point {zp} and scale {scale}); TFLM
    refuses the model when it loads."""
    return _int16_pot_output(node)


@TABLE.rule("tflm.tanh.int16", ops=["tfl.TANH"])
def tanh_int16(node, ctx):
    """int16 {op} needs zero point 0 on input and output and output scale 2^-15 (input
    zero point {input_zp}; %{output} has zero point {zp} and scale {scale}); TFLM
    refuses the model when it loads."""
    return _int16_pot_output(node)


@TABLE.rule("tflm.pool.same-qparams", ops=["tfl.AVERAGE_POOL_2D", "tfl.MAX_POOL_2D"])
def pool_same_qparams(node, ctx):
    """{op} input %{input} has scale {in_scale} and zero point {in_zp} but the output has
    {out_scale} and {out_zp}; TFLM's quantized pooling does not rescale, needs equal
    parameters (scales within 1e-6) and refuses the model when it loads
    ('{tflm_error}')."""
    x, out = node.inputs[0], node.outputs[0]
    if dt(x) not in ("i8", "i16"):
        return None
    if abs(scale(x) - scale(out)) <= 1e-6 and zp(x) == zp(out):
        return None
    return {"op": node.op_type, "input": x.name, "in_scale": fmt(scale(x)), "in_zp": zp(x),
            "out_scale": fmt(scale(out)), "out_zp": zp(out),
            "tflm_error": "scale_diff <= 1.0e-6 was not true." if
            abs(scale(x) - scale(out)) > 1e-6 else
            "input->params.zero_point == output->params.zero_point was not true."}


@TABLE.rule("tflm.mul.int16-zero-point", ops=["tfl.MUL"])
def mul_int16_zero_point(node, ctx):
    """int16 MUL needs zero point 0 on both inputs and the output; %{value} has {zp}, and
    TFLM refuses the model when it loads ('{tflm_error}')."""
    if dt(node.inputs[0]) != "i16":
        return None
    names = ("input1", "input2", "output")
    for name, v in zip(names, list(node.inputs[:2]) + [node.outputs[0]]):
        if v is not None and zp(v) != 0:
            return {"value": v.name, "zp": zp(v),
                    "tflm_error": f"data->{name}_zero_point != 0 ({zp(v)} != 0)"}
    return None


@TABLE.rule("tflm.quantize.per-tensor-output", ops=["tfl.QUANTIZE"])
def quantize_per_tensor_output(node, ctx):
    """QUANTIZE writes %{output} with {count} scales (per-axis along {axis}); TFLM's
    QUANTIZE produces per-tensor outputs only and refuses the model when it loads
    ('{tflm_error}')."""
    out = node.outputs[0]
    if n_scales(out) <= 1:
        return None
    return {"output": out.name, "count": n_scales(out), "axis": out.type.quant.axis,
            "tflm_error": "affine_quantization->scale->size == 1 was not true."}


@TABLE.rule("tflm.pad.same-qparams", ops=["tfl.PADV2"])
def padv2_same_qparams(node, ctx):
    """The int8 pad value %{value} of PADV2 has scale {scale} and zero point {zp} but the
    output has {out_scale} and {out_zp}; TFLM pads with the raw int8 value, needs equal
    parameters and refuses the model when it loads."""
    c, out = operand(node, 2), node.outputs[0]
    if c is None or dt(out) != "i8" or (scale(c) == scale(out) and zp(c) == zp(out)):
        return None
    return {"value": c.name, "scale": fmt(scale(c)), "zp": zp(c),
            "out_scale": fmt(scale(out)), "out_zp": zp(out)}
