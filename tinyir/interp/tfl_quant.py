"""TFLM's fixed-point arithmetic, vectorised over numpy arrays.

Every function here restates TFLM / gemmlowp integer arithmetic (tensorflow/tflite-micro
``tensorflow/lite/kernels/internal/{common.h,common.cc,quantization_util.cc}``,
google/gemmlowp ``fixedpoint/fixedpoint.h``) so that the TFLite kernels in
``tfl_kernels.py`` are bit-exact with the ``tflite-micro`` interpreter.  The build
TFLM ships uses *double rounding* (``TFLITE_SINGLE_ROUNDING`` is off), so that is what
:func:`mbqm` implements.

Conventions: integer arrays are ``np.int64`` holding int32 values; where C code would
wrap an int32 (``x * (1 << shift)``, gemmlowp's raw ``+``), :func:`wrap32` does the same.
C integer division truncates towards zero; ``>>`` on signed values is arithmetic.
Scalars (multipliers, shifts) may be Python ints or per-channel arrays that broadcast.

Rounding names: :func:`round_away` is ``TfLiteRound``/``std::round`` (half away from
zero); SRDHM rounds half away from zero on the doubled product's high word, RDBPOT
rounds half away from zero too, but with its own tie threshold; do not merge them.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import math

import numpy as np

I32_MIN = -(1 << 31)
I32_MAX = (1 << 31) - 1


def i64(x) -> np.ndarray:
    return np.asarray(x, dtype=np.int64)


def wrap32(x) -> np.ndarray:
    """Two's-complement wrap of int64 values into the int32 range."""
    return ((i64(x) + (1 << 31)) & 0xFFFFFFFF) - (1 << 31)


def round_away(x):
    """``std::round``: half away from zero (float64 math, exact for float32 inputs)."""
    x = np.asarray(x, dtype=np.float64)
    return np.copysign(np.floor(np.abs(x) + 0.5), x)


def _trunc_div_pow2(x: np.ndarray, bits: int) -> np.ndarray:
    """C integer division ``x / 2**bits`` (truncation towards zero)."""
    return np.where(x >= 0, x >> bits, -((-x) >> bits))


# ---- gemmlowp primitives --------------------------------------------------------------

def srdhm(a, b) -> np.ndarray:
    """gemmlowp ``SaturatingRoundingDoublingHighMul`` on int32 values."""
    a, b = i64(a), i64(b)
    ab = a * b
    nudge = np.where(ab >= 0, 1 << 30, 1 - (1 << 30))
    out = _trunc_div_pow2(ab + nudge, 31)
    return np.where((a == b) & (a == I32_MIN), I32_MAX, out)


def rdbpot(x, exponent) -> np.ndarray:
    """gemmlowp ``RoundingDivideByPOT``: ``x / 2**exponent``, ties away from zero."""
    x, e = i64(x), i64(exponent)
    mask = (i64(1) << e) - 1
    remainder = x & mask
    threshold = (mask >> 1) + (x < 0)
    return (x >> e) + (remainder > threshold)


def sat_mul_pot(x, exponent: int) -> np.ndarray:
    """gemmlowp ``SaturatingRoundingMultiplyByPOT<exponent>`` on int32 raw values."""
    x = i64(x)
    if exponent == 0:
        return x
    if exponent < 0:
        return rdbpot(x, -exponent)
    threshold = (1 << (31 - exponent)) - 1
    out = wrap32(x << exponent)
    out = np.where(x > threshold, I32_MAX, out)
    return np.where(x < -threshold, I32_MIN, out)


def rounding_half_sum(a, b) -> np.ndarray:
    s = i64(a) + i64(b)
    s = s + np.where(s >= 0, 1, -1)
    return _trunc_div_pow2(s, 1)


def count_leading_zeros32(x) -> np.ndarray:
    """``__builtin_clz`` of the uint32 reinterpretation (32 for zero)."""
    u = i64(x) & 0xFFFFFFFF
    out = np.full(u.shape, 32, dtype=np.int64)
    nz = u != 0
    # frexp gives the bit length exactly for integers below 2**53.
    _, exp = np.frexp(u[nz].astype(np.float64))
    out[nz] = 32 - exp
    return out


# ---- TFLM requantisation --------------------------------------------------------------

