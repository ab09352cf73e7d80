"""The ``tinyir`` command: show, check, opt, passes.

Exit codes: 0 success (for ``check``: deployable), 1 findings, 2 bad input or bad
options (one line on stderr, never a traceback), 3 an internal error in tinyir.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from tinyir import __version__
from tinyir.errors import TinyIRError

BACKENDS = ("tflm", "tinyengine", "utensor", "c")
EXIT_OK, EXIT_FINDINGS, EXIT_BAD_INPUT, EXIT_INTERNAL = 0, 1, 2, 3


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors and exit code 2."""

    def error(self, message: str):  # noqa: D401 - argparse API
        raise _UsageError(f"{self.prog}: {message} (see {self.prog} --help)")


class _UsageError(Exception):
    pass


def _console(stream=None):
    from rich.console import Console

    return Console(file=stream or sys.stdout, soft_wrap=False, highlight=False)


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
    from tinyir.summary import summarize

    reports = []
    for path in args.models:
        g = load(path)
        g.verify()
        reports.append((path, summarize(g)))
    if args.format == "json":
        doc = {"tinyir_version": __version__, "schema": "tinyir.check.summary/1",
               "backend": args.backend,
               "models": [dict(model=str(p), **s.to_json()) for p, s in reports]}
        sys.stdout.write(json.dumps(doc, indent=2) + "\n")
    else:
        con = _console()
        for path, s in reports:
            _render_summary(con, path, s, args.backend)
    return EXIT_OK


def _render_summary(con, path, s, backend: str) -> None:
    from rich.table import Table

    from tinyir.summary import MAC_CONVENTION, PARAM_CONVENTION

    con.print(f"[bold]{path}[/bold]  graph {s.graph_name!r}, layout {s.layout or '-'}, "
              f"{s.n_nodes} nodes" + (f", {s.n_subgraphs} nested graphs" if s.n_subgraphs else "")
              + f"  (backend: {backend}; IR verified)")
    io = Table(show_header=True, header_style="bold", box=None, pad_edge=False)
    io.add_column("")
    io.add_column("name")
    io.add_column("type")
    for n, t in s.inputs:
        io.add_row("input", n, t)
    for n, t in s.outputs:
        io.add_row("output", n, t)
    con.print(io)
    ops = Table(title="ops by type", show_header=True, header_style="bold")
    ops.add_column("op")
    ops.add_column("count", justify="right")
    ops.add_column("known to tinyir")
    for op, count in s.ops.items():
        ops.add_row(op, str(count), "no (opaque)" if op in s.opaque_ops else "yes")
    con.print(ops)
    fig = Table(title="figures", show_header=False)
    fig.add_column("what")
    fig.add_column("value", justify="right")
    fig.add_column("detail")
    fig.add_row("parameters [1]", f"{s.params:,}", "")
    fig.add_row("weight bytes", _bytes(s.weight_bytes), "as stored in the model")
    unknown = f"{len(s.macs_unknown)} node(s) not counted: symbolic shapes" if s.macs_unknown \
        else ""
    fig.add_row("MACs [2]", f"{s.macs:,}", unknown)
    a = s.largest_activation
    if a is not None:
        fig.add_row("largest activation", _bytes(a.nbytes),
                    f"%{a.name}: {a.dtype}{list(a.shape)}")
    con.print(fig)
    con.print(f"[dim][1] {PARAM_CONVENTION}\n[2] {MAC_CONVENTION}[/dim]")
    con.print("[dim]Operator-support rules and SRAM/flash budgets are not checked by this "
              "version yet: the figures above are what tinyir knows about the model.[/dim]\n")


def _bytes(n: int) -> str:
    if n < 1024:
        return f"{n} B"
    if n < 1024 * 1024:
        return f"{n / 1024:.1f} KiB ({n:,} B)"
    return f"{n / 1024 / 1024:.2f} MiB ({n:,} B)"


def cmd_opt(args) -> int:
    from tinyir.formats import format_of, load, save
    from tinyir.passes import parse_pipeline, run_passes

    format_of(args.output)  # refuse a bad output name before doing any work
    passes = parse_pipeline(args.pipeline) if args.pipeline else []
    g = load(args.model)
    g.verify()
    g, results = run_passes(g, passes)
    save(g, args.output)
    err = _console(sys.stderr)
    for p, r in zip(passes, results):
        stats = ", ".join(f"{k}={v}" for k, v in r.stats.items())
        err.print(f"{p.name}: {'changed' if r.changed else 'no change'}"
                  + (f" ({stats})" if stats else ""))
    err.print(f"wrote {args.output}")
    return EXIT_OK


def cmd_passes(args) -> int:
    from tinyir.passes import PASSES

    for name in sorted(PASSES):
        print(f"{name:16} {PASSES[name].summary()}")
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

    c = sub.add_parser("check", help="load, verify and summarise models for a backend",
                       description="Load and verify models and summarise them: ops by type, "
                       "parameters, MACs, largest activation.")
    c.add_argument("models", nargs="+", metavar="MODEL", help="model files")
    c.add_argument("--backend", choices=BACKENDS, default="tflm", help="target runtime")
    c.add_argument("--format", choices=("table", "json"), default="table",
                   help="table for people, json for machines")
    c.set_defaults(fn=cmd_check)

    o = sub.add_parser("opt", help="run passes and write the model",
                       description="Run a pass pipeline and write the model; the output "
                       "format follows the extension of -o (.onnx, .tflite, .tir). Without "
                       "-p it is a plain conversion.")
    o.add_argument("model", help="model file")
    o.add_argument("-p", "--pipeline", help='passes, e.g. "dce" (see tinyir passes)')
    o.add_argument("-o", "--output", required=True, help="output file")
    o.set_defaults(fn=cmd_opt)

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
