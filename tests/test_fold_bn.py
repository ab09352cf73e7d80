"""fold-bn: exact folds (checked in onnxruntime), refusals with reasons, and the corpus."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import helper, numpy_helper

import corpus
from onnx_util import random_feeds, rel_err, session
from tinyir.formats import load
from tinyir.formats.onnx_format import read_onnx, write_onnx_bytes
from tinyir.passes import run_passes

RNG = np.random.default_rng(0)


def _bn(name, x, out, c, eps=1e-3):
    inits = [numpy_helper.from_array(a.astype(np.float32), f"{name}.{k}") for k, a in (
        ("g", RNG.uniform(-1.5, 1.5, c)), ("b", RNG.normal(0, 1, c)),
        ("m", RNG.normal(0, 1, c)), ("v", RNG.uniform(0.1, 2, c)))]
    node = helper.make_node("BatchNormalization", [x] + [i.name for i in inits], [out],
                            name=name, epsilon=eps)
    return node, inits


def _model(nodes, inits, x_shape, opset=13):
    """A model whose output %y gets its shape from onnx's inference."""
    g = helper.make_graph(nodes, "m", [helper.make_tensor_value_info("x", 1, x_shape)],
                          [helper.make_tensor_value_info("y", 1, None)], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    return onnx.shape_inference.infer_shapes(m).SerializeToString()


def _fold(data: bytes):
    g, (res,) = run_passes(read_onnx(data), "fold-bn")
    s0 = session(data)
    feeds = random_feeds(s0, seed=1)
    ref = s0.run(None, feeds)
    got = session(write_onnx_bytes(g)).run(None, feeds)
    err = max(rel_err(a, b) for a, b in zip(ref, got))
    return g, res.stats, err


def _ops(g):
    return [n.op_type for n in g.nodes]


def _w(*shape):
    return RNG.normal(0, 0.5, shape).astype(np.float32)


@pytest.mark.parametrize("group", [1, 2, 8])
def test_conv_bn_folds_exactly_with_bias(group):
    w = numpy_helper.from_array(_w(8, 8 // group, 3, 3), "w")
    b = numpy_helper.from_array(_w(8), "b")
    conv = helper.make_node("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1], group=group)
    bn, inits = _bn("bn", "c", "y", 8)
    g, stats, err = _fold(_model([conv, bn], [w, b] + inits, [1, 8, 6, 6]))
    assert _ops(g) == ["Conv"] and stats["folded_into_producer"] == 1
    assert err <= 1e-5


@pytest.mark.parametrize("group", [1, 2, 4])
def test_conv_transpose_bn_uses_the_group_aware_axis(group):
    w = numpy_helper.from_array(_w(8, 12 // group, 3, 3), "w")
    ct = helper.make_node("ConvTranspose", ["x", "w"], ["c"], group=group, strides=[2, 2])
    bn, inits = _bn("bn", "c", "y", 12)
    g, stats, err = _fold(_model([ct, bn], [w] + inits, [1, 8, 4, 4]))
    assert _ops(g) == ["ConvTranspose"] and err <= 1e-5


@pytest.mark.parametrize("trans_b", [0, 1])
def test_gemm_and_matmul_bn_fold(trans_b):
    w = numpy_helper.from_array(_w(6, 10) if trans_b else _w(10, 6), "w")
    c = numpy_helper.from_array(_w(6), "c")
    gemm = helper.make_node("Gemm", ["x", "w", "c"], ["h"], transB=trans_b, beta=0.5, alpha=2.0)
    bn, inits = _bn("bn", "h", "y", 6)
    g, _, err = _fold(_model([gemm, bn], [w, c] + inits, [3, 10]))
    assert _ops(g) == ["Gemm"] and err <= 1e-5
    mm = helper.make_node("MatMul", ["x", "w2"], ["h"])
    bn, inits = _bn("bn", "h", "y", 6)
    g, _, err = _fold(_model([mm, bn], [numpy_helper.from_array(_w(10, 6), "w2")] + inits,
                             [3, 10]))
    assert _ops(g) == ["Gemm"] and err <= 1e-5


def test_bn_before_1x1_conv_folds_forward():
    bn, inits = _bn("bn", "x", "n", 4)
    conv = helper.make_node("Conv", ["n", "w"], ["y"])
    g, stats, err = _fold(_model([bn, conv], inits + [numpy_helper.from_array(_w(5, 4, 1, 1), "w")],
                                 [1, 4, 5, 5]))
    assert _ops(g) == ["Conv"] and stats["folded_into_consumer"] == 1 and err <= 1e-5


def test_bn_before_padded_3x3_conv_is_not_folded_forward_and_says_why():
    bn, inits = _bn("bn", "x", "n", 4)
    conv = helper.make_node("Conv", ["n", "w"], ["y"], pads=[1, 1, 1, 1])
    g, stats, err = _fold(_model([bn, conv], inits + [numpy_helper.from_array(_w(5, 4, 3, 3), "w")],
                                 [1, 4, 5, 5]))
    assert "BatchNormalization" not in _ops(g) and stats["to_mul_add"] == 1
    assert any("reads zero padding" in r for r in stats["refused"])
    assert err <= 1e-5


def test_shared_weight_is_refused_with_its_reason():
    w = numpy_helper.from_array(_w(4, 4, 1, 1), "w")
    c1 = helper.make_node("Conv", ["x", "w"], ["c1"], name="conv1")
    c2 = helper.make_node("Conv", ["x", "w"], ["c2"], name="conv2")
    bn, inits = _bn("bn", "c1", "n", 4)
    add = helper.make_node("Add", ["n", "c2"], ["y"])
    g, stats, err = _fold(_model([c1, c2, bn, add], [w] + inits, [1, 4, 3, 3]))
    assert any("weight %w is shared with conv2" in r for r in stats["refused"])
    assert err <= 1e-5  # kept as an exact Mul + Add instead
    assert g.value("w").const is not None  # the shared weight is untouched


def test_training_mode_bn_is_refused():
    bn, inits = _bn("bn", "x", "y", 3)
    bn.attribute.append(helper.make_attribute("training_mode", 1))
    m = onnx.load_from_string(_model([bn], inits, [2, 3], opset=15))
    m.graph.output[0].CopyFrom(helper.make_tensor_value_info("y", 1, [2, 3]))
    g, (res,) = run_passes(read_onnx(m.SerializeToString()), "fold-bn")
    assert "BatchNormalization" in _ops(g)
    assert any("training mode" in r for r in res.stats["refused"])


@pytest.mark.parametrize("path", corpus.files("**/*.onnx"))
def test_corpus_no_bn_left_where_folding_is_exact(path):
    g = load(path)
    if not any(n.op == "onnx.BatchNormalization" for _, n in g.walk()):
        pytest.skip("no BatchNormalization in this model")
    data = path.read_bytes()
    folded, (res,) = run_passes(load(path), "fold-bn")
    left = [n for _, n in folded.walk() if n.op == "onnx.BatchNormalization"]
    for n in left:  # only malformed BNs may stay, each with its reason
        assert any(r.startswith(f"{n.name}:") and "malformed" in r for r in res.stats["refused"])
    try:
        s0 = session(data)
        feeds = random_feeds(s0)
        ref = s0.run(None, feeds)
    except Exception:
        return  # onnxruntime refuses the original (hls4ml_three_layer_bn_keras)
    got = session(write_onnx_bytes(folded)).run(None, feeds)
    assert max(rel_err(a, b) for a, b in zip(ref, got)) <= 1e-5
