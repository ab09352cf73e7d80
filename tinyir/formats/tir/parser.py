"""Parse textual IR (``.tir``) back into a :class:`~tinyir.graph.Graph`.

Two steps: lark (LALR, contextual lexer) reduces the text with :class:`_ToAst`,
which turns scalars, types and tensors into Python objects and statements into
tuples that keep their tokens; :class:`_Builder` then walks the statements in
order and builds the graph through the public API (``add_input``, ``add_const``,
``add_node``), resolving ``%name`` in the current graph and then in its enclosing
graphs.  Every problem in the text becomes a :class:`~tinyir.errors.ParseError`
that points at ``file:line:col``.
"""

from __future__ import annotations

import math
import re
from importlib import resources
from typing import Any

import numpy as np
from lark import Lark, Token, Transformer, v_args
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken

from tinyir.errors import ParseError, VerifyError
from tinyir.graph import Graph
from tinyir.types import DType, QuantParams, TensorType

__all__ = ["parse_tir"]

_PARSER: Lark | None = None


def _lark() -> Lark:
    global _PARSER
    if _PARSER is None:
        grammar = resources.files(__package__).joinpath("grammar.lark").read_text("utf-8")
        _PARSER = Lark(grammar, parser="lalr", lexer="contextual", transformer=_ToAst(),
                       maybe_placeholders=True)
    return _PARSER


def parse_tir(text: str, filename: str = "<string>") -> Graph:
    """The graph that ``text`` describes; raises :class:`ParseError` on bad text."""
    lines = text.split("\n")

    def error(message: str, line: int, col: int) -> ParseError:
        src = lines[line - 1].rstrip("\r") if 0 < line <= len(lines) else ""
        return ParseError(message, filename, line, col, src)

    try:
        ast = _lark().parse(text)
        return _Builder().graph(ast, None)
    except _Located as e:
        raise error(e.message, e.line, e.col) from None
    except UnexpectedInput as e:
        line, col = e.line, e.column
        if isinstance(e, UnexpectedEOF) or getattr(getattr(e, "token", None), "type",
                                                      None) == "$END" or line < 1:
            # point just past the last thing written
            line = next((i + 1 for i in range(len(lines) - 1, -1, -1) if lines[i].strip()), 1)
            col = len(lines[line - 1].rstrip()) + 1
        raise error(_describe(e), line, col) from None
    except RecursionError:
        raise error("the text is nested too deeply", 1, 1) from None


class _Located(Exception):
    """A semantic error at a token; parse_tir adds the file and the source line."""

    def __init__(self, message: str, at: Any):
        super().__init__(message)
        self.message = message
        self.line = getattr(at, "line", None) or 1
        self.col = getattr(at, "column", None) or 1


# ---- lark's errors in words ------------------------------------------------------------

_TERMINALS = {
    "VALUE": "a value like %x", "AT_NAME": "a name like @n", "OP": "an op like onnx.Add",
    "IDENT": "a name", "STRING": "a string", "DENSE": 'dense<"hex">',
    "BYTES": 'hex"..."', "ELIDED": "elided<...>", "FLOAT": "a float", "INT": "an integer",
    "TYPE": "a type like f32[2]", "NUMS": "a list", "NONE": "'_'", "$END": "end of file",
}


def _describe(e: UnexpectedInput) -> str:
    if isinstance(e, UnexpectedCharacters):
        return f"unexpected character {e.char!r}"
    if isinstance(e, UnexpectedEOF):
        return "unexpected end of file"
    if isinstance(e, UnexpectedToken):
        tok = e.token
        got = "end of file" if tok.type == "$END" else repr(str(tok)[:40])
        expected = sorted(_spell(t) for t in (e.accepts or e.expected))
        if len(expected) > 6:
            return f"unexpected {got}"
        return f"unexpected {got}, expected " + " or ".join(expected)
    return "syntax error"


def _spell(terminal: str) -> str:
    if terminal in _TERMINALS:
        return _TERMINALS[terminal]
    try:
        pattern = _lark().get_terminal(terminal).pattern
        return repr(pattern.value) if pattern.type == "str" else terminal.lower()
    except KeyError:
        return terminal.lower()


# ---- text -> Python values and statement tuples ------------------------------------------

_ESCAPE = re.compile(r'\\(?:x([0-9a-fA-F]{2})|u([0-9a-fA-F]{4})|U([0-9a-fA-F]{8})|(.))', re.S)
_SIMPLE = {'"': '"', "\\": "\\", "n": "\n", "t": "\t", "r": "\r"}


