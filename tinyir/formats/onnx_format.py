"""ONNX import and export through the ``onnx`` package.

Import parses the protobuf with ``onnx``, refuses hostile files (external data outside
the model's folder, tensors of absurd size), runs ``onnx.checker`` and
``onnx.shape_inference`` on a working copy, and translates one node to one tinyir node:
op ``onnx.<Op>`` (default domain, also spelled ``ai.onnx``) or ``onnx.<domain>.<Op>``;
attributes become Python values (see docs/ARCHITECTURE.md); initializers become
constants; ``If``/``Loop`` bodies become nested graphs that read outer values by
reference.  Ops tinyir does not know are kept as they are, with their attributes.
Value types come from the file and from onnx's shape inference; where neither knows a
result, the op registry's inference fills in what it can.

Omitted optional results (empty names in ONNX) are dropped when trailing and given
generated names (``<node>.unused<i>``) otherwise; export writes them back as empty.

Export writes a model the onnx checker accepts, with the opsets, IR version and model
metadata the graph came with.  Only ``onnx.*`` ops can be written; quantization
parameters on values have no plain ONNX form and are not written (QDQ export is a pass).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import onnx
from onnx import AttributeProto, TensorProto, helper, numpy_helper

from tinyir.errors import InputError, UnsupportedError
from tinyir.graph import Graph, Node, Value
from tinyir.ops import infer_node
from tinyir.types import DType, TensorType

MAX_TENSOR_BYTES = 1 << 31  # 2 GiB: far beyond any microcontroller, below protobuf's limit
UNUSED_TAG = ".unused"
_DEFAULT_DOMAINS = ("", "ai.onnx")

_DT = {
    TensorProto.FLOAT: DType.FLOAT32, TensorProto.FLOAT16: DType.FLOAT16,
    TensorProto.BFLOAT16: DType.BFLOAT16, TensorProto.DOUBLE: DType.FLOAT64,
    TensorProto.INT4: DType.INT4, TensorProto.INT8: DType.INT8, TensorProto.INT16: DType.INT16,
    TensorProto.INT32: DType.INT32, TensorProto.INT64: DType.INT64,
    TensorProto.UINT4: DType.UINT4, TensorProto.UINT8: DType.UINT8,
    TensorProto.UINT16: DType.UINT16, TensorProto.UINT32: DType.UINT32,
    TensorProto.UINT64: DType.UINT64, TensorProto.BOOL: DType.BOOL,
    TensorProto.STRING: DType.STRING, TensorProto.COMPLEX64: DType.COMPLEX64,
    TensorProto.COMPLEX128: DType.COMPLEX128,
}
_DT_BACK = {v: k for k, v in _DT.items()}
_META_FIELDS = ("ir_version", "producer_name", "producer_version", "domain", "model_version",
                "doc_string")


def onnx_dtype(elem_type: int, where: str) -> DType:
    try:
        return _DT[elem_type]
    except KeyError:
        name = TensorProto.DataType.Name(elem_type) if elem_type in TensorProto.DataType.values() \
            else str(elem_type)
        raise UnsupportedError(f"{where}: element type {name} is not supported") from None


# ---------------------------------------------------------------------------------------------
# import


def read_onnx(data: bytes, path: Path | None = None) -> Graph:
    """Translate a serialized ONNX model into a Graph (see the module docstring)."""
    label = str(path) if path else "<onnx>"
    model = onnx.ModelProto()
    try:
        model.ParseFromString(data)
    except Exception as e:  # protobuf raises DecodeError and friends on corrupt input
        raise InputError(f"{label}: not a valid ONNX file (protobuf: {_first_line(e)})") from None
    if not model.HasField("graph") or (not model.graph.node and not model.graph.output):
        raise InputError(f"{label}: ONNX file holds no graph")
    _check_sizes(model.graph, label)
    if _uses_external_data(model.graph):
        _load_external_data(model, path, label)
    work = _with_all_domains(model)
    try:  # inference first: it also types graph outputs that the file leaves untyped
        work = onnx.shape_inference.infer_shapes(work, check_type=False, strict_mode=False,
                                                 data_prop=True)
    except Exception as e:  # onnx raises InferenceError for inconsistent models
        raise InputError(f"{label}: ONNX shape inference: {_first_line(e)}") from None
    try:
        onnx.checker.check_model(work)
    except onnx.checker.ValidationError as e:
        raise InputError(f"{label}: ONNX checker: {_first_line(e)}") from None
    return _Importer(label).model(work)


def _first_line(e: BaseException) -> str:
    text = str(e).strip() or type(e).__name__
    return text.splitlines()[0][:300]


def _iter_graphs(g: onnx.GraphProto):
    yield g
    for n in g.node:
        for a in n.attribute:
            if a.type == AttributeProto.GRAPH:
                yield from _iter_graphs(a.g)
            elif a.type == AttributeProto.GRAPHS:
                for sub in a.graphs:
                    yield from _iter_graphs(sub)


def _declared_bytes(dims, elem_type) -> int:
    try:
        bits = _DT[elem_type].bits if elem_type in _DT else 64
    except Exception:
        bits = 64
    n = 1
    for d in dims:
        n *= max(int(d), 0)
    return (n * max(bits, 8)) // 8


def _check_sizes(graph: onnx.GraphProto, label: str) -> None:
    """Refuse tensors whose declared size is absurd before anything allocates them."""
    for g in _iter_graphs(graph):
        for t in g.initializer:
            if any(d < 0 for d in t.dims):
                raise InputError(f"{label}: initializer {t.name!r} has a negative dimension")
            if _declared_bytes(t.dims, t.data_type) > MAX_TENSOR_BYTES:
                raise InputError(f"{label}: initializer {t.name!r} declares shape {list(t.dims)}, "
                                 "larger than 2 GiB")
        for vi in list(g.input) + list(g.output) + list(g.value_info):
            tt = vi.type.tensor_type
            dims = [d.dim_value for d in tt.shape.dim if d.HasField("dim_value")]
            if dims and _declared_bytes(dims, tt.elem_type) > MAX_TENSOR_BYTES:
                raise InputError(f"{label}: tensor {vi.name!r} declares shape {dims}, "
                                 "larger than 2 GiB")
        for n in g.node:
            for a in n.attribute:
                if a.type == AttributeProto.TENSOR and \
                        _declared_bytes(a.t.dims, a.t.data_type) > MAX_TENSOR_BYTES:
                    raise InputError(f"{label}: node {n.name!r} attribute {a.name} declares a "
                                     "tensor larger than 2 GiB")


def _uses_external_data(graph: onnx.GraphProto) -> bool:
    return any(t.data_location == TensorProto.EXTERNAL
               for g in _iter_graphs(graph) for t in g.initializer)


def _load_external_data(model: onnx.ModelProto, path: Path | None, label: str) -> None:
    """Load external tensor data, refusing any location outside the model's folder."""
    if path is None:
        raise InputError(f"{label}: model has external data but no folder to read it from")
    base = Path(path).resolve().parent
    for g in _iter_graphs(model.graph):
        for t in g.initializer:
            if t.data_location != TensorProto.EXTERNAL:
                continue
            info = {e.key: e.value for e in t.external_data}
            loc = info.get("location", "")
            target = (base / loc).resolve()
            if not loc or Path(loc).is_absolute() or base not in target.parents:
                raise InputError(f"{label}: external data of {t.name!r} points outside the "
                                 f"model's folder ({loc!r}); refusing to read it")
            if not target.is_file():
                raise InputError(f"{label}: external data file {loc!r} of {t.name!r} is missing")
            offset = int(info.get("offset", 0) or 0)
            length = int(info.get("length", 0) or 0) or (target.stat().st_size - offset)
            if offset < 0 or length < 0 or offset + length > target.stat().st_size:
                raise InputError(f"{label}: external data of {t.name!r} lies past the end of "
                                 f"{loc!r}")
            if length > MAX_TENSOR_BYTES:
                raise InputError(f"{label}: external data of {t.name!r} is larger than 2 GiB")
            with open(target, "rb") as f:
                f.seek(offset)
                t.raw_data = f.read(length)
            del t.external_data[:]
            t.data_location = TensorProto.DEFAULT


