"""Reference kernels for TFLite ops: float, and integer arithmetic bit-exact with TFLM.

Integer kernels restate TFLM's reference kernels (``tensorflow/lite/kernels/internal/
reference/``, the Prepare-time math of ``tensorflow/lite/micro/kernels/``) as the
``tflite-micro`` Python interpreter runs them; the fixed-point primitives are in
:mod:`tinyir.interp.tfl_quant`.  Float kernels compute in float64 and round to float32,
which agrees with TFLM's float32 loops to rounding error.

This module holds the convolution family (CONV_2D, DEPTHWISE_CONV_2D, FULLY_CONNECTED,
pooling) and the binary arithmetic ops; activations, data movement and recurrent ops
live in ``tfl_activation.py``, ``tfl_shape.py`` and ``tfl_recurrent.py``.

Integer accumulation is exact: products of int8/int16 values are summed in float64
(BLAS), which is exact below 2**53, then wrapped to int32 where TFLM accumulates in
int32.
"""

from __future__ import annotations

import numpy as np

from tinyir.errors import UnsupportedError
from tinyir.interp import tfl_quant as fx
from tinyir.interp.core import kernel
from tinyir.interp.tfl_common import (activation, attr, clamp_cast, f32, float_act,
                                      int_limits, out_dtype, out_shape, qparams, qscales,
                                      quant_act_range)

# ---- geometry -------------------------------------------------------------------------


def _out_size(padding: str, size: int, filt: int, stride: int, dilation: int) -> int:
    eff = (filt - 1) * dilation + 1
    if padding == "SAME":
        return (size + stride - 1) // stride
    return (size + stride - eff) // stride


def _pad_before(size: int, filt: int, stride: int, dilation: int, out: int) -> int:
    """TFLM ``ComputePaddingWithOffset``: the leading half of the total padding."""
    eff = (filt - 1) * dilation + 1
    return max(0, (out - 1) * stride + eff - size) // 2


def _geometry(node, x_shape, kh, kw, out):
    """(oh, ow, pad_top, pad_left, sh, sw, dh, dw) of a conv/pool node."""
    padding = attr(node, "padding", "SAME")
    sh, sw = int(attr(node, "stride_h", 1)), int(attr(node, "stride_w", 1))
    dh, dw = int(attr(node, "dilation_h_factor", 1)), int(attr(node, "dilation_w_factor", 1))
    _, h, w, _ = x_shape
    oh = _out_size(padding, h, kh, sh, dh)
    ow = _out_size(padding, w, kw, sw, dw)
    shape = out.type.shape
    if shape is not None and len(shape) == 4 and all(isinstance(d, int) for d in shape):
        oh, ow = shape[1], shape[2]
    if padding == "SAME":
        pt, pl = _pad_before(h, kh, sh, dh, oh), _pad_before(w, kw, sw, dw, ow)
    else:
        pt = pl = 0
    return oh, ow, pt, pl, sh, sw, dh, dw


def _taps(x, kh, kw, geo, fill=0.0):
    """Yield ((i, j), window) for every filter tap: window is [N, oh, ow, C].

    Positions outside the image read ``fill`` (0 in the zero-point-offset domain is
    TFLM's "skip the tap").
    """
    oh, ow, pt, pl, sh, sw, dh, dw = geo
    n, h, w, c = x.shape
    need_h = (oh - 1) * sh + (kh - 1) * dh + 1
    need_w = (ow - 1) * sw + (kw - 1) * dw + 1
    pb, pr = max(0, need_h - h - pt), max(0, need_w - w - pl)
    xp = np.pad(x, ((0, 0), (pt, pb), (pl, pr), (0, 0)), constant_values=fill)
    for i in range(kh):
        for j in range(kw):
            y0, x0 = i * dh, j * dw
            yield (i, j), xp[:, y0:y0 + (oh - 1) * sh + 1:sh, x0:x0 + (ow - 1) * sw + 1:sw, :]


