"""TFLite flatbuffers <-> Graph, through the generated ``tflite`` classes and builders.

Mapping (the exporter inverts each line):

* **Model -> Graph.**  Subgraph 0 is the returned graph (``layout="NHWC"``).  Every
  other subgraph (WHILE/IF/CALL_ONCE bodies) is a Graph of its own, kept in
  ``graph.metadata["tflite.subgraphs"]`` (a list; element ``i - 1`` is subgraph ``i``),
  so node attrs such as ``body_subgraph_index`` keep their meaning and export writes
  the bodies back at the same indices.
* **Model facts** live in the root graph's metadata: ``tflite.version`` (int),
  ``tflite.description`` (str), ``tflite.metadata.<name>`` (bytes, one per metadata
  entry, in file order), ``tflite.metadata_buffer`` (list of bytes) and signature
  defs as ``tflite.signature.<i>.{key, subgraph, inputs, input_values, outputs,
  output_values}`` (the ``*_values`` lists name graph values instead of tensor indices).
* **Operators -> nodes** ``tfl.<BUILTIN_NAME>`` (the larger of ``builtin_code`` and
  ``deprecated_builtin_code``); custom ops are ``tfl.CUSTOM`` with ``custom_code`` and
  ``custom_options`` (raw bytes).  Builtin options become snake_case attrs through the
  table in :mod:`tinyir.formats.tflite_options`.  Operator-level facts are attrs too:
  ``op_version`` (when not 1), ``intermediates`` (count; the intermediate tensors are
  the node's *last* results), ``mutating_variable_inputs``, ``custom_options_format``,
  ``debug_metadata_index``, and ``builtin_options_type`` when the file carries another
  options table than the op's usual one (``"NONE"`` for none).  A missing optional
  operand (index -1) is ``None``.
* **Tensors -> values.**  Shapes come from ``shape`` (a negative entry becomes a
  symbolic dim ``"?<axis>"``); ``shape_signature`` is kept as a fact when it differs.
  ``quant`` is ``QuantParams(scale, zero_point, axis=quantized_dimension)`` with
  ``axis=None`` for a single scale.  A tensor with buffer data is a constant (the
  array holds the exact little-endian values; int4 unpacked to int8, bfloat16 widened
  to float32, strings as an object array of bytes).  Variable tensors without data
  are constants of zeros (a read-only broadcast view) with the ``is_variable`` fact.
  A sparse tensor is a 1-D constant of its stored values; its dense shape and the
  sparsity parameters are facts.  Unused tensors without data are dropped.
* **Tensor facts** that a Value has no field for live in the owning graph's metadata
  under ``tflite.tensor.<value name>.<fact>``: ``name`` (original name, when the value
  had to be renamed to be unique), ``shape_signature``, ``has_rank``, ``is_variable``,
  ``quant_min``, ``quant_max``, ``quantized_dimension`` (a single-scale tensor with a
  non-zero dimension), ``custom_quantization`` (bytes), ``dtype`` (``RESOURCE`` /
  ``VARIANT``, held as i32), ``shape`` + ``sparsity.*`` for sparse tensors, and
  ``unwritten`` for a tensor that operators read but nothing writes and that has no
  data (Vela scratch areas): it is held as a constant of zeros and exported without
  data, like a variable.

Export numbers tensors as: graph inputs, constants, node results in node order.
Buffer 0 is the empty sentinel; constant data is 16-byte aligned (TFLM reads it in
place); identical constant data shares one buffer.

The file is untrusted: tables and vectors are range-checked before they are read, and
anything the generated classes still raise becomes an :class:`InputError`.
"""

from __future__ import annotations

import math
import struct

import flatbuffers
import numpy as np
import tflite
from tflite.utils import BUILTIN_OPCODE2NAME

from tinyir.errors import InputError, TinyIRError, UnsupportedError
from tinyir.formats.tflite_options import (BUILTIN_CODES, OP_OPTIONS, OPERATOR_ATTRS, UNION_NAMES,
                                           UNION_TYPES, read_options, write_options)
from tinyir.graph import Graph, Value
from tinyir.types import DType, QuantParams, TensorType

MAX_TENSOR_BYTES = 2 << 30
TENSOR_FACT = "tflite.tensor.{}.{}"

_TFL_TYPES = {v: k for k, v in vars(tflite.TensorType).items() if not k.startswith("_")}
_DTYPE_OF = {
    "FLOAT32": DType.FLOAT32, "FLOAT16": DType.FLOAT16, "INT32": DType.INT32,
    "UINT8": DType.UINT8, "INT64": DType.INT64, "STRING": DType.STRING, "BOOL": DType.BOOL,
    "INT16": DType.INT16, "COMPLEX64": DType.COMPLEX64, "INT8": DType.INT8,
    "FLOAT64": DType.FLOAT64, "COMPLEX128": DType.COMPLEX128, "UINT64": DType.UINT64,
    "UINT32": DType.UINT32, "UINT16": DType.UINT16, "INT4": DType.INT4,
    "BFLOAT16": DType.BFLOAT16, "RESOURCE": DType.INT32, "VARIANT": DType.INT32,
}
_TFL_OF = {d: getattr(tflite.TensorType, k) for k, d in _DTYPE_OF.items()
           if k not in ("RESOURCE", "VARIANT")}
_SEGMENT_TYPES = {1: np.int32, 2: np.uint16, 3: np.uint8}


def _short(text, limit: int = 60) -> str:
    s = text if isinstance(text, str) else repr(text)
    s = s.encode("unicode_escape").decode("ascii")
    return s if len(s) <= limit else s[:limit] + "..."


# ---------------------------------------------------------------------------------------
# reading