def _with_all_domains(model: onnx.ModelProto) -> onnx.ModelProto:
    """A copy that imports every domain its nodes use (custom domains at version 1).

    Exported models sometimes omit the opset import of a custom domain; the checker
    and shape inference refuse those, but the graph itself is fine.
    """
    have = {o.domain for o in model.opset_import}
    used = {n.domain for g in _iter_graphs(model.graph) for n in g.node}
    missing = sorted(d for d in used - have if d not in _DEFAULT_DOMAINS)
    if not missing:
        return model
    work = onnx.ModelProto()
    work.CopyFrom(model)
    for d in missing:
        work.opset_import.append(helper.make_opsetid(d, 1))
    return work


class _Importer:
    def __init__(self, label: str):
        self.label = label

    def model(self, m: onnx.ModelProto) -> Graph:
        g = Graph(m.graph.name or "main", layout="NCHW")
        for o in m.opset_import:
            g.opsets[o.domain] = int(o.version)
        meta = {}
        for f in _META_FIELDS:
            if m.HasField(f):
                meta[f] = getattr(m, f)
        if m.metadata_props:
            meta["metadata_props"] = {p.key: p.value for p in m.metadata_props}
        if m.graph.doc_string:
            meta["graph_doc_string"] = m.graph.doc_string
        if m.functions:
            meta["onnx_functions"] = [f.SerializeToString() for f in m.functions]
        g.metadata = meta
        self.fill(g, m.graph)
        return g

    def type_of(self, vi: onnx.ValueInfoProto) -> TensorType | None:
        if not vi.type.HasField("tensor_type"):
            if vi.type.WhichOneof("value") is None:
                return None
            raise UnsupportedError(f"{self.label}: value {vi.name!r} is a "
                                   f"{vi.type.WhichOneof('value')}, only tensors are supported")
        tt = vi.type.tensor_type
        dtype = onnx_dtype(tt.elem_type, f"{self.label}: value {vi.name!r}") \
            if tt.elem_type else DType.FLOAT32
        if not tt.HasField("shape"):
            return TensorType(None, dtype)
        dims = []
        for d in tt.shape.dim:
            if d.HasField("dim_value"):
                dims.append(int(d.dim_value))
            elif d.HasField("dim_param") and d.dim_param:
                dims.append(d.dim_param)
            else:
                dims.append("?")
        return TensorType(tuple(dims), dtype)

    def fill(self, g: Graph, gp: onnx.GraphProto) -> None:
        known: dict[str, TensorType] = {}
        for vi in list(gp.value_info) + list(gp.output) + list(gp.input):
            t = self.type_of(vi)
            if t is not None:
                known[vi.name] = t
        inits = {t.name for t in gp.initializer}
        for t in gp.initializer:
            arr = self.array(t, f"initializer {t.name!r}")
            g.add_const(t.name, arr, TensorType(arr.shape, onnx_dtype(t.data_type, t.name)))
        for vi in gp.input:
            if vi.name in inits:
                continue  # IR < 4 lists initializers as inputs too
            t = known.get(vi.name)
            if t is None:
                raise InputError(f"{self.label}: graph input {vi.name!r} has no type")
            g.add_input(vi.name, t)
        for i, np_ in enumerate(gp.node):
            self.node(g, np_, i, known)
        outs = []
        for vi in gp.output:
            v = g.lookup(vi.name)
            if v is None:
                raise InputError(f"{self.label}: graph output {vi.name!r} is never defined")
            outs.append(v)
        g.outputs = outs

    def array(self, t: onnx.TensorProto, what: str) -> np.ndarray:
        try:
            arr = numpy_helper.to_array(t)
        except Exception as e:
            raise InputError(f"{self.label}: {what}: unreadable tensor data ({_first_line(e)})") \
                from None
        dtype = onnx_dtype(t.data_type, f"{self.label}: {what}")
        if dtype == DType.STRING:
            return np.array([x.decode("utf-8", "surrogateescape") if isinstance(x, bytes) else x
                             for x in arr.ravel()], dtype=object).reshape(arr.shape)
        return np.array(arr, dtype=dtype.numpy, order="C", copy=True)  # keeps 0-d shapes

    def attr(self, g: Graph, a: onnx.AttributeProto, where: str):
        T = AttributeProto
        if a.ref_attr_name:
            raise UnsupportedError(f"{self.label}: {where}: attribute references are only valid "
                                   "inside functions")
        if a.type == T.FLOAT:
            return float(a.f)
        if a.type == T.INT:
            return int(a.i)
        if a.type == T.STRING:
            return _text(a.s)
        if a.type == T.FLOATS:
            return [float(x) for x in a.floats]
        if a.type == T.INTS:
            return [int(x) for x in a.ints]
        if a.type == T.STRINGS:
            return [_text(x) for x in a.strings]
        if a.type == T.TENSOR:
            return self.array(a.t, f"{where} attribute {a.name}")
        if a.type == T.TENSORS:
            return [self.array(t, f"{where} attribute {a.name}") for t in a.tensors]
        if a.type == T.GRAPH:
            return self.subgraph(g, a.g)
        if a.type == T.GRAPHS:
            return [self.subgraph(g, s) for s in a.graphs]
        raise UnsupportedError(f"{self.label}: {where}: attribute {a.name} of type "
                               f"{T.AttributeType.Name(a.type)} is not supported")

    def subgraph(self, outer: Graph, gp: onnx.GraphProto) -> Graph:
        sub = Graph(gp.name or "body", layout=outer.layout, parent=outer)
        self.fill(sub, gp)
        return sub

    def node(self, g: Graph, n: onnx.NodeProto, index: int, known: dict) -> Node:
        domain = "" if n.domain in _DEFAULT_DOMAINS else n.domain
        op = f"onnx.{domain}.{n.op_type}" if domain else f"onnx.{n.op_type}"
        where = f"node {n.name or index!r} ({n.op_type})"
        inputs: list[Value | None] = []
        for name in n.input:
            if not name:
                inputs.append(None)
                continue
            v = g.lookup(name)
            if v is None:
                raise InputError(f"{self.label}: {where} reads {name!r}, which is not defined "
                                 "before it (the graph is not topologically sorted or is broken)")
            inputs.append(v)
        attrs = {a.name: self.attr(g, a, where) for a in n.attribute}
        out_names = list(n.output)
        while out_names and not out_names[-1]:
            out_names.pop()
        base = n.name or (next((o for o in out_names if o), None)) or f"{n.op_type}_{index}"
        outputs = []
        for i, name in enumerate(out_names):
            if not name:
                name = g.unique_name(f"{base}{UNUSED_TAG}{i}")
            elif g.lookup(name) is not None and name in g._values:
                raise InputError(f"{self.label}: {where} redefines value {name!r}")
            outputs.append((name, known.get(name) or TensorType(None, _guess_dtype(inputs))))
        node = g.add_node(op, inputs, outputs, attrs, name=n.name or None)
        missing = [i for i, v in enumerate(node.outputs) if v.name not in known]
        if missing:
            try:
                inferred = infer_node(node)
            except Exception:
                inferred = None
            for i in missing:
                if inferred and i < len(inferred) and inferred[i] is not None:
                    node.outputs[i].type = inferred[i]
        return node


