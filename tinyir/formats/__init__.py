"""Reading and writing models: ``.onnx``, ``.tflite`` and textual IR ``.tir``.

:func:`load` and :func:`save` choose the format from the file name and check the
file before any parser sees it.  Importers only translate; normalising is a pass.
Every failure is an :class:`~tinyir.errors.InputError` with a one-line message, and
:func:`save` never leaves a partial file behind (it writes a temporary file and
renames it into place).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from tinyir.errors import InputError, TinyIRError

FORMATS = {".onnx": "onnx", ".tflite": "tflite", ".tir": "tir"}
MAX_MODEL_BYTES = 2 << 30  # protobuf's own limit; nothing an MCU runs comes close


def format_of(path: str | os.PathLike) -> str:
    ext = Path(path).suffix.lower()
    if ext not in FORMATS:
        raise InputError(f"{path}: unknown model format {ext or '(no extension)'!r}; "
                         "expected .onnx, .tflite or .tir")
    return FORMATS[ext]


def read_bytes(path: str | os.PathLike) -> bytes:
    """The file's bytes, after the checks every model file gets."""
    p = Path(path)
    if not p.exists():
        raise InputError(f"{p}: no such file")
    if p.is_dir():
        raise InputError(f"{p}: is a directory, not a model file")
    try:
        size = p.stat().st_size
        if size == 0:
            raise InputError(f"{p}: file is empty")
        if size > MAX_MODEL_BYTES:
            raise InputError(f"{p}: file is {size} bytes, larger than tinyir accepts (2 GiB)")
        return p.read_bytes()
    except OSError as e:
        raise InputError(f"{p}: cannot read: {e.strerror or e}") from None


def load(path: str | os.PathLike):
    """Import a model file as a :class:`~tinyir.graph.Graph` (format from the extension)."""
    fmt = format_of(path)
    data = read_bytes(path)
    try:
        if fmt == "onnx":
            from tinyir.formats.onnx_format import read_onnx
            return read_onnx(data, path=Path(path))
        if fmt == "tflite":
            from tinyir.formats.tflite_format import read_tflite
            return read_tflite(data, path=Path(path))
        from tinyir.formats.tir import parse_tir
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as e:
            raise InputError(f"{path}: not UTF-8 text (byte {e.start}); is this really .tir?") \
                from None
        return parse_tir(text, filename=str(path))
    except TinyIRError:
        raise
    except RecursionError:
        raise InputError(f"{path}: model is nested too deeply to read") from None
    except MemoryError:
        raise InputError(f"{path}: model needs more memory than this machine has") from None


def dumps(graph, fmt: str) -> bytes:
    """Serialise ``graph`` in ``fmt`` (``onnx``, ``tflite`` or ``tir``)."""
    if fmt == "onnx":
        from tinyir.formats.onnx_format import write_onnx_bytes
        if any(n.dialect == "tfl" for _, n in graph.walk()):
            # a quantized (or lowered) TFLite-dialect graph is written as ONNX QDQ
            from tinyir.passes.qdq import to_onnx_qdq
            graph = to_onnx_qdq(graph)
        return write_onnx_bytes(graph)
    if fmt == "tflite":
        from tinyir.formats.tflite_format import write_tflite_bytes
        return write_tflite_bytes(graph)
    from tinyir.formats.tir import print_tir
    return print_tir(graph).encode("utf-8")


def save(graph, path: str | os.PathLike) -> None:
    """Write ``graph`` to ``path`` atomically, in the format its extension names."""
    fmt = format_of(path)
    write_atomic(path, dumps(graph, fmt))


def write_atomic(path: str | os.PathLike, data: bytes | str) -> None:
    """Write ``data`` to ``path`` through a temporary file renamed into place, so that a
    failure never leaves a partial file behind."""
    p = Path(path)
    parent = p.parent if str(p.parent) else Path(".")
    if not parent.is_dir():
        raise InputError(f"{p}: folder {parent} does not exist")
    if isinstance(data, str):
        data = data.encode("utf-8")
    fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".part", dir=parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, p)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
