"""The textual IR: print -> parse -> print is lossless, and bad text fails at file:line:col."""

from __future__ import annotations

import math
import random
import time

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tinyir.compare import graph_diff
from tinyir.errors import ParseError, VerifyError
from tinyir.formats.tir import format_type, parse_tir, print_tir
from tinyir.graph import Graph
from tinyir.types import DType, QuantParams, TensorType

F32 = DType.FLOAT32


def roundtrip(g: Graph) -> str:
    """Assert both directions of the contract; returns the text."""
    text = print_tir(g)
    h = parse_tir(text, "rt.tir")
    assert graph_diff(h, g) is None, graph_diff(h, g)
    assert graph_diff(g, h) is None
    assert print_tir(h) == text
    return text


def t(shape, dtype=F32, quant=None) -> TensorType:
    return TensorType(shape, dtype, quant)


# ---- the format itself ---------------------------------------------------------------

EXAMPLE = '''\
graph @main layout=NCHW opsets={"": 17} {
  metadata producer_name = "pytorch"
  input %x : f32[1,1,8,8]
  const %w : f32[2] = dense<"0000803f00000040">
  const %q : i8[2]<axis=0, scale=[0.5, 0.25], zp=[0, -1]> = dense<"01ff">
  %y : f32[1,16,8,8] = onnx.Conv(%x, %w, _) {kernel_shape = [3, 3], pads = [1, 1, 1, 1]} @conv1
  %a : f32[*], %"b:0" : f32["n"]<scale=0.125, zp=3> = onnx.Split(%y) {axis = 0}
  %r : f32[] = onnx.If(%a) {then_branch = graph @then {
    return %y
  }, else_branch = graph @else {
    %e : f32[] = onnx.Neg(%r0)
    return %e
  }}
  return %r, %x
}
'''


def test_example_text_is_canonical():
    text = EXAMPLE.replace("%r0", "%a")
    g = parse_tir(text)
    assert print_tir(g) == text
    conv = g.nodes[0]
    assert conv.name == "conv1" and conv.inputs[2] is None
    assert conv.attrs == {"kernel_shape": [3, 3], "pads": [1, 1, 1, 1]}
    assert g.value("w").const.tolist() == [1.0, 2.0]
    assert g.value("b:0").type == t(("n",), F32, QuantParams((0.125,), (3,)))
    assert g.nodes[1].name == "a"  # no @name: the node is called like its first result
    branch = g.nodes[2].attrs["else_branch"]
    assert branch.parent is g
    assert branch.nodes[0].inputs[0] is g.value("a")  # an outer value, by reference


def test_handwritten_text_with_comments_and_spacing():
    text = '''
    # a comment
    graph @g layout="NHWC" {   # trailing comment
      input %x:f32[ 2 , "n" ]
      const %c : i32[] = dense<"07000000">
      %y : f32[2,"n"] = tfl.ADD(%x,%c){fused_activation_function="RELU"}
      return %y}'''
    g = parse_tir(text)
    assert g.layout == "NHWC"
    assert g.value("c").const.shape == () and int(g.value("c").const) == 7
    assert print_tir(parse_tir(print_tir(g))) == print_tir(g)


def test_format_type():
    assert format_type(t((1, 3, "batch", 224))) == 'f32[1,3,"batch",224]'
    assert format_type(t(None)) == "f32[*]"
    assert format_type(t(())) == "f32[]"
    assert str(t((4,), DType.INT8, QuantParams((0.5,), (-128,)))) == "i8[4]<scale=0.5, zp=-128>"
    assert str(t((2,), DType.UINT8, QuantParams((0.5, 0.25), (1, 2), 0))) == \
        "u8[2]<axis=0, scale=[0.5, 0.25], zp=[1, 2]>"


# ---- hand-built graphs covering the vocabulary -----------------------------------------

def _array_of(dtype: DType, shape, rng) -> np.ndarray:
    n = math.prod(shape)
    if dtype == DType.STRING:
        words = ["", "a", "ÿ", "名字", 'q"\\\n\t', "\x00\x7f\u2028", "\ud800", "😀",
                 b"\xffraw"]
        arr = np.empty(n, dtype=object)
        arr[:] = [words[i % len(words)] for i in range(n)]
        return arr.reshape(shape)
    if dtype == DType.BOOL:
        return (rng.integers(0, 2, n) == 1).reshape(shape)
    raw = rng.integers(0, 256, n * dtype.numpy.itemsize, dtype=np.uint8).tobytes()
    return np.frombuffer(raw, dtype=dtype.numpy).reshape(shape).copy()


