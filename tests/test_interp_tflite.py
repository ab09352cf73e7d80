"""TFLite kernels of the reference interpreter against TFLM, bit for bit.

Two layers:

* the fixed-point primitives of ``tinyir.interp.tfl_quant`` against an independent
  big-integer restatement of TFLM/gemmlowp arithmetic and against published values;
* every corpus ``.tflite`` that the ``tflite-micro`` interpreter runs: tinyir's output
  must equal TFLM's exactly for integer outputs and within 1e-5 of the output range for
  float outputs, on three seeded random inputs.  TFLM runs in a child process (it can
  abort); its outputs are kept in memory only.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import corpus
from tfl_graph import one_op as _op
from tfl_graph import q as _q
from tfl_graph import t as _t
from tinyir.interp import run
from tinyir.interp import tfl_quant as fx
from tinyir.types import DType

# ---- fixed-point primitives -----------------------------------------------------------


def _srdhm_ref(a: int, b: int) -> int:
    if a == b == -(1 << 31):
        return (1 << 31) - 1
    ab = a * b
    nudge = (1 << 30) if ab >= 0 else 1 - (1 << 30)
    q = abs(ab + nudge) >> 31  # C division truncates towards zero
    return q if ab + nudge >= 0 else -q


def _rdbpot_ref(x: int, e: int) -> int:
    mask = (1 << e) - 1
    rem = x & mask
    threshold = (mask >> 1) + (1 if x < 0 else 0)
    return (x >> e) + (1 if rem > threshold else 0)


def test_quantize_multiplier_known_values():
    assert fx.quantize_multiplier(0.5) == (1 << 30, 0)
    assert fx.quantize_multiplier(1 / 3) == (1431655765, -1)
    assert fx.quantize_multiplier(1.5) == (1610612736, 1)
    assert fx.quantize_multiplier(1e-10) == (0, 0)
    assert fx.quantize_multiplier(0.0) == (0, 0)
    # q * 2**31 rounding up to 2**31 moves to the next exponent
    assert fx.quantize_multiplier(1.0 - 2.0 ** -40) == (1 << 30, 1)


def test_mbqm_known_values_and_tie_rules():
    m, s = fx.quantize_multiplier(0.5)
    assert fx.mbqm(np.array([3, -3, -5, 5]), m, s).tolist() == [2, -1, -2, 3]


def test_srdhm_and_rdbpot_match_big_integer_reference():
    rng = np.random.default_rng(0)
    edges = [-(1 << 31), -(1 << 31) + 1, -1, 0, 1, (1 << 31) - 1, 1 << 30, -(1 << 30)]
    a = np.concatenate([rng.integers(-(1 << 31), 1 << 31, 4000), edges * 8])
    b = np.concatenate([rng.integers(-(1 << 31), 1 << 31, 4000), edges * 8])
    got = fx.srdhm(a, b)
    assert got.tolist() == [_srdhm_ref(int(x), int(y)) for x, y in zip(a, b)]
    for e in (0, 1, 2, 7, 13, 31):
        assert fx.rdbpot(a, e).tolist() == [_rdbpot_ref(int(x), e) for x in a]


def test_mbqm_exhaustive_small_accumulators():
    """Every accumulator in [-2**12, 2**12) for multipliers of both shift signs."""
    acc = np.arange(-(1 << 12), 1 << 12)
    for real in (0.000731, 0.0123, 0.4999, 0.5, 0.75, 1.0, 1.9, 13.7):
        m, s = fx.quantize_multiplier(real)
        left, right = max(s, 0), max(-s, 0)
        want = [_rdbpot_ref(_srdhm_ref(int(x) << left, m), right) for x in acc]
        assert fx.mbqm(acc, m, s).tolist() == want, real


def test_mbqm64_reduced_multiplier():
    m, s = fx.quantize_multiplier(0.0003)
    x = np.array([0, 1, -1, 123456789, -(1 << 40), (1 << 40) - 1])
    reduced = (m + (1 << 15)) >> 16
    want = [int((int(v) * reduced + (1 << (14 - s))) >> (15 - s)) for v in x]
    assert fx.mbqm64(x, m, s).tolist() == want


def test_fixed_point_transcendentals_are_accurate():
    a = np.linspace(-(1 << 31) + 1, 0, 5001).astype(np.int64)
    for bits in (0, 4, 5, 12):
        got = fx.exp_on_negative_values(a, bits) / 2.0 ** 31
        assert np.abs(got - np.exp(a / 2.0 ** (31 - bits))).max() < 3e-7
    x = np.linspace(0, (1 << 31) - 1, 5001).astype(np.int64)
    got = fx.one_over_one_plus_x_for_x_in_0_1(x) / 2.0 ** 31
    assert np.abs(got - 1 / (1 + x / 2.0 ** 31)).max() < 1e-8
    q4 = np.linspace(-(1 << 31) + 1, (1 << 31) - 1, 5001).astype(np.int64)
    sigmoid = 1 / (1 + np.exp(-q4 / 2.0 ** 27))
    assert np.abs(fx.fx_logistic(q4, 4) / 2.0 ** 31 - sigmoid).max() < 3e-7
    assert np.abs(fx.fx_tanh(q4, 4) / 2.0 ** 31 - np.tanh(q4 / 2.0 ** 27)).max() < 3e-7


def test_activation_range_quantized():
    # RELU with zp -128 clamps nothing; RELU6 clamps at round(6 / scale) + zp
    assert fx.activation_range("RELU", 0.05, -128, -128, 127) == (-128, 127)
    assert fx.activation_range("RELU6", 0.05, -128, -128, 127) == (-128, -8)
    assert fx.activation_range("RELU_N1_TO_1", 0.01, 0, -128, 127) == (-100, 100)
    assert fx.activation_range("TANH", 0.01, 0, -128, 127) == (-128, 127)


def test_int16_lut_interpolation_matches_float():
    lut = fx.lut_populate_int16(np.float32(10.0) / np.float32(65535), 32767,
                                np.float32(2.0) / np.float32(65535), 0, fx.expf)
    x = np.arange(-32768, 32768, 97)
    real = np.exp((x - 32767) * (10.0 / 65535))
    assert np.abs(fx.lut_lookup_int16(x, lut) - real * 65535 / 2).max() <= 6  # LSB


# ---- corpus models against the tflite-micro interpreter -------------------------------

ARENA = 16 << 20
NOT_IMPLEMENTED: dict[str, str] = {}

_ORACLE = textwrap.dedent("""
    import json, sys
    import numpy as np
    from tflite_micro.python.tflite_micro import runtime
    path, feeds_path, out_path, arena = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    data = open(path, "rb").read()
    feeds = np.load(feeds_path)
    n_runs, n_in = json.loads(str(feeds["meta"]))
    outs = {}
    for r in range(n_runs):
        # A fresh interpreter per run: variable tensors (LSTM/SVDF state) start reset.
        it = runtime.Interpreter.from_bytes(data, arena_size=arena)
        for i in range(n_in):
            it.set_input(feeds[f"r{r}_i{i}"], i)
        it.invoke()
        k = 0
        while True:
            try:
                it.get_output_details(k)
            except Exception:
                break
            outs[f"r{r}_o{k}"] = it.get_output(k)
            k += 1
    np.savez(out_path, **outs)
