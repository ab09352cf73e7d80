"""TFLM ``signal`` library custom ops, bit-exact with the tflite-micro interpreter.

The audio front end of TFLM (``signal/micro/kernels/*.cc`` over ``signal/src/*.cc``)
ships as TFLite custom ops: ``tfl.CUSTOM`` nodes whose ``custom_code`` names the op
(``SignalWindow``, ``SignalRfft``, ...) and whose ``custom_options`` are a FlexBuffer map
of the op's parameters.  The ``tfl.CUSTOM`` kernel below decodes the map with
``flatbuffers.flexbuffers`` and dispatches on the code to a kernel registered with
:func:`custom_kernel`.

All arithmetic restates the C sources on int64/uint64 numpy arrays: every store to a
narrower C type is an explicit wrap (``_wrap``), every shift is the C shift of the
operand's signedness.  The int16 RFFT (kissfft v130 in fixed point) is restated in
:mod:`tinyir.interp.tfl_kissfft16`.

State: ``SignalFilterBankSpectralSubtraction`` keeps a noise estimate across invokes.
tinyir runs a graph once per call, as one invoke of a freshly initialised TFLM
interpreter, so the estimate starts at zero (TFLM's Prepare-time reset) on every run.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
from flatbuffers import flexbuffers

from tinyir.errors import UnsupportedError
from tinyir.graph import Node
from tinyir.interp.core import kernel
from tinyir.interp.tfl_common import out_shape as _out_shape
from tinyir.interp.tfl_kissfft16 import kiss_fftr16

CustomKernel = Callable[[Node, list, dict], list]
CUSTOM_KERNELS: dict[str, CustomKernel] = {}


def custom_kernel(*codes: str):
    """Decorator: register ``fn(node, args, options)`` for ``tfl.CUSTOM`` nodes with these
    ``custom_code`` values; ``options`` is the decoded FlexBuffer map (``{}`` if none)."""

    def deco(fn):
        for code in codes:
            if code in CUSTOM_KERNELS:
                raise ValueError(f"custom kernel for {code} registered twice")
            CUSTOM_KERNELS[code] = fn
        return fn

    return deco


def custom_options(node) -> dict:
    """The node's ``custom_options`` FlexBuffer map as a dict."""
    data = node.attrs.get("custom_options", b"")
    if not data:
        return {}
    opts = flexbuffers.Loads(bytes(data))
    if not isinstance(opts, dict):
        raise UnsupportedError(f"{node.name}: custom_options are not a FlexBuffer map")
    return opts


@kernel("tfl.CUSTOM")
def custom(node, args, interp):
    code = node.attrs.get("custom_code", "")
    fn = CUSTOM_KERNELS.get(code)
    if fn is None:
        raise UnsupportedError(f"the reference interpreter has no kernel for custom op {code!r}")
    return fn(node, args, custom_options(node))


# ---- integer helpers -------------------------------------------------------------------


def _wrap(x, bits: int, signed: bool = True) -> np.ndarray:
    """Store ``x`` (int64) into a C integer of ``bits`` bits: two's complement wrap."""
    x = np.asarray(x, dtype=np.int64)
    if bits == 64:
        return x
    mask = (1 << bits) - 1
    if signed:
        half = 1 << (bits - 1)
        return ((x + half) & mask) - half
    return x & mask


def _w16(x) -> np.ndarray:
    return _wrap(x, 16)


def bit_length(x) -> np.ndarray:
    """Index of the most significant set bit plus one (0 for 0) of unsigned values."""
    x = np.asarray(x).astype(np.uint64)
    n = np.zeros(x.shape, np.int64)
    for s in (32, 16, 8, 4, 2, 1):
        big = (x >> np.uint64(s)) != 0
        n += np.where(big, s, 0)
        x = np.where(big, x >> np.uint64(s), x)
    return n + (x != 0)


def msb32(x) -> np.ndarray:
    """``MostSignificantBit32`` as the GCC/Clang build computes it: 32 for 0."""
    n = bit_length(np.asarray(x).astype(np.uint64) & np.uint64(0xFFFFFFFF))
    return np.where(n == 0, 32, n)


# ---- window, auto scale, energy ----------------------------------------------------------


@custom_kernel("SignalWindow")
def window(node, args, opts):
    """``ApplyWindow``: ``(x * w) >> shift`` in int32, saturated to int16, per frame of
    ``len(w)`` samples of the flattened input."""
    x, w = args[0].astype(np.int64), args[1].astype(np.int64)
    frames = x.reshape(-1, w.shape[0])
    y = (frames * w) >> int(opts["shift"])
    return [np.clip(y, -32768, 32767).astype(np.int16).reshape(x.shape)]