def _guess_dtype(inputs) -> DType:
    for v in inputs:
        if v is not None:
            return v.type.dtype
    return DType.FLOAT32


def _text(b: bytes):
    try:
        return b.decode("utf-8")
    except UnicodeDecodeError:
        return bytes(b)


# ---------------------------------------------------------------------------------------------
# export


def to_onnx_model(graph: Graph) -> onnx.ModelProto:
    """Build an ONNX ModelProto from a graph of ``onnx.*`` ops."""
    foreign = sorted({n.op for _, n in graph.walk() if n.dialect != "onnx"})
    if foreign:
        raise UnsupportedError("these ops have no ONNX form: " + ", ".join(foreign))
    meta = graph.metadata
    ir_version = int(meta.get("ir_version", 8))
    opsets = dict(graph.opsets) or {"": 17}
    gp = _Exporter(ir_version).graph(graph)
    model = helper.make_model(gp, opset_imports=[helper.make_opsetid(d, v)
                                                 for d, v in opsets.items()])
    model.ir_version = ir_version
    for f in _META_FIELDS[1:]:
        if f in meta:
            setattr(model, f, meta[f])
    for k, v in (meta.get("metadata_props") or {}).items():
        model.metadata_props.append(onnx.StringStringEntryProto(key=k, value=v))
    if meta.get("graph_doc_string"):
        model.graph.doc_string = meta["graph_doc_string"]
    for blob in meta.get("onnx_functions", []):
        f = onnx.FunctionProto()
        f.ParseFromString(blob)
        model.functions.append(f)
    return model