def quantize_multiplier(real: float) -> tuple[int, int]:
    """``QuantizeMultiplier``: ``real ~= M * 2**(shift - 31)`` with M an int32."""
    real = float(real)
    if real == 0.0:
        return 0, 0
    q, shift = math.frexp(real)
    q_fixed = int(round_away(q * float(1 << 31)))
    if q_fixed == (1 << 31):
        q_fixed //= 2
        shift += 1
    if shift < -31:
        return 0, 0
    return q_fixed, shift


def quantize_multipliers(reals) -> tuple[np.ndarray, np.ndarray]:
    pairs = [quantize_multiplier(r) for r in np.ravel(reals)]
    return i64([p[0] for p in pairs]), i64([p[1] for p in pairs])


def mbqm(x, multiplier, shift) -> np.ndarray:
    """``MultiplyByQuantizedMultiplier(int32 x, M, shift)``, double rounding."""
    shift = i64(shift)
    left = np.maximum(shift, 0)
    right = np.maximum(-shift, 0)
    return rdbpot(srdhm(wrap32(i64(x) << left), multiplier), right)


def mbqm64(x, multiplier, shift) -> np.ndarray:
    """``MultiplyByQuantizedMultiplier(int64 x, M, shift)``: 16-bit reduced multiplier."""
    m = i64(multiplier)
    reduced = np.where(m < 0x7FFF0000, (m + (1 << 15)) >> 16, 0x7FFF)
    total = 15 - i64(shift)
    y = i64(x) * reduced + (i64(1) << (total - 1))
    return wrap32(y >> total)


def mbqm_smaller_than_one(x, multiplier, shift) -> np.ndarray:
    """``MultiplyByQuantizedMultiplierSmallerThanOneExp`` (shift <= 0)."""
    return rdbpot(srdhm(x, multiplier), -i64(shift))


def mbqm_greater_than_one(x, multiplier, shift) -> np.ndarray:
    """``MultiplyByQuantizedMultiplierGreaterThanOne`` (shift >= 0)."""
    return srdhm(wrap32(i64(x) << i64(shift)), multiplier)


def quantize_f32(f: float, scale: float, zero_point: int) -> int:
    """kernel_util ``Quantize``: ``zp + (int)round(f / scale)`` in float32."""
    return int(zero_point) + int(round_away(np.float32(f) / np.float32(scale)))


def activation_range(activation: str | None, scale: float, zero_point: int,
                     qmin: int, qmax: int) -> tuple[int, int]:
    """``CalculateActivationRangeQuantized``: only RELU, RELU6 and RELU_N1_TO_1 clamp."""
    act = (activation or "NONE").upper()
    if act == "RELU":
        return max(qmin, quantize_f32(0.0, scale, zero_point)), qmax
    if act == "RELU6":
        return (max(qmin, quantize_f32(0.0, scale, zero_point)),
                min(qmax, quantize_f32(6.0, scale, zero_point)))
    if act in ("RELU_N1_TO_1", "RELU1"):
        return (max(qmin, quantize_f32(-1.0, scale, zero_point)),
                min(qmax, quantize_f32(1.0, scale, zero_point)))
    return qmin, qmax


def checked_log2(x: float) -> tuple[int, bool]:
    """``CheckedLog2``: (rounded log2 of x, whether x is within 1e-3 of a power of two)."""
    lg = float(np.float32(np.float32(math.log(float(np.float32(x))))
                          * np.float32(1.0 / math.log(2.0))))
    r = float(round_away(lg))
    return int(r), abs(lg - r) < 1e-3


def calculate_input_radius(integer_bits: int, left_shift: int, total_bits: int = 31) -> int:
    real = (1.0 * ((1 << integer_bits) - 1) * float(1 << (total_bits - integer_bits))
            / float(1 << left_shift))
    return int(math.floor(real))


def preprocess_softmax_scaling(beta: float, input_scale: float,
                               integer_bits: int) -> tuple[int, int]:
    """``PreprocessSoftmaxScaling`` (double-rounding build)."""
    real = min(beta * input_scale * float(1 << (31 - integer_bits)), float((1 << 31) - 1))
    return quantize_multiplier(real)


# ---- gemmlowp fixed-point transcendental functions ------------------------------------
# A fixed-point value is its int32 raw array plus a static count of integer bits.

def _fx_mul(a, b) -> np.ndarray:
    return srdhm(a, b)


def _rescale(raw, src_bits: int, dst_bits: int) -> np.ndarray:
    return sat_mul_pot(raw, src_bits - dst_bits)


