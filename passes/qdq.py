"""Existing ONNX QDQ quantization, read into tinyir's one notion (``QuantParams``).

``read_qdq_params(graph)`` maps each tensor that a ``QuantizeLinear`` quantizes (the
float activation) and each constant that a ``DequantizeLinear`` dequantizes (int8
weights, int32 biases) to ``QuantParams(scale, zero_point, axis)``: scalar scale =
per-tensor, 1-D scale = per-axis along the node's ``axis`` attribute (ONNX default 1).
The ONNX rounding of QuantizeLinear is half-to-even; TFLite's is half away from zero.

``params_at(graph, name)`` answers "which params does a consumer of ``name`` see": for a
``DequantizeLinear`` output it is that node's params (the QDQ idiom puts a Q -> DQ pair
on every edge), else the params the tensor itself was quantized with.

**Export** (``to_onnx_qdq(graph) -> Graph``): a quantized TFLite-dialect graph (the
result of the ``quantize`` pass) becomes an ONNX QDQ graph that carries tinyir's params
unchanged.  The choice: convert the *quantized tfl graph* back, op by op, rather than
re-insert Q/DQ into the float ONNX model, so the exported file is exactly the int8
model tinyir checked (folded BN, fused activations, requantize ops, bias correction).

* every int8 activation ``v`` (params ``s, z``) is ``DQ(Q(float op result, s, z))``; the
  float op reads the DQ output, so onnxruntime runs the standard QDQ idiom;
* weights are the int8 initializers with a per-axis ``DequantizeLinear`` (axis 0 of ONNX
  ``OIHW`` / Gemm ``[units, K]``), biases int32 with a per-axis DQ (scales ``s_in*s_w``);
* layout: tfl values are NHWC; a conv or pooling node reads its operand through
  ``Transpose(0, 3, 1, 2)`` and writes back through ``Transpose(0, 2, 3, 1)`` (onnxruntime's
  transpose optimizer cancels the pairs); TFLite ``SAME`` padding becomes explicit pads;
* fused activations become Relu / Clip before the QuantizeLinear;
* I/O is float: an int8 graph input becomes a float input followed by a QuantizeLinear
  with its params, an int8 output a float output behind a DequantizeLinear (the
  convention of onnxruntime's ``quantize_static``).  Names are the tfl graph's.

``dumps(graph, "onnx")`` calls ``to_onnx_qdq`` for a graph with ``tfl.*`` nodes.
Rounding: ONNX QuantizeLinear rounds half to even, TFLite half away from zero, so an
activation exactly on .5 may differ by one step from the TFLite model.
"""

from __future__ import annotations

import numpy as np

from tinyir.errors import UnsupportedError
from tinyir.graph import Graph, Node, Value
from tinyir.passes.fold_bn import const_array
from tinyir.types import DType, QuantParams, TensorType


def _node_params(node: Node) -> QuantParams | None:
    scale = const_array(node.inputs[1])
    if scale is None:
        return None
    zp_v = node.inputs[2] if len(node.inputs) > 2 else None
    zp = const_array(zp_v) if zp_v is not None else np.zeros_like(scale, dtype=np.int64)
    if zp is None:
        return None
    scale, zp = np.ravel(scale), np.ravel(zp)
    if scale.size == 1 and np.ndim(const_array(node.inputs[1])) == 0:
        return QuantParams((float(scale[0]),), (int(zp[0]),))
    axis = int(node.attrs.get("axis", 1))
    return QuantParams(tuple(float(s) for s in scale), tuple(int(z) for z in zp), axis)


def read_qdq_params(graph: Graph) -> dict[str, QuantParams]:
    """Value name -> params for every quantized activation and dequantized constant."""
    out: dict[str, QuantParams] = {}
    for n in graph.nodes:
        if n.op == "onnx.QuantizeLinear":
            p = _node_params(n)
            if p is not None:
                out[n.inputs[0].name] = p
        elif n.op == "onnx.DequantizeLinear":
            p = _node_params(n)
            if p is not None:
                out[n.outputs[0].name] = p
                if n.inputs[0].is_const or n.inputs[0].producer is None:
                    out[n.inputs[0].name] = p
    return out


