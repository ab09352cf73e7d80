"""``tinyir plan``: JSON figures, the SVG timeline, one-line errors."""

from __future__ import annotations

import json

import pytest

import corpus
from tinyir.cli import _Parser
from tinyir.errors import InputError
from tinyir.passes.memory.cli import add_plan_parser


def run(argv, capsys):
    p = _Parser(prog="tinyir")
    add_plan_parser(p.add_subparsers(dest="command", parser_class=_Parser))
    args = p.parse_args(["plan", *map(str, argv)])
    code = args.fn(args)
    return code, capsys.readouterr().out


def test_plan_json_has_the_acceptance_figures(capsys):
    model = corpus.model("tflite/mlperf_vww_mbv1_int8.tflite")
    code, out = run([model, "--backend", "tflm", "--format", "json"], capsys)
    doc = json.loads(out)
    assert code == 0
    assert doc["tflm_arena_bytes"] == 103680          # bisected in tflite-micro
    assert doc["optimized_arena_bytes"] == doc["lower_bound_bytes"] == 55296
    assert doc["tflm_optimized_arena_bytes"] < doc["tflm_arena_bytes"]
    assert doc["steps"][0]["op"] == "(inputs)"


def test_plan_table_plot_and_offline_file(tmp_path, capsys):
    model = corpus.model("tflite/tflm_micro_speech_int8.tflite")
    svg, out_model = tmp_path / "t.svg", tmp_path / "planned.tflite"
    code, out = run([model, "--plot", svg, "--offline-out", out_model], capsys)
    assert code == 0
    assert "live memory per step" in out and "TFLM minimum arena" in out
    assert svg.read_text().startswith("<svg") and "<rect" in svg.read_text()
    assert out_model.stat().st_size > 0


def test_plan_onnx_uses_generic_rules(capsys):
    code, out = run([corpus.model("trained/digits_resdw_bn.onnx"), "--format", "json"], capsys)
    doc = json.loads(out)
    assert doc["backend"] == "generic" and "tflm_arena_bytes" not in doc


@pytest.mark.parametrize("argv, match", [
    (["--plot", "t.png"], "SVG"), (["--offline-out", "x.onnx"], ".tflite")])
def test_plan_bad_options_raise_one_line_errors(argv, match, capsys):
    with pytest.raises(InputError, match=match):
        run([corpus.model("tflite/tflm_micro_speech_int8.tflite"), *argv], capsys)