@pytest.mark.parametrize("dtype", list(DType), ids=lambda d: d.value)
def test_constants_of_every_dtype(dtype):
    rng = np.random.default_rng(0)
    g = Graph("consts")
    for i, shape in enumerate([(3, 2), (), (0,), (2, 0, 3), (1,)]):
        g.add_const(f"c{i}", _array_of(dtype, shape, rng), t(shape, dtype))
    g.outputs = list(g.constants)
    text = roundtrip(g)
    assert f"const %c1 : {dtype.value}[] = " in text
    h = parse_tir(text)
    for v in h.constants:
        assert v.const.dtype == dtype.numpy
    h.verify()


def test_float_specials_and_bytes_are_exact():
    vals = np.array([np.nan, -np.inf, np.inf, -0.0, 1e-45, 3.4e38], dtype=np.float32)
    g = Graph("f")
    g.add_const("f32", vals)
    g.add_const("f16", vals[:5].astype(np.float16))
    g.add_const("f64", np.array([np.nextafter(1.0, 2.0), -0.0]))
    g.outputs = list(g.constants)
    h = parse_tir(roundtrip(g))
    assert h.value("f32").const.tobytes() == vals.tobytes()


def test_quantization_per_tensor_and_per_axis():
    g = Graph("q", layout="NHWC")
    pt = QuantParams((0.1,), (-128,))
    pa = QuantParams(tuple(np.float32([0.1, 1 / 3, 2.5e-10])), (0, 0, 0), axis=1)
    one_zp = QuantParams((0.5, 0.25), (7,), axis=0)
    x = g.add_input("x", t((1, 3), DType.INT8, pt))
    w = g.add_const("w", np.arange(6, dtype=np.int8).reshape(2, 3), t((2, 3), DType.INT8, pa))
    b = g.add_const("b", np.arange(2, dtype=np.int32), t((2,), DType.INT32, one_zp))
    n = g.add_node("tfl.FULLY_CONNECTED", [x, w, b], [("y", t((1, 2), DType.INT8, pt))])
    g.outputs = list(n.outputs)
    text = roundtrip(g)
    assert "<scale=0.10000000149011612, zp=-128>" in text
    assert parse_tir(text).value("w").type.quant == pa


def test_shapes_symbolic_unknown_and_scalar():
    g = Graph("s")
    x = g.add_input("x", t(("batch", 3, "h w", 'a"]>,', -1)))
    y = g.add_node("onnx.Shape", [x], [("y", t(None, DType.INT64))]).outputs[0]
    z = g.add_node("onnx.Size", [y], [("z", t((), DType.INT64))]).outputs[0]
    g.outputs = [z, y]
    roundtrip(g)


ATTRS = {
    "i": 1, "neg": -7, "big": 2**63 + 5, "f": 1.0, "f2": 0.1, "tiny": 5e-324,
    "nan": float("nan"), "inf": float("inf"), "ninf": float("-inf"), "nzero": -0.0,
    "b": True, "bf": False, "s": "", "s2": 'tab\tnl\nquote"back\\slash',
    "uni": "héllo 名字 😀 \u2028 \x00 \ud800", "by": b"\x00\xff", "by0": b"",
    "ints": [1, 2, 3], "floats": [1.0, -0.5, float("nan")], "strs": ["a", "", "é"],
    "bools": [True, False], "bytes_list": [b"a", b""], "empty": [],
    "tensor": np.arange(6, dtype=np.float32).reshape(2, 3), "scalar_t": np.array(3, np.int64),
    "empty_t": np.zeros((0, 2), np.uint8), "str_t": np.array(["x", "yz"], dtype=object),
    "bool_t": np.array([True, False]), "half_t": np.array([1.5], np.float16),
    "true": 3, "graph": "kw", "input": [], "_": 0, "odd key": 1, "": 2, "dense": 1.5,
    "opsets": 1, "layout": "x", "metadata": 0.0, "hex": b"", "return": 1, "elided": 2,
}


