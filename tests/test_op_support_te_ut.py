"""The TinyEngine and uTensor op-support tables: every rule fires on a minimal probe graph
(and stays quiet on a passing variant), both tables run over the whole TFLite corpus, and
the verdicts documented in shared/reference/tinyengine_utensor.md hold."""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import pytest

import corpus
from tinyir.formats import load
from tinyir.graph import Graph
from tinyir.op_support import tinyengine, utensor
from tinyir.op_support.check import check_graph
from tinyir.types import DType, QuantParams, TensorType

DOCS = Path(__file__).resolve().parents[1] / "docs"


def q(s=0.05, z=-128):
    return QuantParams((s,), (z,))


def t8(shape, s=0.05, z=-128):
    return TensorType(tuple(shape), DType.INT8, q(s, z))


def f32(shape):
    return TensorType(tuple(shape), DType.FLOAT32)


class Probe:
    """A tfl-dialect graph built one op at a time; each method returns the new value."""

    def __init__(self, shape=(1, 8, 8, 16), dtype="i8"):
        self.g = Graph("probe", layout="NHWC")
        self.x = self.g.add_input("x", t8(shape) if dtype == "i8" else f32(shape))
        self._n = 0

    def name(self, base):
        self._n += 1
        return f"{base}{self._n}"

    def const(self, arr, t=None):
        return self.g.add_const(self.name("c"), np.asarray(arr), t)

    def op(self, op, inputs, out_type, name=None, **attrs):
        name = name or self.name(op.lower())
        node = self.g.add_node(f"tfl.{op}", inputs, [(name, out_type)], attrs, name=name)
        return node.outputs[0]

    def conv(self, x, cout=16, k=1, stride=1, padding="VALID", act="NONE", dil=1, dm=1,
             depthwise=False, per_channel=True, bias=True, wdtype=np.int8, out=(0.05, -128)):
        n, h, w, c = x.type.shape
        kh, kw = (k, k) if isinstance(k, int) else k
        sh, sw = (stride, stride) if isinstance(stride, int) else stride
        fdt = x.type.dtype
        if depthwise:
            cout, wshape, axis = c * dm, (1, kh, kw, c * dm), 3
        else:
            wshape, axis = (cout, kh, kw, c), 0
        wq = (QuantParams((0.01,) * cout, (0,) * cout, axis) if per_channel
              else QuantParams((0.01,), (0,)))
        wt = TensorType(wshape, DType.from_numpy(wdtype), wq if wdtype != np.float32 else None)
        W = self.const(np.ones(wshape, wdtype), wt)
        B = None
        if bias:
            bdt, bq = (np.float32, None) if fdt == DType.FLOAT32 else (np.int32, QuantParams(
                (0.0005,) * cout, (0,) * cout, 0))
            B = self.const(np.zeros(cout, bdt), TensorType((cout,), DType.from_numpy(bdt), bq))
        if padding == "SAME":
            oh, ow = -(-h // sh), -(-w // sw)
        else:
            oh, ow = (h - (kh - 1) * dil - 1) // sh + 1, (w - (kw - 1) * dil - 1) // sw + 1
        attrs = dict(padding=padding, stride_h=sh, stride_w=sw, dilation_h_factor=dil,
                     dilation_w_factor=dil, fused_activation_function=act)
        if depthwise:
            attrs["depth_multiplier"] = dm
        shape = (n, oh, ow, cout)
        ot = t8(shape, *out) if fdt == DType.INT8 else f32(shape)
        return self.op("DEPTHWISE_CONV_2D" if depthwise else "CONV_2D", [x, W, B], ot, **attrs)

    def dw(self, x, k=3, **kw):
        return self.conv(x, k=k, depthwise=True, **kw)

    def fc(self, x, units=8, act="NONE", bias=True, out=(0.05, -128)):
        cin = x.type.shape[-1]
        fdt = x.type.dtype
        wdt = np.float32 if fdt == DType.FLOAT32 else np.int8
        W = self.const(np.ones((units, cin), wdt),
                       TensorType((units, cin), DType.from_numpy(wdt),
                                  None if wdt == np.float32 else QuantParams((0.01,), (0,))))
        B = None
        if bias:
            bdt = np.float32 if fdt == DType.FLOAT32 else np.int32
            B = self.const(np.zeros(units, bdt), TensorType((units,), DType.from_numpy(bdt),
                           None if bdt == np.float32 else QuantParams((0.0005,), (0,))))
        shape = (x.type.shape[0], units)
        ot = t8(shape, *out) if fdt == DType.INT8 else f32(shape)
        return self.op("FULLY_CONNECTED", [x, W, B], ot, fused_activation_function=act,
                       keep_num_dims=False, weights_format="DEFAULT")

    def pad(self, x, p=1, amounts=None):
        amounts = amounts or [[0, 0], [p, p], [p, p], [0, 0]]
        n, h, w, c = x.type.shape
        shape = (n, h + sum(amounts[1]), w + sum(amounts[2]), c)
        return self.op("PAD", [x, self.const(np.array(amounts, np.int32))],
                       t8(shape, *_qz(x)))

    def pool(self, x, op="MAX_POOL_2D", f=2, stride=2, padding="VALID", out=None):
        n, h, w, c = x.type.shape
        oh, ow = ((-(-h // stride), -(-w // stride)) if padding == "SAME"
                  else ((h - f) // stride + 1, (w - f) // stride + 1))
        return self.op(op, [x], t8((n, oh, ow, c), *(out or _qz(x))), padding=padding,
                       stride_h=stride, stride_w=stride, filter_height=f, filter_width=f,
                       fused_activation_function="NONE")

    def add(self, a, b, act="NONE", out=(0.05, -128)):
        return self.op("ADD", [a, b], t8(a.type.shape, *out), fused_activation_function=act)

    def mul(self, a, b):
        return self.op("MUL", [a, b], t8(a.type.shape), fused_activation_function="NONE")

    def transpose(self, x, perm=(0, 3, 1, 2)):
        shape = tuple(x.type.shape[i] for i in perm)
        return self.op("TRANSPOSE", [x, self.const(np.array(perm, np.int32))],
                       t8(shape, *_qz(x)))

    def mean(self, x, axes):
        shape = tuple(d for i, d in enumerate(x.type.shape) if i not in axes)
        return self.op("MEAN", [x, self.const(np.array(axes, np.int32))], t8(shape, *_qz(x)),
                       keep_dims=False)

    def gap(self, x):
        """TinyEngine's global pool: TRANSPOSE(NHWC->NCHW) -> MEAN -> MEAN."""
        return self.mean(self.mean(self.transpose(x), [3]), [2])

    def reshape(self, x, shape):
        return self.op("RESHAPE", [x, self.const(np.array(shape, np.int32))],
                       t8(shape, *_qz(x)), new_shape=list(shape))

    def resize(self, x, size, align_corners=False):
        n, _, _, c = x.type.shape
        return self.op("RESIZE_NEAREST_NEIGHBOR", [x, self.const(np.array(size, np.int32))],
                       t8((n, *size, c), *_qz(x)), align_corners=align_corners,
                       half_pixel_centers=False)

    def quantize(self, x):
        return self.op("QUANTIZE", [x], t8(x.type.shape))

    def dequantize(self, x):
        return self.op("DEQUANTIZE", [x], f32(x.type.shape))

    def softmax(self, x):
        return self.op("SOFTMAX", [x], t8(x.type.shape, 1 / 256, -128), beta=1.0)

    def concat(self, *xs):
        shape = list(xs[0].type.shape)
        shape[-1] = sum(v.type.shape[-1] for v in xs)
        return self.op("CONCATENATION", list(xs), t8(shape), axis=3,
                       fused_activation_function="NONE")

    def custom(self, x, code):
        return self.op("CUSTOM", [x], t8(x.type.shape), custom_code=code, custom_options=b"")

    def done(self, *outs):
        self.g.outputs = list(outs)
        self.g.verify()
        return self.g


def _qz(v):
    return v.type.quant.scale[0], v.type.quant.zero_point[0]


def findings(g, backend):
    g.verify()
    return check_graph(g, backend)


def ids(g, backend):
    return {f.rule for f in findings(g, backend)}


def errors(g, backend):
    return [f for f in findings(g, backend) if f.severity == "error"]


# ---- TinyEngine: a model that passes, and one knob per rule ---------------------------------


def te_block(stem_k=3, stem_stride=2, cin=3, pad=1, stem_padding="VALID", expand=16,
             dw_k=3, dw_stride=1, dw_padding="SAME", dm=1, dil=1, project=8, act="RELU6",
             act_zp=-128, head=True, float_io=False):
    """QUANTIZE -> PAD -> 3x3/s2 stem -> 1x1 expand -> 3x3 dw -> 1x1 project -> ADD (residual)
    -> TRANSPOSE -> MEAN -> MEAN -> FULLY_CONNECTED -> DEQUANTIZE: TinyEngine's vocabulary."""
    p = Probe((1, 16, 16, cin), dtype="f32" if float_io else "i8")
    x = p.quantize(p.x) if float_io else p.x
    if pad:
        x = p.pad(x, pad)
    six = (6 / 255, -128)  # an int8 range that is exactly [0, 6]: RELU6 needs no clamp
    stem = p.conv(x, cout=8, k=stem_k, stride=stem_stride, padding=stem_padding, act=act,
                  out=(6 / 255, act_zp))
    e = p.conv(stem, cout=expand, act="RELU6", out=six)
    d = p.dw(e, k=dw_k, stride=dw_stride, padding=dw_padding, dm=dm, dil=dil, act="RELU6",
             out=six)
    y = p.conv(d, cout=project)
    y = p.add(y, stem) if y.type.shape == stem.type.shape else y
    if not head:
        return p.done(y)
    z = p.fc(p.gap(y), units=4)
    return p.done(p.dequantize(z) if float_io else z)


def test_tinyengine_accepts_its_own_vocabulary():
    g = te_block(float_io=True)
    assert errors(g, "tinyengine") == []
    assert ids(g, "tinyengine") == {"tinyengine.te-s16.numpy2"}  # a warning


def _probe_mul(se: bool):
    p = Probe((1, 4, 4, 8))
    c = p.conv(p.x, cout=8)
    if se:  # ADD -> MUL -> MUL, then enough ops after it for TinyEngine to match the triple
        a = p.add(c, p.const(np.full((1, 1, 1, 8), 3, np.int8), t8((1, 1, 1, 8))))
        m = p.mul(p.mul(a, c), c)
    else:
        m = p.mul(c, c)
    y = p.conv(p.conv(p.conv(m, cout=8), cout=8), cout=8)
    return p.done(y)


def _probe_add(shape_b):
    p = Probe((1, 4, 4, 8))
    c = p.conv(p.x, cout=8)
    b = p.g.add_input("b", t8(shape_b))
    return p.done(p.op("ADD", [c, b], t8((1, 4, 4, 8)), fused_activation_function="NONE"))


def _probe_pool(op, **kw):
    p = Probe((1, 8, 8, 16))
    return p.done(p.pool(p.conv(p.x), op=op, **kw))


def _probe_reshape(mid: bool):
    p = Probe((1, 1, 1, 16))
    x = p.reshape(p.x, (1, 16)) if not mid else p.reshape(p.conv(p.x), (1, 16))
    return p.done(p.fc(x))


def _probe_single_mean(pair: bool):
    p = Probe((1, 4, 4, 16))
    c = p.conv(p.x)
    m = p.gap(c) if pair else p.mean(c, [1, 2])
    return p.done(p.fc(m))


def _probe_mean_layout(transpose: bool):
    p = Probe((1, 4, 4, 16))
    c = p.conv(p.x)
    m = p.gap(c) if transpose else p.mean(p.mean(c, [2]), [1])
    return p.done(p.fc(m))


def _probe_transpose(to_mean: bool):
    p = Probe((1, 4, 4, 16))
    t = p.transpose(p.conv(p.x))
    return p.done(p.fc(p.mean(p.mean(t, [3]), [2])) if to_mean else p.conv(t, cout=16))


def _probe_pad_fold(into_conv: bool):
    p = Probe((1, 8, 8, 16))
    x = p.pad(p.conv(p.x))
    return p.done(p.dw(x, k=3, padding="VALID") if into_conv else p.pool(x))


def _probe_pad_amount(p_amount):
    p = Probe((1, 8, 8, 16))
    return p.done(p.dw(p.pad(p.conv(p.x), p_amount), k=3, padding="VALID"))


def _probe_requant(same: bool):
    p = Probe((1, 8, 8, 16))
    c = p.conv(p.x)
    return p.done(p.pool(c, out=None if same else (0.1, -128)))


def _probe_resize(size, align_corners=False):
    p = Probe((1, 4, 4, 16))
    return p.done(p.resize(p.conv(p.x), size, align_corners))


def _probe_dw_shared(shared: bool):
    p = Probe((1, 8, 8, 16))
    e = p.conv(p.x)
    d = p.conv(p.dw(e, k=3, padding="SAME"))
    return p.done(p.add(d, e) if shared else d)


def _probe_fc(cin=16, units=8, bias=True, act="NONE", out=(0.05, -128), flat=True):
    p = Probe((1, 2, 2, cin) if not flat else (1, cin))
    x = p.x
    if not flat:  # TFLite FC flattens [1, 2, 2, cin] itself; TinyEngine does not
        W = p.const(np.ones((units, 4 * cin), np.int8),
                    TensorType((units, 4 * cin), DType.INT8, QuantParams((0.01,), (0,))))
        B = p.const(np.zeros(units, np.int32), TensorType((units,), DType.INT32, q(0.0005, 0)))
        return p.done(p.op("FULLY_CONNECTED", [x, W, B], t8((1, units)),
                           fused_activation_function="NONE"))
    return p.done(p.fc(x, units=units, act=act, bias=bias, out=out))


def _probe_conv(**kw):
    p = Probe(kw.pop("shape", (1, 8, 8, 16)))
    return p.done(p.conv(p.x, **kw))


def _probe_dw(**kw):
    p = Probe(kw.pop("shape", (1, 8, 8, 16)))
    return p.done(p.dw(p.x, **kw))


def _probe_float_conv(wdtype):
    p = Probe((1, 8, 8, 16), "f32")
    return p.done(p.conv(p.x, wdtype=wdtype))


def _rank_probe(rank):
    p = Probe((1, 8, 8, 16))
    c = p.conv(p.x)
    return p.done(p.reshape(c, (1, 2, 4, 8, 16) if rank == 5 else (1, 2, 32, 16)))


def _probe_subgraphs(extra: bool):
    g = te_block(head=False)
    if extra:
        g.metadata["tflite.subgraphs"] = [Graph("body", layout="NHWC")]
    return g


def _probe_dynamic(dynamic: bool):
    p = Probe(("batch", 8, 8, 16) if dynamic else (1, 8, 8, 16))
    c = p.x
    W = p.const(np.ones((16, 1, 1, 16), np.int8),
                TensorType((16, 1, 1, 16), DType.INT8, QuantParams((0.01,) * 16, (0,) * 16, 0)))
    B = p.const(np.zeros(16, np.int32), TensorType((16,), DType.INT32,
                                                   QuantParams((0.0005,) * 16, (0,) * 16, 0)))
    y = p.op("CONV_2D", [c, W, B], t8((c.type.shape[0], 8, 8, 16)), padding="VALID",
             stride_h=1, stride_w=1, dilation_h_factor=1, dilation_w_factor=1,
             fused_activation_function="NONE")
    return p.done(y)


def _probe_outputs(n):
    p = Probe((1, 8, 8, 16))
    outs = [p.conv(p.x) for _ in range(n)]
    return p.done(*outs)


def _probe_unsupported(op):
    p = Probe((1, 8, 8, 16))
    c = p.conv(p.x)
    return p.done({"softmax": p.softmax, "conv": p.conv}[op](c))


TE_CASES = {
    # rule: (graph that triggers it, passing variant)
    "tinyengine.op.unsupported": (lambda: _probe_unsupported("softmax"),
                                  lambda: _probe_unsupported("conv")),
    "tinyengine.op.dtype": (lambda: _probe_float_conv(np.float32), lambda: _probe_conv()),
    "tinyengine.op.rank": (lambda: _rank_probe(5), lambda: _rank_probe(4)),
    "tinyengine.pad.fold": (lambda: _probe_pad_fold(False), lambda: _probe_pad_fold(True)),
    "tinyengine.pad.amount": (lambda: _probe_pad_amount(2), lambda: _probe_pad_amount(1)),
    "tinyengine.te-s6.valid-padding": (lambda: _probe_dw(k=3, padding="VALID"),
                                       lambda: _probe_dw(k=3, padding="SAME")),
    "tinyengine.te-s17.asymmetric-same": (
        lambda: _probe_dw(k=3, stride=2, padding="SAME", shape=(1, 8, 8, 16)),
        lambda: _probe_dw(k=3, stride=2, padding="SAME", shape=(1, 9, 9, 16))),
    "tinyengine.conv.kernel": (lambda: _probe_conv(k=5, padding="SAME"),
                               lambda: _probe_conv(k=1)),
    "tinyengine.conv.square-stride": (lambda: _probe_dw(k=3, stride=(2, 1), padding="SAME",
                                                        shape=(1, 9, 9, 16)),
                                      lambda: _probe_dw(k=3, stride=(2, 2), padding="SAME",
                                                        shape=(1, 9, 9, 16))),
    "tinyengine.te-s1.conv1x1-stride": (lambda: _probe_conv(k=1, stride=2),
                                        lambda: _probe_conv(k=1, stride=1)),
    "tinyengine.te-s2.conv3x3s2-cin": (
        lambda: _probe_conv(k=3, stride=2, padding="SAME", shape=(1, 9, 9, 16)),
        lambda: _probe_conv(k=3, stride=2, padding="SAME", shape=(1, 9, 9, 3))),
    "tinyengine.te-s3.cin-multiple-of-4": (lambda: _probe_conv(k=1, shape=(1, 8, 8, 6)),
                                           lambda: _probe_conv(k=1, shape=(1, 8, 8, 8))),
    "tinyengine.te-s4.odd-cout": (lambda: _probe_conv(k=1, cout=5),
                                  lambda: _probe_conv(k=1, cout=6)),
    "tinyengine.te-s5.conv3x3s1": (lambda: _probe_conv(k=3, padding="SAME"),
                                   lambda: _probe_conv(k=1)),
    "tinyengine.te-s7.depth-multiplier": (lambda: _probe_dw(k=3, padding="SAME", dm=2),
                                          lambda: _probe_dw(k=3, padding="SAME", dm=1)),
    "tinyengine.te-s8.dilation": (lambda: _probe_dw(k=3, padding="SAME", dil=2),
                                  lambda: _probe_dw(k=3, padding="SAME", dil=1)),
    "tinyengine.te-s13.inplace-depthwise": (lambda: _probe_dw_shared(True),
                                            lambda: _probe_dw_shared(False)),
    "tinyengine.te-s14.per-tensor-weights": (lambda: _probe_conv(per_channel=False),
                                             lambda: _probe_conv(per_channel=True)),
    "tinyengine.te-s15.bias": (lambda: _probe_fc(bias=False), lambda: _probe_fc(bias=True)),
    "tinyengine.conv.int8-weights": (lambda: _probe_conv(wdtype=np.int16),
                                     lambda: _probe_conv(wdtype=np.int8)),
    "tinyengine.fc.input-shape": (lambda: _probe_fc(flat=False), lambda: _probe_fc(flat=True)),
    "tinyengine.activation.fused-range": (lambda: _probe_fc(act="RELU", out=(0.05, 0)),
                                          lambda: _probe_fc(act="RELU", out=(0.05, -128))),
    "tinyengine.te-s9.avgpool-global": (lambda: _probe_pool("AVERAGE_POOL_2D", f=2, stride=2),
                                        lambda: _probe_pool("AVERAGE_POOL_2D", f=8, stride=1)),
    "tinyengine.avgpool.same-padding": (
        lambda: _probe_pool("AVERAGE_POOL_2D", f=8, stride=8, padding="SAME"),
        lambda: _probe_pool("AVERAGE_POOL_2D", f=8, stride=8, padding="VALID")),
    "tinyengine.te-s10.maxpool-window": (lambda: _probe_pool("MAX_POOL_2D", f=3, stride=2),
                                         lambda: _probe_pool("MAX_POOL_2D", f=2, stride=2)),
    "tinyengine.requant.same-qparams": (lambda: _probe_requant(False),
                                        lambda: _probe_requant(True)),
    "tinyengine.te-s11.single-mean": (lambda: _probe_single_mean(False),
                                      lambda: _probe_single_mean(True)),
    "tinyengine.mean.global-pool-pattern": (lambda: _probe_mean_layout(False),
                                            lambda: _probe_mean_layout(True)),
    "tinyengine.transpose.before-mean": (lambda: _probe_transpose(False),
                                         lambda: _probe_transpose(True)),
    "tinyengine.resize.integer-factor": (lambda: _probe_resize((6, 6)),
                                         lambda: _probe_resize((8, 8))),
    "tinyengine.mul.se-gate-only": (lambda: _probe_mul(False), lambda: _probe_mul(True)),
    "tinyengine.add.same-shape": (lambda: _probe_add((1, 1, 1, 8)),
                                  lambda: _probe_add((1, 4, 4, 8))),
    "tinyengine.te-s12.dropped-op": (lambda: _probe_reshape(True),
                                     lambda: _probe_reshape(False)),
    "tinyengine.graph.subgraphs": (lambda: _probe_subgraphs(True),
                                   lambda: _probe_subgraphs(False)),
    "tinyengine.graph.dynamic-shape": (lambda: _probe_dynamic(True),
                                       lambda: _probe_dynamic(False)),
    "tinyengine.graph.multi-output": (lambda: _probe_outputs(2), lambda: _probe_outputs(1)),
    "tinyengine.te-s16.numpy2": (lambda: _probe_dw(k=3, padding="SAME"),
                                 lambda: _probe_conv()),
}


def _probe_chain(kind):
    """uTensor probes: a chain it lowers, a residual, a fan-out, and two missing ops."""
    p = Probe((1, 8, 8, 16))
    c = p.conv(p.x, act="RELU")
    if kind == "chain":
        y = p.fc(p.reshape(p.pool(p.dw(c, k=3, padding="SAME")), (1, 256)))
    elif kind == "residual":
        y = p.add(p.conv(c), c)
    elif kind == "fanout":
        return p.done(p.conv(c), p.conv(c))
    elif kind == "pad":
        y = p.conv(p.pad(c), k=3)
    elif kind == "concat":
        y = p.concat(p.conv(c), p.conv(c))
    else:
        y = p.custom(c, kind)
    return p.done(y)


def _probe_ut_conv(**kw):
    p = Probe((1, 8, 8, 16), kw.pop("dtype", "i8"))
    return p.done(p.conv(p.x, **kw))


def _probe_ut_dw(dtype):
    p = Probe((1, 8, 8, 16), dtype)
    return p.done(p.dw(p.x, k=3, padding="SAME", wdtype=np.float32 if dtype == "f32" else np.int8))


def _probe_ut_fc(act, dtype="f32"):
    p = Probe((1, 16), dtype)
    return p.done(p.fc(p.x, act=act))


def _probe_schema(new: bool):
    p = Probe((1, 8, 8, 16))
    c = p.conv(p.x)
    y = p.op("HARD_SWISH" if new else "LOGISTIC", [c], t8(c.type.shape))
    return p.done(y)


def _probe_names(bad: bool):
    p = Probe((1, 8, 8, 16))
    c = p.conv(p.x)
    W = p.const(np.ones((8, 1, 1, 16), np.int8),
                TensorType((8, 1, 1, 16), DType.INT8, QuantParams((0.01,) * 8, (0,) * 8, 0)))
    name = "model/conv;BiasAdd.1" if bad else "model/conv_1"
    y = p.op("CONV_2D", [c, W, None], t8((1, 8, 8, 8)), name=name, padding="VALID",
             stride_h=1, stride_w=1, dilation_h_factor=1, dilation_w_factor=1,
             fused_activation_function="NONE")
    return p.done(y)


UT_CASES = {
    "utensor.op.dtype": (lambda: _u8_probe(), lambda: _probe_chain("chain")),
    "utensor.op.rank": (lambda: _rank_probe(5), lambda: _rank_probe(4)),
    "utensor.graph.feed-forward": (lambda: _probe_chain("fanout"), lambda: _probe_chain("chain")),
    "utensor.op.missing-stub": (lambda: _probe_chain("pad"), lambda: _probe_chain("chain")),
    "utensor.op.schema": (lambda: _probe_schema(True), lambda: _probe_schema(False)),
    "utensor.graph.subgraphs": (lambda: _ut_subgraphs(True), lambda: _ut_subgraphs(False)),
    "utensor.graph.dynamic-shape": (lambda: _probe_dynamic(True), lambda: _probe_dynamic(False)),
    "utensor.names.c-identifier": (lambda: _probe_names(True), lambda: _probe_names(False)),
    "utensor.conv.activation": (lambda: _probe_ut_conv(act="TANH"),
                                lambda: _probe_ut_conv(act="RELU6")),
    "utensor.conv.dilation": (lambda: _probe_ut_conv(k=3, padding="SAME", dil=2),
                              lambda: _probe_ut_conv(k=3, padding="SAME", dil=1)),
    "utensor.depthwise.float": (lambda: _probe_ut_dw("f32"), lambda: _probe_ut_dw("i8")),
    "utensor.weights.hybrid": (lambda: _probe_float_conv(np.int8),
                               lambda: _probe_float_conv(np.float32)),
    "utensor.fc.float-activation": (lambda: _probe_ut_fc("TANH"), lambda: _probe_ut_fc("RELU")),
}


def _u8_probe():
    g = Graph("probe", layout="NHWC")
    x = g.add_input("x", TensorType((1, 8, 8, 16), DType.UINT8, q(0.05, 128)))
    y = g.add_node("tfl.MAX_POOL_2D", [x], [("y", x.type.with_shape((1, 4, 4, 16)))],
                   dict(padding="VALID", stride_h=2, stride_w=2, filter_height=2,
                        filter_width=2, fused_activation_function="NONE")).outputs[0]
    g.outputs = [y]
    return g


def _ut_subgraphs(extra: bool):
    g = _probe_chain("chain")
    if extra:
        g.metadata["tflite.subgraphs"] = [Graph("body", layout="NHWC")]
    return g


CASES = [(r, "tinyengine", bad, good) for r, (bad, good) in TE_CASES.items()] + \
        [(r, "utensor", bad, good) for r, (bad, good) in UT_CASES.items()]


@pytest.mark.parametrize("rule,backend,bad,good", CASES, ids=[c[0] for c in CASES])
def test_rule_fires_on_its_probe_and_not_on_the_passing_variant(rule, backend, bad, good):
    fired = [f for f in findings(bad(), backend) if f.rule == rule]
    assert fired, f"{rule} did not fire"
    for f in fired:
        assert "{" not in f.message, f.message  # every placeholder was filled
    assert rule not in ids(good(), backend)


@pytest.mark.parametrize("table,cases", [(tinyengine.TABLE, TE_CASES), (utensor.TABLE, UT_CASES)],
                         ids=["tinyengine", "utensor"])
def test_every_rule_has_a_probe(table, cases):
    kinds = ("dtype", "rank") if table.own_unsupported_rule else ("unsupported", "dtype", "rank")
    generic = {f"{table.backend}.op.{x}" for x in kinds}
    assert set(table.rule_ids()) | generic == set(cases)


def test_utensor_reports_missing_ops_once_with_its_own_message():
    found = check_graph(_probe_chain("residual"), "utensor")
    rules = [f.rule for f in found if f.op == "tfl.ADD"]
    assert "utensor.op.missing-stub" in rules and "utensor.op.unsupported" not in rules


def test_te_s_cases_are_errors_except_the_environment_one():
    te_s = [r for r in tinyengine.TABLE.rules if ".te-s" in r.id]
    numbers = {int(r.id.split(".")[1][4:]) for r in te_s}
    assert numbers == set(range(1, 18))  # every TE-S case of the reference
    for r in te_s:
        assert r.severity == ("warning" if r.id == "tinyengine.te-s16.numpy2" else "error"), r.id


def test_findings_name_the_node_and_the_values():
    g = _probe_conv(k=3, stride=2, padding="SAME", shape=(1, 9, 9, 16))
    (f,) = [f for f in findings(g, "tinyengine") if f.rule == "tinyengine.te-s2.conv3x3s2-cin"]
    assert f.node == g.nodes[0].name and "16 input channels" in f.message
    (f,) = [f for f in findings(_probe_chain("residual"), "utensor")
            if f.rule == "utensor.graph.feed-forward" and f.op == "tfl.ADD"]
    assert "joins 2 branches" in f.message
    (f,) = [f for f in findings(_probe_chain("pad"), "utensor")
            if f.rule == "utensor.op.missing-stub"]
    assert f.op == "tfl.PAD"
    assert 'static_assert(false, "Pad is not currently supported")' in f.message


@pytest.mark.parametrize("backend", ["tinyengine", "utensor"])
def test_custom_ops_are_named(backend):
    msgs = [f.message for f in findings(_probe_chain("my-npu-op"), backend)]
    assert any("'my-npu-op'" in m for m in msgs)


# ---- the corpus ----------------------------------------------------------------------------


@functools.lru_cache(maxsize=None)
def _corpus(rel):
    return load(corpus.model(rel))


def _by_rule(rel, backend):
    out = {}
    for f in check_graph(_corpus(rel), backend):
        out.setdefault(f.rule, []).append(f)
    return out


def _errors(rel, backend):
    return {r for r, fs in _by_rule(rel, backend).items() if any(f.severity == "error" for f in fs)}


@pytest.mark.parametrize("path", corpus.files("tflite/*.tflite"))
def test_both_tables_run_over_every_corpus_tflite(path):
    rel = str(path.relative_to(corpus.MODELS))
    for backend, table in (("tinyengine", tinyengine.TABLE), ("utensor", utensor.TABLE)):
        known = set(table.rule_ids()) | {f"{backend}.op.{x}" for x in ("unsupported", "dtype",
                                                                       "rank")}
        for rule, fs in _by_rule(rel, backend).items():
            assert rule in known
            for f in fs:
                assert "{" not in f.message and f.message.endswith((".", ")")), f.message


@pytest.mark.parametrize("rel", ["tflite/tinyengine_vww_int8.tflite",
                                 "tflite/tinyengine_detection_int8.tflite"])
def test_tinyengine_accepts_the_models_from_its_own_repo(rel):
    assert _errors(rel, "tinyengine") == set()


def test_tinyengine_detection_model_only_warns_about_its_three_outputs():
    by = _by_rule("tflite/tinyengine_detection_int8.tflite", "tinyengine")
    assert set(by) == {"tinyengine.graph.multi-output", "tinyengine.te-s16.numpy2"}
    assert "3 outputs" in by["tinyengine.graph.multi-output"][0].message


def test_tinyengine_mnist_demo_needs_log_softmax_which_the_parser_lacks():
    # The demo ends in a float LOG_SOFTMAX; TfliteConvertor raises "Unsupported LOG_SOFTMAX".
    by = _by_rule("tflite/tinyengine_mnist_mlp_int8.tflite", "tinyengine")
    assert [f.op for f in by["tinyengine.op.unsupported"]] == ["tfl.LOG_SOFTMAX"]
    assert set(by) == {"tinyengine.op.unsupported", "tinyengine.te-s12.dropped-op"}


def test_resnet8_hits_the_documented_tinyengine_miscompiles():
    errs = _errors("tflite/mlperf_ic_resnet8_int8.tflite", "tinyengine")
    # 3x3 s2 convs with Cin 16/32 (TE-S2), stride-2 1x1 shortcuts (TE-S1), 3x3 s1 (TE-S5),
    # TF SAME padding on even inputs (TE-S17), the flatten RESHAPE (TE-S12), SOFTMAX
    assert {"tinyengine.te-s1.conv1x1-stride", "tinyengine.te-s2.conv3x3s2-cin",
            "tinyengine.te-s5.conv3x3s1", "tinyengine.te-s12.dropped-op",
            "tinyengine.te-s17.asymmetric-same", "tinyengine.op.unsupported"} <= errs


def test_resnet8_is_rejected_by_utensor_at_its_residual_adds():
    g = _corpus("tflite/mlperf_ic_resnet8_int8.tflite")
    adds = {n.name for n in g.nodes if n.op == "tfl.ADD"}
    ff = _by_rule("tflite/mlperf_ic_resnet8_int8.tflite", "utensor")["utensor.graph.feed-forward"]
    joins = {f.node for f in ff if "joins 2 branches" in f.message}
    assert len(adds) == 3 and joins == adds
    stubs = {f.op for f in _by_rule("tflite/mlperf_ic_resnet8_int8.tflite", "utensor")[
        "utensor.op.missing-stub"]}
    assert stubs == {"tfl.ADD", "tfl.AVERAGE_POOL_2D", "tfl.SOFTMAX"}


@pytest.mark.parametrize("rel", ["tflite/mlperf_kws_dscnn_int8.tflite",
                                 "tflite/mlperf_vww_mbv1_int8.tflite"])
def test_plain_chains_pass_utensors_feed_forward_rule_but_need_missing_ops(rel):
    by = _by_rule(rel, "utensor")
    assert "utensor.graph.feed-forward" not in by
    # AVERAGE_POOL_2D and SOFTMAX have no lowering: static_assert stubs (reference §2.3)
    assert {f.op for f in by["utensor.op.missing-stub"]} == {"tfl.AVERAGE_POOL_2D", "tfl.SOFTMAX"}


def test_kws_dscnn_is_rejected_by_tinyengine_at_its_10x4_stem():
    by = _by_rule("tflite/mlperf_kws_dscnn_int8.tflite", "tinyengine")
    assert "10x4 stride-2 CONV_2D gets no kernel" in by["tinyengine.conv.kernel"][0].message
    assert [f.op for f in by["tinyengine.op.unsupported"]] == ["tfl.SOFTMAX"]


def test_fc_chain_lowers_in_utensor_except_for_its_tensor_names():
    # mlperf_ad01_int8 is a pure FULLY_CONNECTED chain: every op lowers, but TF's tensor names
    # ("...;...") become invalid C++ identifiers (reference §2.5, measured).
    assert _errors("tflite/mlperf_ad01_int8.tflite", "utensor") == {"utensor.names.c-identifier"}


def test_residual_and_branching_models_fail_utensors_feed_forward_rule():
    for rel in ("tflite/tinyengine_vww_int8.tflite", "tflite/coral_split_concat_uint8.tflite"):
        assert "utensor.graph.feed-forward" in _errors(rel, "utensor")


@pytest.mark.parametrize("backend", ["tinyengine", "utensor"])
def test_edgetpu_custom_op_is_named(backend):
    msgs = [f.message for f in check_graph(
        _corpus("tflite/coral_mobilenet_v1_025_128_edgetpu.tflite"), backend)]
    assert any("'edgetpu-custom-op'" in m for m in msgs)


# ---- generated docs ------------------------------------------------------------------------


@pytest.mark.parametrize("table", [tinyengine.TABLE, utensor.TABLE], ids=["tinyengine", "utensor"])
def test_committed_supported_ops_page_is_current(table):
    from tinyir.op_support.docs import supported_ops_markdown

    path = DOCS / f"SUPPORTED_OPS_{table.backend}.md"
    assert path.read_text() == supported_ops_markdown(table), (
        f"{path.name} is stale: regenerate it with op_support.docs.supported_ops_markdown")
