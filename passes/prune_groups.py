"""Channel dependency groups for structured pruning (ONNX dialect, NCHW; DepGraph rules).

Every non-constant tensor with a channel axis contributes one *element* per channel
``(value, c)``.  Ops couple elements with a union-find, following Torch-Pruning's DepGraph
(Fang et al., CVPR 2023; reference notes §5):

* channel-preserving ops (BatchNormalization, activations, Dropout, pooling, Resize) and
  elementwise ops (Add/Sum/Mul/Sub/Div/Max/Min, residual adds): every non-broadcast
  operand's channel ``c`` is the output's channel ``c``; per-channel constants are sliced;
* Concat / Split on the channel axis: offset index maps (``out[off_k + c] = in_k[c]``);
* depthwise Conv (``group == C_in``): input channel ``c`` is output channels
  ``c*m .. c*m+m-1``; grouped Conv (``1 < group < C_in``): channel ``j`` of every group
  is one unit, so all groups stay the same width;
* Transpose moves the channel axis; Flatten/Reshape/Squeeze/Unsqueeze either keep it
  (same dim, same prefix product) or flatten to ``[N, F]``, where channel ``c`` becomes the
  features whose unravelled index on the channel axis is ``c`` (NCHW: a contiguous block
  ``[c*HW, (c+1)*HW)``; NHWC: stride ``C``), read by a Gemm's input features;
* Conv/Gemm/MatMul-with-constant-weight are the *producers* (output channels: weight rows)
  and *consumers* (input channels: weight columns) that end a chain.

An equivalence class of elements is one prunable channel; classes touching the same
values (with the same multiplicity) form one :class:`ChannelGroup`.  A class is frozen,
with the reason kept, when it reaches a graph input or output, an op that mixes channels
in a way not modelled (Softmax over channels, LRN, unknown ops), or a weight or
per-channel constant that another node also reads: slicing it for one reader would
change the other, and copying it would double its flash.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np

from tinyir.errors import PassError
from tinyir.graph import Graph, Node, Value
from tinyir.passes.fold_bn import const_array

UNARY = {"Relu", "Clip", "LeakyRelu", "Sigmoid", "Tanh", "HardSigmoid", "HardSwish", "Elu",
         "Selu", "Dropout", "Identity", "Neg", "Abs", "Sqrt", "Exp", "Softplus", "Erf",
         "Gelu", "Mish", "Celu", "ThresholdedRelu", "Cast", "MaxPool", "AveragePool",
         "GlobalAveragePool", "GlobalMaxPool", "LpPool", "Resize", "Upsample", "Pad",
         "Floor", "Ceil", "Round", "Reciprocal", "Log", "Sin", "Cos", "Sign", "Softsign"}
ELEMENTWISE = {"Add", "Sub", "Mul", "Div", "Max", "Min", "Sum", "Mean", "Pow", "PRelu"}
RESHAPES = {"Flatten", "Reshape", "Squeeze", "Unsqueeze"}
FOLDABLE = {"Constant", "ConstantOfShape", "Unsqueeze", "Squeeze", "Reshape", "Cast",
            "Identity", "Transpose", "Concat", "Shape", "Gather"}


@dataclass
class Touch:
    """How one node reads or writes a value's channels."""

    node: Node
    role: str          # "out" | "in" | "dw" | "param" | "reshape" | "split"
    operand: int = -1  # for "param": the constant operand's index
    axis: int = -1     # for "param": the constant's axis that is per-channel


@dataclass
class ChannelGroup:
    """Channels that are removed together, from the producer and every consumer at once."""

    id: int
    classes: list[int]                       # union-find roots, one per channel
    elements: dict[str, list[list[int]]]     # value -> per channel, its indices there
    producers: list[str] = field(default_factory=list)
    consumers: list[str] = field(default_factory=list)
    passthrough: list[str] = field(default_factory=list)
    frozen: str | None = None                # why this group cannot be pruned

    @property
    def width(self) -> int:
        return len(self.classes)

    @property
    def nodes(self) -> list[str]:
        return self.producers + self.consumers + self.passthrough