def _patches(x, kh, kw, geo):
    """im2col: [N, oh, ow, kh*kw*C] in (kh, kw, C) order, zero outside the image."""
    wins = [w for _, w in _taps(x, kh, kw, geo)]
    n, oh, ow, c = wins[0].shape
    return np.stack(wins, axis=3).reshape(n, oh, ow, kh * kw * c)


# ---- requantisation -------------------------------------------------------------------


def _per_channel_multipliers(s_in: float, w_scales: np.ndarray, s_out: float, n: int):
    """``PopulateConvolutionQuantizationParams``: double(s_in) * double(s_w[c]) / double(s_out)."""
    scales = np.broadcast_to(w_scales.astype(np.float64), (n,)) if w_scales.size == 1 \
        else w_scales.astype(np.float64)
    return fx.quantize_multipliers(float(s_in) * scales / float(s_out))


def _requantize(acc64, node, x_v, w_v, out_v, int64_acc: bool, per_tensor_fc=False,
                use_output_offset=True):
    """Bias-added accumulator -> output integers, the way TFLM's kernels do it."""
    s_in, _ = qparams(x_v)
    s_out, zp_out = qparams(out_v)
    n_out = acc64.shape[-1]
    if per_tensor_fc:
        # GetQuantizedConvolutionMultipler: the scales multiply in float32 first.
        m, s = fx.quantize_multiplier(float(f32(f32(s_in) * f32(qscales(w_v)[0]))) / s_out)
        mult, shift = np.int64(m), np.int64(s)
    else:
        mult, shift = _per_channel_multipliers(s_in, qscales(w_v), s_out, n_out)
    if int64_acc:
        y = fx.mbqm64(acc64, mult, shift)
    else:
        y = fx.mbqm(fx.wrap32(acc64), mult, shift)
    if use_output_offset:
        y = y + zp_out
    lo, hi = quant_act_range(node, out_v)
    return clamp_cast(y, lo, hi, out_v.type.dtype.numpy)


def _int64_acc(x, bias, node) -> bool:
    """Int16 activations accumulate in int64 unless the bias (or, with no bias,
    ``quantized_bias_type``) is int32; int8 activations accumulate in int32."""
    if x.dtype != np.int16:
        return False
    if bias is not None:
        return bias.dtype == np.int64
    return attr(node, "quantized_bias_type", "FLOAT32") != "INT32"


def _exact_int(a: np.ndarray) -> np.ndarray:
    return np.rint(a).astype(np.int64)


# ---- convolutions ---------------------------------------------------------------------


@kernel("tfl.CONV_2D")
def conv_2d(node, args, interp):
    x, w, b = args[0], args[1], args[2] if len(args) > 2 else None
    x_v, w_v, out_v = node.inputs[0], node.inputs[1], node.outputs[0]
    cout, kh, kw, cin_f = w.shape
    geo = _geometry(node, x.shape, kh, kw, out_v)
    groups = x.shape[3] // cin_f
    per_group = cout // groups
    if x.dtype == np.float32:
        xs, ws = x.astype(np.float64), w.astype(np.float64)
    else:
        # int8: taps outside the image and input_offset = -zp cancel to zero; int16 conv
        # ignores the input zero point altogether (TFLM assumes it is 0).
        zp = 0 if x.dtype == np.int16 else qparams(x_v)[1]
        xs, ws = x.astype(np.float64) - zp, w.astype(np.float64)
    outs = []
    for g in range(groups):
        pat = _patches(xs[..., g * cin_f:(g + 1) * cin_f], kh, kw, geo)
        wg = ws[g * per_group:(g + 1) * per_group].reshape(per_group, -1)
        outs.append(pat @ wg.T)
    acc = np.concatenate(outs, axis=-1) if groups > 1 else outs[0]
    return [_finish(node, acc, b, x, x_v, w_v, out_v, int16_conv=True)]