def read_tflite(data: bytes, path=None) -> Graph:
    """Import a ``.tflite`` flatbuffer; see the module docstring for the mapping."""
    where = str(path) if path is not None else "<tflite>"
    try:
        return _Reader(bytes(data), where).model()
    except TinyIRError:
        raise
    except RecursionError:
        raise InputError(f"{where}: model is nested too deeply to read") from None
    except MemoryError:
        raise InputError(f"{where}: model needs more memory than this machine has") from None
    except Exception as e:  # the generated classes raise anything on corrupt data
        msg = _short(str(e).split("\n")[0])
        raise InputError(f"{where}: corrupt TFLite file ({type(e).__name__}: {msg})") from None


class _Reader:
    def __init__(self, data: bytes, where: str):
        self.buf = data
        self.n = len(data)
        self.where = where

    def bad(self, why: str) -> InputError:
        return InputError(f"{self.where}: {why}")

    # -- bounds checks --------------------------------------------------------------
    def table(self, obj, what: str):
        """Check that a table and its vtable lie inside the file; returns obj."""
        tab = obj._tab if hasattr(obj, "_tab") else obj
        pos, buf = tab.Pos, self.buf
        if pos < 0 or pos + 4 > self.n:
            raise self.bad(f"{what} points outside the file")
        vt = pos - struct.unpack_from("<i", buf, pos)[0]
        if vt < 0 or vt + 4 > self.n:
            raise self.bad(f"{what} has its field table outside the file")
        vsize, tsize = struct.unpack_from("<HH", buf, vt)
        if vsize < 4 or vsize % 2 or vt + vsize > self.n or tsize < 4 or pos + tsize > self.n:
            raise self.bad(f"{what} has a broken field table")
        for k in range(4, vsize, 2):
            off = struct.unpack_from("<H", buf, vt + k)[0]
            if off and off >= tsize:
                raise self.bad(f"{what} has a field outside the table")
        return obj

    def vector(self, tab, vt_off: int, elem: int, what: str) -> int:
        """Check the vector in field ``vt_off``; returns its length (0 when absent)."""
        o = tab.Offset(vt_off)
        if not o:
            return 0
        at = tab.Pos + o
        if at + 4 > self.n:
            raise self.bad(f"{what} points outside the file")
        start = at + struct.unpack_from("<I", self.buf, at)[0]
        if start + 4 > self.n:
            raise self.bad(f"{what} points outside the file")
        length = struct.unpack_from("<I", self.buf, start)[0]
        if start + 4 + length * elem > self.n:
            raise self.bad(f"{what} has {length} entries, more than the file holds")
        return length

    def ints(self, obj, vt_off: int, elem: int, getter: str, what: str) -> list[int]:
        n = self.vector(obj._tab, vt_off, elem, what)
        return [int(x) for x in getattr(obj, getter)()] if n else []

    def string(self, obj, vt_off: int, getter: str, what: str) -> str | None:
        if not obj._tab.Offset(vt_off):
            return None
        self.vector(obj._tab, vt_off, 1, what)
        raw = getattr(obj, getter)()
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise self.bad(f"{what} is not UTF-8") from None

    def bytes_of(self, obj, vt_off: int, what: str) -> bytes:
        tab = obj._tab
        n = self.vector(tab, vt_off, 1, what)
        if not n:
            return b""
        start = tab.Vector(tab.Offset(vt_off))
        return self.buf[start:start + n]

    # -- model ----------------------------------------------------------------------
    def model(self) -> Graph:
        if self.n < 8:
            raise self.bad(f"file is {self.n} bytes, too short for a TFLite model")
        if self.buf[4:8] != b"TFL3":
            raise self.bad("not a TFLite model (no 'TFL3' file identifier at bytes 4..8)")
        root = struct.unpack_from("<I", self.buf, 0)[0]
        if root + 4 > self.n:
            raise self.bad("root table offset points past the end of the file")
        m = self.table(tflite.Model.GetRootAs(self.buf, 0), "model")
        self.buffers = self._buffers(m)
        self.opcodes = self._opcodes(m)
        n_sub = self.vector(m._tab, 8, 4, "subgraph list")
        if n_sub == 0:
            raise self.bad("model has no subgraphs")
        self.tensor_names: list[dict[int, str]] = []
        graphs = [self._subgraph(m, i) for i in range(n_sub)]
        g = graphs[0]
        if len(graphs) > 1:
            g.metadata["tflite.subgraphs"] = graphs[1:]
        g.metadata["tflite.version"] = int(m.Version())
        desc = self.string(m, 10, "Description", "model description")
        if desc is not None:
            g.metadata["tflite.description"] = desc
        for i in range(self.vector(m._tab, 16, 4, "metadata list")):
            md = self.table(m.Metadata(i), f"metadata {i}")
            name = self.string(md, 4, "Name", f"metadata {i} name") or ""
            g.metadata[f"tflite.metadata.{name}"] = self.buffer(md.Buffer(), f"metadata {name}")
        mb = self.ints(m, 14, 4, "MetadataBufferAsNumpy", "metadata buffer list")
        if mb:
            g.metadata["tflite.metadata_buffer"] = [self.buffer(b, "metadata buffer") for b in mb]
        for i in range(self.vector(m._tab, 18, 4, "signature list")):
            self._signature(g, m, i, n_sub)
        return g

    def _buffers(self, m) -> list:
        out = []
        for i in range(self.vector(m._tab, 12, 4, "buffer list")):
            b = self.table(m.Buffers(i), f"buffer {i}")
            off, size = int(b.Offset()), int(b.Size())
            if off > 1:  # data stored after the flatbuffer (models over 2 GB)
                if off + size > self.n:
                    raise self.bad(f"buffer {i} lies at bytes {off}..{off + size}, past the end "
                                   f"of the {self.n}-byte file")
                out.append(self.buf[off:off + size])
            else:
                out.append(self.bytes_of(b, 4, f"buffer {i}"))
        return out

    def buffer(self, index: int, what: str) -> bytes:
        if not 0 <= index < len(self.buffers):
            raise self.bad(f"{what} refers to buffer {index}; the model has "
                           f"{len(self.buffers)}")
        return self.buffers[index]

    def _opcodes(self, m) -> list[tuple[str, str | None, int]]:
        out = []
        for i in range(self.vector(m._tab, 6, 4, "operator code list")):
            oc = self.table(m.OperatorCodes(i), f"operator code {i}")
            code = max(int(oc.DeprecatedBuiltinCode()), int(oc.BuiltinCode()))
            name = BUILTIN_OPCODE2NAME.get(code)
            if name is None or name == "PLACEHOLDER_FOR_GREATER_OP_CODES":
                raise UnsupportedError(f"{self.where}: operator code {code} is not a TFLite "
                                       "builtin tinyir knows (schema 2.18)")
            custom = self.string(oc, 6, "CustomCode", f"operator code {i} custom name")
            out.append((name, custom, int(oc.Version())))
        return out

    # -- subgraph -------------------------------------------------------------------
    def _subgraph(self, m, index: int) -> Graph:
        sg = self.table(m.Subgraphs(index), f"subgraph {index}")
        where = f"subgraph {index}" if index else ""
        g = Graph(self.string(sg, 12, "Name", "subgraph name") or "main", layout="NHWC")
        n_t = self.vector(sg._tab, 4, 4, f"{where} tensor list".strip())
        tensors = [self._tensor(g, sg, t, where) for t in range(n_t)]
        ins = self.ints(sg, 6, 4, "InputsAsNumpy", "subgraph inputs")
        outs = self.ints(sg, 8, 4, "OutputsAsNumpy", "subgraph outputs")
        for t in ins + outs:
            if not 0 <= t < n_t:
                raise self.bad(f"{where} graph input/output tensor {t} does not exist "
                               f"({n_t} tensors)".lstrip())
        n_ops = self.vector(sg._tab, 10, 4, "operator list")
        ops = [self._operator(sg, i, n_t) for i in range(n_ops)]
        produced = {}
        for i, (_, _, o_outs, o_mid) in enumerate(ops):
            for t in o_outs + o_mid:
                if t in produced or t in ins:
                    raise self.bad(f"{where} tensor {t} is written by operator {i} and by "
                                   "another operator or the caller".lstrip())
                produced[t] = i
        names: dict[int, str] = {}
        values: dict[int, Value] = {}

        def name_of(t: int, role: str) -> str:
            # unnamed tensors get a role-based name; with creation order fixed by the
            # file's operator order, a re-import of an export gives the same names
            if t not in names:
                orig = tensors[t]["name"]
                base = orig or role
                unique = g.unique_name(base)
                names[t] = unique
                if unique != orig:
                    g.metadata[TENSOR_FACT.format(unique, "name")] = orig
            return names[t]

        for t in ins:
            if t not in values:
                values[t] = g.add_input(name_of(t, "input"), tensors[t]["type"])
        used = {t for _, o_ins, _, _ in ops for t in o_ins if t is not None} | set(outs)
        for t, info in enumerate(tensors):
            if t in values or t in produced:
                continue
            if info["const"] is None and t not in used:
                continue
            arr = info["const"]
            if arr is None:  # a variable (or scratch) tensor without data: zeros
                if not info["variable"]:
                    info["facts"]["unwritten"] = True
                if not info["type"].is_static:
                    raise self.bad(f"{where} tensor {t} ({_short(info['name'])}) is read "
                                   "but never written and has a dynamic shape".lstrip())
                arr = np.broadcast_to(np.zeros((), info["type"].dtype.numpy),
                                      info["type"].shape)
            values[t] = g.add_const(name_of(t, "const"), arr, info["type"])
        for t in ins:
            self._facts(g, names[t], tensors[t])
        for i, (op_info, o_ins, o_outs, o_mid) in enumerate(ops):
            args = []
            for t in o_ins:
                if t is None:
                    args.append(None)
                elif t in values:
                    args.append(values[t])
                else:
                    raise self.bad(f"{where} operator {i} reads tensor {t} "
                                   f"({_short(tensors[t]['name'])}) before any operator "
                                   "writes it".lstrip())
            role = op_info[0][4:].lower()
            results = [(name_of(t, role), tensors[t]["type"]) for t in o_outs + o_mid]
            node = g.add_node(op_info[0], args, results, op_info[1])
            for t, v in zip(o_outs + o_mid, node.outputs):
                values[t] = v
        for t, v in values.items():
            if t not in ins:
                self._facts(g, v.name, tensors[t])
        for t in outs:
            if t not in values:
                raise self.bad(f"{where} graph output tensor {t} is never written".lstrip())
            g.outputs.append(values[t])
        self.tensor_names.append(names)
        return g

    def _facts(self, g: Graph, name: str, info: dict) -> None:
        for fact, value in info["facts"].items():
            g.metadata[TENSOR_FACT.format(name, fact)] = value

    def _tensor(self, g: Graph, sg, t: int, where: str) -> dict:
        what = f"{where} tensor {t}".strip()
        T = self.table(sg.Tensors(t), what)
        name = self.string(T, 10, "Name", f"{what} name") or ""
        what = f"{what} ({_short(name)})"
        shape = self.ints(T, 4, 4, "ShapeAsNumpy", f"{what} shape")
        ttype = int(T.Type())
        tname = _TFL_TYPES.get(ttype)
        if tname is None:
            raise self.bad(f"{what} has unknown element type {ttype}")
        dtype = _DTYPE_OF[tname]
        facts: dict = {}
        if tname in ("RESOURCE", "VARIANT"):
            facts["dtype"] = tname
        sig = self.ints(T, 18, 4, "ShapeSignatureAsNumpy", f"{what} shape signature")
        if T._tab.Offset(18) and sig != shape:
            facts["shape_signature"] = sig
        if T.HasRank():
            facts["has_rank"] = True
        variable = bool(T.IsVariable())
        if variable:
            facts["is_variable"] = True
        dims = tuple(d if d >= 0 else f"?{i}" for i, d in enumerate(shape))
        known = [d for d in shape if d >= 0]
        nbytes = math.prod(known) * max(dtype.bits, 8) // 8
        if nbytes > MAX_TENSOR_BYTES:
            raise self.bad(f"{what} declares shape {shape} of {tname} ({nbytes} bytes), "
                           "more than 2 GiB")
        quant = self._quant(T, what, facts)
        data = self.buffer(int(T.Buffer()), what)
        sparse = T.Sparsity()
        if sparse is not None and data:
            ttype_ = TensorType(dims, dtype, quant)
            arr = self._sparse(sparse, data, dtype, what, facts, shape)
            return {"name": name, "type": ttype_.with_shape(arr.shape), "const": arr,
                    "variable": variable, "facts": facts}
        ttype_ = TensorType(dims, dtype, quant)
        arr = None
        if data:
            if not ttype_.is_static:
                raise self.bad(f"{what} has data but a dynamic shape {shape}")
            arr = _decode(data, ttype_, tname, lambda why: self.bad(f"{what}: {why}"))
        return {"name": name, "type": ttype_, "const": arr, "variable": variable,
                "facts": facts}

    def _quant(self, T, what: str, facts: dict) -> QuantParams | None:
        q = T.Quantization()
        if q is None:
            return None
        self.table(q, f"{what} quantization")
        mins = self.vector(q._tab, 4, 4, f"{what} quantization min")
        maxs = self.vector(q._tab, 6, 4, f"{what} quantization max")
        if mins:
            facts["quant_min"] = [float(x) for x in q.MinAsNumpy()]
        if maxs:
            facts["quant_max"] = [float(x) for x in q.MaxAsNumpy()]
        if q.DetailsType():
            det = q.Details()
            if det is not None:
                cq = tflite.CustomQuantization()
                cq.Init(det.Bytes, det.Pos)
                self.table(cq, f"{what} custom quantization")
                facts["custom_quantization"] = self.bytes_of(cq, 4, f"{what} custom quantization")
        scales = self.vector(q._tab, 8, 4, f"{what} scales")
        zps = self.vector(q._tab, 10, 8, f"{what} zero points")
        dim = int(q.QuantizedDimension())
        if not scales:
            if dim:
                facts["quantized_dimension"] = dim
            return None
        scale = [float(x) for x in q.ScaleAsNumpy()]
        zp = [int(x) for x in q.ZeroPointAsNumpy()] if zps else [0] * len(scale)
        if len(zp) not in (1, len(scale)):
            raise self.bad(f"{what} has {len(scale)} scales but {len(zp)} zero points")
        if len(scale) == 1:
            if dim:
                facts["quantized_dimension"] = dim
            return QuantParams(scale, zp[:1])
        return QuantParams(scale, zp, axis=dim)

    def _sparse(self, sp, data: bytes, dtype: DType, what: str, facts: dict,
                shape: list[int]) -> np.ndarray:
        self.table(sp, f"{what} sparsity")
        facts["shape"] = shape
        facts["sparsity.traversal_order"] = self.ints(sp, 4, 4, "TraversalOrderAsNumpy", what)
        facts["sparsity.block_map"] = self.ints(sp, 6, 4, "BlockMapAsNumpy", what)
        fmt, dense = [], []
        for i in range(self.vector(sp._tab, 8, 4, f"{what} sparsity")):
            dm = self.table(sp.DimMetadata(i), f"{what} sparsity dim {i}")
            fmt.append(int(dm.Format()))
            dense.append(int(dm.DenseSize()))
            for part, ty, getter in (("segments", dm.ArraySegmentsType(), dm.ArraySegments),
                                     ("indices", dm.ArrayIndicesType(), dm.ArrayIndices)):
                if not ty:
                    continue
                if ty not in _SEGMENT_TYPES:
                    raise self.bad(f"{what} sparsity dim {i} has unknown index type {ty}")
                tab = getter()
                if tab is None:
                    continue
                self.table(tab, f"{what} sparsity dim {i} {part}")
                vec = getattr(tflite, {1: "Int32Vector", 2: "Uint16Vector",
                                       3: "Uint8Vector"}[ty])()
                vec.Init(tab.Bytes, tab.Pos)
                elem = np.dtype(_SEGMENT_TYPES[ty]).itemsize
                n = self.vector(vec._tab, 4, elem, f"{what} sparsity {part}")
                arr = np.array(vec.ValuesAsNumpy(), _SEGMENT_TYPES[ty]) if n else \
                    np.zeros(0, _SEGMENT_TYPES[ty])
                facts[f"sparsity.{part}.{i}"] = arr
        facts["sparsity.dim_format"] = fmt
        facts["sparsity.dense_size"] = dense
        item = max(dtype.bits, 8) // 8
        if len(data) % item:
            raise self.bad(f"{what}: sparse data of {len(data)} bytes is not a whole number "
                           f"of {dtype.value} values")
        return np.frombuffer(data, dtype.numpy.newbyteorder("<")).astype(dtype.numpy)

    def _operator(self, sg, i: int, n_t: int):
        what = f"operator {i}"
        op = self.table(sg.Operators(i), what)
        idx = int(op.OpcodeIndex())
        if not 0 <= idx < len(self.opcodes):
            raise self.bad(f"{what} uses operator code {idx}; the model has "
                           f"{len(self.opcodes)}")
        name, custom, version = self.opcodes[idx]
        ins = self.ints(op, 6, 4, "InputsAsNumpy", f"{what} inputs")
        outs = self.ints(op, 8, 4, "OutputsAsNumpy", f"{what} outputs")
        mid = self.ints(op, 20, 4, "IntermediatesAsNumpy", f"{what} intermediates")
        for t in ins + outs + mid:
            if not -1 <= t < n_t or (t == -1 and t not in ins):
                raise self.bad(f"{what} ({name}) refers to tensor {t}; the subgraph has {n_t}")
        attrs: dict = {}
        if name == "CUSTOM":
            attrs["custom_code"] = custom or ""
        if version != 1:
            attrs["op_version"] = version
        opt_type, which = int(op.BuiltinOptionsType()), 1
        if not opt_type and op.BuiltinOptions2Type():
            opt_type, which = int(op.BuiltinOptions2Type()), 2
        expected = OP_OPTIONS.get(name)
        if opt_type:
            opt_name = UNION_NAMES.get((opt_type, which))
            if opt_name is None:
                raise self.bad(f"{what} ({name}) has unknown options type {opt_type}")
            table = op.BuiltinOptions() if which == 1 else op.BuiltinOptions2()
            if table is not None:
                self.table(table, f"{what} ({name}) options")
                attrs.update(read_options(opt_name, table, self.vector))
            if opt_name != expected:
                attrs["builtin_options_type"] = opt_name
        elif expected is not None:
            attrs["builtin_options_type"] = "NONE"
        large = int(op.LargeCustomOptionsSize())
        if large:
            off = int(op.LargeCustomOptionsOffset())
            if off + large > self.n:
                raise self.bad(f"{what} custom options lie past the end of the file")
            attrs["custom_options"] = self.buf[off:off + large]
        elif op._tab.Offset(14):
            attrs["custom_options"] = self.bytes_of(op, 14, f"{what} custom options")
        if op.CustomOptionsFormat():
            attrs["custom_options_format"] = int(op.CustomOptionsFormat())
        if op._tab.Offset(18):
            n = self.vector(op._tab, 18, 1, f"{what} mutating inputs")
            attrs["mutating_variable_inputs"] = [bool(x) for x in
                                                 op.MutatingVariableInputsAsNumpy()] if n else []
        if mid:
            attrs["intermediates"] = len(mid)
        if op.DebugMetadataIndex() != -1:
            attrs["debug_metadata_index"] = int(op.DebugMetadataIndex())
        return ((f"tfl.{name}", attrs), [None if t == -1 else t for t in ins], outs, mid)

    def _signature(self, g: Graph, m, i: int, n_sub: int) -> None:
        sd = self.table(m.SignatureDefs(i), f"signature {i}")
        sub = int(sd.SubgraphIndex())
        if not 0 <= sub < n_sub:
            raise self.bad(f"signature {i} refers to subgraph {sub}; the model has {n_sub}")
        key = f"tflite.signature.{i}."
        g.metadata[key + "key"] = self.string(sd, 8, "SignatureKey", f"signature {i} key") or ""
        g.metadata[key + "subgraph"] = sub
        for part, vt, getter in (("inputs", 4, sd.Inputs), ("outputs", 6, sd.Outputs)):
            labels, vals = [], []
            for j in range(self.vector(sd._tab, vt, 4, f"signature {i} {part}")):
                tm = self.table(getter(j), f"signature {i} {part} {j}")
                labels.append(self.string(tm, 4, "Name", f"signature {i} name") or "")
                vals.append(self.tensor_names[sub].get(int(tm.TensorIndex()), ""))
            g.metadata[key + part] = labels
            g.metadata[key + part[:-1] + "_values"] = vals