def max_abs16(x: np.ndarray) -> int:
    """``MaxAbs16``: the running ``max`` is an int16, so ``-(-32768)`` stores -32768.

    A -32768 sets the state to -32768 whatever it was, so only the samples after the
    last one matter; from there the scan runs as C does until the state is non-negative,
    after which it is a plain maximum of absolute values.
    """
    x = x.astype(np.int64)
    hits = np.flatnonzero(x == -32768)
    if not hits.size:
        return int(np.abs(x).max(initial=0))
    m, i = -32768, int(hits[-1]) + 1
    while m < 0 and i < x.size:
        v = int(x[i])
        m = v if v > m else int(_w16(-v))
        i += 1
    return max(m, int(np.abs(x[i:]).max(initial=0))) if m >= 0 else m


@custom_kernel("SignalFftAutoScale")
def fft_auto_scale(node, args, opts):
    """``FftAutoScale``: shift left until the largest magnitude has its top bit at 14."""
    x = args[0]
    m = max_abs16(x.reshape(-1))
    bits = max(16 - int(msb32(np.uint32(m & 0xFFFFFFFF))) - 1, 0)
    y = _w16(x.astype(np.int64) * (1 << bits)).astype(np.int16)
    return [y, np.array(bits, np.int32)]


@custom_kernel("SignalEnergy")
def energy(node, args, opts):
    """``SpectrumToEnergy``: re² + im² (int32 sum stored as uint32) for bins in
    [start_index, end_index).  TFLM leaves the other bins untouched (arena contents);
    here they are 0."""
    z = args[0].astype(np.int64).reshape(-1, 2)
    lo, hi = int(opts["start_index"]), int(opts["end_index"])
    out = np.zeros(z.shape[0], np.uint32)
    e = z[lo:hi, 0] * z[lo:hi, 0] + z[lo:hi, 1] * z[lo:hi, 1]
    out[lo:hi] = _wrap(e, 32, signed=False)
    return [out.reshape(_out_shape(node, out.shape))]


@custom_kernel("SignalRfft")
def rfft(node, args, opts):
    """``RfftEval``: each frame (last axis) zero-padded to ``fft_length``, int16 only."""
    x = args[0]
    if x.dtype != np.int16:
        raise UnsupportedError(f"{node.name}: SignalRfft is implemented for int16 only, "
                               f"not {x.dtype}")
    n = int(opts["fft_length"])
    if n % 2 or x.shape[-1] > n:
        raise UnsupportedError(f"{node.name}: SignalRfft needs an even fft_length of at least "
                               f"the frame length {x.shape[-1]}, not {n}")
    frames = x.reshape(-1, x.shape[-1]).astype(np.int64)
    frames = np.pad(frames, ((0, 0), (0, n - frames.shape[1])))
    re, im = kiss_fftr16(frames)
    y = np.stack([re, im], axis=-1).reshape(x.shape[:-1] + (-1,)).astype(np.int16)
    return [y.reshape(_out_shape(node, y.shape))]


# ---- filter bank -------------------------------------------------------------------------


@custom_kernel("SignalFilterBank")
def filter_bank(node, args, opts):
    """``FilterbankAccumulateChannels``: channel c is the weighted sum over its own bins
    plus the unweighted sum over channel c-1's bins (uint64, modulo 2**64); the
    ``num_channels + 1`` scratch channels drop channel 0."""
    x, weights, unweights, f_starts, w_starts, widths = args
    n = int(opts["num_channels"]) + 1
    widths = widths.astype(np.int64)[:n]
    ch = np.repeat(np.arange(n), widths)
    j = np.arange(ch.size) - np.repeat(np.cumsum(widths) - widths, widths)
    xs = x.astype(np.uint64)[f_starts.astype(np.int64)[ch] + j]
    wi = w_starts.astype(np.int64)[ch] + j

    def sums(w):  # segment sums as differences of a wrapping uint64 cumsum: exact mod 2**64
        prod = w.astype(np.int64)[wi].astype(np.uint64) * xs
        cs = np.concatenate([[np.uint64(0)], np.cumsum(prod, dtype=np.uint64)])
        ends = np.cumsum(widths)
        return cs[ends] - cs[ends - widths]

    with np.errstate(over="ignore"):
        acc = sums(weights)
        acc[1:] += sums(unweights)[:-1]
    return [acc[1:]]


