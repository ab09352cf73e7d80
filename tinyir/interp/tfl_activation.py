"""TFLite activation kernels: SOFTMAX, LOG_SOFTMAX, LOGISTIC, TANH, RELU*, HARD_SWISH.

Integer paths follow TFLM: int8 SOFTMAX is gemmlowp fixed point (exp on negative values,
Newton-Raphson reciprocal; no lookup table), int16 SOFTMAX uses two 513-entry LUTs built
at Prepare time, int8 LOGISTIC/TANH are gemmlowp fixed point, int16 LOGISTIC/TANH
interpolate ``sigmoid_table_uint16``.  Element-wise int8 functions are evaluated once per
possible input value and applied as a table, which gives the same bits.
"""

from __future__ import annotations

import math

import numpy as np

from tinyir.errors import UnsupportedError
from tinyir.interp import tfl_quant as fx
from tinyir.interp.core import kernel
from tinyir.interp.tfl_common import attr, clamp_cast, f32, int_limits, qparams


def _table8(x: np.ndarray, fn) -> np.ndarray:
    """Apply an int8/uint8 element-wise function by tabulating all 256 inputs."""
    lo, _ = int_limits(x.dtype)
    domain = np.arange(lo, lo + 256, dtype=np.int64)
    table = fn(domain)
    return table[x.astype(np.int64) - lo]


# ---- SOFTMAX --------------------------------------------------------------------------


def _softmax_int8_input(x: np.ndarray, beta: float, s_in: float, out_dtype) -> np.ndarray:
    """reference_ops::Softmax for int8 input, int8 or int16 output."""
    mult, shift = fx.preprocess_softmax_scaling(beta, s_in, 5)
    diff_min = -fx.calculate_input_radius(5, shift)
    xi = x.astype(np.int64)
    diff = xi - xi.max(axis=-1, keepdims=True)
    valid = diff >= diff_min
    scaled = fx.mbqm_greater_than_one(diff, mult, shift)
    exp = fx.exp_on_negative_values(scaled, 5)
    sum_of_exps = fx.wrap32(np.where(valid, fx.sat_mul_pot(exp, -12), 0).sum(axis=-1,
                                                                            keepdims=True))
    recip, bits_over_unit = fx.get_reciprocal(sum_of_exps, 12)
    out_bits = np.dtype(out_dtype).itemsize * 8
    exponent = bits_over_unit + 31 - out_bits
    lo, hi = int_limits(out_dtype)
    y = fx.rdbpot(fx.srdhm(recip, exp), exponent) + lo
    y = np.where(valid, np.clip(y, lo, hi), lo)
    return y.astype(out_dtype)


_INT16_SOFTMAX_LUTS: dict = {}


def _int16_softmax_luts():
    if not _INT16_SOFTMAX_LUTS:
        rng = 65535
        exp_lut = fx.lut_populate_int16(f32(10.0) / f32(rng), 32767, f32(2.0) / f32(rng), 0,
                                        fx.expf)
        recip_lut = fx.lut_populate_int16(f32(1.0) / f32(rng), -32768, f32(2.0) / f32(rng), 0,
                                          lambda v: f32(f32(1.0) / f32(f32(1.0) + v)))
        _INT16_SOFTMAX_LUTS.update(exp=exp_lut, recip=recip_lut)
    return _INT16_SOFTMAX_LUTS["exp"], _INT16_SOFTMAX_LUTS["recip"]


def _softmax_int16(x: np.ndarray, beta: float, s_in: float) -> np.ndarray:
    """reference_ops::SoftmaxInt16 (TFLM softmax_common.cc Prepare)."""
    exp_lut, recip_lut = _int16_softmax_luts()
    mult, shift = fx.quantize_multiplier(s_in * beta / (10.0 / 65535.0))
    xi = x.astype(np.int64)
    diff = xi - xi.max(axis=-1, keepdims=True)
    scaled = fx.mbqm(diff, mult, shift)
    sym = np.clip(scaled + 32767, -32768, 32767)
    exps = fx.lut_lookup_int16(sym, exp_lut)
    sum_of_exps = fx.wrap32(exps.sum(axis=-1, keepdims=True))
    headroom_plus_one = fx.count_leading_zeros32(sum_of_exps)
    shifted_sum = ((sum_of_exps << (headroom_plus_one - 1)) + (1 << 13)) >> 14
    sym_sum = np.clip(shifted_sum - ((1 << 15) + (1 << 16)), -32768, 32767)
    recip = fx.lut_lookup_int16(sym_sum, recip_lut)
    right_shift = 31 - headroom_plus_one
    y = (exps * recip + (np.int64(1) << (right_shift - 1))) >> right_shift
    return np.clip(y, 0, 32767).astype(np.int16)


