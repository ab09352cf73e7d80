"""The command line: every bad input ends in one line on stderr and exit code 2."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from onnx import TensorProto, helper

import corpus
from tinyir.examples import KWS_CNN


def tinyir(*args, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tinyir", *map(str, args)], capture_output=True,
                          text=True, timeout=120, cwd=cwd)


def assert_bad_input(r: subprocess.CompletedProcess, match: str) -> None:
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert "Traceback" not in r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert match in lines[0], lines[0]


def test_version_and_help():
    r = tinyir("--version")
    assert r.returncode == 0 and r.stdout.startswith("tinyir ")
    for cmd in ("show", "check", "opt", "passes"):
        r = tinyir(cmd, "--help")
        assert r.returncode == 0 and "usage:" in r.stdout


def test_check_example_model():
    r = tinyir("check", KWS_CNN, "--backend", "tflm")
    assert r.returncode == 0, r.stdout + r.stderr
    for text in ("deployable", "SRAM", "flash", "MACs", "parameters", "op coverage"):
        assert text in r.stdout


def test_check_json_and_several_models():
    import json

    r = tinyir("check", KWS_CNN, KWS_CNN, "--format", "json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert len(doc["models"]) == 2
    m = doc["models"][0]["summary"]
    assert m["ops"]["onnx.Conv"] == 5
    assert m["macs"] == 488_384  # stem 160,000 + dw 2 x 36,000 + pw 2 x 128,000 + fc 384
    assert m["largest_activation"]["bytes"] == 32 * 25 * 5 * 4
    assert "mac_convention" in m


def test_show_prints_tir_that_parses_back(tmp_path):
    from tinyir.compare import graph_diff
    from tinyir.formats import load
    from tinyir.formats.tir import parse_tir

    r = tinyir("show", KWS_CNN, "--full")
    assert r.returncode == 0, r.stderr
    assert graph_diff(parse_tir(r.stdout), load(KWS_CNN)) is None


@pytest.mark.parametrize("ext", [".onnx", ".tir"])
def test_opt_converts(tmp_path, ext):
    from tinyir.compare import graph_diff
    from tinyir.formats import load

    out = tmp_path / f"m{ext}"
    r = tinyir("opt", KWS_CNN, "-p", "dce", "-o", out)
    assert r.returncode == 0, r.stderr
    assert graph_diff(load(out), load(KWS_CNN)) is None


def _bad_files(tmp: Path) -> dict[str, tuple[Path, str]]:
    good = KWS_CNN.read_bytes()
    (tmp / "dir.onnx").mkdir()
    (tmp / "empty.onnx").write_bytes(b"")
    (tmp / "trunc.onnx").write_bytes(good[: len(good) // 3])
    (tmp / "garbage.onnx").write_bytes(os.urandom(4096))
    (tmp / "model.txt").write_bytes(good)
    (tmp / "bad.tir").write_text("graph @g {\n  input %x : f99[1]\n}\n")
    w = helper.make_tensor("w", TensorProto.FLOAT, [2], [1.0, 2.0])
    w.ClearField("float_data")
    w.data_location = TensorProto.EXTERNAL
    w.external_data.add(key="location", value="/etc/passwd")
    g = helper.make_graph([helper.make_node("Add", ["x", "w"], ["y"])], "g",
                          [helper.make_tensor_value_info("x", 1, [2])],
                          [helper.make_tensor_value_info("y", 1, [2])], [w])
    (tmp / "ext.onnx").write_bytes(helper.make_model(g).SerializeToString())
    g2 = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g",
                           [helper.make_tensor_value_info("x", 1, [1 << 20, 1 << 20, 1 << 10])],
                           [helper.make_tensor_value_info("y", 1, None)])
    (tmp / "huge.onnx").write_bytes(helper.make_model(g2).SerializeToString())
    return {
        "missing": (tmp / "nope.onnx", "no such file"),
        "directory": (tmp / "dir.onnx", "is a directory"),
        "empty": (tmp / "empty.onnx", "file is empty"),
        "truncated": (tmp / "trunc.onnx", "trunc.onnx"),
        "corrupt": (tmp / "garbage.onnx", "garbage.onnx"),
        "wrong extension": (tmp / "model.txt", "unknown model format"),
        "bad tir": (tmp / "bad.tir", "bad.tir:2:"),
        "external data outside folder": (tmp / "ext.onnx", "outside the model's folder"),
        "absurd tensor": (tmp / "huge.onnx", "larger than 2 GiB"),
    }


@pytest.mark.parametrize("case", ["missing", "directory", "empty", "truncated", "corrupt",
                                  "wrong extension", "external data outside folder",
                                  "absurd tensor"])
@pytest.mark.parametrize("command", ["check", "show", "opt"])
def test_bad_input_is_one_line_exit_2_and_no_output(tmp_path, case, command):
    path, match = _bad_files(tmp_path)[case]
    out = tmp_path / "out.tir"
    extra = ["-o", out] if command == "opt" else []
    r = tinyir(command, path, *extra)
    assert_bad_input(r, match)
    assert not out.exists()



def test_tir_parse_error_has_file_line_col_and_caret(tmp_path):
    path, _ = _bad_files(tmp_path)["bad tir"]
    r = tinyir("show", path)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    first, src, caret = r.stderr.rstrip("\n").splitlines()[-3:]
    assert f"{path}:2:" in first
    assert "f99" in src and caret.strip() == "^"


@pytest.mark.parametrize("argv,match", [
    (["check"], "the following arguments are required"),
    (["check", "x.onnx", "--backend", "nosuch"], "invalid choice"),
    (["opt", "x.onnx"], "required: -o"),
    (["frobnicate"], "invalid choice"),
])
def test_bad_options_are_one_line_exit_2(argv, match):
    assert_bad_input(tinyir(*argv), match)


def test_opt_bad_pipeline_and_output(tmp_path):
    assert_bad_input(tinyir("opt", KWS_CNN, "-p", "nosuch", "-o", tmp_path / "o.onnx"),
                     "unknown pass 'nosuch'")
    assert_bad_input(tinyir("opt", KWS_CNN, "-o", tmp_path / "o.bin"), "unknown model format")
    assert_bad_input(tinyir("opt", KWS_CNN, "-o", tmp_path / "no" / "o.onnx"), "does not exist")
    assert not list(tmp_path.iterdir())


def test_corpus_model_checks():
    r = tinyir("check", corpus.model("trained/digits_resdw_bn.onnx"), "--format", "json")
    assert r.returncode == 0, r.stderr


def test_exit_code_is_the_verdict_even_when_the_reader_stops_early():
    """`tinyir check m | head -1`: the closed pipe must not turn the verdict into 1."""
    p = subprocess.Popen([sys.executable, "-m", "tinyir", "check", str(KWS_CNN)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert "deployable" in p.stdout.readline().decode()
    p.stdout.close()
    assert p.wait(timeout=120) == 0, p.stderr.read().decode()
