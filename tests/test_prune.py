"""prune: dependency groups, the zeroed-channel oracle, options, recovery, budget fit.

Oracle (reference notes §5.1): the pruned graph equals the original graph in which the
pruned channels are zeroed at every consumer's input (here: the consumers' weight columns),
checked with the reference interpreter and with onnxruntime.
"""

from __future__ import annotations

import numpy as np
import pytest

import corpus
from onnx_util import session
from tinyir import interp
from tinyir.errors import PassError
from tinyir.formats import load
from tinyir.formats.onnx_format import write_onnx_bytes
from tinyir.passes.pipeline import run_passes
from tinyir.passes.prune import Prune, apply_pruning, explain_groups, importance, plan_counts
from tinyir.passes.prune_groups import analyze, materialize_constants

TOPOLOGIES = ["trained/digits_resdw_bn.onnx", "trained/digits_lenet_bn.onnx",
              "onnx-from-tflite/mlperf_ic_resnet8_fp32.onnx",
              "onnx-from-tflite/mlperf_vww_mbv1_fp32.onnx",
              "onnx/onnxlight_squeezenet.onnx", "onnx/onnxlight_densenet121.onnx"]


def _model(rel: str, randomize: bool = True):
    g = load(corpus.model(rel))
    materialize_constants(g)
    if randomize:  # onnxlight weights are one fill value: make channels distinguishable
        rng = np.random.default_rng(1)
        for v in g.constants:
            if v.type.dtype.is_float and v.const.size > 1:
                arr = rng.random(v.const.shape) + 0.5 if "var" in v.name else \
                    rng.standard_normal(v.const.shape) * 0.3
                v.const = arr.astype(v.const.dtype)
    return g


def _choose(g, ratio=0.4):
    a = analyze(g)
    p = Prune(ratio=ratio)
    groups = [gr for gr in a.groups if not gr.frozen]
    scores = {gr.id: importance(a, gr, "l1") for gr in groups}
    counts = plan_counts(a, groups, scores, p, ratio)
    pruned = set()
    for gr in groups:
        order = np.argsort(scores[gr.id], kind="stable")
        pruned.update(gr.classes[i] for i in order[:gr.width - counts[gr.id]])
    return a, pruned


def _zero_consumers(a, pruned):
    """The oracle graph: pruned channels zeroed in every consumer's weight columns."""
    for n in a.graph.nodes:
        x = n.inputs[0] if n.inputs else None
        if n.op_type not in ("Conv", "Gemm", "MatMul") or x is None or x.name not in a.base:
            continue
        if n.op_type == "Conv" and int(n.attrs.get("group", 1)) == a.width[x.name] > 1:
            continue  # depthwise: passes the channel on; zeroed at the next consumer
        w = n.inputs[1].const.copy()
        for c in range(a.width[x.name]):
            if a.class_of[a.base[x.name] + c] in pruned:
                if n.op_type == "Conv":
                    w[:, c % w.shape[1]] = 0
                elif n.op_type == "Gemm" and n.attrs.get("transB", 0):
                    w[:, c] = 0
                else:
                    w[c, :] = 0
        n.inputs[1].const = w


@pytest.mark.parametrize("rel", TOPOLOGIES)
def test_pruned_equals_zeroed(rel):
    g = _model(rel)
    a, pruned = _choose(g)
    oracle = g.copy()
    _zero_consumers(analyze(oracle), pruned)  # the analysis is deterministic: same ids
    apply_pruning(a, pruned)
    g.verify()
    assert pruned, "something was pruned"
    x = np.random.default_rng(0).standard_normal(g.inputs[0].type.shape).astype(np.float32)
    feeds = {g.inputs[0].name: x}
    want = interp.run(oracle, feeds)[oracle.outputs[0].name]
    got = interp.run(g, feeds)[g.outputs[0].name]
    scale = float(np.abs(want).max()) or 1.0
    assert np.abs(want - got).max() <= 1e-5 * scale
    ort_out = session(write_onnx_bytes(g)).run(None, feeds)[0]
    assert np.abs(ort_out - got).max() <= 1e-4 * scale


