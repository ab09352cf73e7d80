"""TFLite import/export: every corpus model imports and verifies, exports deterministically,
runs bit-identically in TFLite Micro after a round trip, and hostile files end in a
one-line TinyIRError."""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import flatbuffers
import numpy as np
import pytest
import tflite

import corpus
from tinyir.compare import graph_diff
from tinyir.errors import InputError, TinyIRError, UnsupportedError
from tinyir.formats import load, save
from tinyir.formats.tflite_format import read_tflite, write_tflite_bytes
from tinyir.graph import Graph
from tinyir.ops import lookup
from tinyir.types import DType, QuantParams, TensorType

REPO = Path(__file__).resolve().parents[1]
MODELS = corpus.files("tflite/*.tflite")


# ---- corpus: import, verify, deterministic export ------------------------------------

@pytest.mark.parametrize("path", MODELS)
def test_corpus_imports_and_verifies(path):
    g = load(path)
    g.verify()
    assert g.layout == "NHWC"
    assert all(n.op.startswith("tfl.") for n in g.nodes)
    assert all(lookup(n.op) is not None for n in g.nodes), "every corpus op is declared"


@pytest.mark.parametrize("path", MODELS)
def test_export_is_deterministic_and_lossless(path):
    g = load(path)
    first = write_tflite_bytes(g)
    assert first[4:8] == b"TFL3"
    again = read_tflite(first, path="export")
    again.verify()
    assert graph_diff(g, again) is None
    assert write_tflite_bytes(again) == first


def test_model_facts_survive():
    g = load(corpus.model("tflite/tflm_person_detect_vela.tflite"))
    plan = g.metadata["tflite.metadata.OfflineMemoryAllocation"]
    g2 = read_tflite(write_tflite_bytes(g))
    assert g2.metadata["tflite.metadata.OfflineMemoryAllocation"] == plan
    assert g2.metadata["tflite.description"] == "Vela 3.11.0 Optimised"
    node = g2.nodes[0]
    assert node.op == "tfl.CUSTOM" and node.attrs["custom_code"] == "ethos-u"
    assert node.attrs["custom_options"] == g.nodes[0].attrs["custom_options"]


def test_signature_defs_and_variables_survive():
    g = load(corpus.model("tflite/tflm_dtln_noise_suppression.tflite"))
    assert g.metadata["tflite.signature.0.key"] == "serving_default"
    lstm = g.nodes[0]
    assert lstm.op == "tfl.UNIDIRECTIONAL_SEQUENCE_LSTM"
    assert lstm.attrs["intermediates"] == 5 and len(lstm.outputs) == 6
    assert lstm.inputs[9] is None  # optional operand (index -1)
    state = lstm.inputs[18]
    assert g.metadata[f"tflite.tensor.{state.name}.is_variable"] is True
    g2 = read_tflite(write_tflite_bytes(g))
    assert g2.metadata["tflite.signature.0.input_values"] == \
        g.metadata["tflite.signature.0.input_values"]


def test_attrs_are_snake_case_option_names():
    g = load(corpus.model("tflite/mlperf_ic_resnet8_int8.tflite"))
    conv = next(n for n in g.nodes if n.op == "tfl.CONV_2D")
    assert conv.attrs["padding"] in ("SAME", "VALID")
    assert isinstance(conv.attrs["stride_w"], int)
    assert conv.attrs["fused_activation_function"] in ("NONE", "RELU", "RELU6")
    w = conv.inputs[1]
    assert w.type.quant.axis == 0 and len(w.type.quant.scale) == w.shape[0]


def test_macs_of_hello_world():
    g = load(corpus.model("tflite/tflm_hello_world_fp32.tflite"))
    assert sum(lookup(n.op).macs(n) for n in g.nodes) == 1 * 16 + 16 * 16 + 16 * 1


def test_save_and_load(tmp_path):
    g = load(corpus.model("tflite/tflm_hello_world_int8.tflite"))
    out = tmp_path / "x.tflite"
    save(g, out)
    assert graph_diff(g, load(out)) is None


# ---- hand-built graphs: dtypes, subgraphs, refusal -----------------------------------

