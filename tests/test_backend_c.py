"""The reference C backend, run for real: host gcc and QEMU Cortex-M4 vs tflite-micro.

Every int8 corpus .tflite whose operators the C kernels cover, plus the two digits models
quantized by ``fold-bn,quantize{calib=...}``, is emitted, compiled with the host C compiler
(-O1) and run on two seeded random inputs; the output bytes must equal the tflite-micro
interpreter's.  When the ARM tools are installed, a few models are cross-compiled for
Cortex-M4 and run on QEMU's mps2-an386 with semihosting.
"""

from __future__ import annotations

import argparse
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

import corpus
import tinyir
from tinyir.backends.c import harness
from tinyir.backends.c.emit import emit, uncovered
from tinyir.backends.cli import add_compile_parser
from tinyir.formats.tflite_format import write_tflite_bytes
from tinyir.passes.pipeline import run_passes

REQUIRED = {"mlperf_kws_dscnn_int8", "mlperf_vww_mbv1_int8", "mlperf_ic_resnet8_int8",
            "mlperf_ad01_int8", "tflm_person_detect_int8", "tflm_micro_speech_int8",
            "tflm_hello_world_int8", "digits_lenet_bn_int8", "digits_resdw_bn_int8"}
ON_QEMU = ["mlperf_kws_dscnn_int8", "mlperf_ad01_int8", "tflm_hello_world_int8",
           "tflm_micro_speech_int8", "digits_resdw_bn_int8"]
SEEDS = (0, 1)
pytestmark = pytest.mark.skipif(shutil.which("make") is None or shutil.which("cc") is None,
                                reason="needs make and a host C compiler")


def covered_models(work: Path) -> dict[str, Path]:
    """name -> .tflite of every int8 corpus model the C backend covers, plus digits."""
    out = {}
    for p in sorted((corpus.MODELS / "tflite").glob("*int8*.tflite")):
        g = tinyir.load(p)
        if not uncovered(g):
            out[p.stem] = p
    np.savez(work / "calib.npz", input=corpus.digits_train_images(200))
    for name in ("digits_lenet_bn", "digits_resdw_bn"):
        g, _ = run_passes(tinyir.load(corpus.model(f"trained/{name}.onnx")),
                          f"fold-bn,quantize{{calib={work / 'calib.npz'}}}")
        path = work / f"{name}_int8.tflite"
        path.write_bytes(write_tflite_bytes(g))
        out[path.stem] = path
    return out


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """{name: (folder, [input bytes per seed], [tflm output bytes per seed])}."""
    if not corpus.have_models():
        pytest.skip(corpus.MISSING)
    work = tmp_path_factory.mktemp("backend_c")
    models = covered_models(work)
    folders, inputs, n_out = {}, [], []
    for name, path in models.items():
        g = tinyir.load(path)
        folders[name] = emit(g, work / name).out_dir
        inputs.append([harness.random_inputs(g, s) for s in SEEDS])
        n_out.append(len(g.outputs))
    with ThreadPoolExecutor(2) as pool:
        list(pool.map(harness.make, folders.values()))
    refs = harness.tflm_outputs(list(models.values()), inputs, n_out, work)
    return {name: (folders[name], [b"".join(x.tobytes() for x in xs) for xs in ins], ref)
            for name, ins, ref in zip(models, inputs, refs)}


def test_required_models_are_covered(built):
    assert REQUIRED <= set(built), f"not covered: {sorted(REQUIRED - set(built))}"


def test_host_c_is_bit_identical_to_tflite_micro(built):
    wrong = []
    for name, (folder, ins, refs) in built.items():
        for seed, data, ref in zip(SEEDS, ins, refs):
            got = harness.run_host(folder, data)
            if got != ref:
                diff = np.frombuffer(got, np.uint8) != np.frombuffer(ref, np.uint8) \
                    if len(got) == len(ref) else "length"
                wrong.append(f"{name} seed {seed}: {np.sum(diff)} bytes differ")
    assert not wrong, "\n".join(wrong)


@pytest.mark.skipif(harness.have_qemu() is not None, reason=str(harness.have_qemu()))
def test_qemu_cortex_m4_is_bit_identical(built):
    names = [n for n in ON_QEMU if n in built]
    assert len(names) >= 4
    with ThreadPoolExecutor(2) as pool:
        list(pool.map(lambda n: harness.make(built[n][0], "qemu"), names))
    for name in names:
        folder, ins, refs = built[name]
        assert harness.run_qemu(folder, ins[0]) == refs[0], name
        size = harness.arm_size(folder / "run_model_qemu.elf")
        arena = int((folder / "model.h").read_text().split("MODEL_ARENA_BYTES ")[1].split()[0])
        # RAM = planned arena + newlib's fixed data (stdio, impure struct): < 4 KiB
        assert arena <= size["ram"] < arena + 4096, (name, size, arena)


def _compile(argv):
    ap = argparse.ArgumentParser()
    add_compile_parser(ap.add_subparsers())
    args = ap.parse_args(["compile", *argv])
    return args.fn(args)


def test_compile_refuses_uncovered_ops_and_names_them(tmp_path, capsys):
    model = corpus.model("tflite/tflm_mnist_lstm_int8.tflite")
    assert _compile([str(model), "-o", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err
    assert "[c-kernel]" in err and "UNIDIRECTIONAL_SEQUENCE_LSTM" in err and "refused" in err
    assert not (tmp_path / "out").exists()


def test_compile_writes_a_buildable_folder_atomically(tmp_path):
    model = corpus.model("tflite/tflm_hello_world_int8.tflite")
    out = tmp_path / "hw"
    out.mkdir()
    (out / "stale.txt").write_text("old")
    assert _compile([str(model), "-o", str(out)]) == 0
    names = {p.name for p in out.iterdir()}
    assert {"model.c", "model.h", "kernels.c", "kernels.h", "Makefile", "README.md",
            "main_host.c"} <= names and "stale.txt" not in names
    assert [p.name for p in tmp_path.iterdir()] == ["hw"]  # no temporary folders left
    readme = (out / "README.md").read_text()
    assert "make" in readme and "MODEL_ARENA_BYTES" in readme
    harness.make(out)
    g = tinyir.load(model)
    x = harness.random_inputs(g, 0)[0]
    y = np.frombuffer(harness.run_host(out, x.tobytes()), np.int8)
    want = tinyir.interp.run(g, {g.inputs[0].name: x})[g.outputs[0].name]
    assert np.array_equal(y, want.ravel())
