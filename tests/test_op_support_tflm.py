"""The TFLM operator table: every rule fires on a probe and names itself, stays quiet on
a valid variant, and agrees with the real tflite-micro interpreter.

A probe is a minimal one-op graph built with the IR API (tfl dialect), verified and
exported with ``write_tflite_bytes``.  ``PROBES`` maps a name to the graph, the rule
that must fire (None: the graph is deployable) and what TFLM does with it: ``RUNS``,
``SILENT`` (TFLM runs it but computes wrong answers or has undefined behaviour; tinyir
rejects it on purpose) or a substring of TFLM's own error text.  All probes and corpus
models run in one child process each batch (TFLM can abort), with fd 2 captured.
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import corpus
from tfl_graph import one_op as _op
from tfl_graph import q as _q
from tfl_graph import t as _t
from tinyir.graph import Graph
from tinyir.op_support.check import check_graph, load_table
from tinyir.types import DType

RUNS, SILENT = "runs", "silent"
F32, I8, I16, I32, I64 = DType.FLOAT32, DType.INT8, DType.INT16, DType.INT32, DType.INT64


def _w(shape, dtype=np.int8, seed=1):
    return np.random.default_rng(seed).integers(-100, 100, shape).astype(dtype)


def _conv(x_t, w_q, out_t, w_dtype=I8, bias=None, attrs=None, op="CONV_2D", wshape=(4, 1, 1, 3)):
    w = (_w(wshape) if w_dtype != F32 else _w(wshape).astype(np.float32), _t(wshape, w_dtype, w_q))
    a = {"padding": "VALID", "stride_w": 1, "stride_h": 1, **(attrs or {})}
    if op == "DEPTHWISE_CONV_2D":
        a["depth_multiplier"] = 1
    return _op(op, [x_t, w, bias], [out_t], a)


X8, O8 = _t((1, 3, 3, 3), I8, _q(0.05, 2)), _t((1, 3, 3, 4), I8, _q(0.1, -1))
XF, OF = _t((1, 3, 3, 3), F32), _t((1, 3, 3, 4), F32)


def _fc(x_t, w_t, w, bias, out_t, attrs=None):
    return _op("FULLY_CONNECTED", [x_t, (w, w_t), bias], [out_t], attrs or {})


def _fc_bias(bias_scale):
    b = (np.arange(4, dtype=np.int32), _t((4,), I32, _q(bias_scale)))
    return _fc(_t((2, 3), I8, _q(0.5)), _t((4, 3), I8, _q(0.25)), _w((4, 3)), b,
               _t((2, 4), I8, _q(1.0)))


def _concat(ins, out, act="NONE"):
    return _op("CONCATENATION", ins, [out], {"axis": -1, "fused_activation_function": act})


def _unary(op, x, out, attrs=None):
    return _op(op, [x], [out], attrs)


def _pool(out_scale):
    return _op("MAX_POOL_2D", [_t((1, 4, 4, 2), I8, _q(0.1, 3))],
               [_t((1, 2, 2, 2), I8, _q(out_scale, 3))],
               {"padding": "VALID", "stride_w": 2, "stride_h": 2, "filter_width": 2,
                "filter_height": 2})


def _lstm(peephole=False, variable=True, n_inputs=24, intermediate=False):
    g = Graph("main", layout="NHWC")
    x = g.add_input("x", _t((1, 2, 3), F32))
    rng = np.random.default_rng(0)

    def c(name, shape):
        return g.add_const(name, rng.standard_normal(shape).astype(np.float32) * 0.3)

    ops = [x] + [c(f"wi{i}", (4, 3)) for i in range(4)] + [c(f"wr{i}", (4, 4)) for i in range(4)]
    ops += [c("peep", (4,)) if peephole else None, None, None]
    ops += [c(f"b{i}", (4,)) for i in range(4)] + [None, None]
    for name in ("h", "cell"):
        ops.append(g.add_const(name, np.zeros((1, 4), np.float32)))
        if variable:
            g.metadata[f"tflite.tensor.{name}.is_variable"] = True
    ops += [None] * 4
    ops = ops[:n_inputs]
    outs = [("y", _t((1, 2, 4), F32))] + ([("inter", _t((4,), F32))] if intermediate else [])
    attrs = {"fused_activation_function": "TANH", "cell_clip": 0.0, "proj_clip": 0.0,
             "time_major": False}
    if intermediate:
        attrs["intermediates"] = 1
    node = g.add_node("tfl.UNIDIRECTIONAL_SEQUENCE_LSTM", ops, outs, attrs)
    g.outputs = [node.outputs[0]]
    return g


def _call_once(body_op):
    g = Graph("main", layout="NHWC")
    x = g.add_input("x", _t((2, 3), F32))
    g.add_node("tfl.CALL_ONCE", [], [], {"init_subgraph_index": 1})
    r = g.add_node("tfl.RELU", [x], [("y", _t((2, 3), F32))])
    g.outputs = [r.outputs[0]]
    body = Graph("init", layout="NHWC")
    bx = body.add_input("bx", _t((2, 3), F32))
    n = body.add_node(f"tfl.{body_op}", [bx], [("by", _t((2, 3), F32))])
    body.outputs = [n.outputs[0]]
    g.metadata["tflite.subgraphs"] = [body]
    return g


def _unreferenced():
    g = _unary("RELU", _t((2, 3), F32), _t((2, 3), F32))
    body = Graph("extra", layout="NHWC")
    bx = body.add_input("bx", _t((2, 3), F32))
    n = body.add_node("tfl.RELU", [bx], [("by", _t((2, 3), F32))])
    body.outputs = [n.outputs[0]]
    g.metadata["tflite.subgraphs"] = [body]
    return g


def _probes() -> dict:
    """name -> (graph, rule id that must fire or None, TFLM's behaviour)."""
    i64_axis = (np.array([1], np.int64), _t((1,), I64))
    p = {
        # ---- conv family ----
        "conv.hybrid": (_conv(XF, _q(0.1), OF), "tflm.conv.hybrid", "Hybrid models"),
        "conv.hybrid-ok": (_conv(XF, None, OF, F32), None, RUNS),
        "fc.hybrid": (_fc(_t((2, 3), F32), _t((4, 3), I8, _q(0.1)), _w((4, 3)), None,
                          _t((2, 4), F32)), "tflm.fc.hybrid", "with filter type: INT8"),
        "fc.hybrid-ok": (_fc(_t((2, 3), F32), _t((4, 3), F32), _w((4, 3)).astype(np.float32),
                             None, _t((2, 4), F32)), None, RUNS),
        "conv.scale-count": (_conv(X8, _q([0.1, 0.2, 0.3], 0, 0), O8), "tflm.conv.scale-count",
                             "scale->size == 1"),
        "conv.scale-count-ok": (_conv(X8, _q([0.1, 0.2, 0.3, 0.4], 0, 0), O8), None, RUNS),
        "conv.per-channel-axis": (_conv(_t((1, 3, 3, 4), I8, _q(0.05)),
                                        _q([0.1, 0.2, 0.3, 0.4], 0, 3), O8, wshape=(4, 1, 1, 4)),
                                  "tflm.conv.per-channel-axis", SILENT),
        "weights.zero-point": (_conv(X8, _q(0.1, 3), O8), "tflm.weights.zero-point", SILENT),
        "weights.zero-point-ok": (_conv(X8, _q(0.1, 0), O8), None, RUNS),
        "conv.int16-input-zero-point": (
            _conv(_t((1, 3, 3, 3), I16, _q(0.01, 5)), _q(0.1), _t((1, 3, 3, 4), I16, _q(0.02))),
            "tflm.conv.int16-input-zero-point", SILENT),
        "conv.int16-input-zero-point-ok": (
            _conv(_t((1, 3, 3, 3), I16, _q(0.01)), _q(0.1), _t((1, 3, 3, 4), I16, _q(0.02))),
            None, RUNS),
        "conv.int16-bias": (
            _conv(_t((1, 3, 3, 3), I16, _q(0.01)), _q(0.1), _t((1, 3, 3, 4), I16, _q(0.02)),
                  bias=(np.arange(4, dtype=np.int16), _t((4,), I16, _q(0.001)))),
            "tflm.conv.int16-bias", "Bias type"),
        "fc.bias-scale": (_fc_bias(0.25), "tflm.fc.bias-scale", "scale_diff / output_scale"),
        "fc.bias-scale-ok": (_fc_bias(0.125), None, RUNS),
        "fused-activation.ignored": (
            _fc(_t((2, 3), F32), _t((4, 3), F32), _w((4, 3)).astype(np.float32), None,
                _t((2, 4), F32), {"fused_activation_function": "TANH"}),
            "tflm.fused-activation.ignored", SILENT),
        "fused-activation.relu6-ok": (
            _fc(_t((2, 3), F32), _t((4, 3), F32), _w((4, 3)).astype(np.float32), None,
                _t((2, 4), F32), {"fused_activation_function": "RELU6"}), None, RUNS),
        # ---- quantization parameters ----
        "concat.max-inputs": (_concat([_t((2, 1), F32)] * 11, _t((2, 11), F32)),
                              "tflm.concat.max-inputs", "kMaxInputNum"),
        "concat.max-inputs-ok": (_concat([_t((2, 1), F32)] * 10, _t((2, 10), F32)), None, RUNS),
        "concat.no-activation": (_concat([_t((2, 1), F32)] * 2, _t((2, 2), F32), "RELU"),
                                 "tflm.concat.no-activation", "params->activation"),
        "concat.same-qparams": (_concat([_t((2, 1), I8, _q(0.1, 1)), _t((2, 1), I8, _q(0.2, 1))],
                                        _t((2, 2), I8, _q(0.1, 1))),
                                "tflm.concat.same-qparams", "concatenation.cc"),
        "concat.same-qparams-ok": (_concat([_t((2, 1), I8, _q(0.1, 1))] * 2,
                                           _t((2, 2), I8, _q(0.1, 1))), None, RUNS),
        "concat.int16-zero-point": (_concat([_t((2, 1), I16, _q(0.1, 3))] * 2,
                                            _t((2, 2), I16, _q(0.1, 3))),
                                    "tflm.concat.int16-zero-point", "zero_point"),
        "softmax.int8-output": (_unary("SOFTMAX", _t((2, 5), I8, _q(0.1)),
                                       _t((2, 5), I8, _q(1 / 256, 0)), {"beta": 1.0}),
                                "tflm.softmax.int8-output", "!= -128"),
        "softmax.int8-output-ok": (_unary("SOFTMAX", _t((2, 5), I8, _q(0.1)),
                                          _t((2, 5), I8, _q(1 / 256, -128)), {"beta": 1.0}),
                                   None, RUNS),
        "softmax.int16-output": (_unary("SOFTMAX", _t((2, 5), I8, _q(0.1)),
                                        _t((2, 5), I16, _q(1 / 65536, 0)), {"beta": 1.0}),
                                 "tflm.softmax.int16-output", "zero_point"),
        "softmax.int16-output-ok": (_unary("SOFTMAX", _t((2, 5), I8, _q(0.1)),
                                           _t((2, 5), I16, _q(1 / 65536, -32768)), {"beta": 1.0}),
                                    None, RUNS),
        "logistic.int8-output": (_unary("LOGISTIC", _t((2, 5), I8, _q(0.1)),
                                        _t((2, 5), I8, _q(1 / 256, 0))),
                                 "tflm.logistic.int8-output", "!= -128"),
        "logistic.int16": (_unary("LOGISTIC", _t((2, 5), I16, _q(2 ** -12)),
                                  _t((2, 5), I16, _q(2 ** -14))), "tflm.logistic.int16",
                           "output_scale_log2_rounded"),
        "logistic.int16-ok": (_unary("LOGISTIC", _t((2, 5), I16, _q(2 ** -12)),
                                     _t((2, 5), I16, _q(2 ** -15))), None, RUNS),
        "tanh.int16": (_unary("TANH", _t((2, 5), I16, _q(2 ** -12)),
                              _t((2, 5), I16, _q(2 ** -15, 4))), "tflm.tanh.int16", "zero_point"),
        "pool.same-qparams": (_pool(0.2), "tflm.pool.same-qparams", "scale_diff <= 1.0e-6"),
        "pool.same-qparams-ok": (_pool(0.1), None, RUNS),
        "mul.int16-zero-point": (_op("MUL", [_t((2, 3), I16, _q(0.01, 5)),
                                             _t((2, 3), I16, _q(0.01))],
                                     [_t((2, 3), I16, _q(0.02))]),
                                 "tflm.mul.int16-zero-point", "input1_zero_point != 0"),
        "mul.int16-zero-point-ok": (_op("MUL", [_t((2, 3), I16, _q(0.01)),
                                                _t((2, 3), I16, _q(0.01))],
                                        [_t((2, 3), I16, _q(0.02))]), None, RUNS),
        "quantize.per-tensor-output": (_unary("QUANTIZE", _t((2, 3), F32),
                                              _t((2, 3), I8, _q([0.1, 0.2, 0.3], 0, 1))),
                                       "tflm.quantize.per-tensor-output", "scale->size == 1"),
        "quantize.per-tensor-output-ok": (_unary("QUANTIZE", _t((2, 3), F32),
                                                 _t((2, 3), I8, _q(0.1))), None, RUNS),
        "pad.same-qparams": (_op("PADV2", [_t((1, 2, 2, 1), I8, _q(0.1, 2)),
                                           np.array([[0, 0], [1, 1], [1, 1], [0, 0]], np.int32),
                                           (np.array([2], np.int8), _t((1,), I8, _q(0.1, 5)))],
                                 [_t((1, 4, 4, 1), I8, _q(0.1, 2))]),
                             "tflm.pad.same-qparams", "zero_point"),
        "pad.same-qparams-ok": (_op("PADV2", [_t((1, 2, 2, 1), I8, _q(0.1, 2)),
                                              np.array([[0, 0], [1, 1], [1, 1], [0, 0]], np.int32),
                                              (np.array([2], np.int8), _t((1,), I8, _q(0.1, 2)))],
                                    [_t((1, 4, 4, 1), I8, _q(0.1, 2))]), None, RUNS),
        # ---- operands ----
        "pad.const-paddings": (_op("PAD", [_t((1, 2, 2, 1), F32), _t((4, 2), I32)],
                                   [_t((1, 4, 4, 1), F32)]), "tflm.pad.const-paddings",
                               "Non-constant >paddings<"),
        "pad.const-paddings-ok": (_op("PAD", [_t((1, 2, 2, 1), F32),
                                              np.array([[0, 0], [1, 1], [1, 1], [0, 0]], np.int32)],
                                      [_t((1, 4, 4, 1), F32)]), None, RUNS),
        "transpose.const-perm": (_op("TRANSPOSE", [_t((2, 3), F32), _t((2,), I32)],
                                     [_t((3, 2), F32)]), "tflm.transpose.const-perm",
                                 "Non-constant >perm<"),
        "strided-slice.const-params": (
            _op("STRIDED_SLICE", [_t((4, 3), F32), _t((2,), I32), np.array([2, 3], np.int32),
                                  np.array([1, 1], np.int32)], [_t((2, 3), F32)]),
            "tflm.strided-slice.const-params", "Non-constant >begin<"),
        "split.const-axis": (_op("SPLIT", [_t((), I32), _t((2, 4), F32)],
                                 [_t((2, 2), F32)] * 2, {"num_splits": 2}),
                             "tflm.split.const-axis", "Non-constant >axis<"),
        "split-v.const-axis": (_op("SPLIT_V", [_t((2, 4), F32), np.array([1, 3], np.int32),
                                               _t((), I32)], [_t((2, 1), F32), _t((2, 3), F32)],
                                   {"num_splits": 2}), "tflm.split-v.const-axis",
                               "Non-constant >axis<"),
        "resize.const-size": (_op("RESIZE_NEAREST_NEIGHBOR", [_t((1, 2, 2, 1), F32), _t((2,), I32)],
                                  [_t((1, 4, 4, 1), F32)]), "tflm.resize.const-size",
                              "Non-constant >size<"),
        "resize.half-pixel-align-corners": (
            _op("RESIZE_BILINEAR", [_t((1, 2, 2, 1), F32), np.array([4, 4], np.int32)],
                [_t((1, 4, 4, 1), F32)], {"align_corners": True, "half_pixel_centers": True}),
            "tflm.resize.half-pixel-align-corners", "half_pixel_centers is True"),
        "resize.ok": (_op("RESIZE_BILINEAR", [_t((1, 2, 2, 1), F32), np.array([4, 4], np.int32)],
                          [_t((1, 4, 4, 1), F32)], {"half_pixel_centers": True}), None, RUNS),
        "expand-dims.const-int32-axis": (
            _op("EXPAND_DIMS", [_t((2, 3), F32), i64_axis], [_t((2, 1, 3), F32)]),
            "tflm.expand-dims.const-int32-axis", "not supported by Expand_Dims"),
        "expand-dims.ok": (_op("EXPAND_DIMS", [_t((2, 3), F32), np.array([1], np.int32)],
                               [_t((2, 1, 3), F32)]), None, RUNS),
        "gather.int32-indices": (_op("GATHER", [_t((5, 3), F32), (np.array([0, 2], np.int64),
                                                                   _t((2,), I64))],
                                     [_t((2, 3), F32)], {"axis": 0, "batch_dims": 0}),
                                 "tflm.gather.int32-indices", "Positions of type 'INT64'"),
        "gather.ok": (_op("GATHER", [_t((5, 3), F32), np.array([0, 2], np.int32)],
                          [_t((2, 3), F32)], {"axis": 0, "batch_dims": 0}), None, RUNS),
        "arg-max.int32-axis": (_op("ARG_MAX", [_t((2, 5), F32), i64_axis], [_t((2,), I32)],
                                   {"output_type": "INT32"}), "tflm.arg-max.int32-axis",
                               "Only int32_t are supported"),
        "arg-max.ok": (_op("ARG_MAX", [_t((2, 5), F32), np.array([1], np.int32)],
                           [_t((2,), I32)], {"output_type": "INT32"}), None, RUNS),
        "reduce.int32-axis": (_op("MEAN", [_t((2, 5), F32), i64_axis], [_t((2,), F32)],
                                  {"keep_dims": False}), "tflm.reduce.int32-axis", "axis->type"),
        "space-batch.min-rank": (_op("SPACE_TO_BATCH_ND", [_t((4, 2), F32),
                                                           np.array([2], np.int32),
                                                           np.array([[0, 0]], np.int32)],
                                     [_t((8, 1), F32)]), "tflm.space-batch.min-rank",
                                 "kInputOutputMinDimensionNum"),
        "lstm.ok": (_lstm(), None, RUNS),
        "lstm.operands": (_lstm(n_inputs=20), "tflm.lstm.operands", "24"),
        "lstm.variant": (_lstm(peephole=True), "tflm.lstm.variant", "nullptr"),
        "lstm.variable-state": (_lstm(variable=False), "tflm.lstm.variable-state", "is_variable"),
        "intermediate.non-zero-size": (_lstm(intermediate=True), "tflm.intermediate.non-zero-size",
                                       "intermediate tensor with non-zero size"),
        "builtin-custom-options": (_unary("RELU", _t((2, 3), F32), _t((2, 3), F32),
                                          {"custom_options": b"\x01\x02"}),
                                   "tflm.builtin-custom-options", "with custom options"),
        "custom.ethos-u": (_op("tfl.CUSTOM", [_t((1, 8), I8)], [_t((1, 8), I8)],
                               {"custom_code": "ethos-u"}), "tflm.custom.ethos-u",
                           "op code CUSTOM"),
        # ---- graph rules ----
        "shape.dynamic": (_unary("RELU", _t(("?0", 8), F32), _t(("?0", 8), F32)),
                          "tflm.shape.dynamic", "Dynamic tensors are not supported"),
        "shape.rank": (_op("RESHAPE", [(np.ones((1,) * 5 + (2, 4), np.float32),
                                        _t((1,) * 5 + (2, 4), F32)), np.array([2, 4], np.int32)],
                           [_t((2, 4), F32)]), "tflm.shape.rank", SILENT),
        "subgraph.finding": (_call_once("GELU"), "tflm.subgraph.finding", "'GELU'"),
        "subgraph.ok": (_call_once("RELU"), None, RUNS),
        "subgraph.unreferenced": (_unreferenced(), None, RUNS),
        # ---- generic rules (check.py) on the TFLM table ----
        "op.unsupported": (_unary("GELU", _t((2, 3), F32), _t((2, 3), F32)),
                           "tflm.op.unsupported", "'GELU'"),
        "op.unsupported-custom": (_op("tfl.CUSTOM", [_t((1, 8), F32)], [_t((1, 8), F32)],
                                      {"custom_code": "MyFancyOp"}), "tflm.op.unsupported",
                                  "op code CUSTOM"),
        "op.dtype-hard-swish-int16": (_unary("HARD_SWISH", _t((2, 5), I16, _q(0.01)),
                                             _t((2, 5), I16, _q(0.01))), "tflm.op.dtype",
                                      "Unsupported type INT16"),
        "op.dtype-arg-max-int64": (_op("ARG_MAX", [_t((2, 5), F32), np.array([1], np.int32)],
                                       [_t((2,), I64)], {"output_type": "INT64"}),
                                   "tflm.op.dtype", "got INT64"),
        "op.rank-strided-slice-5d": (
            _op("STRIDED_SLICE", [_t((1, 1, 1, 2, 3), F32), np.zeros(5, np.int32),
                                  np.array([1, 1, 1, 2, 3], np.int32), np.ones(5, np.int32)],
                [_t((1, 1, 1, 2, 3), F32)]), "tflm.op.rank", "should not exceed 4"),
        "op.rank-pad-6d": (_op("PAD", [_t((1,) * 6, F32), np.zeros((6, 2), np.int32)],
                               [_t((1,) * 6, F32)]), "tflm.op.rank", "PadKernelMaxDimensionCount"),
        "op.rank-add-7d": (_op("ADD", [_t((1,) * 5 + (2, 3), F32), _t((1,) * 5 + (2, 3), F32)],
                               [_t((1,) * 5 + (2, 3), F32)]), "tflm.op.rank", SILENT),
    }
    return p


PROBES = _probes()

# ---- running TFLM in a child process ------------------------------------------------------

_ORACLE = textwrap.dedent("""
    import os, pickle, sys, tempfile
    import numpy as np
    from tflite_micro.python.tflite_micro import runtime
    cases = pickle.load(open(sys.argv[1], "rb"))
    out = {}
    for name, data in cases.items():
        fd, path = tempfile.mkstemp()
        saved = os.dup(2)
        os.dup2(fd, 2)
        try:
            it = runtime.Interpreter.from_bytes(data, arena_size=64 << 20)
            i = 0
            while True:
                try:
                    d = it.get_input_details(i)
                except Exception:
                    break
                it.set_input(np.zeros(d["shape"], d["dtype"]), i)
                i += 1
            it.invoke()
            ok, err = True, ""
        except Exception as e:
            ok, err = False, f"{type(e).__name__}: {e}"
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        os.close(fd)
        text = open(path, errors="replace").read()
        os.unlink(path)
        lines = [l for l in text.splitlines() if l.strip() and "out of range" not in l]
        out[name] = (ok, " / ".join(lines + ([err] if err else [])))
        pickle.dump(out, open(sys.argv[2], "wb"))
""")


def run_tflm(models: dict[str, bytes], workdir) -> dict[str, tuple[bool, str]]:
    """{name: (allocates and invokes, TFLM's stderr)} for every model, in one child
    process; a model that crashes the child is reported as such and the rest rerun."""
    results: dict = {}
    todo = dict(models)
    while todo:
        src, dst = os.path.join(workdir, "cases.pkl"), os.path.join(workdir, "out.pkl")
        pickle.dump(todo, open(src, "wb"))
        if os.path.exists(dst):
            os.unlink(dst)
        proc = subprocess.run([sys.executable, "-c", _ORACLE, src, dst], capture_output=True,
                              text=True, timeout=300)
        done = pickle.load(open(dst, "rb")) if os.path.exists(dst) else {}
        results.update(done)
        rest = [n for n in todo if n not in done]
        if proc.returncode != 0 and rest:
            results[rest[0]] = (False, f"TFLM crashed (exit {proc.returncode})")
            rest = rest[1:]
        todo = {n: todo[n] for n in rest}
    return results


def probe_bytes() -> dict[str, bytes]:
    from tinyir.formats.tflite_format import write_tflite_bytes

    out = {}
    for name, (graph, _, _) in PROBES.items():
        graph.verify()
        out[name] = write_tflite_bytes(graph)
    return out


def errors(graph) -> list:
    return [f for f in check_graph(graph, "tflm") if f.severity == "error"]


# ---- per-rule tests -------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(PROBES))
def test_probe_findings(name):
    graph, rule, _ = PROBES[name]
    graph.verify()
    found = errors(graph)
    if rule is None:
        assert not found, [f"{f.rule}: {f.message}" for f in found]
    else:
        assert rule in {f.rule for f in found}, [f"{f.rule}: {f.message}" for f in found]
        f = next(f for f in found if f.rule == rule)
        assert "{" not in f.message, f"unfilled placeholder in {f.message!r}"


def test_every_rule_has_a_probe():
    table = load_table("tflm")
    probed = {rule for _, rule, _ in PROBES.values()}
    ids = [r.id for r in table.rules if r.severity == "error"]
    assert not [i for i in ids if i not in probed]


def test_unreferenced_subgraph_warns():
    found = check_graph(PROBES["subgraph.unreferenced"][0], "tflm")
    assert [f.rule for f in found] == ["tflm.subgraph.unreferenced"]
    assert not check_graph(PROBES["subgraph.ok"][0], "tflm")


def test_ethos_u_runs_with_the_npu_option():
    graph = PROBES["custom.ethos-u"][0]
    assert not check_graph(graph, "tflm", options={"npu": "ethos-u"})


def test_table_lists_the_tflm_op_set():
    table = load_table("tflm")
    builtins = [k for k in table.ops if not k.startswith("tfl.CUSTOM:")]
    assert len(builtins) == 100
    assert "tfl.CUSTOM:SignalRfft" in table.ops and "tfl.TILE" not in table.ops


def test_supported_ops_page_is_fresh():
    from tinyir.op_support.docs import supported_ops_markdown

    page = corpus.REPO / "docs" / "SUPPORTED_OPS_tflm.md"
    assert page.read_text() == supported_ops_markdown(load_table("tflm")), \
        "stale: python -m tinyir.op_support.docs tflm > docs/SUPPORTED_OPS_tflm.md"


# ---- agreement with the tflite-micro interpreter ------------------------------------------------


def agreement(workdir) -> list[dict]:
    """One row per corpus model and probe: tinyir's verdict, TFLM's, and whether they agree."""
    from tinyir.formats.tflite_format import read_tflite

    graphs, expect, models = {}, {}, {}
    if corpus.have_models():
        for p in sorted((corpus.MODELS / "tflite").glob("*.tflite")):
            models[p.name] = p.read_bytes()
            graphs[p.name] = read_tflite(models[p.name], path=p)
            expect[p.name] = (None, None)
    for name, data in probe_bytes().items():
        models[f"probe:{name}"] = data
        graphs[f"probe:{name}"] = read_tflite(data)
        expect[f"probe:{name}"] = PROBES[name][1:]
    tflm = run_tflm(models, workdir)
    rows = []
    for name in models:
        found = errors(graphs[name])
        ids = sorted({f.rule for f in found})
        ok, msg = tflm[name]
        rule, behaviour = expect[name]
        if behaviour == SILENT:
            agree = ok and rule in ids  # TFLM runs it, tinyir rejects on purpose
            verdict = "TFLM runs, tinyir rejects on purpose"
        else:
            agree = (not found) == ok
            if agree and not ok and behaviour not in (None, RUNS):
                agree = behaviour in msg and rule in ids
            if agree and not ok and behaviour is None:  # corpus: same cause
                agree = any(_same_cause(i, msg) for i in ids)
            verdict = "agree" if agree else "DISAGREE"
        rows.append({"model": name, "tinyir": ids or ["deployable"], "tflm_ok": ok,
                     "tflm": msg if not ok else "runs", "agree": agree, "verdict": verdict})
    return rows


# TFLM's message -> the rule ids that name the same cause
CAUSES = {
    "Hybrid models are not supported": ("tflm.conv.hybrid", "tflm.op.dtype"),
    "with filter type": ("tflm.fc.hybrid",),
    "Didn't find op for builtin opcode": ("tflm.op.unsupported",),
    "Failed to get registration from op code CUSTOM": ("tflm.op.unsupported",
                                                       "tflm.custom.ethos-u"),
    "input_type == kTfLiteFloat32": ("tflm.op.dtype",),
    "Dynamic tensors are not supported": ("tflm.shape.dynamic",),
}


def _same_cause(rule: str, msg: str) -> bool:
    return any(key in msg and rule in rules for key, rules in CAUSES.items())


@pytest.fixture(scope="module")
def agreement_rows(tmp_path_factory):
    return agreement(str(tmp_path_factory.mktemp("tflm_agree")))


def test_agreement_with_tflm(agreement_rows):
    bad = [r for r in agreement_rows if not r["agree"]]
    assert not bad, "\n".join(f"{r['model']}: tinyir {r['tinyir']} / TFLM {r['tflm']}"
                              for r in bad)


def test_nothing_deployable_that_tflm_rejects(agreement_rows):
    assert not [r["model"] for r in agreement_rows
                if r["tinyir"] == ["deployable"] and not r["tflm_ok"]]