@kernel("tfl.SOFTMAX")
def softmax(node, args, interp):
    x = args[0]
    beta = float(attr(node, "beta", 1.0))
    out_dtype = node.outputs[0].type.dtype.numpy
    if x.dtype == np.float32:
        z = (x.astype(np.float64) - x.max(axis=-1, keepdims=True)) * beta
        e = np.exp(z)
        return [(e / e.sum(axis=-1, keepdims=True)).astype(np.float32)]
    s_in, _ = qparams(node.inputs[0])
    if x.dtype == np.int8:
        return [_softmax_int8_input(x, beta, s_in, out_dtype)]
    if x.dtype == np.int16:
        return [_softmax_int16(x, beta, s_in)]
    raise UnsupportedError(f"{node.name}: SOFTMAX on {x.dtype} is not supported by TFLM")


def _log_softmax_int8(x: np.ndarray, s_in: float) -> np.ndarray:
    """reference_ops::LogSoftmaxQuantized (output scale 16/256, zero point 127)."""
    mult, shift = fx.preprocess_softmax_scaling(1.0, s_in, 5)
    rev_mult, rev_shift = fx.quantize_multiplier(2.0 ** (31 - shift) / mult)
    diff_min = -fx.calculate_input_radius(5, shift)
    xi = x.astype(np.int64)
    diff = xi - xi.max(axis=-1, keepdims=True)
    scaled = fx.mbqm(diff, mult, shift)
    exp = fx.sat_mul_pot(fx.exp_on_negative_values(scaled, 5), -12)
    sum_q12 = fx.wrap32(np.where(diff >= diff_min, exp, 0).sum(axis=-1, keepdims=True))
    log_sum = fx.log_x_for_x_ge_1(sum_q12, 12, 5)
    adjusted = np.maximum(diff_min - 1, fx.mbqm(fx.wrap32(log_sum + fx.I32_MIN), rev_mult,
                                                 rev_shift))
    y = np.clip(fx.rdbpot(fx.wrap32(scaled - log_sum), 31 - 5 - 4) + 127, -128, 127)
    return np.where(diff > adjusted, y, -128).astype(np.int8)


@kernel("tfl.LOG_SOFTMAX")
def log_softmax(node, args, interp):
    x = args[0]
    if x.dtype == np.int8:
        return [_log_softmax_int8(x, qparams(node.inputs[0])[0])]
    if x.dtype != np.float32:
        raise UnsupportedError(f"{node.name}: LOG_SOFTMAX on {x.dtype} is not supported by TFLM")
    z = x.astype(np.float64) - x.max(axis=-1, keepdims=True)
    return [(z - np.log(np.exp(z).sum(axis=-1, keepdims=True))).astype(np.float32)]


# ---- LOGISTIC / TANH ------------------------------------------------------------------


def _frexp_multiplier(s_in: float) -> tuple[int, int, int]:
    """LOGISTIC/TANH int8 Prepare: frexp of s_in * 2**27 without QuantizeMultiplier's fix-ups."""
    q, shift = math.frexp(s_in * float(1 << 27))
    mult = int(fx.wrap32(int(fx.round_away(q * float(1 << 31)))))
    return mult, shift, fx.calculate_input_radius(4, shift)


def _sigmoid_like_int8(x, node, fn, out_bits: int, out_offset: int):
    s_in, zp = qparams(node.inputs[0])
    mult, shift, radius = _frexp_multiplier(s_in)

    def table(v):
        d = v - zp
        q0 = fn(fx.mbqm(d, mult, shift), 4)
        y = np.clip(fx.rdbpot(q0, 31 - out_bits) + out_offset, -128, 127)
        return np.where(d <= -radius, -128, np.where(d >= radius, 127, y))
    return _table8(x, table).astype(np.int8)


