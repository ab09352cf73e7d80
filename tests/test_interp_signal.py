"""TFLM ``signal`` custom ops (``tinyir.interp.tfl_signal``) against tflite-micro, bit for bit.

Each case is a one-op ``tfl.CUSTOM`` graph built with the IR API (options encoded with
``flatbuffers.flexbuffers``), written with ``write_tflite_bytes`` and run by the TFLM
interpreter in one child process, on inputs chosen to reach the corners of the C
arithmetic: int16 wrap-around in the fixed-point FFT, -32768 in the auto-scale scan,
square roots on both sides of 2**32, the log and PCAN LUT segments.  A few pure tests pin
the integer helpers against independent restatements.
"""

from __future__ import annotations

import math
import pickle
import subprocess
import sys

import numpy as np
import pytest
from flatbuffers import flexbuffers

from test_interp_tflite import _ORACLE_MANY
from tinyir.graph import Graph
from tinyir.interp import run
from tinyir.interp import tfl_kissfft16 as kiss
from tinyir.interp import tfl_signal as sig
from tinyir.types import DType, TensorType

I16, I32, U32, U64 = DType.INT16, DType.INT32, DType.UINT32, DType.UINT64


def _t(shape, dtype):
    return TensorType(tuple(shape), dtype)


def _custom(code, inputs, out_types, options):
    """A graph with one ``tfl.CUSTOM`` node; ``inputs``: TensorType (graph input) or array
    (constant)."""
    g = Graph("main", layout="NHWC")
    operands = [g.add_input(f"in{i}", s) if isinstance(s, TensorType)
                else g.add_const(f"c{i}", np.asarray(s)) for i, s in enumerate(inputs)]
    attrs = {"custom_code": code, "custom_options": bytes(flexbuffers.Dumps(options))}
    node = g.add_node("tfl.CUSTOM", operands, [(f"out{i}", t) for i, t in enumerate(out_types)],
                      attrs)
    g.outputs = list(node.outputs)
    return g


def _rng(seed):
    return np.random.default_rng(seed)


def _i16(rng, shape, amp=32768):
    return rng.integers(-amp, amp, shape).astype(np.int16)


def _spread_u32(rng, n):
    """uint32 values spread over every magnitude, with 0, 1, 2 and the maximum."""
    x = (rng.random(n) * 2.0 ** rng.integers(0, 33, n)).astype(np.uint64)
    x[:4] = [0, 1, 2, 0xFFFFFFFF]
    return np.minimum(x, 0xFFFFFFFF).astype(np.uint32)


def _auto_scale_runs():
    rng = _rng(3)
    runs = [_i16(rng, (96,), amp) for amp in (5, 300, 20000, 32768)]
    for pos in (0, 40, 94, 95):  # -32768 (whose negation is -32768 in int16) at the end
        x = _i16(rng, (96,), 700)
        x[pos] = -32768
        runs.append(x)
    x = _i16(rng, (96,), 50)
    x[10], x[11:15] = -32768, [-30, -20, -40, 9]  # a negative chain after the -32768
    runs += [x, np.zeros(96, np.int16), np.full(96, -32768, np.int16)]
    return [[r] for r in runs]