def test_every_attribute_kind():
    g = Graph("attrs")
    x = g.add_input("x", t((2,)))
    n = g.add_node("onnx.Custom", [x], [("y", t((2,)))], dict(ATTRS))
    g.outputs = list(n.outputs)
    h = parse_tir(roundtrip(g))
    attrs = h.nodes[0].attrs
    for key in ("i", "f", "b", "nzero", "empty"):
        assert type(attrs[key]) is type(ATTRS[key]), key
    assert math.copysign(1.0, attrs["nzero"]) == -1.0
    assert attrs["empty"] == [] and attrs["tensor"].dtype == np.float32


def test_odd_names_and_ops():
    names = ["gpu_0/data_0", "serving_default_input:0", "with space", 'quote"d', "back\\slash",
             "名字", "", "graph", "_", "1", "-", "a.b", "%x", "@y", "new\nline"]
    g = Graph('main graph "1"')
    prev = g.add_input(names[0], t((1,)))
    ops = ["onnx.Relu", "onnx.com.microsoft.QLinearAdd", "tfl.CONV_2D", "Relu", "my op",
           "input", "onnx.qonnx.custom_op.general.Quant"]
    for i, name in enumerate(names[1:]):
        n = g.add_node(ops[i % len(ops)], [prev], [(name, t((1,)))],
                       name=f"node {i}" if i % 2 else None)
        prev = n.outputs[0]
    g.add_node("onnx.Print", [prev], [], name="sink/0")  # no results
    g.outputs = [prev]
    text = roundtrip(g)
    assert '%"serving_default_input:0"' in text and "%gpu_0/data_0" in text


def test_copy_and_files(tmp_path):
    from tinyir.formats import load, save

    g = _if_graph()
    assert graph_diff(g.copy(), g) is None
    save(g, tmp_path / "m.tir")
    assert graph_diff(load(tmp_path / "m.tir"), g) is None
    (tmp_path / "crlf.tir").write_bytes(print_tir(g).replace("\n", "\r\n").encode())
    assert graph_diff(load(tmp_path / "crlf.tir"), g) is None
    (tmp_path / "bad.tir").write_text("graph @g {\n  return %nope\n}\n")
    with pytest.raises(ParseError, match=r"bad.tir:2:10: use of undefined value %nope"):
        load(tmp_path / "bad.tir")


def test_graph_outputs_may_be_inputs_constants_or_repeated():
    g = Graph("io")
    x = g.add_input("x", t((1,)))
    c = g.add_const("c", np.ones(1, np.float32))
    g.outputs = [c, x, x]
    roundtrip(g)
    roundtrip(Graph("empty"))


def _if_graph() -> Graph:
    """An If whose branches read outer values, one of them through a nested Loop."""
    g = Graph("main", layout="NCHW")
    g.opsets = {"": 13, "com.microsoft": 1}
    cond = g.add_input("cond", t((), DType.BOOL))
    x = g.add_input("x", t((2,)))
    k = g.add_const("k", np.float32([1, 2]))
    y = g.add_node("onnx.Add", [x, k], [("y", t((2,)))]).outputs[0]

    then = Graph("then")
    inner = Graph("body")
    i = inner.add_input("i", t((), DType.INT64))
    s = inner.add_node("onnx.Mul", [y, x], [("s", t((2,)))]).outputs[0]  # two levels up
    inner.outputs = [i, s]
    tv = then.add_node("onnx.Loop", [None, cond], [("tv", t((2,)))], {"body": inner}).outputs[0]
    then.outputs = [tv]

    other = Graph("else")
    ev = other.add_node("onnx.Sub", [y, k], [("y", t((2,)))]).outputs[0]  # shadows outer %y
    other.outputs = [ev]

    r = g.add_node("onnx.If", [cond], [("r", t(None))],
                   {"then_branch": then, "else_branch": other, "branches": [then, other]},
                   name="if")
    g.outputs = list(r.outputs)
    return g


