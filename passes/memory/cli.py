"""``tinyir plan MODEL``: the SRAM plan, its lower bound and the per-step live-memory table.

Wiring (in tinyir/cli.py): ``add_plan_parser(sub)`` registers the sub-command with
``fn=cmd_plan``.  Bad input raises a :class:`~tinyir.errors.TinyIRError`, which the
``tinyir`` entry point prints on one line with exit code 2.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from tinyir.errors import InputError

BACKENDS = ("tflm", "tinyengine", "utensor", "c", "generic")


def add_plan_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "plan", help="plan the SRAM arena: TFLM's figure, the optimised plan, the lower bound",
        description="Plan the activation arena of a model: the arena TFLM needs for the "
        "model as it is (predicted for the real interpreter), an optimised plan (operator "
        "order, in-place views, offsets) and the lower bound of its order.")
    p.add_argument("model", help="model file (.tflite, .onnx, .tir)")
    p.add_argument("--backend", choices=BACKENDS, default="tflm", help="target runtime")
    p.add_argument("--format", choices=("table", "json"), default="table",
                   help="table for people, json for machines")
    p.add_argument("--plot", metavar="FILE.svg", help="write the memory timeline as SVG")
    p.add_argument("--no-reorder", action="store_true", help="keep the file's operator order")
    p.add_argument("--no-inplace", action="store_true", help="no in-place buffer sharing")
    p.add_argument("--offline-out", metavar="FILE.tflite",
                   help="write the model with the plan as TFLM OfflineMemoryAllocation")
    p.set_defaults(fn=cmd_plan)


def cmd_plan(args) -> int:
    from tinyir.formats import load, save

    from tinyir.passes.memory import plan_memory
    from tinyir.passes.memory.report import step_rows, timeline_svg

    if args.plot and not args.plot.lower().endswith(".svg"):
        raise InputError(f"--plot {args.plot}: the timeline is written as SVG; name the file "
                         "*.svg")
    if args.offline_out and not args.offline_out.lower().endswith(".tflite"):
        raise InputError(f"--offline-out {args.offline_out}: the offline plan needs a .tflite "
                         "file name")
    g = load(args.model)
    g.verify()
    r = plan_memory(g, args.backend, inplace=not args.no_inplace, reorder=not args.no_reorder)
    if args.offline_out:
        if r.tflm is None:
            raise InputError("--offline-out needs --backend tflm and a TFLite graph")
        from tinyir.passes.memory.offline import with_offline_plan

        save(with_offline_plan(g, r.optimized), args.offline_out)
    if args.plot:
        Path(args.plot).write_text(timeline_svg(r.optimized, Path(args.model).name))
    rows = step_rows(r.optimized.lifetimes)
    if args.format == "json":
        doc = {"schema": "tinyir.plan/1", "model": str(args.model), **r.to_json(),
               "steps": [{k: row[k] for k in ("step", "op", "live_bytes")} for row in rows]}
        sys.stdout.write(json.dumps(doc, indent=2) + "\n")
        return 0
    _render(r, rows, args)
    return 0


def _render(r, rows, args) -> None:
    from rich.console import Console
    from rich.table import Table

    con = Console(file=sys.stdout, soft_wrap=False, highlight=False)
    con.print(f"[bold]{args.model}[/bold]  SRAM plan for backend {r.backend}")
    t = Table(title="live memory per step (optimised order)", header_style="bold")
    t.add_column("step", justify="right")
    t.add_column("operator")
    t.add_column("live bytes", justify="right")
    t.add_column("live buffers (largest first)")
    for row in rows:
        names = ", ".join(row["buffers"][:4]) + (" ..." if len(row["buffers"]) > 4 else "")
        t.add_row(str(row["step"]), row["op"], f"{row['live_bytes']:,}", names)
    con.print(t)
    f = Table(title="arena", show_header=False)
    f.add_column("what")
    f.add_column("bytes", justify="right")
    f.add_column("detail")
    if r.tflm is not None:
        f.add_row("TFLM minimum arena (host 64-bit)", f"{r.tflm.min_arena:,}",
                  f"head {r.tflm.head:,} + tail {r.tflm.tail:,}; transient peak "
                  f"{r.tflm.transient:,}"
                  + (f"; tail tables lack {', '.join(r.tflm.unmodeled)} (counted as 0 B)"
                     if r.tflm.unmodeled else ""))
        f.add_row("TFLM minimum arena (32-bit MCU)", f"{r.tflm.mcu_min_arena:,}",
                  "estimate: 32-bit struct sizes, same head")
    f.add_row("TFLM planner head (file order)", f"{r.baseline.arena_bytes:,}",
              f"lower bound of the file order {r.baseline.lower_bound:,}")
    f.add_row("optimised head", f"{r.optimized.arena_bytes:,}",
              f"{r.optimized.method}; order "
              + ("changed" if r.optimized.order != r.baseline.order else "kept"))
    f.add_row("lower bound (optimised order)", f"{r.lower_bound:,}",
              f"gap {r.gap:,} B")
    if r.tflm_optimized is not None:
        f.add_row("TFLM arena with the offline plan", f"{r.tflm_optimized.min_arena:,}",
                  "write it with --offline-out")
    con.print(f)
    if args.plot:
        con.print(f"wrote {args.plot}")
