"""quantize: TFLite-spec int8 params on small graphs, and digits end to end in tflite-micro.

Unit tests build small ONNX models, quantize them (the pass lowers to the TFLite dialect
first) and read the params off the values.  The digits tests calibrate on at most 200
*training* images, export .tflite, run the test split in the tflite-micro interpreter (a
child process) and compare with float accuracy and, bit for bit, with tinyir's int8
reference interpreter.  benchmarks/bench_quantize.py has the full table.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import corpus
import tinyir
from tinyir.errors import PassError
from tinyir.formats.tflite_format import read_tflite, write_tflite_bytes
from tinyir.interp import run
from tinyir.interp.tfl_quant import round_away
from tinyir.passes import parse_pipeline, run_passes
from tinyir.passes.quantize import Quantize
from tinyir.types import DType

# ---- small models -------------------------------------------------------------------------


def _model(tmp_path, nodes, inits, out_shape, in_shape=(1, 3, 8, 8), name="m.onnx"):
    graph = helper.make_graph(
        nodes, "t", [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(in_shape))],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, list(out_shape))],
        [numpy_helper.from_array(np.asarray(a, np.float32), n) for n, a in inits.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    path = tmp_path / name
    onnx.save(model, path)
    return path


def _calib(tmp_path, shape=(32, 3, 8, 8), seed=0):
    path = tmp_path / "calib.npz"
    np.savez(path, x=np.random.default_rng(seed).normal(0, 1, shape).astype(np.float32))
    return path


def _conv_dw_fc(tmp_path, zero_channel=False):
    rng = np.random.default_rng(1)
    w1 = rng.normal(0, 0.5, (6, 3, 3, 3))
    if zero_channel:
        w1[2] = 0.0  # a BN with gamma = 0 folded into the conv
    inits = {"w1": w1, "b1": rng.normal(0, 0.2, 6), "wd": rng.normal(0, 1, (6, 1, 3, 3)),
             "bd": rng.normal(0, 0.2, 6), "wf": rng.normal(0, 0.3, (4, 6 * 8 * 8)),
             "bf": rng.normal(0, 0.1, 4)}
    nodes = [helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c1"], ["r1"]),
             helper.make_node("Conv", ["r1", "wd", "bd"], ["c2"], pads=[1, 1, 1, 1], group=6),
             helper.make_node("Flatten", ["c2"], ["f"]),
             helper.make_node("Gemm", ["f", "wf", "bf"], ["g"], transB=1),
             helper.make_node("Softmax", ["g"], ["y"], axis=1)]
    return _model(tmp_path, nodes, inits, (1, 4))


def _quantized(path, calib, **opts):
    g = tinyir.load(path)
    g, [res] = run_passes(g, [Quantize(calib=str(calib), **opts)])
    return g, res


def test_weights_bias_and_softmax_params_follow_the_spec(tmp_path):
    g, res = _quantized(_conv_dw_fc(tmp_path), _calib(tmp_path))
    layers = [n for n in g.nodes if n.op in ("tfl.CONV_2D", "tfl.DEPTHWISE_CONV_2D",
                                              "tfl.FULLY_CONNECTED")]
    assert [n.op for n in layers] == ["tfl.CONV_2D", "tfl.DEPTHWISE_CONV_2D",
                                      "tfl.FULLY_CONNECTED"]
    for n in layers:
        x, w, b = n.inputs[0], n.inputs[1], n.inputs[2]
        axis = 3 if n.op == "tfl.DEPTHWISE_CONV_2D" else 0
        assert w.type.dtype == DType.INT8 and w.type.quant.axis == axis
        assert set(w.type.quant.zero_point) == {0}
        assert w.const.min() >= -127 and w.const.max() <= 127
        # every channel uses the full grid: max|q_c| == 127 (s_w = max|w_c| / 127)
        q = np.moveaxis(w.const, axis, 0).reshape(w.const.shape[axis], -1)
        assert (np.abs(q).max(axis=1) == 127).all()
        s_in = np.float32(x.type.quant.scale[0])
        want = (s_in * np.asarray(w.type.quant.scale, np.float32)).astype(np.float32)
        assert b.type.dtype == DType.INT32
        assert np.array_equal(np.asarray(b.type.quant.scale, np.float32), want)
        assert set(b.type.quant.zero_point) == {0}
    sm = g.outputs[0].type.quant
    assert (sm.scale, sm.zero_point) == ((1 / 256,), (-128,))
    assert res.stats["requantize_ops"] == 0


def test_weight_scales_reproduce_the_float_weights(tmp_path):
    path = _conv_dw_fc(tmp_path)
    float_g = tinyir.load(path)
    from tinyir.backends.tflm.lower import lower_onnx_to_tfl

    ref = {n.name: n.inputs[1].const for n in lower_onnx_to_tfl(float_g).graph.nodes
           if n.op == "tfl.CONV_2D"}
    g, _ = _quantized(path, _calib(tmp_path))
    conv = [n for n in g.nodes if n.op == "tfl.CONV_2D"][0]
    w = ref[conv.name]
    s = np.abs(w.reshape(w.shape[0], -1)).max(axis=1).astype(np.float32) / np.float32(127)
    assert np.array_equal(np.asarray(conv.inputs[1].type.quant.scale, np.float32), s)
    deq = conv.inputs[1].const * s.reshape(-1, 1, 1, 1)
    assert np.abs(deq - w).max() <= s.max() / 2 * 1.0001


def test_all_zero_channel_gets_a_nonzero_scale(tmp_path):
    g, _ = _quantized(_conv_dw_fc(tmp_path, zero_channel=True), _calib(tmp_path))
    conv = [n for n in g.nodes if n.op == "tfl.CONV_2D"][0]
    scales = np.asarray(conv.inputs[1].type.quant.scale)
    assert (scales > 0).all()
    assert (conv.inputs[1].const[2] == 0).all()


def _concat_model(tmp_path, sigmoid_branch=False):
    rng = np.random.default_rng(2)
    inits = {"wa": rng.normal(0, 0.2, (4, 3, 3, 3)), "wb": rng.normal(0, 3, (4, 3, 3, 3))}
    b_out = "b"
    nodes = [helper.make_node("Conv", ["x", "wa"], ["a"], pads=[1, 1, 1, 1]),
             helper.make_node("Conv", ["x", "wb"], ["b"], pads=[1, 1, 1, 1])]
    if sigmoid_branch:
        nodes.append(helper.make_node("Sigmoid", ["b"], ["bs"]))
        b_out = "bs"
    nodes.append(helper.make_node("Concat", ["a", b_out], ["y"], axis=1))
    return _model(tmp_path, nodes, inits, (1, 8, 8, 8))


def _qp(v):
    return v.type.quant.scale[0], v.type.quant.zero_point[0]


def test_concat_inputs_and_output_share_params(tmp_path):
    g, res = _quantized(_concat_model(tmp_path), _calib(tmp_path))
    cat = [n for n in g.nodes if n.op == "tfl.CONCATENATION"][0]
    params = {_qp(v) for v in list(cat.inputs) + list(cat.outputs)}
    assert len(params) == 1 and res.stats["requantize_ops"] == 0
    # the shared range is the union of both branches: the wide one (b) sets it
    wide = max(float(np.abs(run(tinyir.load(tmp_path / "m.onnx"),
                                {"x": np.load(tmp_path / "calib.npz")["x"][i:i + 1]})["y"])
                     .max()) for i in range(4))
    assert params.pop()[0] * 255 >= wide * 0.9


def test_fixed_param_input_of_concat_is_requantized(tmp_path):
    g, res = _quantized(_concat_model(tmp_path, sigmoid_branch=True), _calib(tmp_path))
    logistic = [n for n in g.nodes if n.op == "tfl.LOGISTIC"][0]
    assert _qp(logistic.outputs[0]) == (1 / 256, -128)
    cat = [n for n in g.nodes if n.op == "tfl.CONCATENATION"][0]
    assert len({_qp(v) for v in list(cat.inputs) + list(cat.outputs)}) == 1
    assert res.stats["requantize_ops"] == 1
    assert cat.inputs[1].producer.op == "tfl.QUANTIZE"


def test_quantize_without_data_is_refused_with_a_sentence(tmp_path):
    with pytest.raises(PassError, match=r"quantize needs calibration data \(calib=FILE.npz\), "
                                        r"explicit scales \(scales=FILE.json\) or datafree=1"):
        run_passes(tinyir.load(_conv_dw_fc(tmp_path)), "quantize")
    with pytest.raises(PassError, match="input_range=LO:HI"):
        run_passes(tinyir.load(_conv_dw_fc(tmp_path)), "quantize{datafree=1}")


def test_calibration_file_shape_is_checked(tmp_path):
    bad = tmp_path / "bad.npz"
    np.savez(bad, x=np.zeros((4, 8, 8, 3), np.float32))
    with pytest.raises(PassError, match="calibration array 'x' has shape"):
        run_passes(tinyir.load(_conv_dw_fc(tmp_path)), f"quantize{{calib={bad}}}")


def test_already_quantized_graph_is_left_alone(tmp_path):
    g, _ = _quantized(_conv_dw_fc(tmp_path), _calib(tmp_path))
    again, [res] = run_passes(g, [Quantize(calib="unused.npz")])
    assert not res.changed and "already" in res.stats["already_quantized"]


def test_explicit_scales_file_reproduces_calibrated_params(tmp_path):
    path, calib = _conv_dw_fc(tmp_path), _calib(tmp_path)
    saved = tmp_path / "params.json"
    # bias correction needs E[x] from data, which a scales file does not carry
    g1, _ = _quantized(path, calib, save_scales=str(saved), bias_correction=False)
    g2, _ = run_passes(tinyir.load(path), f"quantize{{scales={saved}}}")
    assert write_tflite_bytes(g1) == write_tflite_bytes(g2)
    doc = json.loads(saved.read_text())["values"]
    fc = [n for n in g1.nodes if n.op == "tfl.FULLY_CONNECTED"][0].outputs[0].name
    doc.pop(fc)
    saved.write_text(json.dumps(doc))
    with pytest.raises(PassError, match=f"gives no params for %{fc}"):
        run_passes(tinyir.load(path), f"quantize{{scales={saved}}}")


def test_float_io_keeps_float_boundary_and_matches_float(tmp_path):
    path, calib = _conv_dw_fc(tmp_path), _calib(tmp_path)
    g, _ = _quantized(path, calib, io="float")
    assert g.inputs[0].type.dtype == DType.FLOAT32 and g.outputs[0].type.dtype == DType.FLOAT32
    assert g.nodes[0].op == "tfl.QUANTIZE" and g.nodes[-1].op == "tfl.DEQUANTIZE"
    x = np.load(calib)["x"][:1]
    want = run(tinyir.load(path), {"x": x})["y"]
    got = run(g, {"x": x})["y"]
    assert np.abs(got - want).max() < 0.05


def test_pipeline_spelling_reaches_the_fields():
    [p] = parse_pipeline("quantize{calib=d.npz,method=entropy,percentile=99.9,io=float,"
                         "samples=50,datafree=0}")
    assert (p.calib, p.method, p.percentile, p.io, p.samples, p.datafree) == \
        ("d.npz", "entropy", 99.9, "float", 50, False)


def test_cross_layer_equalization_keeps_the_function():
    from tinyir.backends.tflm.lower import lower_onnx_to_tfl
    from tinyir.passes import datafree

    g = lower_onnx_to_tfl(tinyir.load(corpus.model("trained/digits_lenet_bn.onnx"))).graph
    x = np.load(corpus.model("trained/digits_test.npz"))["x_test"][:3]
    before = [run(g, {"input": x[i:i + 1]})["logits"] for i in range(3)]
    assert datafree.equalize(g) == 4
    after = [run(g, {"input": x[i:i + 1]})["logits"] for i in range(3)]
    assert max(np.abs(a - b).max() for a, b in zip(before, after)) < 1e-4
    for n in g.nodes:  # an equalized pair has equal per-channel ranges
        if n.op == "tfl.CONV_2D" and n.inputs[1].const.shape[0] == 16:
            r1 = np.abs(n.inputs[1].const).reshape(16, -1).max(1)
            nxt = n.outputs[0].uses[0][0]
            r2 = np.abs(nxt.inputs[1].const).reshape(-1, 16).max(0)
            assert np.allclose(r1, r2, rtol=1e-3)


# ---- digits end to end ---------------------------------------------------------------------

_TFLM = textwrap.dedent("""
    import sys
    import numpy as np
    from tflite_micro.python.tflite_micro import runtime
    out = {}
    for i, path in enumerate(sys.argv[2:]):
        it = runtime.Interpreter.from_bytes(open(path, "rb").read(), arena_size=1 << 20)
        x = np.load(sys.argv[1])[f"m{i}"]
        ys = []
        for j in range(x.shape[0]):
            it.set_input(x[j:j + 1], 0)
            it.invoke()
            ys.append(it.get_output(0).copy())
        out[f"m{i}"] = np.concatenate(ys)
    np.savez(sys.argv[1] + ".out.npz", **out)