def write_onnx_bytes(graph: Graph) -> bytes:
    """Serialize ``graph`` as an ONNX file (checked with onnx.checker first)."""
    model = to_onnx_model(graph)
    try:
        onnx.checker.check_model(_with_all_domains(model))
    except onnx.checker.ValidationError as e:
        raise UnsupportedError(f"exported ONNX model is invalid: {_first_line(e)}") from None
    return model.SerializeToString()


def _tensor_proto(name: str, arr: np.ndarray, dtype: DType) -> onnx.TensorProto:
    if dtype == DType.STRING:
        return helper.make_tensor(name, TensorProto.STRING, arr.shape,
                                  [s.encode("utf-8", "surrogateescape") if isinstance(s, str)
                                   else s for s in arr.ravel()])
    if dtype in (DType.BFLOAT16, DType.INT4, DType.UINT4):
        return helper.make_tensor(name, _DT_BACK[dtype], arr.shape, arr.ravel().tolist())
    return numpy_helper.from_array(np.asarray(arr, order="C"), name)


def _value_info(v: Value) -> onnx.ValueInfoProto:
    t = v.type
    shape = None if t.shape is None else [None if d == "?" else d for d in t.shape]
    return helper.make_tensor_value_info(v.name, _DT_BACK[t.dtype], shape)


