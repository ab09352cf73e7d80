"""ONNX control flow (If) and recurrent layers (LSTM).

``If`` runs the chosen branch with the enclosing scope's values visible, as the ONNX
spec requires (branches read outer values by reference): the current scope is
``Interpreter.env``, the environment of the graph now running.
"""

from __future__ import annotations

import numpy as np

from tinyir.interp.onnx_kernels_util import astr, attr, onnx_kernel, unsupported


def _current_env(interp) -> dict:
    """The value environment of the graph now running in ``interp``."""
    return interp.env


@onnx_kernel("If")
def if_(node, args, interp):
    cond = bool(np.asarray(args[0]).reshape(-1)[0])
    branch = node.attrs["then_branch" if cond else "else_branch"]
    results = interp.run_graph(branch, {}, dict(_current_env(interp)))
    return [results[v.name] for v in branch.outputs]


# ---- LSTM ----------------------------------------------------------------------------------

def _act(name: str, alpha, beta):
    """An ONNX RNN activation function by name, with its (alpha, beta) defaults."""
    n = name.lower()
    if n == "sigmoid":
        return lambda x: 0.5 * (1 + np.tanh(0.5 * x))
    if n == "tanh":
        return np.tanh
    if n == "relu":
        return lambda x: np.maximum(x, 0)
    if n == "affine":
        return lambda x: (1.0 if alpha is None else alpha) * x + (0.0 if beta is None else beta)
    if n == "leakyrelu":
        a = 0.01 if alpha is None else alpha
        return lambda x: np.where(x >= 0, x, a * x)
    if n == "thresholdedrelu":
        a = 1.0 if alpha is None else alpha
        return lambda x: np.where(x > a, x, 0)
    if n == "scaledtanh":
        return lambda x: (1.0 if alpha is None else alpha) * np.tanh((1.0 if beta is None
                                                                      else beta) * x)
    if n == "hardsigmoid":
        return lambda x: np.clip((0.2 if alpha is None else alpha) * x
                                 + (0.5 if beta is None else beta), 0, 1)
    if n == "elu":
        a = 1.0 if alpha is None else alpha
        return lambda x: np.where(x >= 0, x, a * np.expm1(np.minimum(x, 0)))
    if n == "softsign":
        return lambda x: x / (1 + np.abs(x))
    if n == "softplus":
        return lambda x: np.logaddexp(0, x)
    raise ValueError(name)


def _activations(node, per_dir: int, dirs: int):
    names = list(attr(node, "activations") or ["Sigmoid", "Tanh", "Tanh"] * dirs)
    alphas = list(attr(node, "activation_alpha") or [])
    betas = list(attr(node, "activation_beta") or [])
    fns, ai, bi = [], 0, 0
    takes_alpha = {"affine", "leakyrelu", "thresholdedrelu", "scaledtanh", "hardsigmoid", "elu"}
    takes_beta = {"affine", "scaledtanh", "hardsigmoid"}
    for name in names:
        a = b = None
        if name.lower() in takes_alpha and ai < len(alphas):
            a, ai = alphas[ai], ai + 1
        if name.lower() in takes_beta and bi < len(betas):
            b, bi = betas[bi], bi + 1
        try:
            fns.append(_act(name, a, b))
        except ValueError:
            unsupported(node, f"activation {name} is not supported")
    return [fns[d * per_dir:(d + 1) * per_dir] for d in range(dirs)]


@onnx_kernel("LSTM")
def lstm(node, args, interp):
    """LSTM (gates i, o, f, c; peepholes P = [i, o, f]), forward/reverse/bidirectional."""
    args = list(args) + [None] * (8 - len(args))
    x, w, r, b, seq_lens, h0, c0, p = args
    layout = attr(node, "layout", 0)
    if layout:
        x = np.swapaxes(x, 0, 1)
    x = x.astype(np.float64)
    seq, batch = x.shape[:2]
    direction = astr(node, "direction", "forward")
    dirs = 2 if direction == "bidirectional" else 1
    hidden = r.shape[-1]
    clip = attr(node, "clip")
    acts = _activations(node, 3, dirs)
    lens = np.full(batch, seq) if seq_lens is None else np.asarray(seq_lens).astype(np.int64)
    y = np.zeros((seq, dirs, batch, hidden))
    hs, cs = [], []
    for d in range(dirs):
        f, g, h_act = acts[d]
        wd, rd = w[d].astype(np.float64), r[d].astype(np.float64)
        bias = np.zeros(8 * hidden) if b is None else b[d].astype(np.float64)
        bias = bias[:4 * hidden] + bias[4 * hidden:]
        peep = np.zeros((3, hidden)) if p is None else p[d].astype(np.float64).reshape(3, -1)
        pi, po, pf = peep
        h = np.zeros((batch, hidden)) if h0 is None else h0[d].astype(np.float64)
        c = np.zeros((batch, hidden)) if c0 is None else c0[d].astype(np.float64)
        reverse = direction == "reverse" or d == 1
        xw = x @ wd.T + bias  # [seq, batch, 4H]
        for step in range(seq):
            # reverse: each sequence runs from its own last valid step down to 0
            t = np.where(lens - 1 - step >= 0, lens - 1 - step, 0) if reverse \
                else np.full(batch, step)
            active = (step < lens)[:, None]
            gates = xw[t, np.arange(batch)] + h @ rd.T
            if clip is not None:
                gates = np.clip(gates, -clip, clip)
            gi, go, gf, gc = np.split(gates, 4, axis=1)
            it = f(gi + pi * c)
            ft = 1 - it if attr(node, "input_forget", 0) else f(gf + pf * c)
            c_new = ft * c + it * g(gc)
            ot = f(go + po * c_new)
            h_new = ot * h_act(c_new)
            c = np.where(active, c_new, c)
            h = np.where(active, h_new, h)
            out = np.where(active, h_new, 0)
            if reverse:
                y[t[active[:, 0]], d, np.arange(batch)[active[:, 0]]] = out[active[:, 0]]
            else:
                y[step, d] = out
        hs.append(h)
        cs.append(c)
    if layout:
        y_out = np.transpose(y, (2, 0, 1, 3))
        res = [y_out, np.swapaxes(np.stack(hs), 0, 1), np.swapaxes(np.stack(cs), 0, 1)]
    else:
        res = [y, np.stack(hs), np.stack(cs)]
    return res[:len(node.outputs)]