""")


def _feeds(graph, seed: int) -> dict:
    """Seeded inputs: full-range integers (seeds 0, 2) or values near the zero point (1)."""
    rng = np.random.default_rng(seed)
    feeds = {}
    for v in graph.inputs:
        dt, shape = v.type.dtype.numpy, v.type.shape
        if dt.kind in "iu":
            lo, hi = np.iinfo(dt).min, np.iinfo(dt).max
            if seed == 1:
                zp = v.type.quant.zero_point[0] if v.type.quant else 0
                x = np.clip(np.round(zp + rng.normal(0, (hi - lo) / 16, shape)), lo, hi)
            else:
                x = rng.integers(lo, hi + 1, size=shape)
            feeds[v.name] = x.astype(dt)
        else:
            feeds[v.name] = rng.standard_normal(shape).astype(dt) * (1 + seed)
    return feeds


def _tflm(path, graph, runs, tmp_path):
    """TFLM outputs for each run, or the reason TFLM cannot run the model."""
    arrays = {"meta": json.dumps([len(runs), len(graph.inputs)])}
    for r, feeds in enumerate(runs):
        for i, v in enumerate(graph.inputs):
            arrays[f"r{r}_i{i}"] = feeds[v.name]
    np.savez(tmp_path / "feeds.npz", **arrays)
    out = tmp_path / "outs.npz"
    proc = subprocess.run([sys.executable, "-c", _ORACLE, str(path), str(tmp_path / "feeds.npz"),
                           str(out), str(ARENA)], capture_output=True, text=True, timeout=300)
    if proc.returncode != 0:
        lines = proc.stderr.strip().splitlines() or ["(no message)"]
        tflm = lines[:lines.index("Traceback (most recent call last):")] \
            if "Traceback (most recent call last):" in lines else []
        return None, "tflite-micro cannot run it: " + " / ".join(tflm[:2] + lines[-1:])
    data = np.load(out)
    return [[data[f"r{r}_o{k}"] for k in range(len(graph.outputs))] for r in range(len(runs))], None


def _diff(got: np.ndarray, want: np.ndarray) -> float:
    """Max abs difference (integers) or max abs difference over the output range (floats)."""
    got = got.reshape(want.shape)
    if want.dtype.kind == "f":
        span = max(float(want.max() - want.min()), float(np.abs(want).max()), 1e-30)
        return float(np.abs(got.astype(np.float64) - want.astype(np.float64)).max()) / span
    return float(np.abs(got.astype(np.int64) - want.astype(np.int64)).max())


@pytest.mark.parametrize("path", corpus.files("tflite/*.tflite"))
def test_corpus_model_matches_tflm(path, tmp_path):
    from tinyir.formats.tflite_format import read_tflite

    graph = read_tflite(path.read_bytes(), path=path)
    runs = [_feeds(graph, seed) for seed in range(3)]
    expected, why_not = _tflm(path, graph, runs, tmp_path)
    if expected is None:
        pytest.skip(why_not)
    if path.name in NOT_IMPLEMENTED:
        pytest.xfail(NOT_IMPLEMENTED[path.name])
    for r, feeds in enumerate(runs):
        got = run(graph, feeds)
        for v, want in zip(graph.outputs, expected[r]):
            d = _diff(got[v.name], want)
            if want.dtype.kind == "f":
                assert d <= 1e-5, f"run {r}: %{v.name} differs by {d:.3g} of its range"
            else:
                assert got[v.name].dtype == want.dtype
                assert d == 0, f"run {r}: %{v.name} differs from TFLM by up to {d:g} LSB"


# ---- single-op models (exported by tinyir) against the tflite-micro interpreter --------
#
# Kernels and dtypes the corpus does not exercise.  Each case is a one-op graph built with
# the IR API, written with ``write_tflite_bytes`` and run by TFLM; all cases share one
# child process.

I8, I16, I32, F32 = DType.INT8, DType.INT16, DType.INT32, DType.FLOAT32


def _w(shape, seed=1, lo=-127, hi=128, dtype=np.int8):
    return np.random.default_rng(seed).integers(lo, hi, shape).astype(dtype)


def _conv_case(op, x_t, w, b, out_t, w_q, attrs):
    w_t = _t(w.shape, I8, w_q)
    b_t = _t(b.shape, DType.from_numpy(b.dtype))
    return _op(op, [x_t, (w, w_t), (b, b_t)], [out_t], attrs)


def _single_op_cases() -> dict:
    x8 = _t((1, 6, 7, 4), I8, _q(0.07, -3))
    o8 = _q(0.05, 5)
    x16 = _t((1, 6, 7, 4), I16, _q(0.001))
    cases = {
        "mul_int8_broadcast_relu": _op("MUL", [x8, _t((1, 1, 1, 4), I8, _q(0.02, -7))],
                                       [_t((1, 6, 7, 4), I8, _q(0.01, -20))],
                                       {"fused_activation_function": "RELU"}),
        "mul_int16": _op("MUL", [x16, _t((1, 6, 7, 4), I16, _q(0.002))],
                         [_t((1, 6, 7, 4), I16, _q(0.0005))]),
        "sub_int8": _op("SUB", [x8, _t((1, 6, 7, 4), I8, _q(0.03, 9))],
                        [_t((1, 6, 7, 4), I8, o8)], {"fused_activation_function": "RELU6"}),
        "add_int16_zero_points": _op("ADD", [_t((2, 9), I16, _q(0.0007, 5)),
                                             _t((2, 9), I16, _q(0.0003, -4))],
                                     [_t((2, 9), I16, _q(0.0011, 2))]),
        "add_float_relu_n1": _op("ADD", [_t((3, 5), F32), _t((5,), F32)], [_t((3, 5), F32)],
                                 {"fused_activation_function": "RELU_N1_TO_1"}),
        "logistic_int8": _op("LOGISTIC", [x8], [_t((1, 6, 7, 4), I8, _q(1 / 256, -128))]),
        "logistic_int16_pot": _op("LOGISTIC", [_t((4, 50), I16, _q(2.0 ** -12))],
                                  [_t((4, 50), I16, _q(2.0 ** -15))]),
        "logistic_int16_non_pot": _op("LOGISTIC", [_t((4, 50), I16, _q(0.0003))],
                                      [_t((4, 50), I16, _q(2.0 ** -15))]),
        "tanh_int8": _op("TANH", [x8], [_t((1, 6, 7, 4), I8, _q(1 / 128))]),
        "tanh_int16": _op("TANH", [_t((4, 50), I16, _q(2.0 ** -11))],
                          [_t((4, 50), I16, _q(2.0 ** -15))]),
        "tanh_float": _op("TANH", [_t((4, 50), F32)], [_t((4, 50), F32)]),
        "relu_int8_rescale": _op("RELU", [x8], [_t((1, 6, 7, 4), I8, _q(0.04, -128))]),
        "relu6_int8": _op("RELU6", [_t((3, 40), I8, _q(0.03, -10))],
                          [_t((3, 40), I8, _q(0.03, -10))]),
        "relu_int16_rescale": _op("RELU", [x16], [_t((1, 6, 7, 4), I16, _q(0.0007))]),
        "relu_float": _op("RELU", [_t((3, 8), F32)], [_t((3, 8), F32)]),
        "hard_swish_int8": _op("HARD_SWISH", [x8], [_t((1, 6, 7, 4), I8, _q(0.04, -40))]),
        "hard_swish_float": _op("HARD_SWISH", [_t((3, 40), F32)], [_t((3, 40), F32)]),
        "leaky_relu_int8": _op("LEAKY_RELU", [x8], [_t((1, 6, 7, 4), I8, _q(0.06, 10))],
                               {"alpha": 0.1}),
        "softmax_int8_beta": _op("SOFTMAX", [_t((3, 10), I8, _q(0.15, 4))],
                                 [_t((3, 10), I8, _q(1 / 256, -128))], {"beta": 0.7}),
        "softmax_int8_to_int16": _op("SOFTMAX", [_t((3, 10), I8, _q(0.1, -2))],
                                     [_t((3, 10), I16, _q(1 / 65536, -32768))], {"beta": 1.0}),
        "softmax_int16": _op("SOFTMAX", [_t((3, 10), I16, _q(0.0004))],
                             [_t((3, 10), I16, _q(1 / 32768))], {"beta": 1.0}),
        "log_softmax_float": _op("LOG_SOFTMAX", [_t((3, 10), F32)], [_t((3, 10), F32)]),
        "log_softmax_int8": _op("LOG_SOFTMAX", [_t((3, 10), I8, _q(0.12, 6))],
                                [_t((3, 10), I8, _q(16 / 256, 127))]),
        "log_softmax_int8_wide": _op("LOG_SOFTMAX", [_t((2, 300), I8, _q(0.01, -100))],
                                     [_t((2, 300), I8, _q(16 / 256, 127))]),
        "mean_int8_hw": _op("MEAN", [x8, np.array([1, 2], np.int32)],
                            [_t((1, 1, 1, 4), I8, _q(0.02, -1))], {"keep_dims": True}),
        "mean_int16_axis1": _op("MEAN", [x16, np.array([1], np.int32)],
                                [_t((1, 7, 4), I16, _q(0.0004))], {"keep_dims": False}),
        "mean_float": _op("MEAN", [_t((2, 5, 3), F32), np.array([-1], np.int32)],
                          [_t((2, 5), F32)], {"keep_dims": False}),
        "quantize_int8_to_int16": _op("QUANTIZE", [x8], [_t((1, 6, 7, 4), I16, _q(0.0009))]),
        "quantize_int16_to_int8": _op("QUANTIZE", [x16], [_t((1, 6, 7, 4), I8, _q(0.011, 3))]),
        "quantize_int8_requant": _op("QUANTIZE", [x8], [_t((1, 6, 7, 4), I8, _q(0.09, -50))]),
        "quantize_float_to_int16": _op("QUANTIZE", [_t((4, 9), F32)],
                                       [_t((4, 9), I16, _q(0.0002))]),
        "dequantize_int16": _op("DEQUANTIZE", [x16], [_t((1, 6, 7, 4), F32)]),
        "conv_int8_stride_dilation": _conv_case(
            "CONV_2D", _t((1, 9, 11, 3), I8, _q(0.05, 7)), _w((5, 3, 3, 3)),
            _w((5,), 2, -3000, 3000, np.int32), _t((1, 5, 4, 5), I8, _q(0.3, -9)),
            _q(np.linspace(0.002, 0.01, 5), 0, 0),
            {"padding": "SAME", "stride_w": 3, "stride_h": 2, "dilation_w_factor": 2,
             "dilation_h_factor": 2, "fused_activation_function": "RELU6"}),
        "conv_int16_int32_bias": _conv_case(
            "CONV_2D", _t((1, 6, 6, 2), I16, _q(0.001)), _w((3, 2, 2, 2)),
            _w((3,), 3, -30000, 30000, np.int32), _t((1, 5, 5, 3), I16, _q(0.002)),
            _q([0.01, 0.02, 0.03], 0, 0), {"padding": "VALID", "stride_w": 1, "stride_h": 1}),
        "depthwise_int8_multiplier2": _conv_case(
            "DEPTHWISE_CONV_2D", _t((1, 7, 7, 3), I8, _q(0.05, -5)), _w((1, 3, 3, 6)),
            _w((6,), 4, -2000, 2000, np.int32), _t((1, 4, 4, 6), I8, _q(0.2, 3)),
            _q(np.linspace(0.003, 0.02, 6), 0, 3),
            {"padding": "SAME", "stride_w": 2, "stride_h": 2, "depth_multiplier": 2}),
        "fully_connected_int16_keep_dims": _op(
            "FULLY_CONNECTED", [_t((2, 3, 8), I16, _q(0.001)),
                                (_w((5, 8)), _t((5, 8), I8, _q(0.01))),
                                (_w((5,), 5, -10**6, 10**6, np.int64), _t((5,), DType.INT64))],
            [_t((2, 3, 5), I16, _q(0.004))], {"keep_num_dims": True}),
        "average_pool_int16_same": _op("AVERAGE_POOL_2D", [x16], [_t((1, 3, 3, 4), I16, _q(0.001))],
                                       {"padding": "SAME", "stride_w": 3, "stride_h": 2,
                                        "filter_width": 3, "filter_height": 3}),
        "max_pool_int8_same": _op("MAX_POOL_2D", [x8], [_t((1, 3, 4, 4), I8, _q(0.07, -3))],
                                  {"padding": "SAME", "stride_w": 2, "stride_h": 2,
                                   "filter_width": 3, "filter_height": 2}),
        "pad_float": _op("PAD", [_t((1, 3, 4, 2), F32), np.array([[0, 0], [1, 2], [0, 1], [0, 0]],
                                                                  np.int32)],
                         [_t((1, 6, 5, 2), F32)]),
        "padv2_int8": _op("PADV2", [x8, np.array([[0, 0], [2, 0], [1, 1], [0, 0]], np.int32),
                                    (np.array([-3], np.int8), _t((1,), I8, _q(0.07, -3)))],
                          [_t((1, 8, 9, 4), I8, _q(0.07, -3))]),
        "strided_slice_masks": _op(
            "STRIDED_SLICE", [_t((2, 6, 7, 3), F32), np.array([0, 1, -1, 0], np.int32),
                              np.array([1, 6, 0, 3], np.int32), np.array([1, 2, -2, 1], np.int32)],
            [_t((3, 3, 3), F32)], {"begin_mask": 8, "end_mask": 2, "shrink_axis_mask": 1}),
        "split_int8": _op("SPLIT", [np.array(3, np.int32), x8],
                          [_t((1, 6, 7, 2), I8, _q(0.07, -3))] * 2, {"num_splits": 2}),
        "pack_axis1": _op("PACK", [_t((3, 4), F32), _t((3, 4), F32)], [_t((3, 2, 4), F32)],
                          {"values_count": 2, "axis": 1}),
        "unpack_axis0": _op("UNPACK", [_t((2, 5), F32)], [_t((5,), F32)] * 2,
                            {"num": 2, "axis": 0}),
        "concatenation_int8": _op("CONCATENATION", [x8, _t((1, 6, 7, 2), I8, _q(0.07, -3))],
                                  [_t((1, 6, 7, 6), I8, _q(0.07, -3))], {"axis": -1}),
        "transpose_int8": _op("TRANSPOSE", [x8, np.array([0, 3, 1, 2], np.int32)],
                              [_t((1, 4, 6, 7), I8, _q(0.07, -3))]),
        "squeeze": _op("SQUEEZE", [_t((1, 5, 1, 2), F32)], [_t((5, 2), F32)],
                       {"squeeze_dims": [0, 2]}),
        "expand_dims": _op("EXPAND_DIMS", [_t((5, 2), F32), np.array([1], np.int32)],
                           [_t((5, 1, 2), F32)]),
        "resize_nearest_align_corners": _op(
            "RESIZE_NEAREST_NEIGHBOR", [x8, np.array([11, 5], np.int32)],
            [_t((1, 11, 5, 4), I8, _q(0.07, -3))], {"align_corners": True}),
        "resize_nearest_half_pixel": _op(
            "RESIZE_NEAREST_NEIGHBOR", [x8, np.array([13, 16], np.int32)],
            [_t((1, 13, 16, 4), I8, _q(0.07, -3))], {"half_pixel_centers": True}),
        "cast_int8_to_int32": _op("CAST", [_t((3, 7), I8)], [_t((3, 7), I32)]),
        "cast_float_to_int32": _op("CAST", [_t((3, 7), F32)], [_t((3, 7), I32)]),
    }
    return cases


_ORACLE_MANY = textwrap.dedent("""
    import pickle, sys
    import numpy as np
    from tflite_micro.python.tflite_micro import runtime
    cases = pickle.load(open(sys.argv[1], "rb"))
    results = {}
    for name, (data, runs, n_out) in cases.items():
        try:
            outs = []
            for feeds in runs:
                it = runtime.Interpreter.from_bytes(data, arena_size=1 << 20)
                for i, x in enumerate(feeds):
                    it.set_input(x, i)
                it.invoke()
                outs.append([it.get_output(k) for k in range(n_out)])
            results[name] = outs
        except Exception as e:  # noqa: BLE001 - reported per case
            results[name] = f"{type(e).__name__}: {e}"
    pickle.dump(results, open(sys.argv[2], "wb"))
