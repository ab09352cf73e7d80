"""Lower an ONNX graph to the TFLite/TFLM op set: ``lower_onnx_to_tfl(graph) -> Lowered``.

**Layout.**  ONNX activations are NCHW (``[N, C, L]`` for 1-D); TFLite's are NHWC
(``[N, L, C]``).  Every ONNX value keeps its *logical* (ONNX) meaning; the lowering
records how its lowered counterpart is laid out in memory as a :class:`Laid`:
``physical = transpose(logical, perm)``.  Layout-aware ops (Conv, pooling, BN, Pad,
Resize) ask for their operand in channels-last order; elementwise ops, Concat, Split
and reductions follow the layout their operand already has (constants are re-laid
when they are built); an ONNX ``Transpose`` only changes the recorded ``perm`` and
emits nothing.  A ``TRANSPOSE`` node is emitted only where a consumer asks for a
layout the value does not have (:meth:`_Lowering.get`): at the graph inputs, at the
graph outputs, and before a Reshape/Flatten whose element order differs between the
two layouts — unless every reader of the flattened value is a Gemm/MatMul with
constant weights, in which case the weight columns are permuted instead
(``Laid.rows``) and the numbers stay identical.

**Graph boundary (the choice).**  Graph inputs and outputs keep their original ONNX
names, shapes and (NCHW) element order, so a caller feeds and reads the lowered model
exactly like the ONNX one; the layout change lives inside the graph, behind a
``TRANSPOSE`` at each 4-D (or 3-D) boundary.  ``graph.layout`` becomes ``"NHWC"``
once anything was lowered (the layout of every lowered op).

**Findings.**  An op with no lowering stays in the graph unchanged (its operands are
given back in ONNX order) and gets a ``tflm.lowering.no-lowering`` finding; an op whose
operands or results have no static shape gets ``tflm.lowering.dynamic-shape``.  Every
lowered node maps to the name of the ONNX node it came from in ``Lowered.origin``.

Per-op rewrites live in :mod:`lower_nn` (conv, pooling, Gemm/MatMul, BN folding) and
:mod:`lower_ops` (elementwise, activations, shape ops); clean-up rewrites on the
lowered graph (bias and activation fusion, transpose and reshape chains) in
:mod:`lower_cleanup`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from tinyir.backends.lowering import Lowered
from tinyir.graph import Graph, Node, Value
from tinyir.op_support.rules import ERROR, LOWERING, Finding
from tinyir.passes.base import Pass, PassResult, register_pass
from tinyir.types import DType, TensorType

NO_LOWERING = "tflm.lowering.no-lowering"
DYNAMIC_SHAPE = "tflm.lowering.dynamic-shape"

NHWC = (0, 2, 3, 1)   # [N, C, H, W] -> [N, H, W, C]
NLC = (0, 2, 1)       # [N, C, L] -> [N, L, C]


class NoLowering(Exception):
    """Raised by a lowering rule: the message says why, in the user's words."""

    def __init__(self, reason: str, rule: str = NO_LOWERING):
        super().__init__(reason)
        self.rule = rule


@dataclass(frozen=True)
class Laid:
    """Where an ONNX value lives after lowering.

    ``physical = transpose(logical, perm)`` (``perm=None``: ONNX order).  ``rows`` is set
    only on 2-D values flattened in NHWC order for a fully-connected reader:
    ``physical[:, j] == logical[:, rows[j]]``.
    """

    value: Value
    perm: tuple[int, ...] | None = None
    rows: np.ndarray | None = None


# ops that emit no node, so any element type passes through them
_ANY_DTYPE = {"onnx.Identity", "onnx.Dropout", "onnx.Transpose"}

RULES: dict[str, Callable[["_Lowering", Node], None]] = {}


def lowers(*op_types: str):
    """Decorator: the rule that lowers ``onnx.<op_type>`` nodes."""

    def deco(fn):
        for op in op_types:
            RULES[f"onnx.{op}"] = fn
        return fn

    return deco


def channels_last(rank: int) -> tuple[int, ...] | None:
    return {4: NHWC, 3: NLC}.get(rank)


def norm_perm(perm) -> tuple[int, ...] | None:
    if perm is None:
        return None
    perm = tuple(int(p) for p in perm)
    return None if perm == tuple(range(len(perm))) else perm


def physical_shape(shape, perm) -> tuple:
    return tuple(shape) if perm is None else tuple(shape[p] for p in perm)


def lower_onnx_to_tfl(graph: Graph) -> Lowered:
    """Lower ``graph`` (modified in place and returned) to ``tfl.*`` ops; see the module doc."""
    from tinyir.backends.tflm import lower_nn, lower_ops, lower_qdq  # noqa: F401  (rules)
    from tinyir.passes.fold_bn import FoldBatchNorm

    if lower_qdq.is_qdq(graph):  # QuantizeLinear/DequantizeLinear: int8 ops, params kept
        return lower_qdq.lower_qdq(graph)

    # BN folds where it is exact (the fold-bn pass); the rest lower to MUL + ADD below
    FoldBatchNorm(standalone=False).run(graph)
    return _Lowering(graph).run()


