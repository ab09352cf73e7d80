"""kissfft v130 in ``FIXED_POINT=16`` mode, as TFLM's ``SignalRfft`` (int16) runs it.

TFLM builds ``kiss_fft.c`` and ``tools/kiss_fftr.c`` (v130, with TFLM's patch) with
``FIXED_POINT=16``: samples and twiddles are int16, products are int32 rounded back to Q15
(``sround``), every butterfly input is divided by its radix first (``C_FIXDIV``, a multiply
by ``32767 / p``), so a length-n transform is scaled by about 1/n.  Sums are stored in
int16 fields and wrap (full-scale inputs do overflow).  Twiddles are
``floor(.5 + 32767 * cos/sin(phase))`` with the C phase expressions and libm's cos/sin.

The recursion of ``kf_work`` is run bottom-up, one vectorised pass per radix stage: within
a stage every butterfly reads and writes its own elements, so running them together does
not change a bit.  Radices 2, 3, 4 and 5 are restated; other radices need
``kf_bfly_generic``, whose scratch allocation TFLM's patch turns into NULL.
"""

from __future__ import annotations

import functools
import math

import numpy as np

from tinyir.errors import UnsupportedError

_SAMP_MAX = 32767


def _w16(x) -> np.ndarray:
    """Store int64 values into an int16 field (two's complement wrap)."""
    return ((np.asarray(x, dtype=np.int64) + 32768) & 0xFFFF) - 32768



def _sround(x) -> np.ndarray:
    """``sround``: round a Q30 product back to Q15 and store it as int16."""
    return _w16((x + (1 << 14)) >> 15)


def _cmul(ar, ai, br, bi):
    return _sround(ar * br - ai * bi), _sround(ar * bi + ai * br)


def _fixdiv(re, im, p: int):
    """``C_FIXDIV``: divide by ``p`` as a multiply by ``SAMP_MAX / p`` (integer division)."""
    k = _SAMP_MAX // p
    return _sround(re * k), _sround(im * k)


def _cexp(phase: float) -> tuple[int, int]:
    """``kf_cexp`` in fixed point: ``floor(.5 + SAMP_MAX * cos(phase))`` (libm cos/sin)."""
    return (math.floor(0.5 + _SAMP_MAX * math.cos(phase)),
            math.floor(0.5 + _SAMP_MAX * math.sin(phase)))


def _kf_factor(n: int) -> list[tuple[int, int]]:
    """``kf_factor``: powers of 4, then 2, then odd primes; [(radix p, stage length m)]."""
    out, p, floor_sqrt = [], 4, math.floor(math.sqrt(n))
    while True:
        while n % p:
            p = 2 if p == 4 else 3 if p == 2 else p + 2
            if p > floor_sqrt:
                p = n
        n //= p
        out.append((p, n))
        if n <= 1:
            return out


@functools.lru_cache(maxsize=None)
def _kiss_plan(nfft: int):
    """(factors, twiddle re, twiddle im, input order of the leaves) of a forward FFT."""
    factors = _kf_factor(nfft)
    bad = sorted({p for p, _ in factors if p not in (2, 3, 4, 5)})
    if bad:
        # kf_bfly_generic needs KISS_FFT_TMP_ALLOC, which TFLM's patch turns into NULL.
        raise UnsupportedError(f"SignalRfft: a complex FFT of length {nfft} needs radix "
                               f"{bad[0]}, which TFLM's kissfft cannot run")
    tw = np.array([_cexp(-2 * math.pi * i / nfft) for i in range(nfft)], np.int64)
    order, fstride = np.zeros(1, np.int64), 1
    for p, _ in factors:  # block k of a stage reads f[offset + k * fstride]
        order = (order[:, None] + np.arange(p) * fstride).reshape(-1)
        fstride *= p
    return tuple(factors), tw[:, 0], tw[:, 1], order


