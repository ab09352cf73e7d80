"""ONNX QDQ: lowering onnxruntime's quantized models to int8 TFLite ops, and QDQ export.

* ``quantize_static`` (QDQ, per-channel int8 weights, int8 activations) output lowers to
  int8 TFLite ops whose params are the file's; tinyir's reference interpreter matches
  onnxruntime within 1 LSB on nearly every element (TFLite rounds half away from zero,
  ONNX half to even; a few requantizations differ by a step that can carry on).
* ``tinyir check --backend tflm`` then names the TFLite rules onnxruntime's params break
  (softmax output scale, concat params); tinyir's own quantization passes them.
* ``to_onnx_qdq`` writes tinyir's int8 model as ONNX QDQ; onnxruntime runs it at tinyir's
  accuracy, and it lowers back to the same int8 TFLite ops.
"""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnxruntime.quantization import (CalibrationDataReader, QuantFormat, QuantType,
                                      quantize_static)

import corpus
import tinyir
from tinyir.backends.lowering import lower_for
from tinyir.formats.onnx_format import write_onnx_bytes
from tinyir.interp import run
from tinyir.interp.tfl_quant import round_away
from tinyir.op_support.report import check_model
from tinyir.passes.qdq import read_qdq_params, to_onnx_qdq
from tinyir.types import DType

DIGITS = ("digits_lenet_bn", "digits_resdw_bn")
INT_OPS = {"tfl.CONV_2D", "tfl.DEPTHWISE_CONV_2D", "tfl.FULLY_CONNECTED", "tfl.ADD",
           "tfl.MAX_POOL_2D", "tfl.MEAN", "tfl.PAD", "tfl.RESHAPE", "tfl.TRANSPOSE",
           "tfl.CONCATENATION", "tfl.LOGISTIC", "tfl.SOFTMAX"}


def _ort_qdq(src, dst, feeds: list[dict], act=QuantType.QInt8, fmt=QuantFormat.QDQ):
    class Reader(CalibrationDataReader):
        def __init__(self):
            self.it = iter(feeds)

        def get_next(self):
            return next(self.it, None)

    quantize_static(str(src), str(dst), Reader(), quant_format=fmt,
                    per_channel=True, activation_type=act, weight_type=QuantType.QInt8)


def _errors(graph) -> set[str]:
    return {f.rule for f in check_model(graph, "m", "tflm").findings if f.severity == "error"}


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    trained = corpus.model("trained")
    x_train = corpus.digits_train_images(200)
    test = np.load(trained / "digits_test.npz")
    tmp = tmp_path_factory.mktemp("qdq")
    calib = x_train[:200]
    np.savez(tmp / "calib.npz", input=calib)
    ort_models = {}
    for name in DIGITS:
        ort_models[name] = tmp / f"ort_{name}.onnx"
        _ort_qdq(trained / f"{name}.onnx", ort_models[name],
                 [{"input": calib[i:i + 1]} for i in range(len(calib))])
    return {"trained": trained, "tmp": tmp, "ort": ort_models, "x": test["x_test"],
            "y": test["y_test"]}


@pytest.mark.parametrize("name", DIGITS)
def test_ort_qdq_lowers_to_int8_ops_matching_onnxruntime(digits, name):
    path = digits["ort"][name]
    low = lower_for("tflm", tinyir.load(path))
    g = low.graph
    assert low.findings == []
    assert {n.op for n in g.nodes} - INT_OPS == {"tfl.QUANTIZE", "tfl.DEQUANTIZE"}
    for n in g.nodes:
        if n.op in INT_OPS:
            assert all(v.type.dtype in (DType.INT8, DType.INT32) for v in n.inputs + n.outputs
                       if not (v.is_const and v.type.quant is None)), n.name
    # the file's per-channel weight scales are kept exactly
    file_scales = {p.scale for p in read_qdq_params(tinyir.load(path)).values() if p.per_axis}
    conv = next(n for n in g.nodes if n.op == "tfl.CONV_2D")
    assert conv.inputs[1].type.quant.axis == 0 and conv.inputs[1].type.quant.scale in file_scales
    # reference interpreter vs onnxruntime, in steps of the output scale
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    step = next(n for n in g.nodes if n.op == "tfl.DEQUANTIZE").inputs[0].type.quant.scale[0]
    x = digits["x"][:150]
    ours = np.concatenate([run(g, {g.inputs[0].name: x[i:i + 1]})[g.outputs[0].name]
                           for i in range(len(x))])
    theirs = sess.run(None, {"input": x})[0] if sess.get_inputs()[0].shape[0] != 1 else \
        np.concatenate([sess.run(None, {"input": x[i:i + 1]})[0] for i in range(len(x))])
    lsb = np.abs(ours - theirs) / step
    print(f"{name}: max |tinyir - onnxruntime| = {lsb.max():.2f} LSB, "
          f"{100 * np.mean(lsb <= 1.001):.2f}% within 1 LSB")
    assert np.mean(lsb <= 1.001) >= 0.97
    assert lsb.max() <= 4.001
    assert np.mean(ours.argmax(1) == theirs.argmax(1)) >= 0.99
    # onnxruntime's digits params happen to satisfy TFLM (no softmax, no concat)
    assert _errors(tinyir.load(path)) == set()


