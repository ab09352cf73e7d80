"""ONNX -> TFLite/TFLM lowering (backends/tflm/lower*.py).

Oracles: onnxruntime on the ONNX model, the reference interpreter on the lowered graph,
and the tflite-micro interpreter (in a child process) on the exported .tflite.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import tinyir.interp
from corpus import files
from onnx_util import random_feeds, rel_err, session
from tinyir.backends.tflm.lower import (DYNAMIC_SHAPE, NO_LOWERING, LowerTFLM,
                                        lower_onnx_to_tfl)
from tinyir.backends.tflm.runner import run_in_tflm
from tinyir.formats import load
from tinyir.formats.onnx_format import read_onnx
from tinyir.formats.tflite_format import write_tflite_bytes
from tinyir.passes.base import PASSES
from tinyir.types import DType

KWS = Path(tinyir.__file__).parent / "examples" / "kws_cnn.onnx"
MUST_LOWER = {"digits_lenet_bn.onnx", "digits_resdw_bn.onnx", "mlperf_ad01_fp32.onnx",
              "mlperf_ic_resnet8_fp32.onnx", "mlperf_vww_mbv1_fp32.onnx",
              "tf_mobilenet_v1_025_128_fp32.onnx", "tflm_hello_world_fp32.onnx",
              "onnx2c_atmega_mnist.onnx", "onnxzoo_mnist8.onnx",
              "hls4ml_conv1d_small_keras.onnx", "kws_cnn.onnx"}
# fully lowered except for ops TFLM has no form of
ONLY_FINDINGS_ON = {"hls4ml_conv2d_small_mp_keras.onnx": {"onnx.Selu"}}
TOL = 1e-4

def run_tflm(graph, feeds: dict, tmp_path: Path) -> list[np.ndarray]:
    """The graph exported to .tflite and run once in tflite-micro (child process)."""
    (tmp_path / "m.tflite").write_bytes(write_tflite_bytes(graph))
    run = run_in_tflm(tmp_path / "m.tflite", 96 << 20, [feeds[v.name] for v in graph.inputs],
                      outputs=True, timeout=300)
    assert run.ok, run.stderr[-2000:]
    return run.outputs[:len(graph.outputs)]


# ---- the corpus -------------------------------------------------------------------------

@pytest.mark.parametrize("path", files("**/*.onnx") + [pytest.param(KWS, id="examples/kws_cnn")])
def test_corpus_lowers_or_names_nodes(path, tmp_path):
    data = path.read_bytes()
    try:
        sess = session(data)
    except Exception as e:  # noqa: BLE001 - the oracle cannot run it: nothing to compare
        pytest.skip(f"onnxruntime cannot run {path.name}: {str(e)[:120]}")
    graph = load(path)
    names = {n.name for n in graph.nodes}
    low = lower_onnx_to_tfl(graph.copy())
    low.graph.verify()
    left = [n for n in low.graph.nodes if n.dialect != "tfl"]
    assert all(f.rule in (NO_LOWERING, DYNAMIC_SHAPE) and f.node in names for f in low.findings)
    assert {n.name for n in left} == {f.node for f in low.findings}
    assert all(o in names for o in low.origin.values())
    if path.name in ONLY_FINDINGS_ON:
        assert {n.op for n in left} == ONLY_FINDINGS_ON[path.name]
    if left:
        assert path.name not in MUST_LOWER, [f.message for f in low.findings][:5]
        return
    assert low.graph.layout == "NHWC"
    assert [v.name for v in low.graph.outputs] == [v.name for v in graph.outputs]
    if any(v.type.dtype == DType.UINT8 for v in low.graph.values if not v.is_const):
        return  # uint8 QDQ keeps the file's params; TFLM refuses uint8 (tflm.op.dtype)
    feeds = random_feeds(sess)
    want = sess.run(None, feeds)
    got = tinyir.interp.run(low.graph, feeds)
    for w, v in zip(want, low.graph.outputs):
        assert rel_err(w, got[v.name].reshape(w.shape)) <= TOL, v.name
    for w, g in zip(want, run_tflm(low.graph, feeds, tmp_path)):
        assert rel_err(w, g.reshape(w.shape)) <= TOL


# ---- unit tests: small ONNX graphs ------------------------------------------------------

def _model(nodes, inputs, outputs, inits) -> tuple[bytes, object]:
    g = helper.make_graph(nodes, "t", [helper.make_tensor_value_info(n, TensorProto.FLOAT, s)
                                       for n, s in inputs],
                          [helper.make_tensor_value_info(n, TensorProto.FLOAT, None)
                           for n in outputs],
                          [numpy_helper.from_array(np.asarray(a, np.float32), k)
                           for k, a in inits.items()])
    m = onnx.shape_inference.infer_shapes(helper.make_model(
        g, opset_imports=[helper.make_opsetid("", 13)], ir_version=8))
    data = m.SerializeToString()
    return data, read_onnx(data, "t.onnx")


def _check(data, graph, seed=0):
    """Lower, verify, and compare with onnxruntime; returns the Lowered result."""
    low = lower_onnx_to_tfl(graph.copy())
    low.graph.verify()
    sess = session(data)
    feeds = random_feeds(sess, seed)
    got = tinyir.interp.run(low.graph, feeds)
    for w, v in zip(sess.run(None, feeds), low.graph.outputs):
        assert rel_err(w, got[v.name]) <= 1e-5
    return low


def _ops(low) -> list[str]:
    return [n.op for n in low.graph.nodes]


def _node(low, op):
    return next(n for n in low.graph.nodes if n.op == op)


RNG = np.random.default_rng(7)


def _w(*shape):
    return RNG.standard_normal(shape).astype(np.float32)


def test_conv_weights_become_ohwi_and_io_keeps_nchw():
    w = _w(4, 3, 3, 3)
    data, g = _model([helper.make_node("Conv", ["x", "w", "b"], ["y"], pads=[1, 1, 1, 1])],
                     [("x", [1, 3, 8, 8])], ["y"], {"w": w, "b": _w(4)})
    low = _check(data, g)
    assert _ops(low) == ["tfl.TRANSPOSE", "tfl.CONV_2D", "tfl.TRANSPOSE"]
    conv = _node(low, "tfl.CONV_2D")
    assert conv.attrs["padding"] == "SAME"
    np.testing.assert_array_equal(conv.inputs[1].const, w.transpose(0, 2, 3, 1))
    assert low.graph.inputs[0].type.shape == (1, 3, 8, 8)
    assert low.graph.outputs[0].type.shape == (1, 4, 8, 8)
    assert low.origin[conv] == g.nodes[0].name


def test_depthwise_detection():
    w = _w(6, 1, 3, 3)  # group == C_in == 3, multiplier 2
    data, g = _model([helper.make_node("Conv", ["x", "w"], ["y"], group=3, strides=[2, 2])],
                     [("x", [1, 3, 9, 9])], ["y"], {"w": w})
    low = _check(data, g)
    dw = _node(low, "tfl.DEPTHWISE_CONV_2D")
    assert dw.attrs["depth_multiplier"] == 2 and dw.attrs["padding"] == "VALID"
    np.testing.assert_array_equal(dw.inputs[1].const, w.transpose(1, 2, 3, 0))
    # group 2 of 4 channels is a grouped CONV_2D, not depthwise
    data, g = _model([helper.make_node("Conv", ["x", "w"], ["y"], group=2)],
                     [("x", [1, 4, 5, 5])], ["y"], {"w": _w(4, 2, 1, 1)})
    assert "tfl.DEPTHWISE_CONV_2D" not in _ops(_check(data, g))


def _bn_inits(c):
    return {"s": RNG.uniform(0.5, 2, c), "bb": _w(c), "m": _w(c), "v": RNG.uniform(0.5, 2, c)}


def test_bn_folds_into_conv_exactly():
    data, g = _model([helper.make_node("Conv", ["x", "w", "b"], ["c"]),
                      helper.make_node("BatchNormalization", ["c", "s", "bb", "m", "v"], ["y"])],
                     [("x", [1, 3, 6, 6])], ["y"], {"w": _w(4, 3, 3, 3), "b": _w(4), **_bn_inits(4)})
    low = _check(data, g)
    assert _ops(low) == ["tfl.TRANSPOSE", "tfl.CONV_2D", "tfl.TRANSPOSE"]


def test_bn_refuses_to_fold_into_shared_weight():
    data, g = _model([helper.make_node("Conv", ["x", "w"], ["c1"]),
                      helper.make_node("Conv", ["x", "w"], ["y2"]),
                      helper.make_node("BatchNormalization", ["c1", "s", "bb", "m", "v"], ["y"])],
                     [("x", [1, 3, 6, 6])], ["y", "y2"], {"w": _w(4, 3, 3, 3), **_bn_inits(4)})
    from tinyir.passes.fold_bn import FoldBatchNorm
    res = FoldBatchNorm(standalone=False).run(g.copy())
    assert any("weight %w is shared" in r for r in res.stats["refused"])
    low = _check(data, g)
    assert "tfl.MUL" in _ops(low)
    convs = [n for n in low.graph.nodes if n.op == "tfl.CONV_2D"]
    assert len(convs) == 2
    np.testing.assert_array_equal(convs[0].inputs[1].const, convs[1].inputs[1].const)


def test_activation_fusion():
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"]), helper.make_node("Relu", ["c"], ["r"]),
             helper.make_node("Flatten", ["r"], ["f"]),
             helper.make_node("Gemm", ["f", "fw"], ["g"], transB=1),
             helper.make_node("Clip", ["g", "lo", "hi"], ["y"])]
    data, g = _model(nodes, [("x", [1, 2, 3, 3])], ["y"],
                     {"w": _w(4, 2, 3, 3), "fw": _w(5, 4), "lo": np.float32(0), "hi": np.float32(6)})
    low = _check(data, g)
    assert _node(low, "tfl.CONV_2D").attrs["fused_activation_function"] == "RELU"
    assert _node(low, "tfl.FULLY_CONNECTED").attrs["fused_activation_function"] == "RELU6"
    assert not {"tfl.RELU", "tfl.RELU6"} & set(_ops(low))
    # two readers: the conv result is needed unclamped, so RELU stays an op
    data, g = _model([helper.make_node("Conv", ["x", "w"], ["c"]),
                      helper.make_node("Relu", ["c"], ["y"])],
                     [("x", [1, 2, 3, 3])], ["y", "c"], {"w": _w(4, 2, 3, 3)})
    low = _check(data, g)
    assert "tfl.RELU" in _ops(low)
    # Clip(-1, 1) after an op that cannot fuse: TFLM has no RELU_N1_TO_1 kernel
    data, g = _model([helper.make_node("Clip", ["x", "lo", "hi"], ["y"])], [("x", [1, 4])], ["y"],
                     {"lo": np.float32(-1), "hi": np.float32(1)})
    assert _ops(_check(data, g)) == ["tfl.MAXIMUM", "tfl.MINIMUM"]


def test_flatten_before_fc_permutes_weights_not_activations():
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"]), helper.make_node("Flatten", ["c"], ["f"]),
             helper.make_node("Gemm", ["f", "fw", "fb"], ["y"], transB=1)]
    data, g = _model(nodes, [("x", [1, 2, 5, 5])], ["y"],
                     {"w": _w(3, 2, 3, 3), "fw": _w(4, 27), "fb": _w(4)})
    low = _check(data, g)
    assert _ops(low) == ["tfl.TRANSPOSE", "tfl.CONV_2D", "tfl.RESHAPE", "tfl.FULLY_CONNECTED"]
    fc = _node(low, "tfl.FULLY_CONNECTED")
    w = g.value("fw").const
    nhwc_order = np.arange(27).reshape(3, 3, 3).transpose(1, 2, 0).reshape(-1)
    np.testing.assert_array_equal(fc.inputs[1].const, w[:, nhwc_order])


def test_pads_other_than_same_get_a_pad_and_avgpool_counts_exactly():
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], pads=[2, 0, 1, 1]),
             helper.make_node("AveragePool", ["c"], ["y"], kernel_shape=[3, 3], strides=[2, 2],
                              pads=[1, 1, 1, 1])]
    data, g = _model(nodes, [("x", [1, 2, 7, 7])], ["y"], {"w": _w(3, 2, 3, 3)})
    low = _check(data, g)
    assert _ops(low)[:3] == ["tfl.TRANSPOSE", "tfl.PAD", "tfl.CONV_2D"]
    assert "tfl.AVERAGE_POOL_2D" in _ops(low)


def test_transposes_cancel_and_concat_axis_is_remapped():
    nodes = [helper.make_node("Transpose", ["x"], ["t"], perm=[0, 3, 1, 2]),  # NHWC input
             helper.make_node("Conv", ["t", "w"], ["c"]),
             helper.make_node("Concat", ["c", "c"], ["cc"], axis=1),
             helper.make_node("Transpose", ["cc"], ["y"], perm=[0, 2, 3, 1])]
    data, g = _model(nodes, [("x", [1, 5, 5, 2])], ["y"], {"w": _w(3, 2, 1, 1)})
    low = _check(data, g)
    assert _ops(low) == ["tfl.CONV_2D", "tfl.CONCATENATION"]
    assert _node(low, "tfl.CONCATENATION").attrs["axis"] == 3


def test_op_without_lowering_stays_with_a_finding():
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"]), helper.make_node("Selu", ["c"], ["y"],
                                                                           name="my_selu")]
    data, g = _model(nodes, [("x", [1, 2, 4, 4])], ["y"], {"w": _w(3, 2, 1, 1)})
    low = _check(data, g)
    (f,) = low.findings
    assert (f.rule, f.node, f.op, f.category, f.severity) == \
        (NO_LOWERING, "my_selu", "onnx.Selu", "lowering", "error")
    assert "Selu" in f.message
    selu = _node(low, "onnx.Selu")
    assert selu.inputs[0].type.shape == (1, 3, 4, 4)  # it reads ONNX (NCHW) order


def test_dynamic_shapes_are_findings():
    data, g = _model([helper.make_node("Relu", ["x"], ["y"], name="r")], [("x", ["N", 4])], ["y"], {})
    low = lower_onnx_to_tfl(g.copy())
    low.graph.verify()
    assert [(f.rule, f.node) for f in low.findings] == [(DYNAMIC_SHAPE, "r")]


def test_pass_is_registered():
    assert PASSES["lower-tflm"] is LowerTFLM
    data, g = _model([helper.make_node("Relu", ["x"], ["y"])], [("x", [1, 4])], ["y"], {})
    res = LowerTFLM().run(g)
    assert res.changed and [n.op for n in res.graph.nodes] == ["tfl.RELU"]