def test_special_constants_round_trip():
    g = Graph("consts", layout="NHWC")
    i4 = g.add_const("i4", np.array([-8, 7, 3, -1, 0], np.int8),
                     TensorType((5,), DType.INT4, QuantParams([0.5], [0])))
    bf = g.add_const("bf", np.array([1.5, -2.0, 2.0 ** 100], np.float32), TensorType((3,), DType.BFLOAT16))
    s = g.add_const("s", np.array([b"ab", b"", b"xyz"], dtype=object), TensorType((3,), DType.STRING))
    h = g.add_const("h", np.array([[1, 2]], np.int16),
                    TensorType((1, 2), DType.INT16, QuantParams([0.1, 0.2], [0, 0], axis=1)))
    g.outputs = [i4, bf, s, h]
    g.metadata["tflite.version"] = 3
    g2 = read_tflite(write_tflite_bytes(g))
    assert graph_diff(g, g2) is None


def test_subgraphs_keep_their_indices():
    body = Graph("init", layout="NHWC")
    x = body.add_const("x", np.zeros((2,), np.float32))
    body.outputs = [x]
    g = Graph("main", layout="NHWC")
    a = g.add_input("a", TensorType((1, 4), DType.FLOAT32))
    g.add_node("tfl.CALL_ONCE", [], [], {"init_subgraph_index": 1})
    g.add_node("tfl.RELU", [a], [("r", TensorType((1, 4), DType.FLOAT32))])
    g.outputs = [g.value("r")]
    g.metadata["tflite.subgraphs"] = [body]
    g.metadata["tflite.version"] = 3
    g2 = read_tflite(write_tflite_bytes(g))
    g2.verify()
    assert graph_diff(g, g2) is None
    assert g2.metadata["tflite.subgraphs"][0].name == "init"


def test_onnx_ops_have_no_tflite_form():
    g = Graph("m", layout="NCHW")
    x = g.add_input("x", TensorType((1, 3), DType.FLOAT32))
    g.add_node("onnx.Relu", [x], [("y", x.type)])
    g.outputs = [g.value("y")]
    with pytest.raises(UnsupportedError, match=r"onnx\.Relu.*lowering"):
        write_tflite_bytes(g)


# ---- TFLite Micro: bit-identical outputs after a round trip ---------------------------

_CHILD = textwrap.dedent("""
    import sys, numpy as np
    from tflite_micro.python.tflite_micro import runtime
    def run(path, out):
        it = runtime.Interpreter.from_bytes(open(path, "rb").read(), arena_size=96 << 20)
        rng = np.random.default_rng(1234)
        i = 0
        while True:
            try:
                d = it.get_input_details(i)
            except Exception:
                break
            dt, shape = np.dtype(d["dtype"]), d["shape"]
            if dt.kind == "f":
                x = rng.standard_normal(shape).astype(dt)
            else:
                info = np.iinfo(dt)
                x = rng.integers(max(info.min, -(1 << 15)), min(info.max, 1 << 15), shape,
                                 dtype=dt, endpoint=True)
            it.set_input(x, i)
            i += 1
        it.invoke()
        outs = {}
        while True:
            try:
                outs[f"o{len(outs)}"] = np.array(it.get_output(len(outs)))
            except Exception:
                break
        np.savez(out, **outs)
    run(sys.argv[1], sys.argv[3])
    run(sys.argv[2], sys.argv[4])
""")


@pytest.mark.parametrize("path", MODELS)
def test_tflm_outputs_bit_identical_after_round_trip(path, tmp_path):
    exported = tmp_path / "rt.tflite"
    exported.write_bytes(write_tflite_bytes(load(path)))
    a, b = tmp_path / "orig.npz", tmp_path / "rt.npz"
    proc = subprocess.run([sys.executable, "-c", _CHILD, str(path), str(exported), str(a), str(b)],
                          capture_output=True, text=True, timeout=120)
    if not a.exists():
        pytest.skip(f"TFLM does not run the original: {_last_line(proc.stderr)}")
    assert b.exists(), f"TFLM ran the original but not the export: {_last_line(proc.stderr)}"
    ra, rb = np.load(a), np.load(b)
    assert sorted(ra.files) == sorted(rb.files) and ra.files
    for k in ra.files:
        assert ra[k].dtype == rb[k].dtype and ra[k].shape == rb[k].shape
        assert ra[k].tobytes() == rb[k].tobytes(), f"output {k} differs"


