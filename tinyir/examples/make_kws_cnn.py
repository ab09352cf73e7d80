"""Build the shipped example: a small keyword-spotting DS-CNN in ONNX (NCHW, float32).

Shape of the MLPerf Tiny KWS reference model, scaled down: 49x10 MFCC input,
Conv 10x4/2 (32 ch) + BatchNorm + ReLU, two depthwise-separable blocks (depthwise 3x3 +
BatchNorm + ReLU, pointwise 1x1 + BatchNorm + ReLU), global average pooling, a fully
connected layer to 12 classes and Softmax.  Weights are seeded random numbers (the
model is for trying the tools, not for recognising words).

    python -m tinyir.examples.make_kws_cnn    # rewrites kws_cnn.onnx beside this file
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from tinyir.examples import KWS_CNN


def build(seed: int = 0) -> onnx.ModelProto:
    rng = np.random.default_rng(seed)
    inits, nodes = [], []

    def const(name, arr):
        inits.append(numpy_helper.from_array(np.asarray(arr, np.float32), name))
        return name

    def conv_bn_relu(x, name, cin, cout, k, stride, pads, group=1):
        w = const(f"{name}.weight", rng.normal(0, np.sqrt(2 / (cin // group * k[0] * k[1])),
                                               (cout, cin // group, *k)))
        b = const(f"{name}.bias", np.zeros(cout))
        nodes.append(helper.make_node("Conv", [x, w, b], [f"{name}.conv"], name=f"{name}/conv",
                                      kernel_shape=list(k), strides=list(stride), pads=pads,
                                      group=group))
        bn = [const(f"{name}.bn.{p}", v) for p, v in (
            ("scale", rng.uniform(0.5, 1.5, cout)), ("bias", rng.normal(0, 0.1, cout)),
            ("mean", rng.normal(0, 0.1, cout)), ("var", rng.uniform(0.5, 1.5, cout)))]
        nodes.append(helper.make_node("BatchNormalization", [f"{name}.conv", *bn],
                                      [f"{name}.bn"], name=f"{name}/bn", epsilon=1e-5))
        nodes.append(helper.make_node("Relu", [f"{name}.bn"], [f"{name}.out"],
                                      name=f"{name}/relu"))
        return f"{name}.out"

    x = conv_bn_relu("mfcc", "stem", 1, 32, (10, 4), (2, 2), [4, 1, 5, 2])
    for i in (1, 2):
        x = conv_bn_relu(x, f"block{i}.dw", 32, 32, (3, 3), (1, 1), [1, 1, 1, 1], group=32)
        x = conv_bn_relu(x, f"block{i}.pw", 32, 32, (1, 1), (1, 1), [0, 0, 0, 0])
    nodes.append(helper.make_node("GlobalAveragePool", [x], ["pool"], name="pool"))
    nodes.append(helper.make_node("Flatten", ["pool"], ["flat"], name="flatten", axis=1))
    w = const("fc.weight", rng.normal(0, 0.2, (12, 32)))
    b = const("fc.bias", np.zeros(12))
    nodes.append(helper.make_node("Gemm", ["flat", w, b], ["logits"], name="fc", transB=1))
    nodes.append(helper.make_node("Softmax", ["logits"], ["probs"], name="softmax", axis=1))
    graph = helper.make_graph(
        nodes, "kws_cnn", [helper.make_tensor_value_info("mfcc", TensorProto.FLOAT, [1, 1, 49, 10])],
        [helper.make_tensor_value_info("probs", TensorProto.FLOAT, [1, 12])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)],
                              producer_name="tinyir.examples.make_kws_cnn")
    model.ir_version = 8
    onnx.checker.check_model(model, full_check=True)
    return model


if __name__ == "__main__":
    KWS_CNN.write_bytes(build().SerializeToString())
    print(f"wrote {KWS_CNN}")