def _int16_fn_params(s_in: float, tanh: bool) -> tuple[int, int]:
    """LOGISTIC/TANH int16 Prepare: (input_multiplier, input_left_shift)."""
    log2_rounded, pot = fx.checked_log2(s_in)
    shift = (15 - 3) + log2_rounded
    pot = pot and (shift in (0, 1) if tanh else shift == 0)
    if pot:
        return 0, shift
    multiplier = s_in * 4096.0 * 3.0
    shift = 0
    while multiplier <= 32767.0 / 2.0 and shift <= 30:
        shift += 1
        multiplier *= 2.0
    return int(multiplier), shift


def _int16_prescale(x, mult: int, shift: int) -> np.ndarray:
    if mult == 0:  # power-of-two case
        mult, shift = 3 << shift, 0
    rnd = (1 << (shift - 1)) if shift > 0 else 0
    return fx.wrap32((x.astype(np.int64) * mult + rnd)) >> shift


def logistic_int16(x, mult: int = 0, shift: int = 0) -> np.ndarray:
    """reference_integer_ops::Logistic for int16 (Q3.12-ish input, Q0.15 output)."""
    v = _int16_prescale(x, mult, shift)
    a = np.abs(v)
    uh = a >> 9
    idx = np.minimum(uh, 254)
    ua, ub = fx.SIGMOID_TABLE_UINT16[idx], fx.SIGMOID_TABLE_UINT16[idx + 1]
    r = np.where(uh >= 255, 0x7FFF << 10, (ua << 9) + (a & 0x1FF) * (ub - ua))
    r = np.where(v >= 0, r + (1 << 9), (1 << 25) - r + (1 << 9) - 1) & 0xFFFFFFFF
    return fx.wrap16(r >> 10).astype(np.int16)


def tanh_int16(x, mult: int = 0, shift: int = 0) -> np.ndarray:
    """reference_integer_ops::Tanh for int16."""
    v = _int16_prescale(x, mult, shift)
    a = np.abs(v)
    uh = a >> 8
    idx = np.minimum(uh, 254)
    ua, ub = fx.SIGMOID_TABLE_UINT16[idx], fx.SIGMOID_TABLE_UINT16[idx + 1]
    r = np.where(uh >= 255, 0xFFFF << 8, (ua << 8) + (a & 0xFF) * (ub - ua))
    r = fx.wrap32(r)
    r = np.where(v >= 0, r - (1 << 23) + (1 << 7), -r + (1 << 23) + (1 << 7) - 1)
    return fx.wrap16(r >> 8).astype(np.int16)


@kernel("tfl.LOGISTIC")
def logistic(node, args, interp):
    x = args[0]
    if x.dtype == np.float32:
        return [(1.0 / (1.0 + np.exp(-x.astype(np.float64)))).astype(np.float32)]
    if x.dtype == np.int8:
        return [_sigmoid_like_int8(x, node, fx.fx_logistic, 8, -128)]
    if x.dtype == np.int16:
        return [logistic_int16(x, *_int16_fn_params(qparams(node.inputs[0])[0], tanh=False))]
    raise UnsupportedError(f"{node.name}: LOGISTIC on {x.dtype} is not supported by TFLM")


@kernel("tfl.TANH")
def tanh(node, args, interp):
    x = args[0]
    if x.dtype == np.float32:
        return [np.tanh(x.astype(np.float64)).astype(np.float32)]
    if x.dtype == np.int8:
        return [_sigmoid_like_int8(x, node, fx.fx_tanh, 7, 0)]
    if x.dtype == np.int16:
        return [tanh_int16(x, *_int16_fn_params(qparams(node.inputs[0])[0], tanh=True))]
    raise UnsupportedError(f"{node.name}: TANH on {x.dtype} is not supported by TFLM")


# ---- RELU family ----------------------------------------------------------------------


@kernel("tfl.RELU", "tfl.RELU_N1_TO_1", "tfl.RELU_0_TO_1")
def relu(node, args, interp):
    x = args[0]
    lo_f, hi_f = {"RELU": (0.0, math.inf), "RELU_N1_TO_1": (-1.0, 1.0),
                  "RELU_0_TO_1": (0.0, 1.0)}[node.op_type]
    if x.dtype == np.float32:
        return [np.clip(x, f32(lo_f), f32(hi_f) if hi_f != math.inf else None)]
    s_in, z_in = qparams(node.inputs[0])
    s_out, z_out = qparams(node.outputs[0])
    m, e = fx.quantize_multiplier(float(f32(f32(s_in) / f32(s_out))))
    tmin, tmax = int_limits(x.dtype)
    lo = max(tmin, z_out + int(fx.round_away(f32(f32(lo_f) / f32(s_out)))))
    hi = tmax if hi_f == math.inf else \
        min(tmax, z_out + int(fx.round_away(f32(f32(hi_f) / f32(s_out)))))
    y = z_out + fx.mbqm(x.astype(np.int64) - z_in, m, e)
    return [clamp_cast(y, lo, hi, x.dtype)]


