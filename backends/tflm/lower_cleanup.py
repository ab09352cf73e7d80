"""Clean-up rewrites on a freshly lowered graph (``tfl.*`` nodes only).

* **Transpose chains**: ``TRANSPOSE(TRANSPOSE(x, p), q) = TRANSPOSE(x, p[q])``; an
  identity TRANSPOSE is dropped.  **Reshape chains**: ``RESHAPE(RESHAPE(x))`` reads
  ``x`` directly; a RESHAPE to the shape it already has is dropped.
* **Bias fold**: ``ADD(y, c)`` with ``y`` the only result of a CONV_2D /
  DEPTHWISE_CONV_2D / FULLY_CONNECTED read by nothing else and ``c`` a constant that
  varies only along the channels (the last dim) becomes that node's bias ``b + c``.
* **Activation fusion**: RELU / RELU6 / RELU_N1_TO_1 whose operand is the result of an
  op with a ``fused_activation_function`` (conv, FC, ADD/SUB/MUL/DIV, pooling) that no
  one else reads is fused into it (also across a RESHAPE: activations are elementwise).
  TFLM honours only these three as fused activations.  A RELU_N1_TO_1 left over (TFLM
  has no kernel for it as an op) becomes MAXIMUM(-1) + MINIMUM(1).
"""

from __future__ import annotations

import numpy as np

from tinyir.graph import Graph, Node, Value

WEIGHTED = {"tfl.CONV_2D", "tfl.DEPTHWISE_CONV_2D", "tfl.FULLY_CONNECTED"}
FUSABLE = WEIGHTED | {"tfl.ADD", "tfl.SUB", "tfl.MUL", "tfl.DIV", "tfl.AVERAGE_POOL_2D",
                      "tfl.MAX_POOL_2D"}
ACTIVATIONS = {"tfl.RELU": "RELU", "tfl.RELU6": "RELU6", "tfl.RELU_N1_TO_1": "RELU_N1_TO_1"}


def clean_up(g: Graph, origin: dict[Node, str]) -> None:
    cancel_transposes(g, origin)
    merge_reshapes(g)
    fold_bias_adds(g)
    fuse_activations(g)
    expand_relu_n1(g, origin)
    g.prune_unused()


def sole_reader(g: Graph, v: Value) -> Node | None:
    uses = v.uses
    return uses[0][0] if len(uses) == 1 and v not in g.outputs else None


def bypass(g: Graph, node: Node, new: Value) -> None:
    """Readers of ``node``'s result read ``new``; the node goes (a graph output keeps its name)."""
    old = node.outputs[0]
    name = old.name if old in g.outputs else None
    g.replace_all_uses(old, new)
    g.remove(node)
    if name is not None and g.lookup(name) is None and new.producer is not None:
        g.rename(new, name)


def _act(node: Node) -> str:
    return node.attrs.get("fused_activation_function", "NONE")


def _const_ints(v: Value) -> list[int]:
    return [int(i) for i in np.asarray(v.const).reshape(-1)]


def cancel_transposes(g: Graph, origin: dict[Node, str]) -> None:
    for node in g.nodes:
        if node.op != "tfl.TRANSPOSE" or node.graph is None:
            continue
        q = _const_ints(node.inputs[1])
        inner = node.inputs[0].producer
        x = node.inputs[0]
        if inner is not None and inner.op == "tfl.TRANSPOSE":
            p = _const_ints(inner.inputs[1])
            q = [p[k] for k in q]
            x = inner.inputs[0]
            if q != list(range(len(q))):
                perm = g.add_const(g.unique_name("perm"), np.asarray(q, np.int32))
                g.set_input(node, 0, x)
                g.set_input(node, 1, perm)
                continue
        if q == list(range(len(q))):
            bypass(g, node, x)


def merge_reshapes(g: Graph) -> None:
    for node in g.nodes:
        if node.op != "tfl.RESHAPE":
            continue
        inner = node.inputs[0].producer
        if inner is not None and inner.op == "tfl.RESHAPE":
            g.set_input(node, 0, inner.inputs[0])
        if tuple(node.inputs[0].type.shape) == tuple(node.outputs[0].type.shape):
            bypass(g, node, node.inputs[0])


def fold_bias_adds(g: Graph) -> None:
    for node in g.nodes:
        if node.op != "tfl.ADD" or _act(node) != "NONE":
            continue
        for i in (0, 1):
            y, c = node.inputs[i], node.inputs[1 - i]
            p = y.producer
            if p is None or p.op not in WEIGHTED or not c.is_const or _act(p) != "NONE" \
                    or sole_reader(g, y) is not node or p.inputs[2] is None \
                    or not p.inputs[2].is_const or len(p.inputs[2].uses) != 1:
                continue
            units = y.type.shape[-1]
            arr = np.asarray(c.const)
            if arr.size != units or (arr.ndim and arr.shape[-1] != units) \
                    or tuple(node.outputs[0].type.shape) != tuple(y.type.shape):
                continue
            bias = (p.inputs[2].const.astype(np.float64) + arr.reshape(-1)).astype(np.float32)
            g.set_input(p, 2, g.add_const(g.unique_name("bias"), bias))
            bypass(g, node, y)
            break


def fuse_activations(g: Graph) -> None:
    for node in g.nodes:
        if node.op not in ACTIVATIONS:
            continue
        x = node.inputs[0]
        p = x.producer
        if p is not None and p.op == "tfl.RESHAPE" and sole_reader(g, x) is node:
            x2 = p.inputs[0]
            p = x2.producer if sole_reader(g, x2) is p else None
        elif sole_reader(g, x) is not node:
            p = None
        if p is None or p.op not in FUSABLE or _act(p) != "NONE":
            continue
        p.attrs["fused_activation_function"] = ACTIVATIONS[node.op]
        bypass(g, node, x)


def expand_relu_n1(g: Graph, origin: dict[Node, str]) -> None:
    for node in g.nodes:
        if node.op != "tfl.RELU_N1_TO_1":
            continue
        x, y = node.inputs[0], node.outputs[0]
        rank = len(x.type.shape)
        out = x
        for op, bound in (("MAXIMUM", -1.0), ("MINIMUM", 1.0)):
            c = g.add_const(g.unique_name(op.lower()), np.full((1,) * rank, bound, np.float32))
            new = g.add_node(f"tfl.{op}", [out, c], [(g.unique_name(y.name), y.type)],
                             name=g.unique_name(node.name))
            origin[new] = origin.get(node, node.name)
            out = new.outputs[0]
        bypass(g, node, out)