def unquote(tok: Token, skip: int = 0) -> str:
    """The text of a string literal token (``skip`` leading sigil characters)."""
    body = tok[skip + 1:-1]
    if "\\" not in body:
        return body

    def one(m: re.Match) -> str:
        code = m.group(1) or m.group(2) or m.group(3)
        if code:
            n = int(code, 16)
            if n > 0x10FFFF:
                raise _Located(f"escape \\U{code} is beyond unicode", tok)
            return chr(n)
        if m.group(4) in _SIMPLE:
            return _SIMPLE[m.group(4)]
        raise _Located(f"unknown escape \\{m.group(4)} in string", tok)

    return _ESCAPE.sub(one, body)


def _name(tok: Token) -> str:
    """The name in a ``%name`` / ``@name`` token."""
    return unquote(tok, 1) if tok[1:2] == '"' else tok[1:]


class _Graph:
    """A parsed ``graph @name {...}`` that the builder has not built yet."""

    __slots__ = ("tok", "headers", "stmts")

    def __init__(self, tok, headers, stmts):
        self.tok, self.headers, self.stmts = tok, headers, stmts


class _Dense:
    """A ``dense<...>`` payload: hex text or a list of strings, not yet typed."""

    __slots__ = ("tok", "data")

    def __init__(self, tok, data):
        self.tok, self.data = tok, data


@v_args(inline=True)
class _ToAst(Transformer):
    # scalars
    def int_(self, tok):
        return _number(tok, tok)

    def float_(self, tok):
        return float(tok)

    def str_(self, tok):
        return unquote(tok)

    def true(self):
        return True

    def false(self):
        return False

    def bytes_(self, tok):
        return _hex(tok, tok[4:-1])

    def elided(self, tok):
        raise _Located(_elided_message("this value", tok), tok)

    def dense_elided(self, tok):
        raise _Located(_elided_message("this tensor", tok), tok)

    def dense(self, data):
        if isinstance(data, Token):
            return _Dense(data, data)
        return _Dense(None, data)

    def tensor(self, dense, typ):
        return _array(dense, typ, "tensor attribute")

    @v_args(inline=False)
    def list(self, items):
        return [x for x in items if x is not None]

    @v_args(inline=False)
    def dict(self, items):
        items = [x for x in items if x is not None]
        out = {}
        for tok, value in zip(items[::2], items[1::2]):
            key = unquote(tok)
            if key in out:
                raise _Located(f"key {key!r} appears twice", tok)
            out[key] = value
        return out

    def nums(self, tok):
        return _numbers(tok, tok[1:-1])

    def type(self, tok):
        return (_type(tok), tok)

    def attr(self, key, value):
        return (key, value)

    @v_args(inline=False)
    def attrs(self, items):
        out = {}
        for item in items:
            if item is None:
                continue
            tok, value = item
            key = unquote(tok) if tok.type == "STRING" else str(tok)
            if key in out:
                raise _Located(f"attribute {key!r} is given twice", tok)
            out[key] = value
        return out

    # statements
    def graph(self, tok, *rest):
        headers = [r for r in rest if r[0] in ("layout", "opsets")]
        stmts = [r for r in rest if r[0] not in ("layout", "opsets")]
        return _Graph(tok, headers, stmts)

    def layout(self, tok):
        return ("layout", tok, None)

    def opsets(self, tok, value):
        return ("opsets", tok, value)

    def metadata(self, key, value):
        return ("metadata", key, value)

    def input(self, tok, typ):
        return ("input", tok, typ)

    def const(self, tok, typ, dense):
        return ("const", tok, typ, dense)

    @v_args(inline=False)
    def results(self, items):
        return list(zip(items[::2], items[1::2]))

    @v_args(inline=False)
    def values(self, items):
        return items

    @v_args(inline=False)
    def operands(self, items):
        return items

    def call(self, op, operands, attrs, name_tok):
        return (op, operands or [], attrs or {}, name_tok)

    def node(self, results, call):
        return ("node", results, call)

    def node0(self, call):
        return ("node", [], call)

    def ret(self, values):
        return ("return", values or [])


_HEX_OK = re.compile(r"[0-9a-fA-F]*")


def _hex(tok: Token, digits: str) -> bytes:
    if len(digits) % 2 or not _HEX_OK.fullmatch(digits):
        bad = next((i for i, c in enumerate(digits) if c not in "0123456789abcdefABCDEF"), None)
        why = (f"bad hex digit {digits[bad]!r}" if bad is not None else
               "odd number of hex digits")
        raise _Located(f"malformed hex data: {why}", tok)
    return bytes.fromhex(digits)


def _elided_message(what: str, tok: Token) -> str:
    size = re.search(r"bytes=(\d+)", tok)
    size = f" ({size.group(1)} bytes)" if size else ""
    return (f"{what} was elided by the printer{size}; print the model with --full "
            "to get text that parses")