def _last_line(text: str) -> str:
    lines = [x for x in text.strip().splitlines() if x.strip()]
    return lines[-1] if lines else "(no message)"


# ---- hostile files ----------------------------------------------------------------------

def _tiny_model(shape=(1, 4), const_shape=(4,), data=None, buffer_offset=None,
                op_inputs=(0, 1)) -> bytes:
    """ADD(input, const) built directly with the tflite builders."""
    b = flatbuffers.Builder(256)
    data = np.arange(4, dtype=np.float32).tobytes() if data is None else data
    bufs = []
    for i in range(3):
        payload = data if i == 1 and buffer_offset is None else b""
        vec = b.CreateByteVector(payload) if payload else None
        tflite.BufferStart(b)
        if vec is not None:
            tflite.BufferAddData(b, vec)
        if i == 1 and buffer_offset is not None:
            tflite.BufferAddOffset(b, buffer_offset)
            tflite.BufferAddSize(b, len(data))
        bufs.append(tflite.BufferEnd(b))
    tensors = []
    for name, shp, buf in (("x", shape, 0), ("c", const_shape, 1), ("y", shape, 2)):
        n = b.CreateString(name)
        s = b.CreateNumpyVector(np.asarray(shp, np.int32))
        tflite.TensorStart(b)
        tflite.TensorAddShape(b, s)
        tflite.TensorAddType(b, tflite.TensorType.FLOAT32)
        tflite.TensorAddBuffer(b, buf)
        tflite.TensorAddName(b, n)
        tensors.append(tflite.TensorEnd(b))
    ins = b.CreateNumpyVector(np.asarray(op_inputs, np.int32))
    outs = b.CreateNumpyVector(np.asarray([2], np.int32))
    tflite.AddOptionsStart(b)
    opts = tflite.AddOptionsEnd(b)
    tflite.OperatorStart(b)
    tflite.OperatorAddOpcodeIndex(b, 0)
    tflite.OperatorAddInputs(b, ins)
    tflite.OperatorAddOutputs(b, outs)
    tflite.OperatorAddBuiltinOptionsType(b, tflite.BuiltinOptions.AddOptions)
    tflite.OperatorAddBuiltinOptions(b, opts)
    op = tflite.OperatorEnd(b)

    def vec(offs):
        b.StartVector(4, len(offs), 4)
        for o in reversed(offs):
            b.PrependUOffsetTRelative(o)
        return b.EndVector()

    t_vec, o_vec = vec(tensors), vec([op])
    g_in = b.CreateNumpyVector(np.asarray([0], np.int32))
    g_out = b.CreateNumpyVector(np.asarray([2], np.int32))
    tflite.SubGraphStart(b)
    tflite.SubGraphAddTensors(b, t_vec)
    tflite.SubGraphAddInputs(b, g_in)
    tflite.SubGraphAddOutputs(b, g_out)
    tflite.SubGraphAddOperators(b, o_vec)
    sg = tflite.SubGraphEnd(b)
    tflite.OperatorCodeStart(b)
    tflite.OperatorCodeAddBuiltinCode(b, tflite.BuiltinOperator.ADD)
    oc = tflite.OperatorCodeEnd(b)
    codes, subs, buffers = vec([oc]), vec([sg]), vec(bufs)
    tflite.ModelStart(b)
    tflite.ModelAddVersion(b, 3)
    tflite.ModelAddOperatorCodes(b, codes)
    tflite.ModelAddSubgraphs(b, subs)
    tflite.ModelAddBuffers(b, buffers)
    b.Finish(tflite.ModelEnd(b), file_identifier=b"TFL3")
    return bytes(b.Output())


def test_tiny_model_is_valid():
    g = read_tflite(_tiny_model())
    g.verify()
    assert [n.op for n in g.nodes] == ["tfl.ADD"]
    np.testing.assert_array_equal(g.value("c").const, [0, 1, 2, 3])


@pytest.mark.parametrize("data, match", [
    (lambda d: d[:4] + b"XXXX" + d[8:], "TFL3"),
    (lambda d: d[:40], "bad.tflite: "),
    (lambda d: d[:6], "too short"),
    (lambda d: b"\xff\xff\xff\x7f" + d[4:], "root table"),
], ids=["wrong-magic", "truncated", "tiny", "root-offset"])
def test_broken_header(data, match):
    with pytest.raises(InputError, match=match):
        read_tflite(data(_tiny_model()), path="bad.tflite")


