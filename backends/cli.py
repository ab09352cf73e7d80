"""``tinyir compile MODEL --backend B -o DIR``: check, then emit sources for a backend.

The command runs ``tinyir check`` for the backend first and refuses (exit 1, printing the
findings) when the model is not deployable, unless ``--force``.  An emitter is the module
``EMITTERS[backend]`` (default ``tinyir.backends.<backend>.emit``, imported lazily) with

* ``emit(graph, out_dir, check_figures) -> object``: write the sources into ``out_dir``;
* optionally ``CHECK_TABLE``: the ``tinyir check`` table to run (default: the backend);
* optionally ``uncovered(graph) -> [(node, reason)]``: operators its code cannot run,
  reported as findings next to the check's.

The output folder is written atomically: into a temporary folder beside ``DIR`` that is
renamed into place (an existing ``DIR`` is replaced only once the new one is complete).
"""

from __future__ import annotations

import importlib
import shutil
import sys
import tempfile
from pathlib import Path

from tinyir.errors import InputError, UnsupportedError

EMITTERS: dict[str, str] = {"c": "tinyir.backends.c.emit", "tflm": "tinyir.backends.tflm.emit",
                             "tinyengine": "tinyir.backends.tinyengine.emit",
                             "utensor": "tinyir.backends.utensor.emit"}
EXIT_OK, EXIT_FINDINGS = 0, 1


def emitter(backend: str):
    """The emitter module of ``backend`` (InputError when there is none)."""
    name = EMITTERS.get(backend, f"tinyir.backends.{backend}.emit")
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as e:
        if e.name and name.startswith(e.name):
            raise InputError(f"tinyir compile knows no backend {backend!r} "
                             f"(known: {', '.join(sorted(EMITTERS))})") from None
        raise


def add_compile_parser(subparsers) -> None:
    p = subparsers.add_parser("compile", help="check a model, then emit code for a backend",
                              description=__doc__.split("\n\n")[0])
    p.add_argument("model", help=".onnx / .tflite / .tir file")
    p.add_argument("--backend", "-b", default="c", choices=sorted(EMITTERS),
                   help="code generator (default: c, portable reference C)")
    p.add_argument("-o", "--output", required=True, metavar="DIR", help="output folder")
    p.add_argument("--force", action="store_true",
                   help="emit even when tinyir check reports errors")
    p.set_defaults(fn=cmd_compile)


def cmd_compile(args) -> int:
    from rich.console import Console
    from rich.markup import escape

    from tinyir.formats import load
    from tinyir.op_support.render import render
    from tinyir.op_support.report import check_model

    mod = emitter(args.backend)
    table = getattr(mod, "CHECK_TABLE", args.backend)
    graph = load(args.model)
    report = check_model(graph, str(args.model), table)
    from tinyir.backends.lowering import lower_for

    lowered = lower_for("tflm", graph).graph  # TFLite graphs come back as they are
    gaps = mod.uncovered(lowered) if hasattr(mod, "uncovered") else []
    err = Console(file=sys.stderr, soft_wrap=False, highlight=False)
    if not report.passed or gaps:
        render(err, report)
        for node, why in gaps:
            err.print(escape(f"  error  [{args.backend}-kernel] {node.name}: {why}"))
        if not args.force:
            err.print(f"tinyir compile: refused; the model does not pass tinyir check for "
                      f"{args.backend} (--force emits anyway)")
            return EXIT_FINDINGS
        if gaps:
            raise UnsupportedError(f"--force cannot emit operators the {args.backend} backend "
                                   f"has no code for: {', '.join(n.name for n, _ in gaps)}")
    out = Path(args.output)
    write_atomic_dir(out, lambda tmp: mod.emit(lowered, tmp, report if report.passed else None))
    print(f"wrote {out}/ (backend {args.backend}); see {out}/README.md")
    return EXIT_OK


def write_atomic_dir(out: Path, fill) -> None:
    """Call ``fill(tmp_dir)`` on a fresh folder beside ``out``, then rename it to ``out``."""
    out = out.resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    old = None
    try:
        fill(tmp)
        if out.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old.", dir=out.parent))
            old.rmdir()
            out.rename(old)
        tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        if old is not None and not out.exists():
            old.rename(out)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