_INT = re.compile(r"[+-]?\d+")
_FLOAT = re.compile(r"[+-]?(\d+\.\d*([eE][+-]?\d+)?|\d+[eE][+-]?\d+|inf|nan)")
_DIM = re.compile(r'\s*(?:(\*)|([+-]?\d+)|("(?:[^"\\\n]|\\.)*"))\s*([,\]])')
_QUANT_ITEM = re.compile(r"\s*([A-Za-z_]\w*)\s*=\s*(\[[^\]]*\]|[^,\s]+)\s*(?:,|\Z)")


def _numbers(tok: Token, text: str) -> list:
    """The ints and floats of a comma-separated list (``"1, 2.5"``)."""
    if not text.strip():
        return []
    return [_number(tok, part.strip()) for part in text.split(",")]


def _number(tok: Token, text: str) -> int | float:
    if _INT.fullmatch(text):
        try:
            return int(text)
        except ValueError:
            raise _Located(f"integer {text[:20]}... has too many digits", tok) from None
    if _FLOAT.fullmatch(text):
        return float(text)
    raise _Located(f"{text[:20]!r} is not a number", tok)


def _type(tok: Token) -> TensorType:
    """The type a TYPE token spells: ``f32[1,"n"]<scale=0.5, zp=0>``."""
    text = str(tok)
    open_at = text.index("[")
    try:
        dtype = DType.parse(text[:open_at])
    except ValueError:
        names = ", ".join(d.value for d in DType)
        raise _Located(f"unknown element type {text[:open_at]!r} (known: {names})",
                       tok) from None
    dims: list = []
    pos = open_at + 1
    if text[pos:pos + 1] == "]":
        pos += 1
    else:
        while True:
            m = _DIM.match(text, pos)
            if not m:
                raise _Located(f"malformed shape in type {text[:open_at + 1]}...]: a shape "
                               "lists integers and quoted names, or is [*]", tok)
            star, num, sym, sep = m.groups()
            dims.append(star or (_number(tok, num) if num else
                                 unquote(Token("STRING", sym, 0, tok.line, tok.column))))
            pos = m.end()
            if sep == "]":
                break
    if "*" in dims and len(dims) > 1:
        raise _Located("[*] (unknown rank) cannot be mixed with other dims", tok)
    shape = None if dims == ["*"] else tuple(dims)
    quant = _quant(tok, text[pos + 1:-1]) if pos < len(text) else None
    return TensorType(shape, dtype, quant)


def _quant(tok: Token, text: str) -> QuantParams:
    fields: dict = {}
    pos = 0
    while pos < len(text):
        m = _QUANT_ITEM.match(text, pos)
        if not m:
            raise _Located("malformed quantization: expected <scale=S, zp=Z> or "
                           "<axis=A, scale=[...], zp=[...]>", tok)
        key, raw = m.groups()
        if key not in ("scale", "zp", "axis") or key in fields:
            raise _Located(f"quantization takes scale, zp and axis once each, not {key!r}", tok)
        fields[key] = _numbers(tok, raw[1:-1]) if raw.startswith("[") else _number(tok, raw)
        pos = m.end()
    if "scale" not in fields or "zp" not in fields:
        raise _Located("quantization needs both scale and zp", tok)
    axis, scale, zp = fields.get("axis"), fields["scale"], fields["zp"]
    if axis is None:
        if isinstance(scale, list) or isinstance(zp, list):
            raise _Located("per-tensor quantization has one scale and zp; per-axis needs axis=",
                           tok)
        scale, zp = [scale], [zp]
    elif not isinstance(axis, int) or not isinstance(scale, list) or not isinstance(zp, list):
        raise _Located("per-axis quantization is <axis=A, scale=[...], zp=[...]>", tok)
    if not all(isinstance(z, int) for z in zp):
        raise _Located("zero points must be integers", tok)
    try:
        return QuantParams(tuple(scale), tuple(zp), axis)
    except (ValueError, OverflowError) as e:
        raise _Located(f"bad quantization: {e}", tok) from None