def test_nested_graphs_read_outer_values_by_reference():
    g = _if_graph()
    h = parse_tir(roundtrip(g))
    node = h.nodes[-1]
    then, other = node.attrs["then_branch"], node.attrs["else_branch"]
    assert then.parent is h and other.parent is h
    body = then.nodes[0].attrs["body"]
    assert body.parent is then
    assert body.nodes[0].inputs == (h.value("y"), h.value("x"))
    assert other.nodes[0].inputs[0] is h.value("y")  # before the branch's own %y exists
    assert other.outputs[0] is other.value("y")


def test_nested_graph_output_is_an_outer_value():
    g = _if_graph()
    g.nodes[-1].attrs["else_branch"].outputs = [g.value("k")]
    roundtrip(g)


def test_metadata_and_opsets():
    g = Graph("m", layout="NHWC")
    g.opsets = {"": 17, "ai.onnx.ml": 3, "odd domain": 1}
    g.metadata = {"producer_name": "tf2onnx", "ir_version": 8, "score": 0.5, "buffer": b"\x01\x02",
                  "versions": [1, 2], "props": {"author": "me", "nested": {"k": [b"", "v"]}},
                  "doc string": "line1\nline2", "flag": True}
    roundtrip(g)


def test_parser_creates_nodes_in_printed_order():
    g = Graph("order")
    x = g.add_input("x", t((1,)))
    late = g.add_node("onnx.Neg", [x], [("late", t((1,)))])
    early = g.add_node("onnx.Abs", [x], [("early", t((1,)))])
    g.add_node("onnx.Add", [early.outputs[0], late.outputs[0]], [("z", t((1,)))])
    g.outputs = [g.value("z")]
    text = roundtrip(g)
    assert text.index("%late") < text.index("%early")


# ---- elided constants ------------------------------------------------------------------

def test_max_const_bytes_elides_large_payloads():
    g = Graph("big")
    g.add_const("small", np.zeros(2, np.int8))
    g.add_const("large", np.arange(1000, dtype=np.float32))
    n = g.add_node("onnx.Constant", [], [("c", t((100,)))], {"value": np.zeros(100, np.float32)})
    g.outputs = [g.value("large"), n.outputs[0]]
    text = print_tir(g, max_const_bytes=64)
    assert 'const %small : i8[2] = dense<"0000">' in text
    assert "bytes=4000>" in text and "bytes=400> : f32[100]" in text
    assert len(text) < 1000
    with pytest.raises(ParseError) as e:
        parse_tir(text, "show.tir")
    assert "elided" in str(e.value) and "--full" in str(e.value)
    assert e.value.line == 3
    assert print_tir(g, max_const_bytes=None) == print_tir(g)


# ---- errors ----------------------------------------------------------------------------

ERRORS = [
    ("graph @g {\n  %y : f32[] = onnx.Neg(%x)\n  return %y\n}", 2, 25, "undefined value %x"),
    ("graph @g {\n  input %x : f32[]\n  input %x : f32[1]\n  return\n}", 3, 9,
     "%x is defined twice (first at line 2)"),
    ("graph @g {\n  input %x : f31[2]\n  return\n}", 2, 14, "unknown element type 'f31'"),
    ('graph @g {\n  const %c : f32[1] = dense<"zz000000">\n  return\n}', 2, 23,
     "malformed hex data: bad hex digit 'z'"),
    ('graph @g {\n  const %c : f32[2] = dense<"00000000">\n  return\n}', 2, 23,
     "has 4 bytes but its type f32[2] needs 8"),
    ('graph @g {\n  const %c : f32["n"] = dense<"">\n  return\n}', 2, 14, "static shape"),
    ('graph @g {\n  const %c : f32[*] = dense<"">\n  return\n}', 2, 14, "static shape"),
    ("graph @g {\n  input %x : f32[2]\n  %y = onnx.Neg(%x)\n  return\n}", 3, 6,
     "unexpected '=', expected ':'"),
    ("graph @g {\n  input %x : f32[2]\n", 2, 20, "unexpected end of file"),
    ("graph @g {\n  input %x : f32[2] $\n  return\n}", 2, 21, "unexpected character '$'"),
    ('graph @g {\n  metadata s = "bad \\q escape"\n  return\n}', 2, 16, "unknown escape \\q"),
    ("graph @g {\n  input %x : i8[1]<scale=0.5>\n  return\n}", 2, 14, "needs both scale and zp"),
    ("graph @g {\n  input %x : f32[2]\n  onnx.Foo(%x) {a = 1, a = 2} @n\n  return\n}", 3, 24,
     "attribute 'a' is given twice"),
    ("graph @g {\n  input %x : f32[2]\n  onnx.Foo(%x)\n  return\n}", 3, 3, "needs a name"),
    ("graph @g {\n  input %x : f32[2]\n}", 1, 7, "no return"),
    ("graph @g {\n  return\n  input %x : f32[2]\n}", 3, 9, "nothing may follow return"),
    ('graph @g opsets={"": 1.5} {\n  return\n}', 1, 10, "integer versions"),
]