def _exp_quarter_interval(a) -> np.ndarray:
    """exp on [-1/4, 0) for Q0.31 raw ``a``."""
    constant_term = 1895147668
    one_third = 715827883
    x = wrap32(i64(a) + (1 << 28))
    x2 = _fx_mul(x, x)
    x3 = _fx_mul(x2, x)
    x4 = _fx_mul(x2, x2)
    x4_over_4 = sat_mul_pot(x4, -2)
    poly = sat_mul_pot(wrap32(_fx_mul(wrap32(x4_over_4 + x3), one_third) + x2), -1)
    return wrap32(constant_term + _fx_mul(constant_term, wrap32(x + poly)))


_EXP_BARREL = [(-2, 1672461947), (-1, 1302514674), (0, 790015084), (1, 290630308),
               (2, 39332535), (3, 720401), (4, 242)]


def exp_on_negative_values(a, integer_bits: int) -> np.ndarray:
    """gemmlowp ``exp_on_negative_values`` for a Q(integer_bits) input; Q0.31 result."""
    a = i64(a)
    frac_bits = 31 - integer_bits
    one_quarter = 1 << (frac_bits - 2)
    mask = one_quarter - 1
    a_mod = wrap32((a & mask) - one_quarter)
    result = _exp_quarter_interval(_rescale(a_mod, integer_bits, 0))
    remainder = wrap32(a_mod - a)
    for exponent, multiplier in _EXP_BARREL:
        if integer_bits > exponent:
            bit = 1 << (frac_bits + exponent)
            result = np.where((remainder & bit) != 0, _fx_mul(result, multiplier), result)
    if integer_bits > 5:
        clamp = -(1 << (36 - integer_bits))
        result = np.where(a < clamp, 0, result)
    return np.where(a == 0, I32_MAX, result)


def one_over_one_plus_x_for_x_in_0_1(a) -> np.ndarray:
    """gemmlowp Newton-Raphson ``1 / (1 + a)`` for Q0.31 ``a`` in [0, 1)."""
    half_denominator = rounding_half_sum(a, I32_MAX)
    x = wrap32(1515870810 + _fx_mul(half_denominator, -1010580540))  # Q2.29
    one_q2 = 1 << 29
    for _ in range(3):
        hdx = _fx_mul(half_denominator, x)
        one_minus = wrap32(one_q2 - hdx)
        x = wrap32(x + _rescale(_fx_mul(x, one_minus), 4, 2))
    return _rescale(x, 1, 0)  # ExactMulByPot<-1>: Q2 -> Q1 raw, then to Q0


def one_minus_x_over_one_plus_x_for_x_in_0_1(a) -> np.ndarray:
    half_denominator = rounding_half_sum(a, I32_MAX)
    x = wrap32(1515870810 + _fx_mul(half_denominator, -1010580540))
    one_q2 = 1 << 29
    for _ in range(3):
        hdx = _fx_mul(half_denominator, x)
        one_minus = wrap32(one_q2 - hdx)
        x = wrap32(x + _rescale(_fx_mul(x, one_minus), 4, 2))
    return _rescale(wrap32(x - one_q2), 2, 0)


def fx_logistic(a, integer_bits: int) -> np.ndarray:
    """gemmlowp ``logistic`` of a Q(integer_bits) raw; Q0.31 result."""
    a = i64(a)
    abs_in = np.where(a > 0, a, wrap32(-a))
    pos = one_over_one_plus_x_for_x_in_0_1(exp_on_negative_values(wrap32(-abs_in), integer_bits))
    neg = wrap32(I32_MAX - pos)
    out = np.where(a > 0, pos, neg)
    return np.where(a == 0, 1 << 30, out)


def fx_tanh(a, integer_bits: int) -> np.ndarray:
    """gemmlowp ``tanh`` of a Q(integer_bits) raw; Q0.31 result."""
    a = i64(a)
    n = np.where(a < 0, a, wrap32(-a))
    t = one_minus_x_over_one_plus_x_for_x_in_0_1(exp_on_negative_values(n, integer_bits + 1))
    out = np.where(a < 0, wrap32(-t), t)
    return np.where(a == 0, 0, out)


def get_reciprocal(x, integer_digits: int) -> tuple[np.ndarray, np.ndarray]:
    """``GetReciprocal``: (Q0.31 raw of 1/x scaled, num_bits_over_unit)."""
    x = i64(x)
    headroom_plus_one = count_leading_zeros32(x)
    num_bits_over_unit = integer_digits - headroom_plus_one
    shifted = (((x & 0xFFFFFFFF) << headroom_plus_one) - (1 << 31)) & 0xFFFFFFFF
    shifted_minus_one = wrap32(shifted)
    return one_over_one_plus_x_for_x_in_0_1(shifted_minus_one), num_bits_over_unit