def _bfly(p: int, F: list, tw_r, tw_i, u, s: int, m: int):
    """One radix-``p`` butterfly over ``F[q] = (re, im)`` for q < p (forward transform).

    ``u`` indexes the butterflies of a segment, ``s`` is the stage's fstride.
    """
    F = [_fixdiv(r, i, p) for r, i in F]

    def tw(q):
        return tw_r[q * u * s], tw_i[q * u * s]

    def add(a, b):
        return _w16(a[0] + b[0]), _w16(a[1] + b[1])

    def sub(a, b):
        return _w16(a[0] - b[0]), _w16(a[1] - b[1])

    if p == 2:
        t = _cmul(*F[1], *tw(1))
        return [add(F[0], t), sub(F[0], t)]
    if p == 4:
        s0, s1, s2 = (_cmul(*F[q], *tw(q)) for q in (1, 2, 3))
        s5 = sub(F[0], s1)
        f0 = add(F[0], s1)
        s3, s4 = add(s0, s2), sub(s0, s2)
        f2 = sub(f0, s3)
        f0 = add(f0, s3)
        f1 = _w16(s5[0] + s4[1]), _w16(s5[1] - s4[0])
        f3 = _w16(s5[0] - s4[1]), _w16(s5[1] + s4[0])
        return [f0, f1, f2, f3]
    if p == 3:
        epi3_i = tw_i[s * m]
        s1, s2 = _cmul(*F[1], *tw(1)), _cmul(*F[2], *tw(2))
        s3, s0 = add(s1, s2), sub(s1, s2)
        f1 = _w16(F[0][0] - (s3[0] >> 1)), _w16(F[0][1] - (s3[1] >> 1))
        s0 = _sround(s0[0] * epi3_i), _sround(s0[1] * epi3_i)
        f0 = add(F[0], s3)
        f2 = _w16(f1[0] + s0[1]), _w16(f1[1] - s0[0])
        f1 = _w16(f1[0] - s0[1]), _w16(f1[1] + s0[0])
        return [f0, f1, f2]
    # p == 5
    ya_r, ya_i, yb_r, yb_i = tw_r[s * m], tw_i[s * m], tw_r[2 * s * m], tw_i[2 * s * m]
    s0 = F[0]
    s1, s2, s3, s4 = (_cmul(*F[q], *tw(q)) for q in (1, 2, 3, 4))
    s7, s10, s8, s9 = add(s1, s4), sub(s1, s4), add(s2, s3), sub(s2, s3)
    f0 = _w16(s0[0] + s7[0] + s8[0]), _w16(s0[1] + s7[1] + s8[1])

    def smul(a, b):
        return _sround(a * b)

    s5 = (_w16(s0[0] + smul(s7[0], ya_r) + smul(s8[0], yb_r)),
          _w16(s0[1] + smul(s7[1], ya_r) + smul(s8[1], yb_r)))
    s6 = (_w16(smul(s10[1], ya_i) + smul(s9[1], yb_i)),
          _w16(-smul(s10[0], ya_i) - smul(s9[0], yb_i)))
    s11 = (_w16(s0[0] + smul(s7[0], yb_r) + smul(s8[0], ya_r)),
           _w16(s0[1] + smul(s7[1], yb_r) + smul(s8[1], ya_r)))
    s12 = (_w16(-smul(s10[1], yb_i) + smul(s9[1], ya_i)),
           _w16(smul(s10[0], yb_i) - smul(s9[0], ya_i)))
    return [f0, sub(s5, s6), add(s11, s12), sub(s11, s12), add(s5, s6)]


def kiss_fft16(re: np.ndarray, im: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Forward complex int16 FFT of the last axis (``kiss_fft``, fixed point, scaled by
    1/n through the per-stage ``C_FIXDIV``)."""
    n = re.shape[-1]
    factors, tw_r, tw_i, order = _kiss_plan(n)
    re, im = re.astype(np.int64)[..., order], im.astype(np.int64)[..., order]
    lead = re.shape[:-1]
    fstrides = np.cumprod([1] + [p for p, _ in factors[:-1]])
    for (p, m), s in reversed(list(zip(factors, fstrides))):
        s = int(s)
        r4, i4 = re.reshape(lead + (s, p, m)), im.reshape(lead + (s, p, m))
        out = _bfly(p, [(r4[..., q, :], i4[..., q, :]) for q in range(p)],
                    tw_r, tw_i, np.arange(m), s, m)
        re = np.stack([o[0] for o in out], axis=-2).reshape(lead + (n,))
        im = np.stack([o[1] for o in out], axis=-2).reshape(lead + (n,))
    return re, im


@functools.lru_cache(maxsize=None)
def _super_twiddles(ncfft: int):
    tw = np.array([_cexp(-math.pi * ((i + 1) / ncfft + 0.5)) for i in range(ncfft // 2)],
                  np.int64).reshape(-1, 2)
    return tw[:, 0], tw[:, 1]


def kiss_fftr16(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``kiss_fftr`` (int16): the real FFT of even length ``n`` over the last axis as
    ``n/2 + 1`` bins (re, im), by a complex FFT of the even/odd samples packed as re/im."""
    ncfft = x.shape[-1] // 2
    t_r, t_i = kiss_fft16(x[..., 0::2], x[..., 1::2])
    out_r = np.zeros(x.shape[:-1] + (ncfft + 1,), np.int64)
    out_i = np.zeros_like(out_r)
    dc_r, dc_i = _fixdiv(t_r[..., 0], t_i[..., 0], 2)
    out_r[..., 0], out_r[..., ncfft] = _w16(dc_r + dc_i), _w16(dc_r - dc_i)
    k = np.arange(1, ncfft // 2 + 1)
    fpk = _fixdiv(t_r[..., k], t_i[..., k], 2)
    fpnk = _fixdiv(t_r[..., ncfft - k], _w16(-t_i[..., ncfft - k]), 2)
    f1 = _w16(fpk[0] + fpnk[0]), _w16(fpk[1] + fpnk[1])
    f2 = _w16(fpk[0] - fpnk[0]), _w16(fpk[1] - fpnk[1])
    tw = _cmul(*f2, *_super_twiddles(ncfft))
    out_r[..., k], out_i[..., k] = _w16((f1[0] + tw[0]) >> 1), _w16((f1[1] + tw[1]) >> 1)
    # for k == ncfft/2 both writes hit the same bin; C's second write wins, as here
    out_r[..., ncfft - k] = _w16((f1[0] - tw[0]) >> 1)
    out_i[..., ncfft - k] = _w16((tw[1] - f1[1]) >> 1)
    return out_r, out_i
