"""The ``tinyir`` command: show, check, opt, plan, compile, passes, ops, boards.

Exit codes: 0 success (for ``check``: deployable), 1 findings, 2 bad input or bad
options (one line on stderr, never a traceback), 3 an internal error in tinyir.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from tinyir import __version__
from tinyir.errors import InputError, TinyIRError

BACKENDS = ("tflm", "tinyengine", "utensor")
EXIT_OK, EXIT_FINDINGS, EXIT_BAD_INPUT, EXIT_INTERNAL = 0, 1, 2, 3


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors and exit code 2."""

    def error(self, message: str):  # noqa: D401 - argparse API
        raise _UsageError(f"{self.prog}: {message} (see {self.prog} --help)")


class _UsageError(Exception):
    pass


def _console(stream=None):
    from rich.console import Console

    class _Console(Console):
        def on_broken_pipe(self) -> None:
            """The reader went away (``tinyir check m | head``): stop printing but keep
            going, so that the exit code is still the verdict (rich would exit 1)."""
            self.quiet = True
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())

    return _Console(file=stream or sys.stdout, soft_wrap=False, highlight=False)


# ---------------------------------------------------------------------------------------------
# commands


def cmd_show(args) -> int:
    from tinyir.formats import load
    from tinyir.formats.tir import print_tir

    g = load(args.model)
    limit = None if args.full else args.max_const_bytes
    sys.stdout.write(print_tir(g, max_const_bytes=limit))
    return EXIT_OK


def cmd_check(args) -> int:
    from tinyir.formats import load
    from tinyir.op_support.boards import get_board, parse_size
    from tinyir.op_support.report import (apply_baseline, check_model, load_baseline,
                                          to_json_doc, to_sarif)

    board = get_board(args.board) if args.board else None
    sram = parse_size(args.sram, "--sram") if args.sram else None
    flash = parse_size(args.flash, "--flash") if args.flash else None
    tolerance = _tolerance(args.tolerance)
    baseline = load_baseline(args.baseline) if args.baseline else None
    reports = []
    for path in args.models:
        r = check_model(load(path), str(path), args.backend, board, sram, flash)
        if baseline is not None:
            apply_baseline(r, baseline, args.baseline, tolerance)
        reports.append(r)
    if args.format in ("json", "sarif"):
        doc = to_json_doc(reports) if args.format == "json" else to_sarif(reports)
        text = json.dumps(doc, indent=2) + "\n"
        if args.output:
            from tinyir.formats import write_atomic

            write_atomic(args.output, text)
        else:
            sys.stdout.write(text)
    else:
        from tinyir.op_support.render import render

        con = _console()
        for r in reports:
            render(con, r)
    return EXIT_OK if all(r.passed for r in reports) else EXIT_FINDINGS


def _tolerance(text: str) -> float:
    t = text.strip()
    try:
        value = float(t[:-1]) / 100 if t.endswith("%") else float(t)
    except ValueError:
        raise InputError(f"--tolerance {text!r} is not a number or a percentage") from None
    if not 0 <= value <= 10:
        raise InputError(f"--tolerance {text!r} is out of range")
    return value


def cmd_ops(args) -> int:
    from tinyir.op_support.check import load_table
    from tinyir.op_support.docs import supported_ops_markdown

    sys.stdout.write(supported_ops_markdown(load_table(args.backend)))
    return EXIT_OK


def cmd_boards(args) -> int:
    from tinyir.op_support.boards import BOARDS, fmt_size

    for b in BOARDS.values():
        print(f"{b.name:20} {fmt_size(b.sram):>10} SRAM {fmt_size(b.flash):>10} flash  {b.mcu}"
              + (f"  ({b.note})" if b.note else ""))
    return EXIT_OK


def cmd_opt(args) -> int:
    from tinyir.formats import format_of, load, save
    from tinyir.passes import parse_pipeline, run_passes

    format_of(args.output)  # refuse a bad output name before doing any work
    passes = parse_pipeline(args.pipeline) if args.pipeline else []
    g = load(args.model)
    g.verify()
    err = _console(sys.stderr)

    if args.explain:
        for p in passes:
            if hasattr(p, "explain"):
                print(p.explain(g))
    g, results = run_passes(g, passes)
    save(g, args.output)
    for p, r in zip(passes, results):
        stats = ", ".join(f"{k}={v}" for k, v in r.stats.items())
        err.print(f"{p.name}: {'changed' if r.changed else 'no change'}"
                  + (f" ({stats})" if stats else ""))
    err.print(f"wrote {args.output}")
    return EXIT_OK