@pytest.mark.parametrize("text,line,col,message", ERRORS, ids=[e[3][:30] for e in ERRORS])
def test_errors_point_at_line_and_column(text, line, col, message):
    with pytest.raises(ParseError) as info:
        parse_tir(text, "bad.tir")
    e = info.value
    assert message in e.bare
    assert (e.filename, e.line, e.col) == ("bad.tir", line, col), str(e)
    head, src, caret = str(e).split("\n")
    assert head == f"bad.tir:{line}:{col}: {e.bare}"
    assert src == "  " + text.split("\n")[line - 1]
    assert caret == "  " + " " * (col - 1) + "^"


def test_random_mutations_raise_only_tinyir_errors():
    g = Graph("attrs")
    x = g.add_input("x", t((2,), DType.INT8, QuantParams((0.5, 0.25), (0, 1), 0)))
    g.outputs = list(g.add_node("onnx.Custom", [x], [("y", t((2,)))], dict(ATTRS)).outputs)
    texts = [print_tir(_if_graph()), print_tir(g)]
    pieces = ["%", "@", '"', "\\", "[", "]", "{", "}", "<", ">", ",", "=", ":", "_", "*", "\n",
              "graph", "return", "dense<", "hex\"0\"", "1.5", "-", "f32", "%zz", "nan", "#"]
    rng = random.Random(1234)
    for _ in range(1500):
        s = rng.choice(texts)
        for _ in range(rng.randint(1, 3)):
            i = rng.randrange(len(s) + 1)
            j = min(len(s), i + rng.randint(0, 12))
            s = s[:i] + rng.choice(["", rng.choice(pieces), s[j:j + 5]]) + s[j:]
        try:
            g = parse_tir(s, "fuzz.tir")
        except (ParseError, VerifyError):
            continue
        assert print_tir(parse_tir(print_tir(g))) == print_tir(g)


# ---- random graphs ---------------------------------------------------------------------

_names = st.text(min_size=0, max_size=6)
_floats = st.floats(allow_nan=True, allow_infinity=True)
_scalars = st.one_of(st.integers(-2**70, 2**70), _floats, st.text(max_size=8),
                     st.binary(max_size=8), st.booleans())
_lists = st.one_of(st.lists(st.integers(-5, 5), max_size=4), st.lists(_floats, max_size=4),
                   st.lists(st.text(max_size=4), max_size=3), st.lists(st.booleans(), max_size=3),
                   st.lists(st.binary(max_size=3), max_size=3))
_dims = st.one_of(st.integers(0, 3), st.sampled_from(["n", "batch", "h w", ""]))
_shapes = st.one_of(st.none(), st.lists(_dims, max_size=3).map(tuple))
_static = st.lists(st.integers(0, 3), max_size=3).map(tuple)


@st.composite
def _quant(draw, n: int):
    if draw(st.booleans()):
        return None
    scale = draw(st.floats(0.0, 2.0**100, width=32))
    if n == 0 or draw(st.booleans()):
        return QuantParams((scale,), (draw(st.integers(-128, 255)),))
    scales = tuple(draw(st.floats(0.0, 2.0**100, width=32)) for _ in range(n))
    return QuantParams(scales, tuple(draw(st.integers(-128, 127)) for _ in range(n)), axis=0)


@st.composite
def _types(draw):
    dtype = draw(st.sampled_from(list(DType)))
    shape = draw(_shapes)
    n = shape[0] if shape and isinstance(shape[0], int) else 0
    return TensorType(shape, dtype, draw(_quant(n)))