""")


@pytest.fixture(scope="module")
def single_ops(tmp_path_factory):
    """{case: (graph as read back, runs, TFLM outputs or the reason it failed)}."""
    import pickle

    from tinyir.formats.tflite_format import read_tflite, write_tflite_bytes

    tmp = tmp_path_factory.mktemp("single_ops")
    built, payload = {}, {}
    for name, graph in _single_op_cases().items():
        graph.verify()
        data = write_tflite_bytes(graph)
        back = read_tflite(data)
        runs = [_feeds(back, seed) for seed in range(3)]
        built[name] = (back, runs)
        payload[name] = (data, [[f[v.name] for v in back.inputs] for f in runs],
                         len(back.outputs))
    pickle.dump(payload, open(tmp / "cases.pkl", "wb"))
    subprocess.run([sys.executable, "-c", _ORACLE_MANY, str(tmp / "cases.pkl"),
                    str(tmp / "outs.pkl")], check=True, timeout=300)
    results = pickle.load(open(tmp / "outs.pkl", "rb"))
    return {name: (*built[name], results[name]) for name in built}


@pytest.mark.parametrize("case", sorted(_single_op_cases()))
def test_single_op_matches_tflm(case, single_ops):
    graph, runs, expected = single_ops[case]
    assert not isinstance(expected, str), f"TFLM rejected the case: {expected}"
    for r, feeds in enumerate(runs):
        got = run(graph, feeds)
        for v, want in zip(graph.outputs, expected[r]):
            d = _diff(got[v.name], want)
            if want.dtype.kind == "f":
                assert d <= 1e-5, f"run {r}: %{v.name} differs by {d:.3g} of its range"
            else:
                assert d == 0, f"run {r}: %{v.name} differs from TFLM by up to {d:g} LSB"


def test_ds_cnn_int16_matches_ml_zoo_reference():
    from tinyir.formats.tflite_format import read_tflite

    path = corpus.model("tflite/mlzoo_ds_cnn_s_int16.tflite")
    ref = np.load(corpus.model("refdata/mlzoo_ds_cnn_s_int16.npz"))
    graph = read_tflite(path.read_bytes(), path=path)
    (inp,), (out,) = graph.inputs, graph.outputs
    for x, want in zip(ref["inputs"], ref["outputs"]):
        got = run(graph, {inp.name: x.reshape(inp.type.shape)})[out.name]
        np.testing.assert_array_equal(got.reshape(want.shape), want)
