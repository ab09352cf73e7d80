"""Print a :class:`~tinyir.graph.Graph` as textual IR (``.tir``).

The text is canonical: ``print_tir(parse_tir(t)) == t`` for printed text ``t``, and
``parse_tir(print_tir(g))`` equals ``g`` (see :mod:`tinyir.compare`).  The shape of it::

    graph @main layout=NCHW opsets={"": 17} {
      metadata producer_name = "pytorch"
      input %x : f32[1,1,"n",8]
      const %w : f32[2] = dense<"0000803f00000040">
      const %q : i8[2]<axis=0, scale=[0.5, 0.25], zp=[0, 0]> = dense<"01ff">
      %y : f32[1,1,"n",8] = onnx.Mul(%x, %w) @mul1
      %a : f32[*], %b : f32[] = onnx.Split(%y, _) {axis = 0, split = [1, 1]}
      return %a
    }

Spellings:

* names: ``%x`` / ``@conv1`` when the name is made of ``A-Za-z0-9_./-``, otherwise a
  quoted string (``%"serving_default_input:0"``); ``@name`` after a node is left out
  when the node is called like its first result; op names are bare when dotted
  (``onnx.com.microsoft.QLinearAdd``), quoted otherwise; ``_`` is an omitted operand;
* types: ``f32[1,"batch",3]`` (symbolic dims quoted), ``f32[*]`` (unknown rank),
  ``f32[]`` (scalar), then quantization ``<scale=S, zp=Z>`` or
  ``<axis=A, scale=[...], zp=[...]>``;
* values: ``1`` (int), ``1.0`` / ``nan`` / ``-inf`` (float, ``repr``), ``true``, ``"s"``
  (escapes ``\\" \\\\ \\n \\t \\r \\xHH \\uHHHH \\UHHHHHHHH``), ``hex"00ff"`` (bytes), ``[...]``,
  ``{"key": value}``, ``dense<"hex"> : f32[2]`` (tensor: little-endian raw bytes;
  strings as ``dense<["a", "b"]>``), ``graph @body { ... }`` (nested graph);
* ``elided<sha256="...", bytes=N>`` replaces payloads above ``max_const_bytes``; such
  text is for reading only and does not parse.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

import numpy as np

from tinyir.errors import VerifyError
from tinyir.graph import Graph
from tinyir.types import DType, TensorType

__all__ = ["print_tir", "format_type", "quote", "format_name"]

_BARE_NAME = re.compile(r"[A-Za-z0-9_./\-]+")
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_OP = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z0-9_]+)+")
_PLAIN = re.compile(r'[ !#-\[\]-~]*')  # printable ASCII without " and \
_ESCAPES = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\t": "\\t", "\r": "\\r"}


def quote(s: str) -> str:
    """``s`` as a double-quoted string literal of the textual IR."""
    if _PLAIN.fullmatch(s):
        return '"' + s + '"'
    out = ['"']
    for ch in s:
        esc = _ESCAPES.get(ch)
        if esc is not None:
            out.append(esc)
        elif ch.isprintable():
            out.append(ch)
        else:
            code = ord(ch)
            out.append(f"\\x{code:02x}" if code < 0x100 else
                       f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}")
    out.append('"')
    return "".join(out)


def format_name(sigil: str, name: str) -> str:
    """``%name`` / ``@name``, quoted when the name is not a plain word."""
    return sigil + (name if _BARE_NAME.fullmatch(name) else quote(name))


def _key(name: str) -> str:
    return name if _IDENT.fullmatch(name) else quote(name)


def format_type(t: TensorType) -> str:
    """``f32[1,"batch",3]``, ``f32[*]``, ``f32[]`` plus quantization, if any."""
    if t.shape is None:
        dims = "*"
    else:
        dims = ",".join(str(d) if isinstance(d, int) else quote(d) for d in t.shape)
    text = f"{t.dtype.value}[{dims}]"
    q = t.quant
    if q is not None:
        if q.axis is None:
            text += f"<scale={q.scale[0]!r}, zp={q.zero_point[0]}>"
        else:
            scales = ", ".join(repr(s) for s in q.scale)
            zps = ", ".join(str(z) for z in q.zero_point)
            text += f"<axis={q.axis}, scale=[{scales}], zp=[{zps}]>"
    return text


def print_tir(graph, max_const_bytes: int | None = None) -> str:
    """The textual IR of ``graph``; payloads above ``max_const_bytes`` are elided."""
    p = _Printer(max_const_bytes)
    p.graph(graph, 0)
    p.out.append("\n")
    return "".join(p.out)


class _Printer:
    def __init__(self, max_const_bytes: int | None):
        self.limit = max_const_bytes
        self.out: list[str] = []

    def graph(self, g, depth: int) -> None:
        out = self.out
        pad = "  " * (depth + 1)
        head = "graph " + format_name("@", g.name)
        if g.layout is not None:
            head += " layout=" + _key(g.layout)
        if g.opsets:
            head += " opsets=" + self.value(dict(g.opsets), depth)
        out.append(head + " {\n")
        for k, v in g.metadata.items():
            out.append(f"{pad}metadata {_key(k)} = {self.value(v, depth + 1)}\n")
        for v in g.inputs:
            out.append(f"{pad}input {format_name('%', v.name)} : {format_type(v.type)}\n")
        for v in g.constants:
            out.append(f"{pad}const {format_name('%', v.name)} : {format_type(v.type)} = "
                       f"{self.payload(_const_array(v), f'constant %{v.name}')}\n")
        for node in g.nodes:
            out.append(pad + self.node(node, depth + 1) + "\n")
        rets = ", ".join(format_name("%", v.name) for v in g.outputs)
        out.append(f"{pad}return {rets}\n" if rets else f"{pad}return\n")
        out.append("  " * depth + "}")

    def node(self, node, depth: int) -> str:
        results = ", ".join(f"{format_name('%', v.name)} : {format_type(v.type)}"
                            for v in node.outputs)
        op = node.op if _OP.fullmatch(node.op) else quote(node.op)
        args = ", ".join("_" if v is None else format_name("%", v.name) for v in node.inputs)
        text = f"{results} = {op}({args})" if results else f"{op}({args})"
        if node.attrs:
            attrs = ", ".join(f"{_key(k)} = {self.value(v, depth, f'{node.name}.{k}')}"
                              for k, v in node.attrs.items())
            text += " {" + attrs + "}"
        if not node.outputs or node.name != node.outputs[0].name:
            text += " " + format_name("@", node.name)
        return text

    def value(self, v: Any, depth: int, where: str = "metadata") -> str:
        # bool before int: bool is a subclass of int
        if isinstance(v, (bool, np.bool_)):
            return "true" if v else "false"
        if isinstance(v, (int, np.integer)):
            return str(int(v))
        if isinstance(v, (float, np.floating)):
            return repr(float(v))
        if isinstance(v, str):
            return quote(v)
        if isinstance(v, (bytes, bytearray)):
            if self.limit is not None and len(v) > self.limit:
                return _elided(bytes(v))
            return 'hex"' + bytes(v).hex() + '"'
        if isinstance(v, (list, tuple)):
            return "[" + ", ".join(self.value(x, depth, where) for x in v) + "]"
        if isinstance(v, dict):
            return "{" + ", ".join(f"{quote(str(k))}: {self.value(x, depth, where)}"
                                   for k, x in v.items()) + "}"
        if isinstance(v, np.ndarray):
            try:
                t = TensorType(v.shape, DType.from_numpy(v.dtype))
            except ValueError as e:
                raise VerifyError(f"{where}: {e}") from None
            return f"{self.payload(v, where)} : {format_type(t)}"
        if isinstance(v, Graph):
            mark = len(self.out)
            self.graph(v, depth)
            text = "".join(self.out[mark:])
            del self.out[mark:]
            return text
        raise VerifyError(f"{where}: value of type {type(v).__name__} cannot be printed "
                          "(attributes hold int, float, str, bytes, bool, lists, arrays or graphs)")

    def payload(self, arr: np.ndarray, where: str) -> str:
        """``dense<...>`` for an array (the element type comes from the context)."""
        if arr.dtype == object or arr.dtype.kind in "US":
            items = arr.reshape(-1).tolist()
            for x in items:
                if not isinstance(x, (str, bytes)):
                    raise VerifyError(f"{where}: string tensor holds a {type(x).__name__}")
            if self.limit is not None:
                data = b"\0".join(x.encode("utf-8", "surrogatepass") if isinstance(x, str)
                                  else x for x in items)
                if len(data) > self.limit:
                    return _elided(data)
            return "dense<[" + ", ".join(quote(x) if isinstance(x, str) else
                                         'hex"' + x.hex() + '"' for x in items) + "]>"
        data = np.ascontiguousarray(arr, dtype=arr.dtype.newbyteorder("<")).tobytes()
        if self.limit is not None and len(data) > self.limit:
            return _elided(data)
        return 'dense<"' + data.hex() + '">'


def _const_array(v) -> np.ndarray:
    arr, t = v.const, v.type
    if not isinstance(arr, np.ndarray):
        raise VerifyError(f"constant %{v.name} does not hold a numpy array")
    if t.shape is None or tuple(arr.shape) != tuple(t.shape):
        raise VerifyError(f"constant %{v.name} has array shape {list(arr.shape)} but type {t}")
    if t.dtype == DType.STRING:
        if arr.dtype != object and arr.dtype.kind not in "US":
            raise VerifyError(f"constant %{v.name} holds {arr.dtype} but its type says str")
    elif arr.dtype.newbyteorder("=") != t.dtype.numpy:
        raise VerifyError(f"constant %{v.name} holds {arr.dtype} but its type says "
                          f"{t.dtype.value}")
    return arr


def _elided(data: bytes) -> str:
    return f'elided<sha256="{hashlib.sha256(data).hexdigest()}", bytes={len(data)}>'