@pytest.mark.parametrize("name", DIGITS)
def test_qoperator_model_lowers_through_its_qdq_form(digits, name):
    """QLinearConv / QGemm / QLinearAdd become DQ -> float op -> Q, then lower as QDQ; the
    ops onnxruntime left float (BN, Relu, MaxPool) stay float between DEQUANTIZE/QUANTIZE."""
    x = digits["x"][:100]
    calib = np.load(digits["tmp"] / "calib.npz")["input"][:100]
    path = digits["tmp"] / f"qop_{name}.onnx"
    _ort_qdq(digits["trained"] / f"{name}.onnx", path,
             [{"input": calib[i:i + 1]} for i in range(len(calib))], fmt=QuantFormat.QOperator)
    assert {"QLinearConv", "QGemm"} <= {n.op_type for n in onnx.load(path).graph.node}
    low = lower_for("tflm", tinyir.load(path))
    assert low.findings == []
    g = low.graph
    conv = next(n for n in g.nodes if n.op == "tfl.CONV_2D")
    assert conv.inputs[0].type.dtype == DType.INT8 and conv.inputs[1].type.quant.axis == 0
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    ours = np.concatenate([run(g, {g.inputs[0].name: x[i:i + 1]})[g.outputs[0].name]
                           for i in range(len(x))])
    theirs = np.concatenate([sess.run(None, {"input": x[i:i + 1]})[0] for i in range(len(x))])
    step = next(n for n in g.nodes if n.op == "tfl.DEQUANTIZE" and g.outputs[0] in n.outputs
                ).inputs[0].type.quant.scale[0]
    lsb = np.abs(ours - theirs) / step
    print(f"{name} (QOperator): max {lsb.max():.2f} LSB, {100 * np.mean(lsb <= 1.001):.2f}% "
          "within 1 LSB")
    assert np.mean(ours.argmax(1) == theirs.argmax(1)) >= 0.99
    assert np.mean(lsb <= 1.001) >= 0.95


def _rules_model(tmp_path):
    from benchmarks.bench_quantize import rules_model

    rules_model(tmp_path / "rules.onnx")
    calib = np.random.default_rng(1).normal(0, 1, (64, 3, 8, 8)).astype(np.float32)
    np.savez(tmp_path / "calib.npz", x=calib)
    return tmp_path / "rules.onnx", [{"x": calib[i:i + 1]} for i in range(len(calib))]


def test_tflm_rules_fire_on_ort_qdq_but_not_on_tinyir(tmp_path):
    src, feeds = _rules_model(tmp_path)
    _ort_qdq(src, tmp_path / "ort.onnx", feeds)
    ort_errors = _errors(tinyir.load(tmp_path / "ort.onnx"))
    assert {"tflm.softmax.int8-output", "tflm.concat.same-qparams"} <= ort_errors
    assert not any(r.startswith("tflm.lowering") for r in ort_errors)
    g, _ = tinyir.run_passes(tinyir.load(src), f"quantize{{calib={tmp_path / 'calib.npz'}}}")
    assert _errors(g) == set()