def sqrt_round(x, width: int) -> np.ndarray:
    """``Sqrt32`` / ``Sqrt64``: bit-by-bit integer square root, rounded to nearest when
    the remainder exceeds the root (unless the root is already all ones)."""
    num = np.asarray(x).astype(np.uint64)
    nz = num != 0
    mbn = (width - bit_length(num)) | 1
    top = np.where(nz, width - 1 - mbn, 0)
    bit = np.left_shift(np.uint64(1), top.astype(np.uint64))
    iters = np.where(nz, top // 2 + 1, 0)
    res = np.zeros_like(num)
    with np.errstate(over="ignore"):
        for it in range(int(iters.max(initial=0))):
            act = iters > it
            take = act & (num >= res + bit)
            num = np.where(take, num - (res + bit), num)
            res = np.where(act, np.where(take, (res >> np.uint64(1)) + bit,
                                         res >> np.uint64(1)), res)
            bit = np.where(act, bit >> np.uint64(2), bit)
    cap = np.uint64((1 << (width // 2)) - 1)
    return np.where(nz & (num > res) & (res != cap), res + np.uint64(1), res)


def sqrt64(x) -> np.ndarray:
    """``Sqrt64``: values below 2**32 take the 32-bit path (as TFLM's shortcut does)."""
    x = np.asarray(x).astype(np.uint64)
    small = (x >> np.uint64(32)) == 0
    return np.where(small, sqrt_round(np.where(small, x, 0), 32),
                    sqrt_round(np.where(small, 0, x), 64))


@custom_kernel("SignalFilterBankSquareRoot")
def filter_bank_square_root(node, args, opts):
    x, bits = args[0], int(np.ravel(args[1])[0])
    y = sqrt64(x) >> np.uint64(bits)
    return [(y & np.uint64(0xFFFFFFFF)).astype(np.uint32)]


@custom_kernel("SignalFilterBankSpectralSubtraction")
def spectral_subtraction(node, args, opts):
    """``FilterbankSpectralSubtraction`` from a zero noise estimate (a fresh interpreter);
    even channels use ``smoothing``, odd ones ``alternate_smoothing``.  Results: the
    signal and the updated noise estimate.  (From a zero estimate the smoothed estimate
    never exceeds the signal, so ``clamping`` cannot act on a single invoke.)"""
    x = args[0].astype(np.uint64)
    u64 = np.uint64
    bits, sb = u64(int(opts["spectral_subtraction_bits"])), u64(int(opts["smoothing_bits"]))
    even = (np.arange(x.shape[0]) & 1) == 0
    smoothing = np.where(even, int(opts["smoothing"]), int(opts["alternate_smoothing"]))
    one_minus = np.where(even, int(opts["one_minus_smoothing"]),
                         int(opts["alternate_one_minus_smoothing"]))
    mask32 = u64(0xFFFFFFFF)
    noise = np.zeros_like(x)  # the state TFLM's Prepare resets
    up = (x << sb) & mask32
    with np.errstate(over="ignore"):  # C computes these in uint64 as well
        noise = ((up * smoothing.astype(u64) + noise * one_minus.astype(u64)) >> bits) & mask32
        est = np.minimum(noise, up)
        if opts.get("clamping", False):
            noise = est
        floor = ((x * u64(int(opts["min_signal_remaining"]))) >> bits) & mask32
    out = np.maximum((up - est) >> sb, floor)
    return [out.astype(np.uint32), noise.astype(np.uint32)]


# ---- PCAN and log ------------------------------------------------------------------------

_PCAN_SNR_BITS, _PCAN_OUTPUT_BITS = 12, 6


def wide_dynamic_function(x: np.ndarray, lut: np.ndarray) -> np.ndarray:
    """``WideDynamicFunction``: the gain by quadratic interpolation in segment
    ``msb(x)`` of the LUT (``lut[x]`` for x <= 2); int32 steps wrap, result int16."""
    x = x.astype(np.int64)
    lut = lut.astype(np.int64)
    interval = msb32(np.maximum(x, 1))
    base = np.where(x <= 2, 0, 4 * interval - 6)
    frac = np.where(interval < 11, x << np.maximum(11 - interval, 0),
                    x >> np.maximum(interval - 11, 0)) & 0x3FF
    r = (lut[base + 2] * frac) >> 5
    r = _wrap(r + lut[base + 1] * 32, 32)
    r = _wrap(r * frac, 32)
    r = _wrap(r + (1 << 14), 32) >> 15
    r = _w16(r + lut[base])
    return np.where(x <= 2, lut[np.minimum(x, 2)], r)


def pcan_shrink(snr: np.ndarray) -> np.ndarray:
    """``PcanShrink``: x²/4 below 2 and x - 1 above, from Q12 to Q6 (uint32)."""
    small = snr < (2 << _PCAN_SNR_BITS)
    sq = _wrap(snr * snr, 32, signed=False) >> (2 + 2 * _PCAN_SNR_BITS - _PCAN_OUTPUT_BITS)
    lin = (snr >> (_PCAN_SNR_BITS - _PCAN_OUTPUT_BITS)) - (1 << _PCAN_OUTPUT_BITS)
    return _wrap(np.where(small, sq, lin), 32, signed=False)


@custom_kernel("SignalPCAN")
def pcan(node, args, opts):
    """``ApplyPcanAutoGainControlFixed``: per-channel automatic gain from the noise
    estimate, then the shrink nonlinearity."""
    x, noise, lut = args
    gain = _wrap(wide_dynamic_function(noise.astype(np.int64), lut), 32, signed=False)
    snr = (x.astype(np.uint64) * gain.astype(np.uint64)) >> np.uint64(int(opts["snr_shift"]))
    snr = (snr & np.uint64(0xFFFFFFFF)).astype(np.int64)
    return [pcan_shrink(snr).astype(np.uint32)]


_LOG_LUT = np.array([
    0, 224, 442, 654, 861, 1063, 1259, 1450, 1636, 1817, 1992, 2163, 2329, 2490, 2646, 2797,
    2944, 3087, 3224, 3358, 3487, 3611, 3732, 3848, 3960, 4068, 4172, 4272, 4368, 4460, 4549,
    4633, 4714, 4791, 4864, 4934, 5001, 5063, 5123, 5178, 5231, 5280, 5326, 5368, 5408, 5444,
    5477, 5507, 5533, 5557, 5578, 5595, 5610, 5622, 5631, 5637, 5640, 5641, 5638, 5633, 5626,
    5615, 5602, 5586, 5568, 5547, 5524, 5498, 5470, 5439, 5406, 5370, 5332, 5291, 5249, 5203,
    5156, 5106, 5054, 5000, 4944, 4885, 4825, 4762, 4697, 4630, 4561, 4490, 4416, 4341, 4264,
    4184, 4103, 4020, 3935, 3848, 3759, 3668, 3575, 3481, 3384, 3286, 3186, 3084, 2981, 2875,
    2768, 2659, 2549, 2437, 2323, 2207, 2090, 1971, 1851, 1729, 1605, 1480, 1353, 1224, 1094,
    963, 830, 695, 559, 421, 282, 142, 0, 0], np.int64)  # signal/src/log.cc kLogLut
_LOG_SCALE_BITS, _LOG_SEGMENT_BITS, _LOG_COEFF = 16, 7, 45426


def log32(x: np.ndarray, out_scale: int) -> np.ndarray:
    """``Log32``: ln(x) * out_scale for x >= 2 (uint32), from log2 = msb + a LUT-corrected
    fraction in Q16, times ln 2 in Q16 (45426), each step rounded."""
    x = x.astype(np.int64)
    integer = msb32(x) - 1
    frac = x - (np.int64(1) << integer)
    frac = np.where(integer < _LOG_SCALE_BITS, frac << np.maximum(_LOG_SCALE_BITS - integer, 0),
                    frac >> np.maximum(integer - _LOG_SCALE_BITS, 0))
    seg = frac >> (_LOG_SCALE_BITS - _LOG_SEGMENT_BITS)
    c0, c1 = _LOG_LUT[seg], _LOG_LUT[seg + 1]
    rel = ((c1 - c0) * (frac - seg * (1 << (_LOG_SCALE_BITS - _LOG_SEGMENT_BITS)))) \
        >> _LOG_SCALE_BITS
    log2 = _wrap((integer << _LOG_SCALE_BITS) + frac + c0 + rel, 32, signed=False)
    half = 1 << (_LOG_SCALE_BITS - 1)
    loge = _wrap((_LOG_COEFF * log2 + half) >> _LOG_SCALE_BITS, 32, signed=False)
    return _wrap(_wrap(out_scale * loge, 32, signed=False) + half, 32,
                 signed=False) >> _LOG_SCALE_BITS


@custom_kernel("SignalFilterBankLog")
def filter_bank_log(node, args, opts):
    """``FilterbankLog``: ``Log32(x << input_correction_bits)`` capped at INT16_MAX; 0 for
    inputs that scale to 0 or 1."""
    scaled = _wrap(args[0].astype(np.int64) << int(opts["input_correction_bits"]), 32,
                   signed=False)
    big = scaled > 1
    y = log32(np.where(big, scaled, 2), int(opts["output_scale"]))
    return [np.where(big, np.minimum(y, 32767), 0).astype(np.int16)]
