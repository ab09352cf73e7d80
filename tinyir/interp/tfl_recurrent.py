"""Stateful TFLite kernels: SVDF and UNIDIRECTIONAL_SEQUENCE_LSTM, as TFLM runs them.

State operands are TFLM *variable* tensors.  A tinyir run is one ``invoke`` of a freshly
allocated interpreter, so state starts from TFLM's reset value (int8: the zero point,
otherwise 0) unless it is fed as a graph input; the updated state is not returned.

Integer LSTM (``lstm_eval.h``): every gate is two FULLY_CONNECTEDs into int16 at scale
2**-12 (input with bias, recurrent without), a saturating add, then int16 sigmoid or tanh
(Q0.15 out); the cell update and the hidden state are int16 MULs with multipliers made
from 2**-15 and the cell/hidden scales.  Float LSTM is the textbook cell.
"""

from __future__ import annotations

import numpy as np

from tinyir.errors import UnsupportedError
from tinyir.interp import tfl_quant as fx
from tinyir.interp.core import kernel
from tinyir.interp.tfl_activation import logistic_int16, tanh_int16
from tinyir.interp.tfl_common import (activation, attr, f32, float_act, int_limits, qparams,
                                      qscales, variable_state)


# ---- SVDF -----------------------------------------------------------------------------


@kernel("tfl.SVDF")
def svdf(node, args, interp):
    x, w_feat, w_time, bias = args[0], args[1], args[2], args[3]
    state = variable_state(node, 4, args[4]).copy()
    rank = int(attr(node, "rank", 1))
    batch = x.shape[0]
    n_filter, n_memory = w_time.shape
    n_unit = n_filter // rank
    st = state.reshape(batch, n_filter, n_memory)
    st[:, :, :-1] = st[:, :, 1:].copy()  # shift the memory left by one step
    if x.dtype == np.float32:
        st[:, :, -1] = x.astype(np.float64) @ w_feat.astype(np.float64).T
        scratch = (st.astype(np.float64) * w_time.astype(np.float64)).sum(axis=-1)
        out = scratch.reshape(batch, n_unit, rank).sum(axis=-1)
        if bias is not None:
            out = out + bias
        return [float_act(out.astype(np.float32), activation(node))]
    if x.dtype != np.int8:
        raise UnsupportedError(f"{node.name}: SVDF on {x.dtype} is not supported by TFLM")
    s_in, z_in = qparams(node.inputs[0])
    s_state, z_state = qparams(node.inputs[4])
    s_out, z_out = qparams(node.outputs[0])
    s_wf, s_wt = float(qscales(node.inputs[1])[0]), float(qscales(node.inputs[2])[0])
    m1, e1 = fx.quantize_multiplier(float(f32(f32(f32(s_in) * f32(s_wf)) / f32(s_state))))
    m2, e2 = fx.quantize_multiplier(float(f32(f32(f32(s_state) * f32(s_wt)) / f32(s_out))))
    lo, hi = int_limits(state.dtype)
    dot = (x.astype(np.float64) - z_in) @ w_feat.astype(np.float64).T
    dot = np.clip(fx.mbqm(fx.wrap32(np.rint(dot).astype(np.int64)), m1, e1), lo, hi)
    st[:, :, -1] = (z_state + dot).astype(state.dtype)
    scratch = ((st.astype(np.int64) - z_state) * w_time.astype(np.int64)).sum(axis=-1)
    out = fx.wrap32(scratch).reshape(batch, n_unit, rank).sum(axis=-1)
    if bias is not None:
        out = out + bias.astype(np.int64)
    y = fx.mbqm(fx.wrap32(out), m2, e2) + z_out
    return [np.clip(y, -128, 127).astype(np.int8)]


# ---- UNIDIRECTIONAL_SEQUENCE_LSTM ------------------------------------------------------

_GATES = {"input": (1, 5, 12), "forget": (2, 6, 13), "cell": (3, 7, 14), "output": (4, 8, 15)}
_HIDDEN, _CELL = 18, 19


def _fc_int(x, w, bias, mult, shift, zp_in, int64_acc: bool):
    """reference_integer_ops::FullyConnected (per-tensor) into int16 at zero point 0."""
    acc = np.rint((x.astype(np.float64) - zp_in) @ w.astype(np.float64).T).astype(np.int64)
    if bias is not None:
        acc = acc + bias.astype(np.int64)
    y = fx.mbqm64(acc, mult, shift) if int64_acc else fx.mbqm(fx.wrap32(acc), mult, shift)
    return np.clip(y, -32768, 32767)


def _mul_params(s1: float, s2: float, s_out: float) -> tuple[int, int]:
    return fx.quantize_multiplier(float(s1) * float(s2) / float(s_out))


def _mul_int16(a, b, mult, shift, zp_out, lo, hi):
    """reference_integer_ops::MulElementwise with zero input offsets."""
    return np.clip(fx.mbqm(fx.wrap32(a * b), mult, shift) + zp_out, lo, hi)