def _array(dense: _Dense, typ: tuple, what: str) -> np.ndarray:
    """The numpy array a ``dense<...>`` payload of type ``typ`` holds."""
    t, at = typ
    if t.shape is None or not all(isinstance(d, int) and d >= 0 for d in t.shape):
        raise _Located(f"{what} needs a static shape, not {t}", at)
    count = math.prod(t.shape)
    if t.dtype == DType.STRING:
        items = dense.data
        if not isinstance(items, list):
            raise _Located(f"{what} of type str is written dense<[\"a\", ...]>", dense.tok or at)
        if not all(isinstance(x, (str, bytes)) for x in items):
            raise _Located(f"{what} of type str holds strings only", at)
        if len(items) != count:
            raise _Located(f"{what} has {len(items)} strings but its type {t} "
                           f"needs {count}", at)
        arr = np.empty(len(items), dtype=object)
        arr[:] = items
        return arr.reshape(t.shape)
    if isinstance(dense.data, list):
        raise _Located(f"{what} of type {t.dtype.value} is written as hex: dense<\"...\">", at)
    raw = _hex(dense.tok, dense.data[7:-2])
    dt = t.dtype.numpy
    if len(raw) != count * dt.itemsize:
        raise _Located(f"{what} has {len(raw)} bytes but its type {t} needs "
                       f"{count * dt.itemsize}", dense.tok)
    arr = np.frombuffer(bytearray(raw), dtype=dt.newbyteorder("<")).astype(dt, copy=False)
    return arr.reshape(t.shape)


# ---- statements -> Graph -----------------------------------------------------------------

class _Builder:
    def graph(self, ast: _Graph, parent: Graph | None) -> Graph:
        g = Graph(_name(ast.tok), parent=parent)
        for header in ast.headers:
            self.header(g, header)
        defined: dict[str, Token] = {}
        done = False
        for stmt in ast.stmts:
            kind = stmt[0]
            if done:
                raise _Located("nothing may follow return in a graph",
                               _first_token(stmt) or ast.tok)
            if kind == "metadata":
                tok, value = stmt[1], stmt[2]
                key = unquote(tok) if tok.type == "STRING" else str(tok)
                if key in g.metadata:
                    raise _Located(f"metadata {key!r} is given twice", tok)
                g.metadata[key] = self.value(value, g)
            elif kind == "input":
                self.define(defined, stmt[1])
                g.add_input(_name(stmt[1]), stmt[2][0])
            elif kind == "const":
                self.define(defined, stmt[1])
                arr = _array(stmt[3], stmt[2], f"constant {stmt[1]}")
                g.add_const(_name(stmt[1]), arr, stmt[2][0])
            elif kind == "node":
                self.node(g, defined, stmt[1], stmt[2])
            else:
                g.outputs = [self.use(g, tok) for tok in stmt[1]]
                done = True
        if not done:
            raise _Located(f"graph {ast.tok} has no return statement", ast.tok)
        return g

    def header(self, g: Graph, header: tuple) -> None:
        kind, tok, value = header
        if kind == "layout":
            g.layout = unquote(tok) if tok.type == "STRING" else str(tok)
        elif not all(isinstance(v, int) and not isinstance(v, bool) for v in value.values()):
            raise _Located("opsets maps domains to integer versions", tok)
        else:
            g.opsets = value

    def define(self, defined: dict, tok: Token) -> None:
        name = _name(tok)
        if name in defined:
            first = defined[name]
            raise _Located(f"value {tok} is defined twice (first at line {first.line})", tok)
        defined[name] = tok

    def use(self, g: Graph, tok: Token):
        v = g.lookup(_name(tok))
        if v is None:
            raise _Located(f"use of undefined value {tok}", tok)
        return v

    def node(self, g: Graph, defined: dict, results: list, call: tuple) -> None:
        op_tok, operand_toks, attrs, name_tok = call
        op = unquote(op_tok) if op_tok.type == "STRING" else str(op_tok)
        inputs = [None if tok.type == "NONE" else self.use(g, tok) for tok in operand_toks]
        attrs = {k: self.value(v, g) for k, v in attrs.items()}
        outs = []
        for tok, typ in results:
            self.define(defined, tok)
            outs.append((_name(tok), typ[0]))
        name = None if name_tok is None else _name(name_tok)
        if name == "":
            raise _Located("a node name cannot be empty", name_tok)
        if not outs and name is None:
            raise _Located(f"a node without results needs a name: {op}(...) @name", op_tok)
        try:
            g.add_node(op, inputs, outs, attrs, name=name)
        except VerifyError as e:
            raise _Located(str(e), op_tok) from None

    def value(self, v: Any, g: Graph) -> Any:
        """Build nested graphs inside an attribute or metadata value."""
        if isinstance(v, _Graph):
            return self.graph(v, g)
        if isinstance(v, list) and any(isinstance(x, (_Graph, list, dict)) for x in v):
            return [self.value(x, g) for x in v]
        if isinstance(v, dict):
            return {k: self.value(x, g) for k, x in v.items()}
        return v


def _first_token(stmt: tuple) -> Any:
    for part in stmt[1:]:
        if isinstance(part, Token):
            return part
        if isinstance(part, (list, tuple)) and part:
            found = _first_token((None, *part))
            if found is not None:
                return found
    return None