def _rfft_case(n_in, fft_length, batch=()):
    shape = batch + (n_in,)
    out = batch + (2 * (fft_length // 2 + 1),)
    g = _custom("SignalRfft", [_t(shape, I16)], [_t(out, I16)],
                {"T": 7, "fft_length": fft_length})
    rng = _rng(fft_length)
    # full-scale inputs overflow the int16 butterflies (wrap-around); quiet ones do not
    runs = [[_i16(rng, shape, amp)] for amp in (32768, 16384, 2000, 3)]
    return g, runs


def _filter_bank_case():
    rng = _rng(5)
    widths = np.array([3, 4, 0, 5, 2, 6, 4], np.int16)  # num_channels + 1, one empty
    f_starts = np.array([1, 3, 7, 7, 11, 12, 17], np.int16)
    w_starts = (np.cumsum(widths) - widths).astype(np.int16)
    weights = rng.integers(0, 4097, int(widths.sum())).astype(np.int16)
    unweights = (4096 - weights).astype(np.int16)
    weights[3] = -5  # a negative weight sign-extends to a huge uint64 factor
    g = _custom("SignalFilterBank", [_t((24,), U32), weights, unweights, f_starts, w_starts,
                                     widths], [_t((6,), U64)], {"num_channels": 6})
    runs = [[_spread_u32(rng, 24)], [rng.integers(0, 1 << 32, 24, dtype=np.uint64)
                                     .astype(np.uint32)]]
    return g, runs


def _sqrt_runs():
    rng = _rng(6)
    x = (rng.random(64) * 2.0 ** rng.integers(0, 64, 64)).astype(np.uint64)
    edges = [0, 1, 2, 3, (1 << 32) - 1, 1 << 32, (1 << 32) + 1, 0xFFFE0001, 0xFFFF0000,
             (1 << 64) - 1, (1 << 63) + 12345, 0xFFFFFFFE00000001, 0xFFFFFFFF00000000]
    x[:len(edges)] = np.array(edges, np.uint64)
    return [[x, np.array(bits, np.int32)] for bits in (0, 3, 7)]


def _pcan_case():
    rng = _rng(7)
    lut = rng.integers(-8000, 32767, 125).astype(np.int16)  # exercises the int32 wraps
    g = _custom("SignalPCAN", [_t((48,), U32), _t((48,), U32), lut], [_t((48,), U32)],
                {"snr_shift": 6})
    runs = [[_spread_u32(rng, 48), _spread_u32(rng, 48)] for _ in range(3)]
    return g, runs


def _cases() -> dict:
    rng = _rng(1)
    win = rng.integers(-4096, 4097, 64).astype(np.int16)
    subtraction = {"alternate_one_minus_smoothing": 15401, "alternate_smoothing": 983,
                   "min_signal_remaining": 819, "num_channels": 40,
                   "one_minus_smoothing": 15975, "smoothing": 409, "smoothing_bits": 10,
                   "spectral_subtraction_bits": 14}
    cases = {
        "window_saturating": (
            _custom("SignalWindow", [_t((3, 64), I16), win], [_t((3, 64), I16)], {"shift": 9}),
            [[_i16(rng, (3, 64))], [_i16(rng, (3, 64), 100)]]),
        "fft_auto_scale": (
            _custom("SignalFftAutoScale", [_t((96,), I16)], [_t((96,), I16), _t((), I32)], {}),
            _auto_scale_runs()),
        "rfft_512_radix4": _rfft_case(480, 512),
        "rfft_480_radix4_3_5_batched": _rfft_case(480, 480, (2,)),
        "rfft_96_radix2_3": _rfft_case(90, 96),
        "rfft_250_radix5": _rfft_case(250, 250),
        "rfft_16_radix4_2": _rfft_case(16, 16),
        "energy": (
            _custom("SignalEnergy", [_t((2 * 65,), I16)], [_t((65,), U32)],
                    {"end_index": 60, "start_index": 3}),
            [[_i16(rng, (130,))], [np.full(130, -32768, np.int16)]]),
        "filter_bank": _filter_bank_case(),
        "filter_bank_square_root": (
            _custom("SignalFilterBankSquareRoot", [_t((64,), U64), _t((), I32)],
                    [_t((64,), U32)], {}),
            _sqrt_runs()),
        "spectral_subtraction": (
            _custom("SignalFilterBankSpectralSubtraction", [_t((40,), U32)],
                    [_t((40,), U32), _t((40,), U32)], {**subtraction, "clamping": False}),
            [[_spread_u32(rng, 40)] for _ in range(2)]),
        "spectral_subtraction_clamping": (
            _custom("SignalFilterBankSpectralSubtraction", [_t((40,), U32)],
                    [_t((40,), U32), _t((40,), U32)], {**subtraction, "clamping": True}),
            [[_spread_u32(rng, 40)]]),
        "pcan": _pcan_case(),
        "filter_bank_log": (
            _custom("SignalFilterBankLog", [_t((64,), U32)], [_t((64,), I16)],
                    {"input_correction_bits": 3, "output_scale": 64}),
            [[_spread_u32(rng, 64)] for _ in range(2)]),
        "filter_bank_log_capped": (
            _custom("SignalFilterBankLog", [_t((64,), U32)], [_t((64,), I16)],
                    {"input_correction_bits": 0, "output_scale": 3000}),
            [[_spread_u32(rng, 64)]]),
    }
    return cases


@pytest.fixture(scope="module")
def tflm_results(tmp_path_factory):
    """{case: (graph, runs, TFLM outputs per run or the reason TFLM failed)}."""
    from tinyir.formats.tflite_format import write_tflite_bytes

    tmp = tmp_path_factory.mktemp("signal_ops")
    cases, payload = _cases(), {}
    for name, (graph, runs) in cases.items():
        graph.verify()
        payload[name] = (write_tflite_bytes(graph), runs, len(graph.outputs))
    pickle.dump(payload, open(tmp / "cases.pkl", "wb"))
    subprocess.run([sys.executable, "-c", _ORACLE_MANY, str(tmp / "cases.pkl"),
                    str(tmp / "outs.pkl")], check=True, timeout=300)
    results = pickle.load(open(tmp / "outs.pkl", "rb"))
    return {name: (*cases[name], results[name]) for name in cases}


@pytest.mark.parametrize("case", sorted(_cases()))
def test_signal_op_matches_tflm(case, tflm_results):
    graph, runs, expected = tflm_results[case]
    assert not isinstance(expected, str), f"TFLM rejected the case: {expected}"
    node = graph.nodes[0]
    for r, feeds in enumerate(runs):
        got = run(graph, {v.name: x for v, x in zip(graph.inputs, feeds)})
        for k, (v, want) in enumerate(zip(graph.outputs, expected[r])):
            g = got[v.name].reshape(want.shape)
            if node.attrs["custom_code"] == "SignalEnergy":  # TFLM writes only these bins
                g, want = g[3:60], want[3:60]
            assert g.dtype == want.dtype, f"run {r} output {k}"
            bad = np.flatnonzero(g != want)
            assert not bad.size, (f"run {r} output {k}: {bad.size} elements differ, first at "
                                  f"{bad[0]}: {g.flat[bad[0]]} != {want.flat[bad[0]]}")


# ---- helpers against independent restatements -------------------------------------------


def _max_abs16_c(x):
    m = 0
    for v in x.tolist():
        if v > m:
            m = v
        elif -v > m:
            m = ((-v + 32768) & 0xFFFF) - 32768
    return m


def test_max_abs16_follows_the_int16_scan():
    rng = _rng(8)
    for _ in range(300):
        x = rng.integers(-60, 60, int(rng.integers(1, 30)))
        x[rng.random(x.size) < 0.2] = -32768
        assert sig.max_abs16(x) == _max_abs16_c(x), x.tolist()


def test_square_root_rounds_to_nearest():
    rng = _rng(9)
    x = np.concatenate([np.arange(0, 5000), rng.integers(0, 1 << 63, 3000, dtype=np.uint64)
                        * np.uint64(2) + np.uint64(1)]).astype(np.uint64)
    got = sig.sqrt64(x)
    for v, s in zip(x.tolist(), got.tolist()):
        r = math.isqrt(v)
        want = r + 1 if v - r * r > r and r != (0xFFFF if v < 1 << 32 else 0xFFFFFFFF) else r
        assert s == want, v


def test_rfft_approximates_the_scaled_dft():
    """kissfft scales by 1/n; the fixed-point result stays within a few LSB of the DFT."""
    x = _i16(_rng(10), (4, 480), 8000)
    re, im = kiss.kiss_fftr16(x.astype(np.int64))
    want = np.fft.rfft(x.astype(np.float64), axis=-1) / 480
    assert np.abs(re - want.real).max() < 4 and np.abs(im - want.imag).max() < 4


def test_unknown_custom_code_is_refused():
    from tinyir.errors import UnsupportedError

    g = _custom("SignalFramer", [_t((4,), I16)], [_t((4,), I16)], {"frame_size": 4})
    with pytest.raises(UnsupportedError, match="custom op 'SignalFramer'"):
        run(g, {"in0": np.zeros(4, np.int16)})