def params_at(graph: Graph, name: str, params: dict[str, QuantParams]) -> QuantParams | None:
    """The params a reader of ``name`` sees (see the module docstring)."""
    v = graph.lookup(name)
    if v is not None and v.producer is not None and v.producer.op == "onnx.DequantizeLinear":
        return params.get(v.name)
    return params.get(name)


# ---- export: quantized tfl graph -> ONNX QDQ ---------------------------------------------

TO_NCHW, TO_NHWC = [0, 3, 1, 2], [0, 2, 3, 1]
_ACT = {"RELU": (0.0, None), "RELU6": (0.0, 6.0), "RELU_N1_TO_1": (-1.0, 1.0)}
_ELEMENTWISE = {"tfl.ADD": "Add", "tfl.SUB": "Sub", "tfl.MUL": "Mul", "tfl.MAXIMUM": "Max",
                "tfl.MINIMUM": "Min"}
_UNARY = {"tfl.LOGISTIC": "Sigmoid", "tfl.TANH": "Tanh", "tfl.RELU": "Relu"}
F32 = DType.FLOAT32


def to_onnx_qdq(graph: Graph) -> Graph:
    """An ONNX QDQ graph computing the quantized tfl ``graph`` (see the module doc)."""
    return _Export(graph).run()


class _Export:
    def __init__(self, src: Graph):
        self.src = src
        self.g = Graph(src.name, layout="NCHW")
        self.g.opsets = {"": 13}
        self.env: dict[Value, Value] = {}  # tfl value -> ONNX float value (what ops read)

    def run(self) -> Graph:
        g = self.g
        for v in self.src.inputs:
            x = g.add_input(v.name, TensorType(v.type.shape, F32))
            self.env[v] = self.fake_quant(x, v, f"{v.name}_dq") if _quantized(v) else x
        for n in self.src.nodes:
            fn = getattr(self, "op_" + n.op_type.lower(), None)
            if n.dialect != "tfl" or fn is None:
                raise UnsupportedError(f"ONNX QDQ export has no form for {n.op} (node {n.name})")
            r = fn(n)
            act = n.attrs.get("fused_activation_function", "NONE")
            if act in _ACT:
                lo, hi = _ACT[act]
                r = self.clip(r, lo, hi)
            elif act != "NONE":
                raise UnsupportedError(f"ONNX QDQ export: fused {act} (node {n.name})")
            out = n.outputs[0]
            self.env[out] = self.fake_quant(r, out, out.name) if _quantized(out) else r
        outs = []
        for v in self.src.outputs:
            o = self.env[v]
            if o.name != v.name:
                if g.lookup(v.name) is not None:
                    g.rename(g.lookup(v.name), g.unique_name(f"{v.name}_in"))
                g.rename(o, v.name)
            outs.append(o)
        g.outputs = outs
        g.prune_unused()
        g.verify()
        return g

    # ---- building ------------------------------------------------------------------------
    def node(self, op: str, inputs, shape, dtype=F32, attrs=None, base="t") -> Value:
        g = self.g
        name = g.unique_name(base)
        return g.add_node(f"onnx.{op}", inputs, [(name, TensorType(tuple(shape), dtype))],
                          attrs or {}, name=g.unique_name(f"{op}_{base}")).outputs[0]

    def const(self, arr, base: str) -> Value:
        return self.g.add_const(self.g.unique_name(base), np.asarray(arr))

    def fake_quant(self, x: Value, v: Value, name: str) -> Value:
        """``DQ(Q(x))`` with ``v``'s per-tensor params; the DQ output is named ``name``."""
        p, dt = v.type.quant, v.type.dtype
        s = self.const(np.float32(p.scale[0]), f"{v.name}_scale")
        z = self.const(np.asarray(p.zero_point[0], dt.numpy), f"{v.name}_zero_point")
        q = self.node("QuantizeLinear", [x, s, z], x.type.shape, dt, base=f"{v.name}_q")
        if self.g.lookup(name) is not None:
            name = self.g.unique_name(name)
        return self.node("DequantizeLinear", [q, s, z], x.type.shape, F32, base=name)

    def dq_const(self, v: Value, perm=None) -> Value:
        """A constant operand: int8/int32 initializer + DequantizeLinear (per-axis kept)."""
        arr = np.asarray(v.const)
        if v.type.quant is None:
            return self.const(np.transpose(arr, perm) if perm else arr, v.name)
        p = v.type.quant
        axis = p.axis
        if perm is not None:
            arr = np.ascontiguousarray(np.transpose(arr, perm))
            axis = None if axis is None else perm.index(axis)
        q = self.const(arr, v.name)
        zp = p.zero_points().astype(v.type.dtype.numpy)
        if p.per_axis:
            s, z, attrs = self.const(p.scales(), f"{v.name}_scale"), \
                self.const(zp, f"{v.name}_zero_point"), {"axis": int(axis)}
        else:
            s = self.const(np.float32(p.scale[0]), f"{v.name}_scale")
            z, attrs = self.const(zp.reshape(()), f"{v.name}_zero_point"), {}
        return self.node("DequantizeLinear", [q, s, z], arr.shape, F32, attrs,
                         base=f"{v.name}_dq")

    def arg(self, v: Value, perm=None) -> Value:
        return self.dq_const(v, perm) if v.is_const else self.env[v]

    def transpose(self, x: Value, perm) -> Value:
        shape = [x.type.shape[p] for p in perm]
        return self.node("Transpose", [x], shape, attrs={"perm": list(perm)},
                         base=f"{x.name}_t")

    def clip(self, x: Value, lo: float, hi: float | None) -> Value:
        if hi is None:
            return self.node("Relu", [x], x.type.shape, base=f"{x.name}_relu")
        return self.node("Clip", [x, self.const(np.float32(lo), "lo"),
                                  self.const(np.float32(hi), "hi")], x.type.shape,
                         base=f"{x.name}_clip")

    # ---- windows ---------------------------------------------------------------------------
    def window(self, n: Node, op: str, inputs: list[Value], kh: int, kw: int,
               extra: dict) -> Value:
        x, out = n.inputs[0], n.outputs[0]
        _, h, w, _ = x.type.shape
        _, oh, ow, oc = out.type.shape
        sh, sw = int(n.attrs.get("stride_h", 1)), int(n.attrs.get("stride_w", 1))
        dh, dw = int(n.attrs.get("dilation_h_factor", 1)), int(n.attrs.get("dilation_w_factor", 1))
        pads = [0, 0, 0, 0]
        if n.attrs.get("padding") == "SAME":
            th = max((oh - 1) * sh + (kh - 1) * dh + 1 - h, 0)
            tw = max((ow - 1) * sw + (kw - 1) * dw + 1 - w, 0)
            pads = [th // 2, tw // 2, th - th // 2, tw - tw // 2]
        attrs = {"kernel_shape": [kh, kw], "strides": [sh, sw], "pads": pads, **extra}
        if op == "Conv":
            attrs["dilations"] = [dh, dw]
        y = self.node(op, [self.transpose(self.env[x], TO_NCHW)] + inputs, (out.type.shape[0], oc,
                                                                           oh, ow),
                      attrs=attrs, base=f"{out.name}_nchw")
        return self.transpose(y, TO_NHWC)

    def op_conv_2d(self, n: Node) -> Value:
        f = n.inputs[1]
        _, kh, kw, cin_g = f.type.shape
        group = n.inputs[0].type.shape[3] // cin_g
        ops = [self.dq_const(f, (0, 3, 1, 2))]
        if len(n.inputs) > 2 and n.inputs[2] is not None:
            ops.append(self.dq_const(n.inputs[2]))
        return self.window(n, "Conv", ops, kh, kw, {"group": int(group)})

    def op_depthwise_conv_2d(self, n: Node) -> Value:
        f = n.inputs[1]
        _, kh, kw, _ = f.type.shape
        ops = [self.dq_const(f, (3, 0, 1, 2))]
        if len(n.inputs) > 2 and n.inputs[2] is not None:
            ops.append(self.dq_const(n.inputs[2]))
        return self.window(n, "Conv", ops, kh, kw, {"group": int(n.inputs[0].type.shape[3])})

    def op_max_pool_2d(self, n: Node) -> Value:
        return self.window(n, "MaxPool", [], n.attrs["filter_height"], n.attrs["filter_width"], {})

    def op_average_pool_2d(self, n: Node) -> Value:
        return self.window(n, "AveragePool", [], n.attrs["filter_height"],
                           n.attrs["filter_width"], {})

    # ---- the rest ----------------------------------------------------------------------------
    def op_fully_connected(self, n: Node) -> Value:
        x, w, out = n.inputs[0], n.inputs[1], n.outputs[0]
        units, k = w.type.shape
        a = self.env[x]
        if len(a.type.shape) != 2:
            a = self.reshape(a, (-1, k), (int(np.prod(a.type.shape)) // k, k))
        ops = [a, self.dq_const(w)]
        if len(n.inputs) > 2 and n.inputs[2] is not None:
            ops.append(self.dq_const(n.inputs[2]))
        y = self.node("Gemm", ops, (a.type.shape[0], units), attrs={"transB": 1},
                      base=f"{out.name}_gemm")
        if tuple(y.type.shape) != tuple(out.type.shape):
            y = self.reshape(y, out.type.shape, out.type.shape)
        return y

    def reshape(self, x: Value, spec, shape) -> Value:
        return self.node("Reshape", [x, self.const(np.asarray(spec, np.int64), "shape")], shape,
                         base=f"{x.name}_r")

    def op_reshape(self, n: Node) -> Value:
        s = n.outputs[0].type.shape
        return self.reshape(self.env[n.inputs[0]], s, s)

    op_squeeze = op_expand_dims = op_reshape

    def op_transpose(self, n: Node) -> Value:
        return self.transpose(self.env[n.inputs[0]], [int(p) for p in n.inputs[1].const])

    def op_mean(self, n: Node) -> Value:
        axes = [int(a) for a in np.asarray(n.inputs[1].const).reshape(-1)]
        return self.node("ReduceMean", [self.env[n.inputs[0]]], n.outputs[0].type.shape,
                         attrs={"axes": axes, "keepdims": int(bool(n.attrs.get("keep_dims")))},
                         base=f"{n.outputs[0].name}_mean")

    def op_pad(self, n: Node) -> Value:
        p = np.asarray(n.inputs[1].const, np.int64)
        pads = self.const(np.concatenate([p[:, 0], p[:, 1]]), "pads")
        return self.node("Pad", [self.env[n.inputs[0]], pads], n.outputs[0].type.shape,
                         base=f"{n.outputs[0].name}_pad")

    def op_concatenation(self, n: Node) -> Value:
        return self.node("Concat", [self.arg(v) for v in n.inputs], n.outputs[0].type.shape,
                         attrs={"axis": int(n.attrs["axis"])}, base=f"{n.outputs[0].name}_cat")

    def op_softmax(self, n: Node) -> Value:
        if float(n.attrs.get("beta", 1.0)) != 1.0:
            raise UnsupportedError(f"ONNX QDQ export: SOFTMAX beta != 1 (node {n.name})")
        return self.node("Softmax", [self.env[n.inputs[0]]], n.outputs[0].type.shape,
                         attrs={"axis": -1}, base=f"{n.outputs[0].name}_softmax")

    def op_quantize(self, n: Node) -> Value:
        return self.env[n.inputs[0]]  # (re)quantized by the output's Q/DQ

    op_dequantize = op_quantize

    def elementwise(self, n: Node, op: str) -> Value:
        return self.node(op, [self.arg(v) for v in n.inputs], n.outputs[0].type.shape,
                         base=f"{n.outputs[0].name}_{op.lower()}")

    def __getattr__(self, name: str):
        op = "tfl." + name[3:].upper() if name.startswith("op_") else ""
        if op in _ELEMENTWISE:
            return lambda n: self.elementwise(n, _ELEMENTWISE[op])
        if op in _UNARY:
            return lambda n: self.elementwise(n, _UNARY[op])
        if op == "tfl.RELU6":
            return lambda n: self.clip(self.env[n.inputs[0]], 0.0, 6.0)
        raise AttributeError(name)


def _quantized(v: Value) -> bool:
    q = v.type.quant
    if q is not None and q.per_axis:
        raise UnsupportedError(f"ONNX QDQ export: activation %{v.name} is quantized per axis")
    return q is not None and v.type.dtype in (DType.INT8, DType.UINT8, DType.INT16)