def sat_mul_pot_param(x, exponent) -> np.ndarray:
    """``SaturatingRoundingMultiplyByPOTParam`` for run-time exponents >= 0 (array-valued)."""
    x, e = i64(x), i64(exponent)
    threshold = (i64(1) << (31 - e)) - 1
    out = wrap32(x << e)
    out = np.where(x > threshold, I32_MAX, out)
    out = np.where(x < -threshold, I32_MIN, out)
    return np.where(e == 0, x, out)


def log_x_for_x_ge_1(x, input_bits: int, output_bits: int) -> np.ndarray:
    """TFLM ``log_x_for_x_greater_than_or_equal_to_1_impl``: log of a Q(input_bits) raw."""
    accum_bits = output_bits + 1
    log_2, sqrt_sqrt_half, sqrt_half = 1488522236, 1805811301, 1518500250
    alpha_n, alpha_d, alpha_i, alpha_f = 117049297, 127690142, 1057819769, 638450708
    shifted_quarter = _rescale(536870912, 0, accum_bits)
    z_a = i64(x)
    z_a_headroom_plus_1 = count_leading_zeros32(z_a)
    r_a_tmp = sat_mul_pot_param(z_a, z_a_headroom_plus_1 - 1)
    r_a_raw = sat_mul_pot_param(_fx_mul(r_a_tmp, sqrt_half), 1)
    z_a_pow_2_adj = np.clip(sat_mul_pot_param(input_bits - z_a_headroom_plus_1, 31 - accum_bits)
                            + shifted_quarter, I32_MIN, I32_MAX)
    z_b = _fx_mul(z_a, sqrt_half)
    z_b_headroom = count_leading_zeros32(z_b) - 1
    r_b_raw = sat_mul_pot_param(z_a, z_b_headroom)
    z_b_pow_2_adj = np.clip(sat_mul_pot_param(input_bits - z_b_headroom, 31 - accum_bits)
                            - shifted_quarter, I32_MIN, I32_MAX)
    r = np.minimum(r_a_raw, r_b_raw)
    z_pow_2_adj = np.maximum(z_a_pow_2_adj, z_b_pow_2_adj)
    p = rounding_half_sum(r, sqrt_sqrt_half)
    q = wrap32(r - sqrt_sqrt_half)
    q = wrap32(q + q)
    common_sq = _fx_mul(q, q)
    num = wrap32(_fx_mul(q, r) + _fx_mul(_fx_mul(q, common_sq), alpha_n))
    denom_minus_one = wrap32(_fx_mul(p, wrap32(wrap32(alpha_i + q) + _fx_mul(alpha_d, common_sq)))
                             + _fx_mul(alpha_f, q))
    recip_denom = one_over_one_plus_x_for_x_in_0_1(denom_minus_one)
    num_scaled = _rescale(num, 0, accum_bits)
    total = wrap32(_fx_mul(z_pow_2_adj, log_2) + _fx_mul(num_scaled, recip_denom))
    return _rescale(total, accum_bits, output_bits)


# ---- lookup tables (int16 softmax) ----------------------------------------------------

def _libm_fn(name: str):
    try:
        lib = ctypes.CDLL(ctypes.util.find_library("m") or "libm.so.6")
        fn = getattr(lib, name)
        fn.restype = ctypes.c_float
        fn.argtypes = [ctypes.c_float]
        return fn
    except (OSError, AttributeError):  # pragma: no cover - non-glibc hosts
        return None


_EXPF = _libm_fn("expf")


def expf(x: np.float32) -> np.float32:
    """``std::exp(float)``: the C library's expf when reachable (what TFLM calls)."""
    if _EXPF is not None:
        return np.float32(_EXPF(float(x)))
    return np.float32(math.exp(float(x)))


def _round_f32(x) -> np.float32:
    return np.float32(round_away(np.float32(x)))