def _decode(data: bytes, t: TensorType, tname: str, bad) -> np.ndarray:
    """The constant array of a tensor's buffer bytes (exact values)."""
    n = math.prod(t.shape)
    d = t.dtype
    if d == DType.STRING:
        return _decode_strings(data, t.shape, bad)
    if tname in ("RESOURCE", "VARIANT"):
        raise bad(f"constant {tname} tensors are not supported")
    if d in (DType.INT4, DType.UINT4):
        need = (n + 1) // 2
        if len(data) != need:
            raise bad(f"buffer has {len(data)} bytes, its shape {list(t.shape)} of int4 "
                      f"needs {need}")
        raw = np.frombuffer(data, np.uint8)
        both = np.stack([raw & 0x0F, raw >> 4], axis=-1).reshape(-1)[:n].astype(np.int8)
        if d == DType.INT4:
            both = np.where(both > 7, both - 16, both).astype(np.int8)
        return both.astype(d.numpy).reshape(t.shape)
    store = np.dtype(np.uint16) if d == DType.BFLOAT16 else d.numpy
    need = n * store.itemsize
    if len(data) != need:
        raise bad(f"buffer has {len(data)} bytes, its shape {list(t.shape)} of {d.value} "
                  f"needs {need}")
    arr = np.frombuffer(data, store.newbyteorder("<")).astype(store)
    if d == DType.BFLOAT16:
        arr = (arr.astype(np.uint32) << 16).view(np.float32)
    return arr.reshape(t.shape)


