"""The op registry: every op tinyir understands is declared here exactly once.

An :class:`OpDef` names the op, its operands and results, its known attributes, a
type/shape inference function and (optionally) a MAC count.  The verifier, the
interpreter, the printer and the importers all read this table; an op that is not
registered is *opaque*: it is kept with its attributes and checked only structurally.

Operand specs are strings: ``"X"`` is required, ``"B?"`` optional (may be omitted or
``None``), ``"inputs*"`` variadic (only last).  Inference functions take the node and
return one :class:`~tinyir.types.TensorType` (or ``None`` for "unknown") per output.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from tinyir.errors import VerifyError
from tinyir.types import TensorType

InferFn = Callable[["Node"], list]  # noqa: F821
MacsFn = Callable[["Node"], "int | None"]  # noqa: F821  (None: shape not static)


@dataclass(frozen=True)
class OpDef:
    """Declaration of one op; see the module docstring."""

    op: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    attrs: tuple[str, ...] = ()
    infer: InferFn | None = None
    macs: MacsFn | None = None
    summary: str = ""
    extra_attrs_ok: bool = field(default=False)

    def arity(self, specs: tuple[str, ...]) -> tuple[int, int | None]:
        lo = sum(1 for s in specs if not s.endswith(("?", "*")))
        hi = None if any(s.endswith("*") for s in specs) else len(specs)
        return lo, hi


REGISTRY: dict[str, OpDef] = {}


def register(op: str, inputs, outputs, attrs=(), macs: MacsFn | None = None, summary: str = "",
             extra_attrs_ok: bool = False):
    """Decorator: declare ``op`` with the decorated function as its inference."""

    def deco(fn: InferFn | None):
        if op in REGISTRY:
            raise ValueError(f"op {op} is declared twice")
        REGISTRY[op] = OpDef(op, tuple(inputs), tuple(outputs), tuple(attrs), fn, macs,
                             summary or (fn.__doc__ or "").strip().split("\n")[0] if fn else summary,
                             extra_attrs_ok)
        return fn

    return deco


def lookup(op: str) -> OpDef | None:
    """The declaration of ``op``, or None when the op is opaque to tinyir."""
    return REGISTRY.get(op)


def is_known(op: str) -> bool:
    return op in REGISTRY


def _count_ok(n: int, lo: int, hi: int | None) -> bool:
    return n >= lo and (hi is None or n <= hi)


def _types_agree(recorded: TensorType, inferred: TensorType) -> str | None:
    if recorded.dtype != inferred.dtype:
        return f"element type {recorded.dtype.value}, but the op computes {inferred.dtype.value}"
    if recorded.shape is None or inferred.shape is None:
        return None
    if len(recorded.shape) != len(inferred.shape):
        return (f"shape {list(recorded.shape)}, but the op computes {list(inferred.shape)}")
    for a, b in zip(recorded.shape, inferred.shape):
        if isinstance(a, int) and isinstance(b, int) and a != b:
            return f"shape {list(recorded.shape)}, but the op computes {list(inferred.shape)}"
    return None


def infer_node(node) -> list[TensorType | None] | None:
    """Run the op's inference, or None when the op is opaque or has none."""
    d = REGISTRY.get(node.op)
    if d is None or d.infer is None:
        return None
    return d.infer(node)


def verify_node(node) -> None:
    """Check a node against its declaration (no-op for opaque ops)."""
    d = REGISTRY.get(node.op)
    if d is None:
        return
    lo, hi = d.arity(d.inputs)
    n_in = len(node.inputs)
    while n_in and node.inputs[n_in - 1] is None:
        n_in -= 1
    if not _count_ok(n_in, lo, hi):
        raise VerifyError(f"{node.name} ({node.op}): takes {_span(lo, hi)} operands, has {n_in}")
    for i, (spec, v) in enumerate(zip(d.inputs, node.inputs)):
        if v is None and not spec.endswith(("?", "*")):
            raise VerifyError(f"{node.name} ({node.op}): required operand {spec} is missing")
    lo, hi = d.arity(d.outputs)
    if not _count_ok(len(node.outputs), lo, hi):
        raise VerifyError(f"{node.name} ({node.op}): has {len(node.outputs)} results, "
                          f"the op defines {_span(lo, hi)}")
    if not d.extra_attrs_ok:
        unknown = sorted(set(node.attrs) - set(d.attrs))
        if unknown:
            raise VerifyError(f"{node.name} ({node.op}): unknown attribute(s) {', '.join(unknown)}")
    if d.infer is None:
        return
    try:
        inferred = d.infer(node)
    except VerifyError:
        raise
    except (ValueError, IndexError, KeyError, TypeError, ZeroDivisionError) as e:
        raise VerifyError(f"{node.name} ({node.op}): operands do not fit the op: {e}") from None
    for out, t in zip(node.outputs, inferred):
        if t is None:
            continue
        why = _types_agree(out.type, t)
        if why:
            raise VerifyError(f"{node.name} ({node.op}): result %{out.name} is recorded with {why}")


def _span(lo: int, hi: int | None) -> str:
    if hi is None:
        return f"at least {lo}"
    return str(lo) if lo == hi else f"{lo} to {hi}"