@kernel("tfl.DEPTHWISE_CONV_2D")
def depthwise_conv_2d(node, args, interp):
    x, w, b = args[0], args[1], args[2] if len(args) > 2 else None
    x_v, w_v, out_v = node.inputs[0], node.inputs[1], node.outputs[0]
    _, kh, kw, cout = w.shape
    mult = cout // x.shape[3]
    geo = _geometry(node, x.shape, kh, kw, out_v)
    zp = 0 if x.dtype in (np.float32, np.int16) else qparams(x_v)[1]
    xs = x.astype(np.float64) - zp
    if mult > 1:
        xs = np.repeat(xs, mult, axis=3)
    ws = w.astype(np.float64)
    acc = None
    for (i, j), win in _taps(xs, kh, kw, geo):
        term = win * ws[0, i, j]
        acc = term if acc is None else acc + term
    # TFLM's int16 depthwise kernel always accumulates in int64 (int64 bias).
    return [_finish(node, acc, b, x, x_v, w_v, out_v, int16_conv=True, depthwise=True)]


def _finish(node, acc, b, x, x_v, w_v, out_v, int16_conv=False, per_tensor_fc=False,
            depthwise=False):
    """Bias, requantisation (or float activation) and the output cast."""
    if x.dtype == np.float32:
        if b is not None:
            acc = acc + b.astype(np.float64)
        return float_act(acc.astype(np.float32), activation(node))
    acc64 = _exact_int(acc)
    if b is not None:
        acc64 = acc64 + b.astype(np.int64)
    # Int16 conv and depthwise kernels add no output offset (TFLM assumes zp 0).
    offset = not (int16_conv and x.dtype == np.int16)
    int64_acc = x.dtype == np.int16 if depthwise else _int64_acc(x, b, node)
    return _requantize(acc64, node, x_v, w_v, out_v, int64_acc, per_tensor_fc, offset)


