"""Lossless textual IR on every corpus model: parse(print(g)) == g, print(parse(t)) == t."""

from __future__ import annotations

import pytest

import corpus
from tinyir.compare import graph_diff
from tinyir.formats import load
from tinyir.formats.tir import parse_tir, print_tir


@pytest.mark.parametrize("path", corpus.files("**/*.onnx", "tflite/*.tflite"))
def test_tir_round_trip_is_lossless(path):
    g = load(path)
    text = print_tir(g)
    back = parse_tir(text, filename=f"{path.name}.tir")
    assert graph_diff(g, back) is None
    back.verify()
    assert print_tir(back) == text


@pytest.mark.parametrize("path", corpus.files("trained/*.onnx"))
def test_copy_is_equal_and_independent(path):
    g = load(path)
    c = g.copy()
    assert graph_diff(g, c) is None
    c.constants[0].const[...] = 0
    assert graph_diff(g, c) is not None