def _decode_strings(data: bytes, shape, bad) -> np.ndarray:
    n = math.prod(shape)
    if len(data) < 4 * (n + 2):
        raise bad("string buffer is too short for its offsets")
    count = struct.unpack_from("<i", data, 0)[0]
    if count != n:
        raise bad(f"string buffer holds {count} strings, its shape needs {n}")
    offs = struct.unpack_from(f"<{n + 1}i", data, 4)
    if any(a > b for a, b in zip(offs, offs[1:])) or offs[0] < 4 * (n + 2) or \
            offs[-1] > len(data):
        raise bad("string buffer offsets are out of order or out of range")
    out = np.empty(n, dtype=object)
    for i in range(n):
        out[i] = data[offs[i]:offs[i + 1]]
    return out.reshape(shape)


# ---------------------------------------------------------------------------------------
# writing


def write_tflite_bytes(graph: Graph) -> bytes:
    """Serialise ``graph`` (``tfl.*`` ops only) as a ``.tflite`` flatbuffer."""
    subs = [graph] + list(graph.metadata.get("tflite.subgraphs", []))
    foreign = sorted({n.op for g in subs for _, n in g.walk()
                      if not n.op.startswith("tfl.") or n.op[4:] not in BUILTIN_CODES})
    if foreign:
        raise UnsupportedError(f"graph {graph.name} has ops with no TFLite form: "
                               f"{', '.join(foreign)} (run lowering first)")
    return _Writer(graph, subs).build()