def _group_with(a, producer):
    return next(gr for gr in a.groups if producer in gr.producers)


def test_residual_add_couples_both_branches():
    a = analyze(_model("trained/digits_resdw_bn.onnx", False))
    gr = _group_with(a, "/stem/Conv")
    assert set(gr.producers) == {"/stem/Conv", "/res_conv2/Conv"}
    assert "/dw/Conv" in gr.passthrough  # depthwise: input and output channels coupled
    assert set(gr.consumers) == {"/res_conv1/Conv", "/pw/Conv"}


def test_flatten_gemm_index_map_nchw():
    a = analyze(_model("trained/digits_lenet_bn.onnx", False))
    gr = _group_with(a, "/conv3/Conv")
    flat = next(n for n in a.graph.nodes if n.op_type == "Flatten").outputs[0].name
    per = gr.elements[flat]
    hw = len(per[0])
    assert hw * gr.width == a.width[flat]
    assert per[0] == list(range(0, hw)) and per[1] == list(range(hw, 2 * hw))  # NCHW block
    assert gr.consumers == ["/fc1/Gemm"]


def test_transpose_reshape_gemm_map_and_concat_offsets():
    a = analyze(_model("onnx/onnxlight_squeezenet.onnx", False))
    cat = next(n for n in a.graph.nodes if n.op_type == "Concat")
    y = cat.outputs[0].name
    left = next(gr for gr in a.groups if cat.inputs[0].name in gr.elements)
    right = next(gr for gr in a.groups if cat.inputs[1].name in gr.elements)
    assert [e[0] for e in left.elements[y]] == list(range(left.width))
    assert [e[0] for e in right.elements[y]] == list(range(left.width, left.width + right.width))
    r8 = analyze(_model("onnx-from-tflite/mlperf_ic_resnet8_fp32.onnx", False))
    last = next(gr for gr in r8.groups if gr.consumers and "dense" in gr.consumers[0])
    assert last.width == 64 and not last.frozen


def test_shared_weight_is_refused_with_reason():
    g = _model("trained/digits_lenet_bn.onnx", False)
    c1 = next(n for n in g.nodes if n.name == "/conv2/Conv")
    share = g.add_node("onnx.Conv", [c1.inputs[0], c1.inputs[1]],
                       [("extra", c1.outputs[0].type)], dict(c1.attrs), name="extra_conv")
    g.outputs.append(share.outputs[0])
    a = analyze(g)
    frozen = [x.frozen for x in a.groups if x.frozen and "shared" in x.frozen]
    assert frozen and "extra_conv" in frozen[0] and "double its flash" in frozen[0]
    text = explain_groups(g, Prune(ratio=0.3))
    assert "shared with" in text and "group 0" in text


def test_round_to_min_channels_and_exclude():
    g, res = run_passes(_model("trained/digits_resdw_bn.onnx", False),
                        "prune{ratio=0.3,round_to=8}")
    outs = {r["layer"]: r["out"][1] for r in res[0].stats["layers"]}
    assert outs["/stem/Conv"] == 8 and outs["/pw/Conv"] == 16  # 16*0.7=11 -> 8; 32*.7=22 -> 16
    g, res = run_passes(_model("trained/digits_resdw_bn.onnx", False),
                        "prune{ratio=0.9,min_channels=6}")
    assert min(r["out"][1] for r in res[0].stats["layers"]) >= 6
    g, res = run_passes(_model("trained/digits_resdw_bn.onnx", False),
                        "prune{ratio=0.5,exclude=/pw/Conv}")
    outs = {r["layer"]: r["out"][1] for r in res[0].stats["layers"]}
    assert outs["/pw/Conv"] == 32 and outs["/stem/Conv"] == 8
    with pytest.raises(PassError, match="needs ratio=, macs= or fit="):
        run_passes(_model("trained/digits_resdw_bn.onnx", False), "prune")
    with pytest.raises(PassError, match="calibration data"):
        run_passes(_model("trained/digits_resdw_bn.onnx", False), "prune{ratio=0.3,criterion=act}")