@dataclass
class Analysis:
    """The dependency analysis of one graph: axes, elements, groups."""

    graph: Graph
    axis: dict[str, int]
    base: dict[str, int]
    width: dict[str, int]
    touches: dict[str, list[Touch]]
    groups: list[ChannelGroup]
    class_of: dict[int, int]                 # element -> root

    def value(self, name: str) -> Value:
        return self.graph.value(name)


class _UF:
    def __init__(self):
        self.parent: list[int] = []

    def add(self, n: int) -> int:
        start = len(self.parent)
        self.parent.extend(range(start, start + n))
        return start

    def find(self, a: int) -> int:
        p = self.parent
        while p[a] != a:
            p[a] = p[p[a]]
            a = p[a]
        return a

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)


def materialize_constants(g: Graph) -> int:
    """Evaluate nodes whose operands are all constant (ConstantOfShape weights, Unsqueeze of
    BN parameters) into constant values, so pruning sees plain weights; returns how many."""
    from tinyir.interp.core import KERNELS

    done = 0
    for node in g.nodes:
        if node.op_type not in FOLDABLE or node.dialect != "onnx" or node.subgraphs():
            continue
        args = [None if v is None else const_array(v) for v in node.inputs]
        if any(a is None for v, a in zip(node.inputs, args) if v is not None):
            continue
        if node.op not in KERNELS:
            continue
        try:
            results = KERNELS[node.op](node, args, None)
        except Exception:  # noqa: BLE001 - leave what cannot be evaluated alone
            continue
        for out, arr in zip(node.outputs, results):
            arr = np.asarray(arr).astype(out.type.dtype.numpy)
            c = g.add_const(g.unique_name(out.name + "_const"), arr)
            g.replace_all_uses(out, c)
        g.remove(node)
        done += 1
    for v in g.constants:
        if not v.uses and v not in g.outputs:
            g.remove_value(v)
    return done


def _static(v: Value | None) -> tuple[int, ...] | None:
    if v is None or v.type.shape is None or any(not isinstance(d, int) for d in v.type.shape):
        return None
    return tuple(v.type.shape)


def shared_reason(w: Value, node: Node) -> str | None:
    """Why a constant cannot be sliced for ``node`` alone (None when only it reads it)."""
    others = sorted({u.name for u, _ in w.uses if u is not node})
    if others:
        return (f"weight %{w.name} of {node.name} is shared with {', '.join(others)}: slicing "
                "it would change those nodes too, and copying it would double its flash")
    return None


