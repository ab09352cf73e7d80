"""ONNX import/export on every corpus model, checked against onnxruntime."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

import corpus
from onnx_util import random_feeds, rel_err, session
from tinyir.errors import InputError
from tinyir.formats import load
from tinyir.formats.onnx_format import read_onnx, to_onnx_model, write_onnx_bytes

ONNX_MODELS = corpus.files("**/*.onnx")


def _ort_outputs(model_bytes: bytes, feeds=None):
    """onnxruntime's outputs, or None when onnxruntime cannot run the model."""
    try:
        s = session(model_bytes)
        feeds = feeds if feeds is not None else random_feeds(s)
        return feeds, s.run(None, feeds)
    except Exception:  # the oracle refuses some corpus files (MANIFEST: hls4ml BN, qonnx)
        return feeds, None


@pytest.mark.parametrize("path", ONNX_MODELS)
def test_import_verify_export_matches_onnxruntime(path):
    g = load(path)
    g.verify()
    out = write_onnx_bytes(g)
    onnx.checker.check_model(onnx.load_from_string(out))
    feeds, ref = _ort_outputs(path.read_bytes())
    if ref is None:
        pytest.skip(f"onnxruntime does not run {path.name} (see MANIFEST.md)")
    _, got = _ort_outputs(out, feeds)
    assert got is not None, "onnxruntime refuses the exported model"
    for r, o in zip(ref, got):
        assert rel_err(r, o) <= 1e-5


@pytest.mark.parametrize("path", ONNX_MODELS)
def test_reimport_of_export_is_identical(path):
    from tinyir.compare import graph_diff

    g = load(path)
    again = read_onnx(write_onnx_bytes(g))
    assert graph_diff(g, again) is None


def test_layout_and_opsets_recorded():
    g = load(corpus.model("trained/digits_lenet_bn.onnx"))
    assert g.layout == "NCHW"
    assert g.opsets[""] == 17
    assert g.inputs[0].type.shape == (1, 1, 8, 8)


def test_unknown_op_is_kept_opaque_with_attrs():
    g = load(corpus.model("onnx/hls4ml_tiny_unet_qonnx.onnx"))
    quant = [n for n in g.nodes if n.op_type == "Quant"]
    assert quant and quant[0].op == "onnx.qonnx.custom_op.general.Quant"
    assert "signed" in quant[0].attrs
    g.verify()


def test_if_bodies_are_nested_graphs_reading_outer_values():
    g = load(corpus.model("onnx/silero_vad_16k_op15.onnx"))
    ifs = [n for n in g.nodes if n.op_type == "If"]
    assert len(ifs) == 3
    bodies = [b for n in ifs for b in n.subgraphs()]
    assert all(b.parent is g for b in bodies)
    assert any(b.captured_values() for b in bodies)


def _tiny_model(**tensor_kw) -> onnx.ModelProto:
    w = helper.make_tensor("w", TensorProto.FLOAT, [2], [1.0, 2.0], **tensor_kw)
    node = helper.make_node("Add", ["x", "w"], ["y"])
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", 1, [2])],
                              [helper.make_tensor_value_info("y", 1, [2])], [w])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])


def test_external_data_outside_folder_is_refused(tmp_path):
    m = _tiny_model()
    t = m.graph.initializer[0]
    t.ClearField("float_data")
    t.data_location = TensorProto.EXTERNAL
    t.external_data.add(key="location", value="../../etc/passwd")
    p = tmp_path / "m.onnx"
    p.write_bytes(m.SerializeToString())
    with pytest.raises(InputError, match="outside the model's folder"):
        load(p)


def test_external_data_inside_folder_is_read(tmp_path):
    m = _tiny_model()
    t = m.graph.initializer[0]
    t.ClearField("float_data")
    t.data_location = TensorProto.EXTERNAL
    t.external_data.add(key="location", value="w.bin")
    (tmp_path / "w.bin").write_bytes(np.array([1, 2], np.float32).tobytes())
    p = tmp_path / "m.onnx"
    p.write_bytes(m.SerializeToString())
    g = load(p)
    assert g.value("w").const.tolist() == [1.0, 2.0]


def test_absurd_declared_tensor_is_refused(tmp_path):
    m = _tiny_model()
    m.graph.input[0].type.tensor_type.shape.dim[0].dim_value = 1 << 40
    p = tmp_path / "m.onnx"
    p.write_bytes(m.SerializeToString())
    with pytest.raises(InputError, match="larger than 2 GiB"):
        load(p)


def test_omitted_middle_output_round_trips():
    x = helper.make_tensor_value_info("x", 1, [1, 2])
    y = helper.make_tensor_value_info("y", 1, [1, 2])
    n = helper.make_node("Dropout", ["x"], ["y", ""], name="drop")
    m = helper.make_model(helper.make_graph([n], "g", [x], [y]),
                          opset_imports=[helper.make_opsetid("", 13)])
    g = read_onnx(m.SerializeToString())
    assert len(g.nodes[0].outputs) == 1  # trailing omitted result dropped
    back = to_onnx_model(g)
    assert list(back.graph.node[0].output) == ["y"]


def test_omitted_middle_output_gets_a_placeholder_written_back_empty():
    x = helper.make_tensor_value_info("x", 1, [1, 1, 2])
    h = helper.make_tensor_value_info("h", 1, [1, 1, 2])
    w = helper.make_tensor("W", 1, [1, 8, 2], np.zeros(16, np.float32))
    r = helper.make_tensor("R", 1, [1, 8, 2], np.zeros(16, np.float32))
    n = helper.make_node("LSTM", ["x", "W", "R"], ["", "h"], name="lstm", hidden_size=2)
    m = helper.make_model(helper.make_graph([n], "g", [x], [h], [w, r]),
                          opset_imports=[helper.make_opsetid("", 13)])
    g = read_onnx(m.SerializeToString())
    assert [v.name for v in g.nodes[0].outputs] == ["lstm.unused0", "h"]
    back = to_onnx_model(g)
    assert list(back.graph.node[0].output) == ["", "h"]