@kernel("tfl.FULLY_CONNECTED")
def fully_connected(node, args, interp):
    x, w, b = args[0], args[1], args[2] if len(args) > 2 else None
    x_v, w_v, out_v = node.inputs[0], node.inputs[1], node.outputs[0]
    if x.dtype != np.float32 and w.dtype == np.float32:
        raise UnsupportedError(f"{node.name}: FULLY_CONNECTED {x.dtype} with float weights")
    if x.dtype == np.float32 and w.dtype != np.float32:
        raise UnsupportedError(f"{node.name}: hybrid FULLY_CONNECTED is not supported by TFLM")
    depth = w.shape[-1]
    xs = x.astype(np.float64).reshape(-1, depth)
    if x.dtype != np.float32:
        xs = xs - qparams(x_v)[1]
    acc = xs @ w.astype(np.float64).reshape(-1, depth).T
    per_tensor = x.dtype != np.float32 and qscales(w_v).size == 1
    y = _finish(node, acc, b, x, x_v, w_v, out_v, per_tensor_fc=per_tensor)
    lead = x.shape[:-1] if attr(node, "keep_num_dims", False) else (y.size // w.shape[0],)
    return [y.reshape(out_shape(node, lead + (w.shape[0],)))]


# ---- pooling --------------------------------------------------------------------------


def _pool_geometry(node, x, out_v):
    kh, kw = int(attr(node, "filter_height", 1)), int(attr(node, "filter_width", 1))
    return kh, kw, _geometry(node, x.shape, kh, kw, out_v)


@kernel("tfl.AVERAGE_POOL_2D")
def average_pool_2d(node, args, interp):
    x, out_v = args[0], node.outputs[0]
    kh, kw, geo = _pool_geometry(node, x, out_v)
    ones = np.ones(x.shape[:3] + (1,), dtype=np.float64)
    total = count = None
    for (_, win), (_, cwin) in zip(_taps(x.astype(np.float64), kh, kw, geo),
                                   _taps(ones, kh, kw, geo)):
        total = win if total is None else total + win
        count = cwin if count is None else count + cwin
    if x.dtype == np.float32:
        return [float_act((total / count).astype(np.float32), activation(node))]
    acc, cnt = _exact_int(total), _exact_int(count)
    half = cnt // 2
    avg = np.where(acc > 0, (acc + half) // cnt, -((half - acc) // cnt))
    lo, hi = quant_act_range(node, out_v)
    return [clamp_cast(avg, lo, hi, x.dtype)]


@kernel("tfl.MAX_POOL_2D")
def max_pool_2d(node, args, interp):
    x, out_v = args[0], node.outputs[0]
    kh, kw, geo = _pool_geometry(node, x, out_v)
    fill = -np.inf if x.dtype == np.float32 else np.iinfo(x.dtype).min
    best = None
    for _, win in _taps(x, kh, kw, geo, fill=fill):
        best = win if best is None else np.maximum(best, win)
    if x.dtype == np.float32:
        return [float_act(best, activation(node))]
    lo, hi = quant_act_range(node, out_v)
    return [clamp_cast(best, lo, hi, x.dtype)]


# ---- binary arithmetic ----------------------------------------------------------------


def _add_sub_params(node, sub: bool):
    """ADD/SUB Prepare: per-input multipliers relative to twice the larger input scale."""
    a_v, b_v, out_v = node.inputs[0], node.inputs[1], node.outputs[0]
    s1, _ = qparams(a_v)
    s2, _ = qparams(b_v)
    so, _ = qparams(out_v)
    left_shift = 15 if out_v.type.dtype.numpy == np.int16 else 20
    if sub:  # sub_common.cc does the divisions in float32
        twice = f32(2) * max(f32(s1), f32(s2))
        r1, r2 = float(f32(f32(s1) / twice)), float(f32(f32(s2) / twice))
        ro = float(f32(twice / f32(f32(1 << left_shift) * f32(so))))
    else:
        twice = 2.0 * max(s1, s2)
        r1, r2, ro = s1 / twice, s2 / twice, twice / (float(1 << left_shift) * so)
    return left_shift, fx.quantize_multiplier(r1), fx.quantize_multiplier(r2), \
        fx.quantize_multiplier(ro)


def _add_sub(node, a, b, sub: bool):
    out_v = node.outputs[0]
    left_shift, (m1, e1), (m2, e2), (mo, eo) = _add_sub_params(node, sub)
    x1 = fx.i64(a) - qparams(node.inputs[0])[1]
    x2 = fx.i64(b) - qparams(node.inputs[1])[1]
    y1 = fx.mbqm_smaller_than_one(fx.wrap32(x1 << left_shift), m1, e1)
    y2 = fx.mbqm_smaller_than_one(fx.wrap32(x2 << left_shift), m2, e2)
    raw = fx.wrap32(y1 - y2 if sub else y1 + y2)
    y = fx.mbqm_smaller_than_one(raw, mo, eo) + qparams(out_v)[1]
    lo, hi = quant_act_range(node, out_v)
    return clamp_cast(y, lo, hi, out_v.type.dtype.numpy)


def _int_arith(node, a, b, fn):
    """Unquantised int32 arithmetic with an activation clamp (TFLM int32 ADD/SUB/MUL)."""
    y = fn(a.astype(np.int64), b.astype(np.int64))
    act = activation(node)
    if act == "RELU":
        y = np.maximum(y, 0)
    elif act == "RELU6":
        y = np.clip(y, 0, 6)
    elif act in ("RELU_N1_TO_1", "RELU1"):
        y = np.clip(y, -1, 1)
    return fx.wrap32(y).astype(out_dtype(node))


def _quantized(node, a) -> bool:
    return a.dtype in (np.int8, np.int16, np.uint8) and node.outputs[0].type.quant is not None


@kernel("tfl.ADD")
def add(node, args, interp):
    a, b = args
    if a.dtype == np.float32:
        return [float_act(a + b, activation(node))]
    if _quantized(node, a):
        return [_add_sub(node, a, b, sub=False)]
    return [_int_arith(node, a, b, np.add)]


@kernel("tfl.SUB")
def sub(node, args, interp):
    a, b = args
    if a.dtype == np.float32:
        return [float_act(a - b, activation(node))]
    if _quantized(node, a):
        return [_add_sub(node, a, b, sub=True)]
    return [_int_arith(node, a, b, np.subtract)]


@kernel("tfl.MUL")
def mul(node, args, interp):
    a, b = args
    out_v = node.outputs[0]
    if a.dtype == np.float32:
        return [float_act(a * b, activation(node))]
    if not _quantized(node, a):
        return [_int_arith(node, a, b, np.multiply)]
    s1, z1 = qparams(node.inputs[0])
    s2, z2 = qparams(node.inputs[1])
    so, zo = qparams(out_v)
    m, e = fx.quantize_multiplier(s1 * s2 / so)
    prod = fx.wrap32((fx.i64(a) - z1) * (fx.i64(b) - z2))
    y = fx.mbqm(prod, m, e) + zo
    lo, hi = quant_act_range(node, out_v)
    return [clamp_cast(y, lo, hi, out_v.type.dtype.numpy)]


@kernel("tfl.DIV")
def div(node, args, interp):
    a, b = args
    if a.dtype == np.float32:
        return [float_act(a / b, activation(node))]
    if _quantized(node, a):
        raise UnsupportedError(f"{node.name}: quantised DIV is not supported")
    # int32 DIV: C integer division, truncating towards zero.
    return [_int_arith(node, a, b, lambda x, y: np.sign(x) * np.sign(y) * (abs(x) // abs(y)))]


# ---- (de)quantisation -----------------------------------------------------------------


@kernel("tfl.QUANTIZE")
def quantize(node, args, interp):
    x, out_v = args[0], node.outputs[0]
    dtype = out_v.type.dtype.numpy
    lo, hi = int_limits(dtype)
    so, zo = qparams(out_v)
    if x.dtype == np.float32:  # AffineQuantize: round(x / (float)scale) + zp
        q = fx.round_away(x / f32(so))
        q = np.clip(q, -2.0**31, 2.0**31 - 1).astype(np.int64) + zo
        return [clamp_cast(q, lo, hi, dtype)]
    si, zi = qparams(node.inputs[0])
    m, e = fx.quantize_multiplier(si / so)
    if (m, e) == (1 << 30, 1):  # Requantize's same-scale int8 <-> uint8 bit flip
        if (x.dtype, dtype) in ((np.int8, np.uint8), (np.uint8, np.int8)) and abs(zi - zo) == 128:
            return [(x.view(np.uint8) ^ 0x80).view(dtype)]
    y = fx.mbqm(fx.i64(x) - zi, m, e) + zo
    return [clamp_cast(y, lo, hi, dtype)]


@kernel("tfl.DEQUANTIZE")
def dequantize(node, args, interp):
    x = args[0]
    if x.dtype == np.float16:
        return [x.astype(np.float32)]
    scale, zp = qparams(node.inputs[0])
    v = node.inputs[0]
    if v.type.quant is not None and v.type.quant.per_axis:
        axis = v.type.quant.axis
        shape = [1] * x.ndim
        shape[axis] = -1
        sc = qscales(v).astype(np.float64).reshape(shape)
        zps = v.type.quant.zero_points().reshape(shape)
        return [(sc * (x.astype(np.float64) - zps)).astype(np.float32)]
    return [(scale * (x.astype(np.float64) - zp)).astype(np.float32)]


from tinyir.interp import tfl_activation as _tfl_activation  # noqa: E402,F401
from tinyir.interp import tfl_recurrent as _tfl_recurrent  # noqa: E402,F401
from tinyir.interp import tfl_shape as _tfl_shape  # noqa: E402,F401
from tinyir.interp import tfl_signal as _tfl_signal  # noqa: E402,F401
