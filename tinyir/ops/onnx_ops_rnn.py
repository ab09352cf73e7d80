"""ONNX recurrent layers (LSTM, GRU, RNN) and control flow (If, Loop).

Recurrent MACs: every time step of every direction multiplies the input by W and the
previous hidden state by R for each of G gates (LSTM 4, GRU 3, RNN 1), so a layer
costs ``seq_len * batch * num_directions * G * hidden * (input_size + hidden)``.  Bias
adds, peepholes, gate activations and the elementwise state updates count 0.

If and Loop results take their types from the bodies' outputs; a Loop's scan outputs
gain a leading dim of unknown length.  Bodies cost nothing here: whoever counts MACs
walks nested graphs itself.
"""

from __future__ import annotations

from tinyir.ops.onnx_ops_common import (UNKNOWN, attr, attr_str, ishape, itype, known, onnx_op,
                                        same_dim, tt)

RNN_ATTRS = ("activation_alpha", "activation_beta", "activations", "clip", "direction",
             "hidden_size", "layout", "output_sequence")
GATES = {"LSTM": 4, "GRU": 3, "RNN": 1}


def _rnn_dims(node):
    """(seq, batch, input_size, num_directions, hidden) from X, W, R and the attributes."""
    gates = GATES[node.op_type]
    x, w, r = ishape(node, 0), ishape(node, 1), ishape(node, 2)
    direction = attr_str(node, "direction", "forward")
    if direction not in ("forward", "reverse", "bidirectional"):
        raise ValueError(f"unknown direction {direction!r}")
    nd = 2 if direction == "bidirectional" else 1
    hidden = attr(node, "hidden_size")
    if hidden is None and r is not None and len(r) == 3:
        hidden = r[2]
    hidden = UNKNOWN if hidden is None else hidden
    seq = batch = size = UNKNOWN
    if x is not None:
        if len(x) != 3:
            raise ValueError(f"X {list(x)} must be 3-D")
        seq, batch, size = (x[1], x[0], x[2]) if attr(node, "layout", 0) else x
    for name, s, inner in (("W", w, size), ("R", r, hidden)):
        if s is None:
            continue
        if len(s) != 3:
            raise ValueError(f"{name} {list(s)} must be 3-D")
        same_dim(s[0], nd, f"{name} directions vs direction={direction}")
        if known(hidden):
            same_dim(s[1], gates * hidden, f"{name} rows vs {gates} gates x hidden_size")
        same_dim(s[2], inner, f"{name} columns")
    if not known(size) and w is not None:
        size = w[2]
    return seq, batch, size, nd, hidden


def _rnn(node):
    """Y ``[seq, dirs, batch, hidden]``, Y_h/Y_c ``[dirs, batch, hidden]`` (layout 0)."""
    seq, batch, _, nd, hidden = _rnn_dims(node)
    dtype = itype(node, 0).dtype
    if attr(node, "layout", 0):
        y, h = (batch, seq, nd, hidden), (batch, nd, hidden)
    else:
        y, h = (seq, nd, batch, hidden), (nd, batch, hidden)
    return [tt(y, dtype), tt(h, dtype), tt(h, dtype)]


def _rnn_macs(node):
    seq, batch, size, nd, hidden = _rnn_dims(node)
    if not known(seq, batch, size, hidden):
        return None
    return seq * batch * nd * GATES[node.op_type] * hidden * (size + hidden)


onnx_op("LSTM", ["X", "W", "R", "B?", "sequence_lens?", "initial_h?", "initial_c?", "P?"],
        ["Y?", "Y_h?", "Y_c?"], attrs=RNN_ATTRS + ("input_forget",), macs=_rnn_macs)(_rnn)
onnx_op("GRU", ["X", "W", "R", "B?", "sequence_lens?", "initial_h?"], ["Y?", "Y_h?"],
        attrs=RNN_ATTRS + ("linear_before_reset",), macs=_rnn_macs)(_rnn)
onnx_op("RNN", ["X", "W", "R", "B?", "sequence_lens?", "initial_h?"], ["Y?", "Y_h?"],
        attrs=RNN_ATTRS, macs=_rnn_macs)(_rnn)


# ---- control flow --------------------------------------------------------------------
def _merge(a, b):
    """The type both branches can produce: equal dims kept, others unknown."""
    if a is None or b is None:
        return a or b
    if a.dtype != b.dtype:
        raise ValueError(f"branches yield {a.dtype.value} and {b.dtype.value}")
    if a.shape is None or b.shape is None or len(a.shape) != len(b.shape):
        return tt(None, a.dtype)
    return tt([p if p == q else UNKNOWN for p, q in zip(a.shape, b.shape)], a.dtype)


@onnx_op("If", ["cond"], ["outputs*"], attrs=("then_branch", "else_branch"))
def if_(node):
    """Result i merges output i of then_branch and else_branch."""
    then, other = node.attrs.get("then_branch"), node.attrs.get("else_branch")
    if then is None or other is None:
        raise ValueError("needs then_branch and else_branch")
    n = len(node.outputs)
    for name, body in (("then_branch", then), ("else_branch", other)):
        if len(body.outputs) != n:
            raise ValueError(f"{name} yields {len(body.outputs)} values for {n} results")
    return [_merge(a.type, b.type) for a, b in zip(then.outputs, other.outputs)]


@onnx_op("Loop", ["M?", "cond?", "v_initial*"], ["v_final_and_scan_outputs*"], attrs=("body",))
def loop(node):
    """Loop-carried results like the body's; scan outputs stacked along a new dim."""
    body = node.attrs.get("body")
    if body is None:
        raise ValueError("needs a body")
    carried = len(node.inputs) - 2
    outs = body.outputs[1:]  # body output 0 is the condition
    if len(body.outputs) < 1 + carried or len(outs) != len(node.outputs):
        raise ValueError(f"body yields {len(body.outputs)} values for {carried} loop-carried "
                         f"values and {len(node.outputs)} results")
    types = []
    for i, v in enumerate(outs):
        t = v.type
        if i < carried:
            init = node.inputs[2 + i]
            types.append(_merge(t, init.type) if init is not None else t)
        else:
            types.append(tt(None if t.shape is None else (UNKNOWN, *t.shape), t.dtype))
    return types