class _Builder:
    def __init__(self, g: Graph):
        self.g = g
        self.uf = _UF()
        self.axis: dict[str, int] = {}
        self.base: dict[str, int] = {}
        self.width: dict[str, int] = {}
        self.frozen: dict[int, str] = {}
        self.touches: dict[str, list[Touch]] = defaultdict(list)

    # ---- elements ---------------------------------------------------------------------
    def define(self, v: Value, axis: int) -> bool:
        shape = _static(v)
        if shape is None or v.is_const or not v.type.dtype.is_float or not 0 <= axis < len(shape):
            return False
        self.axis[v.name] = axis
        self.width[v.name] = shape[axis]
        self.base[v.name] = self.uf.add(shape[axis])
        return True

    def has(self, v: Value | None) -> bool:
        return v is not None and v.name in self.base

    def el(self, v: Value, c: int) -> int:
        return self.base[v.name] + c

    def freeze(self, v: Value | None, why: str) -> None:
        if self.has(v):
            for c in range(self.width[v.name]):
                self.frozen.setdefault(self.el(v, c), why)

    def same(self, a: Value, b: Value) -> None:
        for c in range(self.width[a.name]):
            self.uf.union(self.el(a, c), self.el(b, c))

    def opaque(self, node: Node, why: str) -> None:
        for v in node.inputs:
            self.freeze(v, why)
        for o in node.outputs:
            s = _static(o)
            if s is not None and len(s) >= 2 and self.define(o, 1):
                self.freeze(o, why)

    # ---- rules ------------------------------------------------------------------------
    def node(self, n: Node) -> None:
        op = n.op_type
        acts = [v for v in n.inputs if v is not None and not v.is_const]
        if n.dialect != "onnx" or n.domain:
            return self.opaque(n, f"{n.name} ({n.op}) is not modelled")
        if not acts:
            return
        if op == "Conv":
            return self.conv(n)
        if op in ("Gemm", "MatMul"):
            return self.gemm(n)
        if op == "BatchNormalization":
            return self.unary(n, params=range(1, 5))
        if op in UNARY:
            if op == "Pad" and not self._pad_ok(n):
                return self.opaque(n, f"{n.name} pads the channel axis")
            return self.unary(n)
        if op in ELEMENTWISE:
            return self.elementwise(n)
        if op == "Concat":
            return self.concat(n)
        if op == "Split":
            return self.split(n)
        if op == "Transpose":
            x, y = n.inputs[0], n.outputs[0]
            if not self.has(x):
                return self.opaque(n, f"{n.name}: input has no channel axis")
            perm = list(n.attrs.get("perm", reversed(range(len(x.type.shape)))))
            if self.define(y, perm.index(self.axis[x.name])):
                self.same(x, y)
            return
        if op in RESHAPES:
            return self.reshape(n)
        if op in ("Softmax", "LogSoftmax", "Hardmax"):
            x = n.inputs[0]
            if self.has(x):
                r = len(x.type.shape)
                ax = int(n.attrs.get("axis", -1)) % r
                if ax != self.axis[x.name]:
                    return self.unary(n)
            return self.opaque(n, f"{n.name} ({op}) normalises across channels")
        return self.opaque(n, f"{n.name} ({op}) mixes channels in a way prune does not model")

    def _pad_ok(self, n: Node) -> bool:
        x = n.inputs[0]
        pads = const_array(n.inputs[1]) if len(n.inputs) > 1 and n.inputs[1] is not None \
            else n.attrs.get("pads")
        if pads is None or not self.has(x):
            return False
        pads = np.asarray(pads).reshape(-1)
        r, ax = len(x.type.shape), self.axis[x.name]
        return len(pads) == 2 * r and pads[ax] == 0 and pads[ax + r] == 0

    def unary(self, n: Node, params=()) -> None:
        x, y = n.inputs[0], n.outputs[0]
        if not self.has(x):
            return self.opaque(n, f"{n.name}: input has no channel axis")
        if not self.define(y, self.axis[x.name]) or self.width[y.name] != self.width[x.name]:
            return self.opaque(n, f"{n.name} changes the channel count")
        self.same(x, y)
        for o in n.outputs[1:]:  # Dropout's mask, MaxPool's indices
            if _static(o) == _static(y) and self.define(o, self.axis[x.name]):
                self.same(x, o)
            elif o.uses or o in self.g.outputs:
                self.freeze(x, f"{n.name}: its extra output %{o.name} is used")
        for i in params:
            self.param(n, i, 0, x)
        for i, v in enumerate(n.inputs[1:], 1):
            if v is not None and not v.is_const and i not in params:
                self.freeze(x, f"{n.name} has a non-constant parameter %{v.name}")

    def param(self, n: Node, i: int, axis: int, x: Value) -> None:
        v = n.inputs[i] if i < len(n.inputs) else None
        if v is None:
            return
        if not v.is_const:
            return self.freeze(x, f"{n.name}: per-channel parameter %{v.name} is not constant")
        why = shared_reason(v, n)
        if why:
            return self.freeze(x, why)
        self.touches[x.name].append(Touch(n, "param", i, axis))

    def elementwise(self, n: Node) -> None:
        y = n.outputs[0]
        ys = _static(y)
        ref = next((v for v in n.inputs if self.has(v) and _static(v) is not None
                    and len(_static(v)) == len(ys or ())), None)
        if ys is None or ref is None or not self.define(y, self.axis[ref.name]):
            return self.opaque(n, f"{n.name}: operands have no common channel axis")
        ax, C = self.axis[y.name], self.width[y.name]
        for i, v in enumerate(n.inputs):
            if v is None:
                continue
            s = _static(v)
            a = ax - (len(ys) - len(s)) if s is not None else -1
            dim = s[a] if s is not None and 0 <= a < len(s) else 1
            if v.is_const:
                if dim == C and dim != 1:
                    self.param(n, i, a, y)
                continue
            if not self.has(v):
                if dim != 1:
                    return self.opaque(n, f"{n.name}: operand %{v.name} has no channel axis")
                continue
            if dim == C and self.axis[v.name] == a:
                self.same(v, y)
            elif dim != 1:
                return self.opaque(n, f"{n.name}: operand %{v.name} is not aligned by channel")

    def concat(self, n: Node) -> None:
        y = n.outputs[0]
        ys = _static(y)
        if ys is None or any(not self.has(v) for v in n.inputs):
            return self.opaque(n, f"{n.name}: Concat of constants or of untracked tensors")
        ax = int(n.attrs.get("axis", 1)) % len(ys)
        a0 = self.axis[n.inputs[0].name]
        if any(self.axis[v.name] != a0 for v in n.inputs) or not self.define(y, a0):
            return self.opaque(n, f"{n.name}: inputs have different channel axes")
        if ax != a0:
            for v in n.inputs:
                self.same(v, y)
            return
        off = 0
        for v in n.inputs:
            for c in range(self.width[v.name]):
                self.uf.union(self.el(v, c), self.el(y, off + c))
            off += self.width[v.name]

    def split(self, n: Node) -> None:
        x = n.inputs[0]
        if not self.has(x):
            return self.opaque(n, f"{n.name}: input has no channel axis")
        ax = int(n.attrs.get("axis", 0)) % len(x.type.shape)
        outs = [o for o in n.outputs if self.define(o, self.axis[x.name])]
        if len(outs) != len(n.outputs):
            return self.opaque(n, f"{n.name}: unknown output shapes")
        if ax != self.axis[x.name]:
            for o in outs:
                self.same(x, o)
            return
        off = 0
        for o in outs:
            for c in range(self.width[o.name]):
                self.uf.union(self.el(x, off + c), self.el(o, c))
            off += self.width[o.name]
        self.touches[x.name].append(Touch(n, "split"))

    def reshape(self, n: Node) -> None:
        x, y = n.inputs[0], n.outputs[0]
        xs, ys = _static(x), _static(y)
        if not self.has(x) or ys is None:
            return self.opaque(n, f"{n.name}: input has no channel axis")
        if n.op_type == "Reshape" and const_array(n.inputs[1]) is None:
            return self.opaque(n, f"{n.name}: Reshape to a computed shape")
        a, C = self.axis[x.name], self.width[x.name]
        pre = int(np.prod(xs[:a]))
        for b, d in enumerate(ys):  # the channel axis survives as one dim
            if d == C and int(np.prod(ys[:b])) == pre and C > 1:
                if self.define(y, b):
                    self.same(x, y)
                    self.touches[x.name].append(Touch(n, "reshape"))
                return
        if len(ys) == 2 and ys[0] == xs[0] and a >= 1 and self.define(y, 1):
            # flatten to [N, F]: feature f holds channel unravel(f)[a - 1]
            chan = np.unravel_index(np.arange(ys[1]), xs[1:])[a - 1]
            for f, c in enumerate(chan):
                self.uf.union(self.el(x, int(c)), self.el(y, f))
            self.touches[x.name].append(Touch(n, "reshape"))
            return
        return self.opaque(n, f"{n.name} reshapes the channel axis away")

    def conv(self, n: Node) -> None:
        x, w_val, y = n.inputs[0], n.inputs[1], n.outputs[0]
        w = const_array(w_val)
        if not self.has(x) or not self.define(y, 1):
            return self.opaque(n, f"{n.name}: input has no channel axis")
        if w is None or not w_val.is_const:
            return self.opaque(n, f"{n.name} has a non-constant weight")
        why = shared_reason(w_val, n)
        b_val = n.inputs[2] if len(n.inputs) > 2 else None
        if not why and b_val is not None:
            why = ("bias is not constant" if not b_val.is_const else shared_reason(b_val, n))
        if why:
            return self.opaque(n, why)
        g = int(n.attrs.get("group", 1))
        cin, cout = self.width[x.name], self.width[y.name]
        if g > 1 and g == cin:
            m = cout // cin
            for c in range(cin):
                for j in range(m):
                    self.uf.union(self.el(x, c), self.el(y, c * m + j))
            self.touches[x.name].append(Touch(n, "dw"))
            return
        if g > 1:
            for v, per in ((x, cin // g), (y, cout // g)):
                for k in range(1, g):
                    for j in range(per):
                        self.uf.union(self.el(v, j), self.el(v, k * per + j))
        self.touches[x.name].append(Touch(n, "in"))
        self.touches[y.name].append(Touch(n, "out"))

    def gemm(self, n: Node) -> None:
        x, w_val, y = n.inputs[0], n.inputs[1], n.outputs[0]
        xs, ys = _static(x), _static(y)
        ok = (self.has(x) and w_val.is_const and xs is not None and len(xs) == 2
              and ys is not None and len(ys) == 2 and self.axis[x.name] == 1
              and w_val.const.ndim == 2 and not n.attrs.get("transA", 0))
        if not ok or not self.define(y, 1):
            return self.opaque(n, f"{n.name}: only [N, F] x constant-weight {n.op_type} is pruned")
        why = shared_reason(w_val, n)
        c_val = n.inputs[2] if len(n.inputs) > 2 else None
        if not why and c_val is not None:
            cs = _static(c_val)
            why = ("bias is not constant" if not c_val.is_const
                   else shared_reason(c_val, n) or
                   (None if cs in ((), (1,), (ys[1],), (1, ys[1])) else "bias is not per-feature"))
        if why:
            return self.opaque(n, why)
        self.touches[x.name].append(Touch(n, "in"))
        self.touches[y.name].append(Touch(n, "out"))


def analyze(g: Graph, exclude=()) -> Analysis:
    """Channel groups of ``g`` (ONNX dialect, NCHW).  ``exclude``: node names (or fnmatch
    patterns) whose channels must not change."""
    from fnmatch import fnmatch

    if g.layout not in (None, "NCHW"):
        raise PassError("prune works on ONNX (NCHW) graphs; this graph is "
                        f"{g.layout} (the TFLite index maps are not implemented yet)")
    if any(v.type.quant is not None for v in g.values):
        raise PassError("prune needs a float graph: prune before quantize, then recalibrate")
    b = _Builder(g)
    for v in g.inputs:
        s = _static(v)
        if s is not None and len(s) >= 2 and b.define(v, 1):
            b.freeze(v, f"%{v.name} is a graph input")
    for n in g.nodes:
        b.node(n)
        if n.subgraphs():
            b.opaque(n, f"{n.name} has a nested graph")
        if any(fnmatch(n.name, p) for p in exclude):
            for v in list(n.inputs) + list(n.outputs):
                if v is not None and not v.is_const and n.op_type in ("Conv", "Gemm", "MatMul") \
                        and v is n.outputs[0]:
                    b.freeze(v, f"{n.name} is excluded by name")
    for v in g.outputs:
        b.freeze(v, f"%{v.name} is a graph output")
    # classes -> groups
    members: dict[int, list[tuple[str, int]]] = defaultdict(list)
    for name, base in b.base.items():
        for c in range(b.width[name]):
            members[b.uf.find(base + c)].append((name, c))
    class_of = {e: b.uf.find(e) for e in range(len(b.uf.parent))}
    frozen_cls = {}
    for e, why in b.frozen.items():
        frozen_cls.setdefault(class_of[e], why)
    by_sig: dict[tuple, list[int]] = defaultdict(list)
    for root, els in members.items():
        sig = tuple(sorted({(nm, sum(1 for n2, _ in els if n2 == nm)) for nm, _ in els}))
        by_sig[sig].append(root)
    groups = []
    order = {n.name: i for i, n in enumerate(g.nodes)}
    for sig, roots in by_sig.items():
        roots.sort()
        elements = {nm: [[c for n2, c in members[r] if n2 == nm] for r in roots] for nm, _ in sig}
        grp = ChannelGroup(len(groups), roots, elements)
        seen = set()
        for nm, _ in sig:
            for t in b.touches.get(nm, []):
                if (t.node.name, t.role) in seen:
                    continue
                seen.add((t.node.name, t.role))
                {"out": grp.producers, "in": grp.consumers}.get(t.role, grp.passthrough).append(
                    t.node.name)
        grp.frozen = next((frozen_cls[r] for r in roots if r in frozen_cls), None)
        if grp.frozen is None and not grp.producers:
            grp.frozen = "no Conv/Gemm produces these channels"
        groups.append(grp)
    groups.sort(key=lambda gr: min((order.get(p, 0) for p in gr.producers), default=10**9))
    for i, gr in enumerate(groups):
        gr.id = i
    return Analysis(g, b.axis, b.base, b.width, dict(b.touches), groups, class_of)
