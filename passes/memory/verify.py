"""An independent check of a memory plan: no two simultaneously live buffers overlap.

It trusts nothing the planner computed except the order and the offsets: liveness is
recomputed here from the graph with the plainest possible loops (a value is live from the
step that writes it, or step 0 for a graph input, to the step of its last reader, or the
last step for a graph output), and every pair of values live at the same step must
occupy disjoint byte ranges, unless the plan stores them in one buffer *and* the sharing
is legal in place: the second value is produced by an op that reads the first and either
leaves the data unmodified (a view) or is an elementwise/depthwise op that reads the first
value last.  Scratch buffers are checked against everything live at their step.  A sweep
over time checks each pair of simultaneously live buffers once, when the later one starts.
"""

from __future__ import annotations

from tinyir.errors import PassError
from tinyir.graph import Graph

from tinyir.passes.memory.lifetimes import is_arena_value, rules_for


def verify_plan(graph: Graph, plan) -> int:
    """Raise PassError naming the first conflict; return the number of overlapping pairs checked."""
    by_name = {n.name: n for n in graph.nodes}
    order = [by_name[name] for name in plan.order]
    if len(order) != len(by_name):
        raise PassError("plan order does not list every operator once")
    step = {n.name: k + 1 for k, n in enumerate(order)}
    n_steps = len(order) + 1
    values = [v for v in graph.inputs] + [o for n in order for o in n.outputs]
    values = [v for v in dict((v.name, v) for v in values).values() if is_arena_value(v)]
    outputs = {v.name for v in graph.outputs}
    start, end = {}, {}
    for v in values:
        start[v.name] = step[v.producer.name] if v.producer is not None else 0
        reads = [step[u.name] for u, _ in v.uses if u.name in step]
        end[v.name] = n_steps - 1 if v.name in outputs else max(reads + [start[v.name]])
        if v.producer is not None:
            for u, _ in v.uses:
                if u.name in step and step[u.name] < start[v.name]:
                    raise PassError(f"plan runs {u.name} before {v.producer.name} "
                                    f"produces %{v.name}")
    offs = plan.value_offsets()
    rules = rules_for(plan.backend)
    items = []  # (name, lo, hi, first, last, buffer)
    for v in values:
        if v.name not in offs:
            raise PassError(f"plan gives no offset to %{v.name}")
        size = v.type.nbytes if v.type.dtype.bits != 4 else v.type.numel
        o = offs[v.name]
        if o % plan.alignment:
            raise PassError(f"%{v.name} at offset {o} is not {plan.alignment}-byte aligned")
        items.append((v.name, o, o + size, start[v.name], end[v.name],
                      plan.lifetimes.value_buffer.get(v.name)))
    for name, o, size, t in plan.scratch_offsets():
        items.append((name, o, o + size, t, t, None))
    # sweep over time: each pair of buffers live at a common step is checked once, at the
    # first such step (the later of the two starts), against the buffers live then
    pairs = 0
    starting: dict[int, list[tuple]] = {}
    for it in items:
        if it[2] > it[1]:                      # empty buffers occupy no bytes
            starting.setdefault(it[3], []).append(it)
    live: list[tuple] = []
    for t in sorted(starting):
        live = [it for it in live if it[4] >= t]
        for b in starting[t]:
            lo, hi = b[1], b[2]
            for a in [it for it in live if it[1] < hi and lo < it[2]]:
                pairs += 1
                if a[5] is not None and a[5] == b[5] and _legal_alias(graph, a[0], b[0],
                                                                      rules, step):
                    continue
                raise PassError(f"step {t}: %{a[0]} [{a[1]}, {a[2]}) and %{b[0]} "
                                f"[{b[1]}, {b[2]}) are live together and overlap")
            live.append(b)
    return pairs


def _legal_alias(graph: Graph, a: str, b: str, rules, step) -> bool:
    """True when a chain of in-place producers links values ``a`` and ``b``."""
    def root(name: str) -> str:
        while True:
            v = graph.value(name)
            n = v.producer
            if n is None or not n.inputs or n.inputs[0] is None:
                return name
            if n.op in rules.views:
                name = n.inputs[0].name
                continue
            if n.op in rules.elementwise or (rules.depthwise_inplace
                                             and n.op_type == "DEPTHWISE_CONV_2D"):
                src = [x for x in n.inputs if x is not None and not x.is_const
                       and max(step[u.name] for u, _ in x.uses) == step[n.name]]
                if src:
                    name = src[0].name
                    continue
            return name
    return root(a) == root(b) or _shares_chain(graph, a, b, rules, step)


def _shares_chain(graph, a, b, rules, step) -> bool:
    """An elementwise op overwriting a dying operand other than its first."""
    n = graph.value(b).producer
    if n is None or n.op not in rules.elementwise:
        return False
    return any(x is not None and x.name == a
               and max(step[u.name] for u, _ in x.uses) == step[n.name] for x in n.inputs)