class _Lowering:
    """The state of one lowering: value layouts, emitted nodes' origins, findings."""

    def __init__(self, graph: Graph):
        self.g = graph
        self.env: dict[Value, Laid] = {}
        self.cache: dict[tuple[int, tuple | None], Value] = {}
        self.origin: dict[Node, str] = {}
        self.findings: list[Finding] = []
        self.cur: Node | None = None
        self.names: list[tuple[Value, str]] = []
        # called with this lowering once every node is lowered, before the clean-up
        self.before_clean_up: list[Callable[["_Lowering"], None]] = []

    # ---- driver -----------------------------------------------------------------------
    def run(self) -> Lowered:
        from tinyir.backends.tflm.lower_cleanup import clean_up

        g = self.g
        for node in g.nodes:
            if node.dialect != "onnx":
                continue
            self.cur = node
            try:
                self._lower(node)
            except NoLowering as e:
                self._keep(node, e)
        self.cur = None
        outs = []
        for v in g.outputs:
            producer = v.producer
            self.cur = producer if producer is not None and producer.graph is g else None
            outs.append(self.get(v))
        out_names = [v.name for v in g.outputs]
        g.outputs = outs
        g.prune_unused()
        self.origin = {n: o for n, o in self.origin.items() if n.graph is g}
        kept = {f.node for f in self.findings}
        for node in g.nodes:  # lowered, but a nested body that was not lowered still reads it
            if node.dialect == "onnx" and node.name not in kept:
                self.cur = node
                self._keep(node, NoLowering("its result is read inside a nested graph "
                                            "(If/Loop body) that was not lowered"))
        self.cur = None
        for hook in self.before_clean_up:
            hook(self)
        clean_up(g, self.origin)
        self.origin = {n: o for n, o in self.origin.items() if n.graph is g}
        done: set[Value] = set()
        for v, name in list(zip(g.outputs, out_names)) + self.names:
            if v not in done and v.graph is g and v.name != name and g.lookup(name) is None \
                    and v.producer is not None:
                g.rename(v, name)
                done.add(v)
        if self.origin:
            g.layout = "NHWC"
        return Lowered(g, self.origin, self.findings)

    def _lower(self, node: Node) -> None:
        if node.subgraphs():
            raise NoLowering("control flow (nested graphs) has no TFLM lowering")
        if self._fold_constant(node):
            return
        for v in list(node.inputs) + list(node.outputs):
            if v is not None and not v.is_const and not v.type.is_static:
                raise NoLowering(f"%{v.name} has no static shape {_shape_text(v)}; TFLM runs "
                                 "only static shapes", DYNAMIC_SHAPE)
        if node.op not in _ANY_DTYPE:
            for v in list(node.inputs) + list(node.outputs):
                if v is not None and not v.is_const and v.type.dtype != DType.FLOAT32:
                    raise NoLowering(f"%{v.name} is {v.type.dtype.value}: this op is lowered for "
                                     "float32 tensors, or for int8/uint8 ones written as "
                                     "QuantizeLinear/DequantizeLinear pairs (QDQ)")
        rule = RULES.get(node.op)
        if rule is None:
            raise NoLowering(f"TFLM has no equivalent of ONNX {node.op_type}"
                             if node.domain == "" else
                             f"{node.op[5:]} is not a standard ONNX op and has no TFLM form")
        rule(self, node)

    def _fold_constant(self, node: Node) -> bool:
        """Nodes whose operands are all constants become constants (Constant, ConstantOfShape...)."""
        args = [None if v is None else self.laid(v) for v in node.inputs]
        if any(a is not None and (not a.value.is_const or a.perm or a.rows is not None)
               for a in args):
            return False
        from tinyir.interp import core

        import tinyir.interp  # noqa: F401  (registers kernels)
        kern = core.KERNELS.get(node.op)
        if kern is None:
            return False
        try:
            results = kern(node, [None if a is None else a.value.const for a in args], None)
        except Exception:  # a kernel refusing is not our finding to make; lower it normally
            return False
        for v, r in zip(node.outputs, results):
            arr = np.asarray(r)
            if v.type.dtype != DType.STRING:
                arr = arr.astype(v.type.dtype.numpy)
            self.bind(v, self.g.add_const(self.g.unique_name(v.name), arr))
        return True

    def _keep(self, node: Node, e: NoLowering) -> None:
        """The node stays as it is, reading its operands in ONNX order; a finding says why."""
        self.findings.append(Finding(
            rule=e.rule, severity=ERROR, category=LOWERING, node=node.name, op=node.op,
            message=f"{node.op_type} node {node.name!r} cannot be lowered to TFLM: {e}",
            evidence={"reason": str(e)}))
        for i, v in enumerate(node.inputs):
            if v is not None:
                nv = self.get(v)
                if nv is not v:
                    self.g.set_input(node, i, nv)

    # ---- values and layouts -------------------------------------------------------------
    def laid(self, v: Value) -> Laid:
        return self.env.get(v) or Laid(v)

    def bind(self, onnx_value: Value, value: Value, perm=None, rows=None) -> None:
        perm = norm_perm(perm)
        self.env[onnx_value] = Laid(value, perm, rows)
        if perm is None and rows is None and value is not onnx_value:
            self.names.append((value, onnx_value.name))

    def get(self, v: Value, perm=None) -> Value:
        """The lowered value of ONNX value ``v`` laid out as ``transpose(logical, perm)``."""
        laid = self.laid(v)
        want = norm_perm(perm)
        if laid.rows is not None:
            laid = Laid(self._unflatten_rows(laid))
        if laid.perm == want:
            return laid.value
        key = (id(laid.value), want)
        if key in self.cache:
            return self.cache[key]
        src = laid.value
        if src.is_const and laid.perm is None:
            out = self.const(np.ascontiguousarray(np.transpose(src.const, want)), src.name)
        else:
            rank = len(src.type.shape)
            inv = np.argsort(laid.perm) if laid.perm is not None else np.arange(rank)
            full = want if want is not None else tuple(range(rank))
            step = [int(inv[q]) for q in full]
            out = self.emit("TRANSPOSE", [src, self.const(np.asarray(step, np.int32), "perm")],
                            physical_shape(src.type.shape, step), src.type.dtype,
                            base=f"{v.name}_t")
        self.cache[key] = out
        return out

    def _unflatten_rows(self, laid: Laid) -> Value:
        """Put a row-permuted flatten back in ONNX order (a GATHER along the features)."""
        key = (id(laid.value), "rows")
        if key not in self.cache:
            src = laid.value
            idx = np.argsort(laid.rows).astype(np.int32)
            self.cache[key] = self.emit("GATHER", [src, self.const(idx, "indices")],
                                        src.type.shape, src.type.dtype,
                                        {"axis": 1, "batch_dims": 0},
                                        base=f"{src.name}_onnx_order")
        return self.cache[key]

    # ---- building ----------------------------------------------------------------------
    def const(self, array: np.ndarray, base: str) -> Value:
        return self.g.add_const(self.g.unique_name(base), np.asarray(array))

    def emit(self, op: str, inputs, shape, dtype: DType, attrs: dict | None = None,
             base: str | None = None) -> Value:
        """Add ``tfl.<op>`` with one result of ``shape``; it records the current ONNX node."""
        return self.emit_multi(op, inputs, [shape], dtype, attrs, base)[0]

    def emit_multi(self, op: str, inputs, shapes, dtype: DType, attrs: dict | None = None,
                   base: str | None = None) -> list[Value]:
        g = self.g
        base = base or (self.cur.outputs[0].name if self.cur is not None and self.cur.outputs
                        else op.lower())
        outs, taken = [], set()
        for i, s in enumerate(shapes):
            name = g.unique_name(base if i == 0 else f"{base}_{i}")
            while name in taken:
                name = g.unique_name(f"{name}_{i}")
            taken.add(name)
            outs.append((name, TensorType(tuple(s), dtype)))
        node = g.add_node(f"tfl.{op}", inputs, outs, attrs or {},
                          name=g.unique_name(self.cur.name if self.cur is not None else base))
        if self.cur is not None:
            self.origin[node] = self.cur.name
        return list(node.outputs)

    def reshape(self, v: Value, shape, base: str | None = None) -> Value:
        shape = tuple(int(d) for d in shape)
        if tuple(v.type.shape) == shape:
            return v
        return self.emit("RESHAPE", [v, self.const(np.asarray(shape, np.int32), "shape")],
                         shape, v.type.dtype, base=base)

    def onnx_const(self, node: Node, i: int, what: str) -> np.ndarray:
        """Operand ``i`` of ``node`` as an array; refuses when it is computed at run time."""
        v = node.inputs[i] if i < len(node.inputs) else None
        if v is None:
            raise NoLowering(f"{what} is missing")
        laid = self.laid(v)
        if not laid.value.is_const:
            raise NoLowering(f"{what} (%{v.name}) is computed at run time; TFLM needs it constant")
        return np.asarray(laid.value.const)


def _shape_text(v: Value) -> str:
    return "(rank unknown)" if v.type.shape is None else "[" + ", ".join(map(str, v.type.shape)) + "]"


@register_pass
@dataclass(frozen=True)
class LowerTFLM(Pass):
    """Lower ONNX ops to TFLite/TFLM builtins (NHWC inside, ONNX shapes at the boundary)."""

    name = "lower-tflm"

    def run(self, graph: Graph) -> PassResult:
        lowered = lower_onnx_to_tfl(graph)
        return PassResult(lowered.graph, bool(lowered.origin),
                          {"lowered_nodes": len(lowered.origin),
                           "findings": len(lowered.findings)})