def _lstm_integer(node, args, x, time_major):
    in_v = node.inputs[0]
    s_in, z_in = qparams(in_v)
    s_h, z_h = qparams(node.inputs[_HIDDEN])
    s_c, _ = qparams(node.inputs[_CELL])
    int64_acc = x.dtype == np.int16
    h = variable_state(node, _HIDDEN, args[_HIDDEN]).astype(np.int64)
    c = variable_state(node, _CELL, args[_CELL]).astype(np.int64)
    gate_scale = 2.0 ** -12  # FC output scale feeding the Q3.12 nonlinearities

    def fc_params(x_scale, w_index):
        w_scales = qscales(node.inputs[w_index])
        if w_scales.size != 1:
            raise UnsupportedError(f"{node.name}: per-channel LSTM weights are not supported")
        return fx.quantize_multiplier(float(f32(f32(x_scale) * f32(w_scales[0]))) / gate_scale)

    params = {g: (fc_params(s_in, wi), fc_params(s_h, wr)) for g, (wi, wr, _) in _GATES.items()}
    q15 = 2.0 ** -15
    m_fc, e_fc = _mul_params(q15, s_c, s_c)
    m_ic, e_ic = _mul_params(q15, q15, s_c)
    m_oh, e_oh = _mul_params(q15, q15, s_h)
    h_lo, h_hi = int_limits(x.dtype)
    cell_clip = float(attr(node, "cell_clip", 0.0))
    qclip = int(min(max(cell_clip / s_c, -32768.0), 32767.0)) if s_c else 0
    power, _ = fx.checked_log2(s_c)
    tanh_shift = 15 + power - 3
    cell_tanh = (0, tanh_shift) if tanh_shift >= 0 else (3, -tanh_shift)
    cell_act = activation(node)

    steps = x.shape[0] if time_major else x.shape[1]
    batch = x.shape[1] if time_major else x.shape[0]
    outs = []
    h = h.reshape(batch, -1)
    c = c.reshape(batch, -1)
    for t in range(steps):
        xt = x[t] if time_major else x[:, t]
        gates = {}
        for g, (wi, wr, bi) in _GATES.items():
            (mi, ei), (mr, er) = params[g]
            a = _fc_int(xt, args[wi], args[bi], mi, ei, z_in, int64_acc)
            b = _fc_int(h, args[wr], None, mr, er, z_h, int64_acc)
            pre = np.clip(a + b, -32768, 32767)
            if g == "cell" and cell_act == "TANH":
                gates[g] = tanh_int16(pre.astype(np.int16)).astype(np.int64)
            elif g == "cell" and cell_act != "SIGMOID":
                raise UnsupportedError(f"{node.name}: LSTM cell activation {cell_act}")
            else:
                gates[g] = logistic_int16(pre.astype(np.int16)).astype(np.int64)
        c = _mul_int16(gates["forget"], c, m_fc, e_fc, 0, -32768, 32767)
        upd = _mul_int16(gates["input"], gates["cell"], m_ic, e_ic, 0, -32768, 32767)
        c = np.clip(c + upd, -32768, 32767)
        if cell_clip > 0:
            c = np.clip(c, -qclip, qclip)
        tc = tanh_int16(c.astype(np.int16), *cell_tanh).astype(np.int64)
        h = _mul_int16(tc, gates["output"], m_oh, e_oh, z_h, h_lo, h_hi)
        outs.append(h.copy())
    y = np.stack(outs, axis=0 if time_major else 1)
    return y.astype(x.dtype)


def _lstm_float(node, args, x, time_major):
    h = variable_state(node, _HIDDEN, args[_HIDDEN]).astype(np.float64)
    c = variable_state(node, _CELL, args[_CELL]).astype(np.float64)
    batch = x.shape[1] if time_major else x.shape[0]
    h, c = h.reshape(batch, -1), c.reshape(batch, -1)
    cell_clip = float(attr(node, "cell_clip", 0.0))
    act = activation(node)
    steps = x.shape[0] if time_major else x.shape[1]
    outs = []

    def sigmoid(v):
        return 1.0 / (1.0 + np.exp(-v))
    for t in range(steps):
        xt = (x[t] if time_major else x[:, t]).astype(np.float64)
        pre = {}
        for g, (wi, wr, bi) in _GATES.items():
            v = xt @ args[wi].astype(np.float64).T + h @ args[wr].astype(np.float64).T
            pre[g] = v + args[bi] if args[bi] is not None else v
        cell_gate = np.tanh(pre["cell"]) if act == "TANH" else sigmoid(pre["cell"])
        c = sigmoid(pre["forget"]) * c + sigmoid(pre["input"]) * cell_gate
        if cell_clip > 0:
            c = np.clip(c, -cell_clip, cell_clip)
        h = sigmoid(pre["output"]) * np.tanh(c)
        outs.append(h.copy())
    return np.stack(outs, axis=0 if time_major else 1).astype(np.float32)


@kernel("tfl.UNIDIRECTIONAL_SEQUENCE_LSTM")
def unidirectional_sequence_lstm(node, args, interp):
    x = args[0]
    for i in (9, 10, 11, 16, 17, 20, 21, 22, 23):
        if i < len(args) and args[i] is not None:
            raise UnsupportedError(f"{node.name}: LSTM peephole, projection or layer-norm "
                                   "operands are not supported by TFLM")
    if args[1] is None:
        raise UnsupportedError(f"{node.name}: CIFG LSTM (no input gate) is not supported by TFLM")
    time_major = bool(attr(node, "time_major", False))
    if x.dtype == np.float32:
        y = _lstm_float(node, args, x, time_major)
    elif x.dtype in (np.int8, np.int16):
        y = _lstm_integer(node, args, x, time_major)
    else:
        raise UnsupportedError(f"{node.name}: LSTM on {x.dtype} is not supported by TFLM")
    # Results after the first are the converter's "intermediates" (calibration
    # statistics); TFLM never writes them, so they read as zeros here.
    extra = [np.zeros([d if isinstance(d, int) else 0 for d in (v.type.shape or ())],
                      v.type.dtype.numpy) for v in node.outputs[1:]]
    return [y.reshape(node.outputs[0].type.shape or y.shape)] + extra