@pytest.fixture(scope="module")
def calib(tmp_path_factory):
    path = tmp_path_factory.mktemp("calib") / "digits.npz"
    np.savez(path, input=corpus.digits_train_images(100))
    return str(path)


def _recon_error(g, ref, x):
    o = interp.run(g, {"input": x})[g.outputs[0].name]
    r = interp.run(ref, {"input": x})[ref.outputs[0].name]
    return float(np.mean((o - r) ** 2))


def test_recovery_reduces_reconstruction_error(calib):
    rel = "trained/digits_resdw_bn.onnx"
    ref = load(corpus.model(rel))
    plain, r1 = run_passes(load(corpus.model(rel)), "prune{macs=0.7,criterion=l1}")
    rec, r2 = run_passes(load(corpus.model(rel)), f"prune{{macs=0.7,calib={calib}}}")
    assert r1[0].stats["macs"][1] <= 0.7 * r1[0].stats["macs"][0]
    assert r2[0].stats["refit_layers"]
    data = np.load(corpus.model("trained/digits_test.npz"))["x_test"][:40]
    e_plain = np.mean([_recon_error(plain, ref, data[i:i + 1]) for i in range(40)])
    e_rec = np.mean([_recon_error(rec, ref, data[i:i + 1]) for i in range(40)])
    assert e_rec < 0.5 * e_plain


def test_budget_fit_digits_int8(calib):
    from tinyir.op_support.report import check_model
    from tinyir.passes.quantize import Quantize
    g, res = run_passes(load(corpus.model("trained/digits_resdw_bn.onnx")),
                        f"prune{{fit=tflm,sram=6KiB,flash=42KiB,int8=true,calib={calib},"
                        "samples=20}")
    st = res[0].stats
    assert not st["before"]["passed"] and st["after"]["passed"] and 0 < st["ratio"] < 0.95
    q = Quantize(calib=calib, samples=20).run(g).graph
    assert check_model(q, "m", "tflm", None, 6 * 1024, 42 * 1024).passed
    with pytest.raises(PassError, match="no pruning makes the model pass"):
        run_passes(load(corpus.model("trained/digits_resdw_bn.onnx")),
                   "prune{fit=tflm,sram=200,flash=1MiB}")


def test_pruned_then_quantized_model_runs_in_tflite_micro_bit_exact(calib, tmp_path):
    """prune (30% of MACs, with recovery) -> quantize -> .tflite: TFLM runs it, and its
    outputs equal tinyir's int8 reference interpreter bit for bit."""
    pytest.importorskip("tflite_micro")
    from tinyir.backends.tflm.runner import run_in_tflm
    from tinyir.formats.tflite_format import write_tflite_bytes
    from tinyir.op_support.report import check_model

    g, (pres, qres) = run_passes(load(corpus.model("trained/digits_resdw_bn.onnx")),
                                 f"prune{{macs=0.7,calib={calib},samples=50}},"
                                 f"quantize{{calib={calib},samples=50}}")
    assert pres.stats["total_macs_after"] <= 0.7 * 314_944  # digits_resdw_bn: 314,944 MACs
    assert check_model(g, "pruned", "tflm").deployable
    x = np.load(corpus.model("trained/digits_test.npz"))["x_test"][:2]
    q = g.inputs[0].type.quant
    xs = [np.clip(np.round(xi[None] / q.scale[0]) + q.zero_point[0], -128, 127).astype(np.int8)
          for xi in x]
    path = tmp_path / "pruned_int8.tflite"
    path.write_bytes(write_tflite_bytes(g))
    for xi in xs:
        got = run_in_tflm(path, 1 << 20, [xi], outputs=True)
        assert got.ok, got.stderr[-500:]
        ref = interp.run(g, {g.inputs[0].name: xi})[g.outputs[0].name]
        assert np.array_equal(got.outputs[0], ref)
