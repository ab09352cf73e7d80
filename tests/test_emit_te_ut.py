"""TinyEngine and uTensor emitters: code compiles against stub kernel headers; failing
models raise with the checker's findings."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

import corpus
from tinyir.errors import UnsupportedError
from tinyir.formats import load

STUBS = Path(__file__).parent / "data"


def _compiler(name):
    if shutil.which(name) is None:
        pytest.skip(f"no {name}")


def test_tinyengine_vww_compiles(tmp_path):
    _compiler("gcc")
    from tinyir.backends.tinyengine import emit

    files = {p.name for p in emit(load(corpus.model("tflite/tinyengine_vww_int8.tflite")), tmp_path)}
    assert files == {"genModel.h", "genInclude.h", "genModel.c", "README.md"}
    h = (tmp_path / "genModel.h").read_text()
    assert "#define PEAK_MEM" in h and "static signed char buffer[PEAK_MEM];" in h
    c = (tmp_path / "genModel.c").read_text()
    assert "convolve_s8_kernel3_inputch3_stride2_pad1_fpreq(&buffer0[" in c
    assert "depthwise_kernel3x3_stride1_inplace_CHW_fpreq(" in c and "add_fpreq(" in c
    p = subprocess.run(["gcc", "-std=c99", "-Wall", "-Werror=implicit-function-declaration",
                        "-Werror=incompatible-pointer-types", "-Werror=int-conversion",
                        f"-I{STUBS / 'tinyengine_stub'}", f"-I{tmp_path}", "-c",
                        str(tmp_path / "genModel.c"), "-o", str(tmp_path / "genModel.o")],
                       capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    assert "PEAK_MEM" in (tmp_path / "README.md").read_text()


def test_tinyengine_refuses_failing_model_with_findings(tmp_path):
    from tinyir.backends.tinyengine import emit

    with pytest.raises(UnsupportedError, match="tinyengine.te-s3.cin-multiple-of-4"):
        emit(load(corpus.model("tflite/tflm_hello_world_int8.tflite")), tmp_path)
    assert not list(tmp_path.iterdir())


def _clean_names(g):
    for k in [k for k in g.metadata if k.startswith("tflite.tensor.") and k.endswith(".name")]:
        del g.metadata[k]
    for i, v in enumerate(list(g.values)):
        g.rename(v, f"t{i}")
    return g


def test_utensor_feed_forward_compiles(tmp_path):
    _compiler("g++")
    from tinyir.backends.utensor import emit
    from tinyir.op_support.report import check_model

    g = _clean_names(load(corpus.model("tflite/mlperf_ad01_int8.tflite")))
    assert check_model(g, "ad01", "utensor").deployable
    files = emit(g, tmp_path)
    cpp = next(p for p in files if p.suffix == ".cpp")
    text = cpp.read_text()
    assert "TflmSymQuantOps::FullyConnectedOperator<int8_t>" in text and ".eval();" in text
    p = subprocess.run(["g++", "-std=c++11", "-fsyntax-only", "-Wall",
                        f"-I{STUBS / 'utensor_stub'}", f"-I{tmp_path}", str(cpp)],
                       capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    assert "ram_allocator" in (tmp_path / "README.md").read_text()


def test_utensor_refuses_failing_model_with_findings(tmp_path):
    from tinyir.backends.utensor import emit

    with pytest.raises(UnsupportedError, match="utensor.graph.feed-forward"):
        emit(load(corpus.model("tflite/mlperf_ic_resnet8_int8.tflite")), tmp_path)