""")

FLOAT_ACC = {"digits_lenet_bn": 0.99333, "digits_resdw_bn": 0.98667}  # digits_results.json


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    """{(model, variant): (graph, int8 test inputs, TFLM outputs, labels)}."""
    tmp = tmp_path_factory.mktemp("digits")
    np.savez(tmp / "calib.npz", input=corpus.digits_train_images(200))
    test = np.load(corpus.model("trained/digits_test.npz"))
    results = json.loads(corpus.model("trained/digits_results.json").read_text())
    for name in FLOAT_ACC:
        assert abs(results["models"][name]["onnxruntime_test_accuracy"] - FLOAT_ACC[name]) < 1e-4
    variants = {"minmax": f"fold-bn,quantize{{calib={tmp / 'calib.npz'}}}",
                "entropy": f"fold-bn,quantize{{calib={tmp / 'calib.npz'},method=entropy}}",
                "datafree": "quantize{datafree=1,input_range=0:1}"}
    built, paths, feeds = {}, [], {}
    for name in FLOAT_ACC:
        for variant, pipe in variants.items():
            g, _ = run_passes(tinyir.load(corpus.model(f"trained/{name}.onnx")), pipe)
            data = write_tflite_bytes(g)
            path = tmp / f"{name}_{variant}.tflite"
            path.write_bytes(data)
            g = read_tflite(data)
            q = g.inputs[0].type.quant
            xq = np.clip(round_away(test["x_test"] / np.float32(q.scale[0])) + q.zero_point[0],
                         -128, 127).astype(np.int8)
            feeds[f"m{len(paths)}"] = xq
            built[(name, variant)] = (g, xq)
            paths.append(str(path))
    np.savez(tmp / "x.npz", **feeds)
    subprocess.run([sys.executable, "-c", _TFLM, str(tmp / "x.npz"), *paths], check=True,
                   timeout=300)
    outs = np.load(str(tmp / "x.npz") + ".out.npz")
    return {key: (g, xq, outs[f"m{i}"], test["y_test"])
            for i, (key, (g, xq)) in enumerate(built.items())}


@pytest.mark.parametrize("name", sorted(FLOAT_ACC))
@pytest.mark.parametrize("variant", ["minmax", "entropy"])
def test_digits_int8_accuracy_in_tflite_micro(digits, name, variant):
    g, _, tflm, y = digits[(name, variant)]
    assert g.inputs[0].type.dtype == DType.INT8
    acc = float(np.mean(tflm.argmax(axis=1) == y))
    assert acc >= FLOAT_ACC[name] - 0.005, f"{name} {variant}: {acc:.4f}"


@pytest.mark.parametrize("name", sorted(FLOAT_ACC))
def test_digits_datafree_accuracy(digits, name):
    _, _, tflm, y = digits[(name, "datafree")]
    assert float(np.mean(tflm.argmax(axis=1) == y)) >= FLOAT_ACC[name] - 0.02


@pytest.mark.parametrize("key", [("digits_lenet_bn", "minmax"), ("digits_resdw_bn", "entropy"),
                                 ("digits_resdw_bn", "datafree")])
def test_reference_interpreter_is_bit_identical_to_tflite_micro(digits, key):
    g, xq, tflm, _ = digits[key]
    for i in range(0, len(xq), 45):
        got = run(g, {g.inputs[0].name: xq[i:i + 1]})[g.outputs[0].name]
        assert np.array_equal(got, tflm[i:i + 1]), f"image {i}"


def test_quantized_digits_pass_the_tflm_check(digits):
    from tinyir.op_support.report import check_model

    for (name, variant), (g, _, _, _) in digits.items():
        r = check_model(g, name, "tflm")
        errors = [f.rule for f in r.findings if f.severity == "error"]
        assert errors == [], f"{name} {variant}: {errors}"


def test_cli_writes_a_full_int8_tflite(tmp_path):
    calib = tmp_path / "calib.npz"
    np.savez(calib, input=corpus.digits_train_images(50))
    out = tmp_path / "m.tflite"
    proc = subprocess.run([sys.executable, "-m", "tinyir", "opt",
                           str(corpus.model("trained/digits_lenet_bn.onnx")), "-p",
                           f"fold-bn,quantize{{calib={calib}}}", "-o", str(out)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "quantize: changed" in proc.stderr
    check = subprocess.run([sys.executable, "-m", "tinyir", "check", "--backend", "tflm",
                            str(out)], capture_output=True, text=True, timeout=120)
    assert check.returncode == 0, check.stdout
    g = tinyir.load(out)
    assert {v.type.dtype for n in g.nodes for v in n.outputs} == {DType.INT8}