class _Writer:
    def __init__(self, graph: Graph, subs: list[Graph]):
        self.root = graph
        self.subs = subs
        size = sum(v.const.nbytes for g in subs for v in g.constants
                   if isinstance(v.const, np.ndarray) and v.const.dtype != object)
        self.b = flatbuffers.Builder(size + 4096)
        self.buffers: list[bytes] = [b""]
        self.buffer_index: dict[bytes, int] = {b"": 0}
        self.opcodes: list[tuple[int, str | None, int]] = []
        self.opcode_index: dict[tuple, int] = {}
        self.tensor_index: list[dict[str, int]] = []

    def build(self) -> bytes:
        b = self.b
        subgraphs = [self._subgraph(g) for g in self.subs]
        md = self.root.metadata
        md_entries = [(k[len("tflite.metadata."):], self._buffer(bytes(v)))
                      for k, v in md.items() if k.startswith("tflite.metadata.")]
        md_buffers = [self._buffer(bytes(v)) for v in md.get("tflite.metadata_buffer", [])]
        sigs = self._signatures(md)
        buffer_offs = []
        for data in self.buffers:
            if data:
                b.StartVector(1, len(data), 16)
                b.head -= len(data)
                b.Bytes[b.head:b.head + len(data)] = data
                data_off = b.EndVector()
            tflite.BufferStart(b)
            if data:
                tflite.BufferAddData(b, data_off)
            buffer_offs.append(tflite.BufferEnd(b))
        opcode_offs = []
        for code, custom, version in self.opcodes:
            c_off = b.CreateString(custom) if custom is not None else None
            tflite.OperatorCodeStart(b)
            tflite.OperatorCodeAddDeprecatedBuiltinCode(b, min(code, 127))
            if c_off is not None:
                tflite.OperatorCodeAddCustomCode(b, c_off)
            tflite.OperatorCodeAddVersion(b, version)
            tflite.OperatorCodeAddBuiltinCode(b, code)
            opcode_offs.append(tflite.OperatorCodeEnd(b))
        md_offs = []
        for name, buf in md_entries:
            n_off = b.CreateString(name)
            tflite.MetadataStart(b)
            tflite.MetadataAddName(b, n_off)
            tflite.MetadataAddBuffer(b, buf)
            md_offs.append(tflite.MetadataEnd(b))
        desc = md.get("tflite.description")
        desc_off = b.CreateString(desc) if desc is not None else None
        vecs = {
            "OperatorCodes": self._offsets(opcode_offs), "Subgraphs": self._offsets(subgraphs),
            "Buffers": self._offsets(buffer_offs), "Metadata": self._offsets(md_offs),
            "SignatureDefs": self._offsets(sigs),
        }
        mb_off = b.CreateNumpyVector(np.asarray(md_buffers, np.int32)) if md_buffers else None
        tflite.ModelStart(b)
        tflite.ModelAddVersion(b, int(md.get("tflite.version", 3)))
        for field, off in vecs.items():
            if off is not None:
                getattr(tflite, f"ModelAdd{field}")(b, off)
        if desc_off is not None:
            tflite.ModelAddDescription(b, desc_off)
        if mb_off is not None:
            tflite.ModelAddMetadataBuffer(b, mb_off)
        b.Finish(tflite.ModelEnd(b), file_identifier=b"TFL3")
        return bytes(b.Output())

    def _offsets(self, offs: list[int], keep_empty: bool = False) -> int | None:
        if not offs and not keep_empty:
            return None
        b = self.b
        b.StartVector(4, len(offs), 4)
        for off in reversed(offs):
            b.PrependUOffsetTRelative(off)
        return b.EndVector()

    def _ints(self, values, dtype=np.int32) -> int:
        return self.b.CreateNumpyVector(np.asarray(list(values), dtype).reshape(-1))

    def _buffer(self, data: bytes) -> int:
        if data not in self.buffer_index:
            self.buffer_index[data] = len(self.buffers)
            self.buffers.append(data)
        return self.buffer_index[data]

    def _subgraph(self, g: Graph) -> int:
        b = self.b
        order: list[Value] = []
        index: dict[str, int] = {}

        def add(v: Value):
            if v.name not in index:
                index[v.name] = len(order)
                order.append(v)

        for v in g.inputs:
            add(v)
        for v in g.constants:
            add(v)
        nodes = g.nodes
        for n in nodes:
            for v in n.outputs:
                add(v)
        for v in g.outputs:
            add(v)
        self.tensor_index.append(index)
        tensor_offs = [self._tensor(g, v) for v in order]
        op_offs = [self._operator(n, index) for n in nodes]
        t_vec = self._offsets(tensor_offs, keep_empty=True)
        in_vec = self._ints(index[v.name] for v in g.inputs)
        out_vec = self._ints(index[v.name] for v in g.outputs)
        op_vec = self._offsets(op_offs, keep_empty=True)
        name = b.CreateString(g.name)
        tflite.SubGraphStart(b)
        tflite.SubGraphAddTensors(b, t_vec)
        tflite.SubGraphAddInputs(b, in_vec)
        tflite.SubGraphAddOutputs(b, out_vec)
        tflite.SubGraphAddOperators(b, op_vec)
        tflite.SubGraphAddName(b, name)
        return tflite.SubGraphEnd(b)

    def _tensor(self, g: Graph, v: Value) -> int:
        b = self.b
        md = g.metadata

        def fact(name, default=None):
            return md.get(TENSOR_FACT.format(v.name, name), default)

        t = v.type
        shape = fact("shape") or [d if isinstance(d, int) else -1 for d in (t.shape or ())]
        tname = fact("dtype")
        ttype = getattr(tflite.TensorType, tname) if tname else _TFL_OF[t.dtype]
        buffer = 0
        if v.is_const:
            no_data = (fact("is_variable") or fact("unwritten")) and not np.any(v.const)
            if not no_data:
                buffer = self._buffer(_encode(v.const, t))
        shape_off = self._ints(shape)
        sig = fact("shape_signature")
        sig_off = self._ints(sig) if sig is not None else None
        name_off = b.CreateString(fact("name", v.name))
        q_off = self._quant(t.quant, fact)
        sp_off = self._sparsity(fact) if fact("sparsity.dim_format") is not None else None
        tflite.TensorStart(b)
        tflite.TensorAddShape(b, shape_off)
        tflite.TensorAddType(b, ttype)
        tflite.TensorAddBuffer(b, buffer)
        tflite.TensorAddName(b, name_off)
        if q_off is not None:
            tflite.TensorAddQuantization(b, q_off)
        if fact("is_variable"):
            tflite.TensorAddIsVariable(b, True)
        if sp_off is not None:
            tflite.TensorAddSparsity(b, sp_off)
        if sig_off is not None:
            tflite.TensorAddShapeSignature(b, sig_off)
        if fact("has_rank"):
            tflite.TensorAddHasRank(b, True)
        return tflite.TensorEnd(b)

    def _quant(self, q: QuantParams | None, fact) -> int | None:
        b = self.b
        lo, hi = fact("quant_min"), fact("quant_max")
        custom = fact("custom_quantization")
        dim = q.axis if q is not None and q.axis is not None else fact("quantized_dimension", 0)
        if q is None and lo is None and hi is None and custom is None and not dim:
            return None
        offs = {}
        if lo is not None:
            offs["Min"] = self._ints(lo, np.float32)
        if hi is not None:
            offs["Max"] = self._ints(hi, np.float32)
        if q is not None:
            offs["Scale"] = self._ints(q.scale, np.float32)
            offs["ZeroPoint"] = self._ints(q.zero_point, np.int64)
        det = None
        if custom is not None:
            c_off = self.b.CreateNumpyVector(np.frombuffer(bytes(custom), np.uint8))
            tflite.CustomQuantizationStart(b)
            tflite.CustomQuantizationAddCustom(b, c_off)
            det = tflite.CustomQuantizationEnd(b)
        tflite.QuantizationParametersStart(b)
        for field, off in offs.items():
            getattr(tflite, f"QuantizationParametersAdd{field}")(b, off)
        if det is not None:
            tflite.QuantizationParametersAddDetailsType(b, tflite.QuantizationDetails
                                                        .CustomQuantization)
            tflite.QuantizationParametersAddDetails(b, det)
        tflite.QuantizationParametersAddQuantizedDimension(b, int(dim))
        return tflite.QuantizationParametersEnd(b)

    def _sparsity(self, fact) -> int:
        b = self.b
        dims = []
        codes = {np.dtype(v): k for k, v in _SEGMENT_TYPES.items()}
        for i, (fmt, dense) in enumerate(zip(fact("sparsity.dim_format"),
                                             fact("sparsity.dense_size"))):
            parts = {}
            for part in ("segments", "indices"):
                arr = fact(f"sparsity.{part}.{i}")
                if arr is None:
                    continue
                arr = np.asarray(arr)
                code = codes[arr.dtype]
                vec_name = {1: "Int32Vector", 2: "Uint16Vector", 3: "Uint8Vector"}[code]
                vals = b.CreateNumpyVector(arr.reshape(-1))
                getattr(tflite, f"{vec_name}Start")(b)
                getattr(tflite, f"{vec_name}AddValues")(b, vals)
                parts[part] = (code, getattr(tflite, f"{vec_name}End")(b))
            tflite.DimensionMetadataStart(b)
            tflite.DimensionMetadataAddFormat(b, int(fmt))
            tflite.DimensionMetadataAddDenseSize(b, int(dense))
            if "segments" in parts:
                tflite.DimensionMetadataAddArraySegmentsType(b, parts["segments"][0])
                tflite.DimensionMetadataAddArraySegments(b, parts["segments"][1])
            if "indices" in parts:
                tflite.DimensionMetadataAddArrayIndicesType(b, parts["indices"][0])
                tflite.DimensionMetadataAddArrayIndices(b, parts["indices"][1])
            dims.append(tflite.DimensionMetadataEnd(b))
        order = self._ints(fact("sparsity.traversal_order", []))
        block = self._ints(fact("sparsity.block_map", []))
        dim_vec = self._offsets(dims, keep_empty=True)
        tflite.SparsityParametersStart(b)
        tflite.SparsityParametersAddTraversalOrder(b, order)
        tflite.SparsityParametersAddBlockMap(b, block)
        tflite.SparsityParametersAddDimMetadata(b, dim_vec)
        return tflite.SparsityParametersEnd(b)

    def _operator(self, n, index: dict[str, int]) -> int:
        b = self.b
        name = n.op[4:]
        attrs = n.attrs
        custom = attrs.get("custom_code") if name == "CUSTOM" else None
        key = (BUILTIN_CODES[name], custom, int(attrs.get("op_version", 1)))
        if key not in self.opcode_index:
            self.opcode_index[key] = len(self.opcodes)
            self.opcodes.append(key)
        n_mid = int(attrs.get("intermediates", 0))
        outs = list(n.outputs)
        mid = outs[len(outs) - n_mid:] if n_mid else []
        outs = outs[:len(outs) - n_mid]
        opt_name = attrs.get("builtin_options_type", OP_OPTIONS.get(name))
        opt_attrs = {k: v for k, v in attrs.items() if k not in OPERATOR_ATTRS}
        if opt_attrs and opt_name in (None, "NONE"):
            raise UnsupportedError(f"{n.name} ({n.op}): attributes {', '.join(sorted(opt_attrs))}"
                                   " have no place in TFLite")
        try:
            opt_off = write_options(b, opt_name, opt_attrs) \
                if opt_name not in (None, "NONE") else None
        except (ValueError, TypeError) as e:
            raise UnsupportedError(f"{n.name} ({n.op}): {e}") from None
        in_vec = self._ints(-1 if v is None else index[v.name] for v in n.inputs)
        out_vec = self._ints(index[v.name] for v in outs)
        mid_vec = self._ints(index[v.name] for v in mid) if mid else None
        co = attrs.get("custom_options")
        co_vec = b.CreateNumpyVector(np.frombuffer(bytes(co), np.uint8)) \
            if co is not None else None
        mut = attrs.get("mutating_variable_inputs")
        mut_vec = b.CreateNumpyVector(np.asarray(mut, np.bool_)) if mut is not None else None
        tflite.OperatorStart(b)
        tflite.OperatorAddOpcodeIndex(b, self.opcode_index[key])
        tflite.OperatorAddInputs(b, in_vec)
        tflite.OperatorAddOutputs(b, out_vec)
        if opt_off is not None:
            num, which = UNION_TYPES[opt_name]
            if which == 1:
                tflite.OperatorAddBuiltinOptionsType(b, num)
                tflite.OperatorAddBuiltinOptions(b, opt_off)
            else:
                tflite.OperatorAddBuiltinOptions2Type(b, num)
                tflite.OperatorAddBuiltinOptions2(b, opt_off)
        if co_vec is not None:
            tflite.OperatorAddCustomOptions(b, co_vec)
        if "custom_options_format" in attrs:
            tflite.OperatorAddCustomOptionsFormat(b, int(attrs["custom_options_format"]))
        if mut_vec is not None:
            tflite.OperatorAddMutatingVariableInputs(b, mut_vec)
        if mid_vec is not None:
            tflite.OperatorAddIntermediates(b, mid_vec)
        if "debug_metadata_index" in attrs:
            tflite.OperatorAddDebugMetadataIndex(b, int(attrs["debug_metadata_index"]))
        return tflite.OperatorEnd(b)

    def _signatures(self, md: dict) -> list[int]:
        b = self.b
        out = []
        i = 0
        while f"tflite.signature.{i}.key" in md:
            key = f"tflite.signature.{i}."
            sub = int(md.get(key + "subgraph", 0))
            index = self.tensor_index[sub] if sub < len(self.tensor_index) else {}
            maps = {}
            for part in ("inputs", "outputs"):
                offs = []
                for label, value in zip(md.get(key + part, []),
                                        md.get(key + part[:-1] + "_values", [])):
                    if value not in index:
                        continue
                    l_off = b.CreateString(label)
                    tflite.TensorMapStart(b)
                    tflite.TensorMapAddName(b, l_off)
                    tflite.TensorMapAddTensorIndex(b, index[value])
                    offs.append(tflite.TensorMapEnd(b))
                maps[part] = self._offsets(offs, keep_empty=True)
            k_off = b.CreateString(md[key + "key"])
            tflite.SignatureDefStart(b)
            tflite.SignatureDefAddInputs(b, maps["inputs"])
            tflite.SignatureDefAddOutputs(b, maps["outputs"])
            tflite.SignatureDefAddSignatureKey(b, k_off)
            tflite.SignatureDefAddSubgraphIndex(b, sub)
            out.append(tflite.SignatureDefEnd(b))
            i += 1
        return out


