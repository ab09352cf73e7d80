"""Import + verify + print(.tir) + parse(.tir) time for every corpus model.

    python benchmarks/bench_import.py [MODELS_DIR] [--repeat N]

Prints one row per model (best of N runs, milliseconds) and, for comparison in the
same run, the time of the underlying parser alone (``onnx.load`` / reading the
flatbuffer with the ``tflite`` package).
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from tinyir.formats import load
from tinyir.formats.tir import parse_tir, print_tir


def best(fn, repeat: int) -> tuple[float, object]:
    t_best, out = float("inf"), None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        t_best = min(t_best, time.perf_counter() - t)
    return t_best * 1000, out


def raw_parse(path: Path):
    if path.suffix == ".onnx":
        import onnx
        return lambda: onnx.load(str(path))
    import tflite
    data = path.read_bytes()

    def walk():
        m = tflite.Model.GetRootAsModel(data, 0)
        for s in range(m.SubgraphsLength()):
            sg = m.Subgraphs(s)
            for i in range(sg.OperatorsLength()):
                sg.Operators(i).InputsAsNumpy()
            for i in range(sg.TensorsLength()):
                sg.Tensors(i).ShapeAsNumpy()
    return walk


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("models", nargs="?", default=os.environ.get(
        "TINYIR_MODELS", str(Path(__file__).resolve().parents[2] / "shared" / "models")))
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    root = Path(args.models)
    paths = sorted(list(root.glob("**/*.onnx")) + list(root.glob("**/*.tflite")))
    table = Table(title=f"import / verify / print / parse, best of {args.repeat} (ms)")
    for col in ("model", "nodes", "raw parse", "import", "verify", "print .tir", "parse .tir",
                "total"):
        table.add_column(col, justify="left" if col == "model" else "right")
    for p in paths:
        name = str(p.relative_to(root))
        try:
            t_raw, _ = best(raw_parse(p), args.repeat)
            t_imp, g = best(lambda: load(p), args.repeat)
            t_ver, _ = best(g.verify, args.repeat)
            t_prt, text = best(lambda: print_tir(g), args.repeat)
            t_par, _ = best(lambda: parse_tir(text), args.repeat)
        except Exception as e:  # report, keep going: a benchmark row per model
            table.add_row(name, "-", "-", "-", "-", "-", "-", f"failed: {type(e).__name__}: {e}")
            continue
        n = sum(1 for _ in g.walk())
        table.add_row(name, str(n), f"{t_raw:.1f}", f"{t_imp:.1f}", f"{t_ver:.1f}",
                      f"{t_prt:.1f}", f"{t_par:.1f}", f"{t_imp + t_ver + t_prt:.1f}")
    Console(width=160).print(table)


if __name__ == "__main__":
    main()