def cmd_passes(args) -> int:
    from tinyir.passes import all_passes

    passes = all_passes()
    for name in sorted(passes):
        print(f"{name:16} {passes[name].summary()}")
    return EXIT_OK


# ---------------------------------------------------------------------------------------------
# entry point


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="tinyir", description="A graph IR and deployability checker for TinyML "
                "models (ONNX, TFLite, .tir).")
    p.add_argument("--version", action="version", version=f"tinyir {__version__}")
    p.add_argument("--debug", action="store_true", help="show tracebacks of internal errors")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    s = sub.add_parser("show", help="print a model as textual IR (.tir)",
                       description="Print a model as textual IR (.tir).")
    s.add_argument("model", help="model file (.onnx, .tflite, .tir)")
    s.add_argument("--full", action="store_true",
                   help="print every constant in full (the text then parses back losslessly)")
    s.add_argument("--max-const-bytes", type=int, default=256, metavar="N",
                   help="elide constants larger than N bytes (default 256)")
    s.set_defaults(fn=cmd_show)

    c = sub.add_parser(
        "check", help="say whether models deploy on a backend and board, and why not",
        description="Lower each model for the backend, check every op against the backend's "
        "table and the budget, and report every finding. Exit 0 deployable, 1 not (or the "
        "gate failed), 2 bad input.")
    c.add_argument("models", nargs="+", metavar="MODEL", help="model files (.onnx, .tflite, .tir)")
    c.add_argument("--backend", choices=BACKENDS, default="tflm", help="target runtime")
    c.add_argument("--board", metavar="NAME", help="board preset for the budgets (tinyir boards)")
    c.add_argument("--sram", metavar="SIZE", help="SRAM budget, e.g. 256KiB (overrides --board)")
    c.add_argument("--flash", metavar="SIZE", help="flash budget, e.g. 1MiB (overrides --board)")
    c.add_argument("--format", choices=("table", "json", "sarif"), default="table",
                   help="table for people; json (schema tinyir.check/1) or sarif for machines")
    c.add_argument("-o", "--output", metavar="FILE", help="write json/sarif to FILE")
    c.add_argument("--baseline", metavar="REPORT", help="a previous --format json report: fail "
                   "only on growth beyond --tolerance or on findings not in it")
    c.add_argument("--tolerance", default="0", metavar="PCT",
                   help="allowed SRAM/flash growth against --baseline, e.g. 5%% (default 0)")
    c.set_defaults(fn=cmd_check)

    ops = sub.add_parser("ops", help="print a backend's supported-ops page",
                         description="Print the supported ops and rules of a backend (Markdown).")
    ops.add_argument("--backend", choices=BACKENDS, default="tflm")
    ops.set_defaults(fn=cmd_ops)

    b = sub.add_parser("boards", help="list board presets", description="List board presets.")
    b.set_defaults(fn=cmd_boards)

    o = sub.add_parser("opt", help="run passes and write the model",
                       description="Run a pass pipeline and write the model; the output "
                       "format follows the extension of -o (.onnx, .tflite, .tir). Without "
                       "-p it is a plain conversion.")
    o.add_argument("model", help="model file")
    o.add_argument("-p", "--pipeline", help='passes, e.g. "dce" (see tinyir passes)')
    o.add_argument("-o", "--output", required=True, help="output file")
    o.add_argument("--explain", action="store_true",
                   help="print what the passes will act on (prune: its channel groups)")
    o.set_defaults(fn=cmd_opt)

    from tinyir.backends.cli import add_compile_parser
    from tinyir.passes.memory.cli import add_plan_parser

    add_plan_parser(sub)
    add_compile_parser(sub)

    ps = sub.add_parser("passes", help="list the available passes",
                        description="List the passes a pipeline can name.")
    ps.set_defaults(fn=cmd_passes)
    return p


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    debug = "--debug" in argv
    try:
        args = build_parser().parse_args(argv)
        if not getattr(args, "fn", None):
            build_parser().print_help()
            return EXIT_BAD_INPUT
        return args.fn(args)
    except _UsageError as e:
        print(str(e), file=sys.stderr)
        return EXIT_BAD_INPUT
    except TinyIRError as e:
        print(f"tinyir: error: {e}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("tinyir: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return EXIT_OK
    except Exception as e:  # a bug in tinyir, not the user's fault
        if debug:
            raise
        msg = str(e).splitlines()[0] if str(e) else ""
        print(f"tinyir: internal error: {type(e).__name__}: {msg} "
              "(please report it; --debug shows the traceback)", file=sys.stderr)
        return EXIT_INTERNAL


if __name__ == "__main__":
    sys.exit(main())