def lut_populate_int16(input_scale: float, input_zp: int, output_scale: float, output_zp: int,
                       transform) -> np.ndarray:
    """``LUTPopulateInt16<float>``: 513-entry table, all arithmetic in float32."""
    f = np.float32
    input_scale, output_scale = f(input_scale), f(output_scale)
    input_min = f(input_scale * f(-32768 - input_zp))
    input_max = f(input_scale * f(32767 - input_zp))
    output_min = f(output_scale * f(-32768 - output_zp))
    output_max = f(output_scale * f(32767 - output_zp))
    step = f(f(input_max - input_min) / f(512))
    half_step = f(step / f(2))
    inv = f(f(65536) / f(output_max - output_min))
    lut = np.zeros(513, dtype=np.int64)
    for i in range(512):
        base = f(input_min + f(f(i) * step))
        val = transform(base)
        val_mid = transform(f(base + half_step))
        val_next = transform(f(input_min + f(f(i + 1) * step)))
        sample = _round_f32(f(val * inv))
        interp = _round_f32(f(f(f(val_next * inv) + _round_f32(f(val * inv))) / f(2)))
        mid = _round_f32(f(val_mid * inv))
        bias = _round_f32(f(f(interp - mid) / f(2)))
        lut[i] = int(min(max(f(sample - bias), f(-32768)), f(32767)))
    last = _round_f32(f(transform(input_max) * inv))
    lut[512] = int(min(max(last, f(-32768)), f(32767)))
    return lut


def lut_lookup_int16(value, lut: np.ndarray) -> np.ndarray:
    """``LUTLookup(int16, lut)``: 9-bit index, 7-bit linear interpolation."""
    v = i64(value)
    index = 256 + (v >> 7)
    offset = v & 0x7F
    base = lut[index]
    slope = lut[index + 1] - base
    return wrap16(base + ((slope * offset + 64) >> 7))


def wrap16(x) -> np.ndarray:
    return ((i64(x) + (1 << 15)) & 0xFFFF) - (1 << 15)


SIGMOID_TABLE_UINT16 = np.array([
    32768, 33451, 34133, 34813, 35493, 36169, 36843, 37513, 38180, 38841, 39498,
    40149, 40794, 41432, 42064, 42688, 43304, 43912, 44511, 45102, 45683, 46255,
    46817, 47369, 47911, 48443, 48964, 49475, 49975, 50464, 50942, 51409, 51865,
    52311, 52745, 53169, 53581, 53983, 54374, 54755, 55125, 55485, 55834, 56174,
    56503, 56823, 57133, 57433, 57724, 58007, 58280, 58544, 58800, 59048, 59288,
    59519, 59743, 59959, 60168, 60370, 60565, 60753, 60935, 61110, 61279, 61441,
    61599, 61750, 61896, 62036, 62172, 62302, 62428, 62549, 62666, 62778, 62886,
    62990, 63090, 63186, 63279, 63368, 63454, 63536, 63615, 63691, 63765, 63835,
    63903, 63968, 64030, 64090, 64148, 64204, 64257, 64308, 64357, 64405, 64450,
    64494, 64536, 64576, 64614, 64652, 64687, 64721, 64754, 64786, 64816, 64845,
    64873, 64900, 64926, 64950, 64974, 64997, 65019, 65039, 65060, 65079, 65097,
    65115, 65132, 65149, 65164, 65179, 65194, 65208, 65221, 65234, 65246, 65258,
    65269, 65280, 65291, 65301, 65310, 65319, 65328, 65337, 65345, 65352, 65360,
    65367, 65374, 65381, 65387, 65393, 65399, 65404, 65410, 65415, 65420, 65425,
    65429, 65433, 65438, 65442, 65445, 65449, 65453, 65456, 65459, 65462, 65465,
    65468, 65471, 65474, 65476, 65479, 65481, 65483, 65485, 65488, 65489, 65491,
    65493, 65495, 65497, 65498, 65500, 65501, 65503, 65504, 65505, 65507, 65508,
    65509, 65510, 65511, 65512, 65513, 65514, 65515, 65516, 65517, 65517, 65518,
    65519, 65520, 65520, 65521, 65522, 65522, 65523, 65523, 65524, 65524, 65525,
    65525, 65526, 65526, 65526, 65527, 65527, 65528, 65528, 65528, 65529, 65529,
    65529, 65529, 65530, 65530, 65530, 65530, 65531, 65531, 65531, 65531, 65531,
    65532, 65532, 65532, 65532, 65532, 65532, 65533, 65533, 65533, 65533, 65533,
    65533, 65533, 65533, 65534, 65534, 65534, 65534, 65534, 65534, 65534, 65534,
    65534, 65534, 65535], dtype=np.int64)
"""``sigmoid_table_uint16``: sigmoid(i/24) in Q0.16 (TFLM common.h), for int16 LOGISTIC/TANH."""