def test_uint8_activations_are_kept_and_refused_by_the_dtype_rule(tmp_path):
    src, feeds = _rules_model(tmp_path)
    _ort_qdq(src, tmp_path / "ort_u8.onnx", feeds, act=QuantType.QUInt8)
    low = lower_for("tflm", tinyir.load(tmp_path / "ort_u8.onnx"))
    cat = next(n for n in low.graph.nodes if n.op == "tfl.CONCATENATION")
    assert cat.outputs[0].type.dtype == DType.UINT8
    assert "tflm.op.dtype" in _errors(tinyir.load(tmp_path / "ort_u8.onnx"))


@pytest.mark.parametrize("name", DIGITS)
def test_qdq_export_runs_in_onnxruntime_at_tinyir_accuracy(digits, name):
    calib = digits["tmp"] / "calib.npz"
    g, _ = tinyir.run_passes(tinyir.load(digits["trained"] / f"{name}.onnx"),
                             f"fold-bn,quantize{{calib={calib}}}")
    path = digits["tmp"] / f"{name}_qdq.onnx"
    path.write_bytes(write_onnx_bytes(to_onnx_qdq(g)))
    m = onnx.load(path)
    ops = {n.op_type for n in m.graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    dtypes = {onnx.helper.tensor_dtype_to_np_dtype(t.data_type) for t in m.graph.initializer}
    assert np.dtype("int8") in dtypes and np.dtype("int32") in dtypes
    assert any(a.name == "axis" for n in m.graph.node if n.op_type == "DequantizeLinear"
               for a in n.attribute)
    x, y = digits["x"], digits["y"]
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    ort_pred = np.array([sess.run(None, {"input": x[i:i + 1]})[0].argmax() for i in range(len(x))])
    s, z = g.inputs[0].type.quant.scale[0], g.inputs[0].type.quant.zero_point[0]
    xq = np.clip(round_away(x / np.float32(s)) + z, -128, 127).astype(np.int8)
    ref = np.array([run(g, {g.inputs[0].name: xq[i:i + 1]})[g.outputs[0].name].argmax()
                    for i in range(len(x))])
    acc_ort, acc_ref = np.mean(ort_pred == y), np.mean(ref == y)
    print(f"{name}: onnxruntime on tinyir's QDQ {100 * acc_ort:.2f}%, tinyir int8 "
          f"{100 * acc_ref:.2f}%")
    assert abs(acc_ort - acc_ref) <= 0.005
    # and it lowers back to int8 TFLite ops that pass the TFLM checks
    assert _errors(tinyir.load(path)) == set()


def test_int8_graph_io_stays_int8(tmp_path):
    """A model whose input is already int8 (read by a DequantizeLinear) and whose output is
    a QuantizeLinear result keeps int8 I/O with the file's params: no QUANTIZE/DEQUANTIZE."""
    from onnx import TensorProto, helper, numpy_helper

    inits = [numpy_helper.from_array(np.float32(0.05), "s"),
             numpy_helper.from_array(np.int8(-3), "z"),
             numpy_helper.from_array(np.float32(0.03), "s2"),
             numpy_helper.from_array(np.int8(-128), "z2")]
    nodes = [helper.make_node("DequantizeLinear", ["x", "s", "z"], ["xf"]),
             helper.make_node("Relu", ["xf"], ["r"]),
             helper.make_node("QuantizeLinear", ["r", "s2", "z2"], ["y"])]
    g = helper.make_graph(nodes, "t", [helper.make_tensor_value_info("x", TensorProto.INT8,
                                                                     [1, 3, 4, 4])],
                          [helper.make_tensor_value_info("y", TensorProto.INT8, [1, 3, 4, 4])],
                          inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 8
    onnx.save(m, tmp_path / "io.onnx")
    low = lower_for("tflm", tinyir.load(tmp_path / "io.onnx"))
    lg = low.graph
    assert [n.op for n in lg.nodes] == ["tfl.RELU"]
    assert lg.inputs[0].type.quant.zero_point == (-3,) and lg.outputs[0].name == "y"
    assert lg.outputs[0].type.dtype == DType.INT8 and lg.outputs[0].type.quant.scale[0] == \
        float(np.float32(0.03))
    x = np.random.default_rng(0).integers(-128, 127, (1, 3, 4, 4)).astype(np.int8)
    want = ort.InferenceSession(str(tmp_path / "io.onnx"),
                                providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    assert np.array_equal(run(lg, {"x": x})["y"], want)