def test_buffer_offset_past_end_of_file():
    with pytest.raises(InputError, match="buffer 1 lies at bytes .* past the end"):
        read_tflite(_tiny_model(buffer_offset=1 << 20), path="bad.tflite")


def test_buffer_offset_inside_file_is_read():
    blob = _tiny_model(buffer_offset=4096)
    data = np.arange(4, dtype=np.float32).tobytes()
    full = _tiny_model(buffer_offset=len(blob) + 16)
    full = full + b"\0" * (len(blob) + 16 - len(full)) + data
    np.testing.assert_array_equal(read_tflite(full).value("c").const, [0, 1, 2, 3])


def test_tensor_claiming_huge_shape():
    with pytest.raises(InputError, match=r"tensor 0 \(x\) declares shape .* more than 2 GiB"):
        read_tflite(_tiny_model(shape=(1 << 20, 1 << 20, 1 << 10)), path="bad.tflite")


def test_constant_size_must_match_shape():
    with pytest.raises(InputError, match="buffer has 16 bytes, its shape \\[5\\] of f32 needs 20"):
        read_tflite(_tiny_model(const_shape=(5,)), path="bad.tflite")


def test_operator_tensor_index_out_of_range():
    with pytest.raises(InputError, match="refers to tensor 7; the subgraph has 3"):
        read_tflite(_tiny_model(op_inputs=(0, 7)), path="bad.tflite")


def _mutants(count: int, seed: int = 20240601):
    rng = random.Random(seed)
    small = [p for p in sorted((corpus.MODELS / "tflite").glob("*.tflite"))
             if p.stat().st_size < 80_000]
    blobs = [p.read_bytes() for p in small]
    for i in range(count):
        data = bytearray(blobs[i % len(blobs)])
        kind = rng.randrange(4)
        if kind == 0:
            data = data[:rng.randrange(len(data))]
        elif kind == 1:
            for _ in range(rng.randint(1, 8)):
                data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
        elif kind == 2:  # a random 32-bit word, likely an offset or a count
            at = rng.randrange(len(data) - 4) & ~3
            data[at:at + 4] = rng.getrandbits(32).to_bytes(4, "little")
        else:  # corrupt the header and table region, where the structure lives
            for _ in range(rng.randint(1, 4)):
                at = rng.randrange(min(len(data), 512))
                data[at] = rng.randrange(256)
        yield i, bytes(data)


def test_fuzzed_files_fail_cleanly(tmp_path):
    if not corpus.have_models():
        pytest.skip(corpus.MISSING)

    def hang(*_):
        raise TimeoutError("a corrupt file hung the reader")

    old = signal.signal(signal.SIGALRM, hang)
    signal.alarm(120)
    start = time.monotonic()
    outcome = {"graph": 0, "error": 0}
    try:
        path = tmp_path / "fuzz.tflite"
        for i, data in _mutants(500):
            path.write_bytes(data)
            try:
                load(path).verify()
                outcome["graph"] += 1
            except TinyIRError as e:
                assert "\n" not in str(e) and str(e), f"mutant {i}: {e!r}"
                outcome["error"] += 1
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
    elapsed = time.monotonic() - start
    assert elapsed < 60, f"500 mutants took {elapsed:.1f}s"
    assert outcome["error"] > 50, outcome


def test_cli_reports_corrupt_file(tmp_path):
    if not (REPO / "tinyir" / "cli.py").exists():
        pytest.skip("tinyir/cli.py does not exist yet")
    bad = tmp_path / "bad.tflite"
    good = _tiny_model()
    for data in (good[:4] + b"XXXX" + good[8:], good[:40], _tiny_model(shape=(1 << 30, 1 << 30))):
        bad.write_bytes(data)
        proc = subprocess.run([sys.executable, "-m", "tinyir.cli", "show", str(bad)],
                              capture_output=True, text=True, cwd=REPO, timeout=60)
        assert proc.returncode == 2, proc.stderr
        assert "Traceback" not in proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