def _encode(arr: np.ndarray, t: TensorType) -> bytes:
    """Buffer bytes of a constant (inverse of :func:`_decode`)."""
    d = t.dtype
    if d == DType.STRING:
        items = [x if isinstance(x, bytes) else str(x).encode("utf-8")
                 for x in np.asarray(arr, dtype=object).reshape(-1)]
        head = 4 * (len(items) + 2)
        offs, pos = [], head
        for x in items:
            offs.append(pos)
            pos += len(x)
        offs.append(pos)
        return struct.pack(f"<i{len(offs)}i", len(items), *offs) + b"".join(items)
    if d in (DType.INT4, DType.UINT4):
        flat = np.asarray(arr).reshape(-1).astype(np.int16) & 0x0F
        if flat.size % 2:
            flat = np.append(flat, 0)
        return (flat[0::2] | (flat[1::2] << 4)).astype(np.uint8).tobytes()
    if d == DType.BFLOAT16:
        bits = np.ascontiguousarray(arr, np.float32).view(np.uint32).astype(np.uint64)
        bits = (bits + 0x7FFF + ((bits >> 16) & 1)) >> 16  # round to nearest even
        return bits.astype("<u2").tobytes()
    a = np.ascontiguousarray(arr)
    return a.astype(a.dtype.newbyteorder("<"), copy=False).tobytes()


