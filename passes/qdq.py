"""Existing ONNX QDQ quantization, read into tinyir's one notion (``QuantParams``).

``read_qdq_params(graph)`` maps each tensor that a ``QuantizeLinear`` quantizes (the
float activation) and each constant that a ``DequantizeLinear`` dequantizes (int8
weights, int32 biases) to ``QuantParams(scale, zero_point, axis)``: scalar scale =
per-tensor, 1-D scale = per-axis along the node's ``axis`` attribute (ONNX default 1).
The ONNX rounding of QuantizeLinear is half-to-even; TFLite's is half away from zero.

``params_at(graph, name)`` answers "which params does a consumer of ``name`` see": for a
``DequantizeLinear`` output it is that node's params (the QDQ idiom puts a Q -> DQ pair
on every edge), else the params the tensor itself was quantized with.
"""

from __future__ import annotations

import numpy as np

from tinyir.graph import Graph, Node
from tinyir.passes.fold_bn import const_array
from tinyir.types import QuantParams


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