@st.composite
def _arrays(draw):
    dtype = draw(st.sampled_from(list(DType)))
    shape = draw(_static)
    n = math.prod(shape)
    if dtype == DType.STRING:
        arr = np.empty(n, dtype=object)
        arr[:] = draw(st.lists(st.text(max_size=5), min_size=n, max_size=n))
        return dtype, arr.reshape(shape)
    raw = draw(st.binary(min_size=n * dtype.numpy.itemsize, max_size=n * dtype.numpy.itemsize))
    if dtype == DType.BOOL:
        raw = bytes(b & 1 for b in raw)
    return dtype, np.frombuffer(raw, dtype=dtype.numpy).reshape(shape).copy()


@st.composite
def _graphs(draw, depth: int = 0, parent_values=()):
    g = Graph(draw(_names), layout=draw(st.sampled_from([None, "NCHW", "NHWC"])))
    used = {v.name for v in parent_values}  # a body that shadows an outer name cannot read it

    def fresh():
        base = draw(_names)
        name = base
        while name in used:
            name += "'"
        used.add(name)
        return name

    if depth == 0:
        g.opsets = draw(st.dictionaries(st.text(max_size=5), st.integers(0, 30), max_size=2))
        g.metadata = draw(st.dictionaries(st.text(max_size=5), st.one_of(_scalars, _lists),
                                          max_size=3))
    values = list(parent_values)
    for _ in range(draw(st.integers(0, 2))):
        values.append(g.add_input(fresh(), draw(_types())))
    for _ in range(draw(st.integers(0, 2))):
        dtype, arr = draw(_arrays())
        quant = draw(_quant(arr.shape[0] if arr.ndim else 0))
        values.append(g.add_const(fresh(), arr, TensorType(arr.shape, dtype, quant)))
    for _ in range(draw(st.integers(0, 4))):
        inputs = draw(st.lists(st.one_of(st.none(), st.sampled_from(values)) if values
                               else st.none(), max_size=3))
        attrs = {}
        for key in draw(st.lists(st.text(max_size=4), max_size=3, unique=True)):
            kind = draw(st.integers(0, 3 if depth < 1 else 2))
            if kind == 0:
                attrs[key] = draw(_scalars)
            elif kind == 1:
                attrs[key] = draw(_lists)
            elif kind == 2:
                attrs[key] = draw(_arrays())[1]
            else:
                attrs[key] = draw(_graphs(depth + 1, tuple(values)))
        outs = [(fresh(), draw(_types())) for _ in range(draw(st.integers(0, 2)))]
        name = draw(st.one_of(st.none(), _names.filter(bool)))
        if not outs and name is None:
            name = "sink"
        op = draw(st.sampled_from(["onnx.Conv", "onnx.com.microsoft.QLinearAdd", "tfl.CONV_2D",
                                   "tfl.CUSTOM", "Odd Op"]))
        node = g.add_node(op, inputs, outs, attrs, name=name)
        values.extend(node.outputs)
    if values:
        g.outputs = draw(st.lists(st.sampled_from(values), max_size=3))
    return g


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_graphs())
def test_random_graphs_round_trip(g):
    roundtrip(g)


# ---- speed -----------------------------------------------------------------------------

def test_large_graph_prints_and_parses_quickly():
    g = Graph("big", layout="NCHW")
    v = g.add_input("x", t((1, 64, 8, 8)))
    g.add_const("weights", np.random.default_rng(0).random(1 << 18, dtype=np.float32))  # 1 MB
    for i in range(1750):
        w = g.add_const(f"w{i}", np.ones(4, np.float32))
        v = g.add_node("onnx.Conv", [v, w, None], [(f"y{i}", t((1, 64, 8, 8)))],
                       {"kernel_shape": [3, 3], "pads": [1, 1, 1, 1]}, name=f"conv{i}").outputs[0]
    g.outputs = [v]
    t0 = time.perf_counter()
    text = print_tir(g)
    t1 = time.perf_counter()
    h = parse_tir(text)
    t2 = time.perf_counter()
    assert graph_diff(h, g) is None
    # generous bounds: measured ~0.1 s and ~0.6 s on a shared 2-core machine
    assert t1 - t0 < 1.0 and t2 - t1 < 3.0, (t1 - t0, t2 - t1)