class _Exporter:
    def __init__(self, ir_version: int):
        self.ir_version = ir_version

    def graph(self, g: Graph) -> onnx.GraphProto:
        nodes = [self.node(n) for n in g.nodes]
        inits = [_tensor_proto(v.name, v.const, v.type.dtype) for v in g.constants]
        inputs = [_value_info(v) for v in g.inputs]
        if self.ir_version < 4:
            inputs += [_value_info(v) for v in g.constants]
        outputs = [_value_info(v) for v in g.outputs]
        listed = {v.name for v in g.inputs} | {v.name for v in g.outputs} \
            | {v.name for v in g.constants}
        value_info = [_value_info(o) for n in g.nodes for o in n.outputs
                      if o.name not in listed and not _is_unused_placeholder(o)
                      and o.type.shape is not None]
        return helper.make_graph(nodes, g.name, inputs, outputs, initializer=inits,
                                 value_info=value_info)

    def node(self, n: Node) -> onnx.NodeProto:
        outs = ["" if _is_unused_placeholder(v) else v.name for v in n.outputs]
        proto = helper.make_node(n.op_type, [v.name if v is not None else "" for v in n.inputs],
                                 outs, name=n.name, domain=n.domain or None)
        for key in n.attrs:
            proto.attribute.append(self.attr(key, n.attrs[key], n))
        return proto

    def attr(self, key: str, value, n: Node) -> onnx.AttributeProto:
        if isinstance(value, Graph):
            return helper.make_attribute(key, self.graph(value))
        if isinstance(value, np.ndarray):
            return helper.make_attribute(key, _tensor_proto(key, value, DType.from_numpy(
                value.dtype)))
        if isinstance(value, list):
            if value and all(isinstance(x, Graph) for x in value):
                return helper.make_attribute(key, [self.graph(x) for x in value])
            if value and all(isinstance(x, np.ndarray) for x in value):
                return helper.make_attribute(key, [_tensor_proto(key, x, DType.from_numpy(x.dtype))
                                                   for x in value])
            if not value:
                return helper.make_attribute(key, [], attr_type=AttributeProto.INTS)
            if all(isinstance(x, float) for x in value):
                return helper.make_attribute(key, value, attr_type=AttributeProto.FLOATS)
        if isinstance(value, bool):
            value = int(value)
        if isinstance(value, float) and math.isnan(value):
            return helper.make_attribute(key, value, attr_type=AttributeProto.FLOAT)
        try:
            return helper.make_attribute(key, value)
        except (TypeError, ValueError) as e:
            raise UnsupportedError(f"node {n.name}: attribute {key}={value!r} has no ONNX form "
                                   f"({e})") from None


def _is_unused_placeholder(v: Value) -> bool:
    return UNUSED_TAG in v.name and not v.uses and v.producer is not None \
        and v not in (v.graph.outputs if v.graph else [])
