"""SRAM and flash figures for ``tinyir check``, each with the method that produced it.

* **SRAM**: the tensor arena from the memory planner (``tinyir.passes.memory``) when it
  can plan the graph for the backend: for TFLM the minimum arena the real interpreter
  accepts (64-bit host build) and a 32-bit MCU estimate; otherwise the largest sum of
  one op's non-constant inputs and outputs (a lower bound, said so in the report).
* **Flash**: the model as stored on the device plus an estimate of the runtime's code.
  For TFLM the stored model is the .tflite flatbuffer (exact when the graph exports);
  otherwise the constant bytes.  Code size is estimated from TFLM's documented
  figures: the core runtime fits in 16 KB on a Cortex-M3, and with the kernels of the
  micro_speech model (4 ops) about 22 KB, so ~1.5 KB per kernel; tinyir uses 2 KiB
  per distinct kernel.  The reference C backend measures the real figure with
  arm-none-eabi-size.
"""

from __future__ import annotations

from dataclasses import dataclass

from tinyir.graph import Graph, iter_graphs
from tinyir.types import DType

KiB = 1024
CODE_MODEL = {  # backend: (runtime core bytes, bytes per distinct kernel)
    "tflm": (16 * KiB, 2 * KiB),
    "tinyengine": (4 * KiB, 2 * KiB),
    "utensor": (12 * KiB, 2 * KiB),
}


@dataclass(frozen=True)
class Figure:
    bytes: int | None
    method: str

    def to_json(self) -> dict:
        return {"bytes": self.bytes, "method": self.method}


@dataclass(frozen=True)
class Footprint:
    sram: Figure
    flash: Figure
    weights_bytes: int
    code_bytes: int
    sram_mcu: Figure | None = None

    def to_json(self) -> dict:
        return {"sram": self.sram.to_json(), "flash": self.flash.to_json(),
                "weights_bytes": self.weights_bytes, "code_bytes_estimate": self.code_bytes,
                "sram_mcu_32bit": None if self.sram_mcu is None else self.sram_mcu.to_json()}


def weights_bytes(graph: Graph) -> int:
    return sum(v.type.nbytes or 0 for g in iter_graphs(graph) for v in g.constants
               if v.type.dtype != DType.STRING)


def op_io_peak(graph: Graph, origin=None) -> tuple[int, str | None]:
    """Largest sum of one node's non-constant operand and result bytes, and the node."""
    best, where = 0, None
    for _, node in graph.walk():
        seen, total = set(), 0
        for v in list(node.inputs) + list(node.outputs):
            if v is None or v.is_const or v.name in seen:
                continue
            seen.add(v.name)
            total += v.type.nbytes or 0
        if total > best:
            best, where = total, origin(node) if origin else node.name
    return best, where


def sram_figure(graph: Graph, backend: str, origin=None) -> tuple[Figure, Figure | None]:
    """(host/generic figure, 32-bit MCU figure or None): the planner's arena when it can
    plan the graph, else the largest single-op input+output sum (a lower bound)."""
    from tinyir.errors import TinyIRError
    from tinyir.passes.memory import plan_memory

    try:
        plan = plan_memory(graph, backend).to_json()
    except TinyIRError as e:
        why = f"no memory plan: {e}"
    else:
        if backend == "tflm" and plan.get("tflm_arena_bytes"):
            opt = plan.get("tflm_optimized_arena_bytes")
            better = f"; {opt:,} B with tinyir's offline plan (tinyir compile)" \
                if opt and opt < plan["tflm_arena_bytes"] else ""
            host = Figure(plan["tflm_arena_bytes"], "minimum tensor arena of TFLM's own planner "
                          f"(head {plan['tflm_head_bytes']:,} B + persistent tail "
                          f"{plan['tflm_tail_bytes']:,} B; 64-bit host build){better}"
                          + (f"; tail tables lack {', '.join(plan['tflm_unmodeled_ops'])}"
                             " (counted as 0 B, so this may be low)"
                             if plan.get("tflm_unmodeled_ops") else ""))
            mcu = Figure(plan["tflm_mcu32_arena_bytes_estimate"],
                         "estimate for a 32-bit MCU build (smaller pointer structs in the tail)")
            return host, mcu
        if "optimized_arena_bytes" in plan:
            return Figure(plan["optimized_arena_bytes"],
                          f"arena planned by tinyir for {backend} (lower bound "
                          f"{plan['lower_bound_bytes']:,} B)"), None
        why = "no memory plan for this backend"
    peak, where = op_io_peak(graph, origin)
    return Figure(peak, f"largest sum of one op's inputs and outputs ({where}); {why}, "
                  "so the real arena is at least this"), None


def flash_figure(graph: Graph, backend: str) -> tuple[Figure, int, int]:
    w = weights_bytes(graph)
    kernels = {n.op if n.op != "tfl.CUSTOM" else f"custom:{n.attrs.get('custom_code')}"
               for _, n in graph.walk()}
    core, per_kernel = CODE_MODEL.get(backend, CODE_MODEL["tflm"])
    code = core + per_kernel * len(kernels)
    stored, how = w, "constant tensor bytes"
    if backend == "tflm" and all(n.dialect == "tfl" for _, n in graph.walk()):
        try:
            from tinyir.formats.tflite_format import write_tflite_bytes

            stored, how = len(write_tflite_bytes(graph)), ".tflite flatbuffer size"
        except Exception:  # an unexportable graph has findings of its own
            pass
    return Figure(stored + code, f"{how} ({stored:,} B) + estimated code ({code:,} B: "
                  f"{core // KiB} KiB runtime + {per_kernel // KiB} KiB x {len(kernels)} "
                  "kernels)"), w, code


def footprint(graph: Graph, backend: str, origin=None) -> Footprint:
    """SRAM and flash of ``graph`` (lowered for ``backend``); ``origin`` names user nodes."""
    sram, sram_mcu = sram_figure(graph, backend, origin)
    flash, w, code = flash_figure(graph, backend)
    return Footprint(sram, flash, w, code, sram_mcu)