@kernel("tfl.RELU6")
def relu6(node, args, interp):
    x = args[0]
    if x.dtype == np.float32:
        return [np.clip(x, f32(0), f32(6))]
    scale, zp = qparams(node.inputs[0])
    tmin, tmax = int_limits(x.dtype)
    six = int(np.clip(int(fx.round_away(f32(f32(6.0) / f32(scale)))) + zp, tmin, tmax))
    return [np.clip(x, zp, six).astype(x.dtype)]


def _srdhm16(a, b) -> np.ndarray:
    a, b = fx.i64(a), fx.i64(b)
    ab = a * b
    nudge = np.where(ab >= 0, 1 << 14, 1 - (1 << 14))
    s = ab + nudge
    out = np.where(s >= 0, s >> 15, -((-s) >> 15))
    return np.where((a == b) & (a == -32768), 32767, fx.wrap16(out))


def _sat_left_shift16(v, amount: int) -> np.ndarray:
    return np.clip(fx.i64(v) * (1 << amount), -32768, 32767)


@kernel("tfl.HARD_SWISH")
def hard_swish(node, args, interp):
    x = args[0]
    if x.dtype == np.float32:
        xf = x.astype(np.float32)
        return [(xf * np.minimum(f32(6), np.maximum(f32(0), xf + f32(3))) / f32(6))
                .astype(np.float32)]
    if x.dtype not in (np.int8, np.uint8):
        raise UnsupportedError(f"{node.name}: HARD_SWISH on {x.dtype} is not supported by TFLM")
    s_in, z_in = qparams(node.inputs[0])
    s_out, z_out = qparams(node.outputs[0])
    hires = f32(f32(1.0 / 128.0) * f32(s_in))
    om, oe = fx.quantize_multiplier(float(f32(hires / f32(s_out))))
    rm, re_ = fx.quantize_multiplier(float(f32(hires / f32(f32(3.0) / f32(32768.0)))))

    def down16(m):  # DownScaleInt32ToInt16Multiplier
        return 32767 if m >= (1 << 31) - 1 - (1 << 15) else (m + (1 << 15)) >> 16
    om16, rm16 = down16(om), down16(rm)
    lo, hi = int_limits(x.dtype)

    def table(v):
        iv = fx.wrap16(v - z_in)
        hires_v = fx.wrap16(iv * (1 << 7))
        pre_out = _srdhm16(hires_v, om16)
        r = hires_v
        if re_ > 0:
            r = _sat_left_shift16(r, re_ - 1)
        r = _srdhm16(r, rm16)
        if re_ > 0:
            r = _sat_left_shift16(r, 1)
        if re_ < 0:
            r = fx.rdbpot(r, -re_)
        r = fx.wrap16((r + (1 << 15)) >> 1)
        pre = fx.wrap16(np.trunc((r * pre_out) / (1 << 15)).astype(np.int64))
        out = fx.wrap16(fx.rdbpot(pre, -oe) + z_out)
        return np.clip(out, lo, hi)
    return [_table8(x, table).astype(x.dtype)]


@kernel("tfl.LEAKY_RELU")
def leaky_relu(node, args, interp):
    x = args[0]
    alpha = float(attr(node, "alpha", 0.2))
    if x.dtype == np.float32:
        return [np.where(x > 0, x, x * f32(alpha)).astype(np.float32)]
    s_in, z_in = qparams(node.inputs[0])
    s_out, z_out = qparams(node.outputs[0])
    m_id, e_id = fx.quantize_multiplier(s_in / s_out)
    m_a, e_a = fx.quantize_multiplier(float(f32(alpha)) * s_in / s_out)
    d = x.astype(np.int64) - z_in
    y = np.where(d >= 0, fx.mbqm(d, m_id, e_id), fx.mbqm(d, m_a, e_a)) + z_out
    lo, hi = int_limits(x.dtype)
    return [clamp_cast(y, lo, hi, x.dtype)]
