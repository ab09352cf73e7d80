"""Whole-process speed of ``tinyir check`` next to Vela and the tflite-micro interpreter.

    python benchmarks/bench_check_speed.py [MODEL.tflite ...] [--runs N]

Each row is the median wall time over N runs of a fresh process (as a user or CI runs
it), plus peak RSS.  Compared in the same run: ``vela`` compiling the same model for
Ethos-U (``pip install ethos-u-vela``; skipped if absent) and a Python process that
loads the model into the tflite-micro interpreter (import + allocate + one invoke).
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

MODELS = Path(os.environ.get("TINYIR_MODELS", Path(__file__).resolve().parents[2] / "shared" /
                             "models"))
TFLM_LOAD = ("import sys, numpy as np\n"
             "from tflite_micro.python.tflite_micro import runtime\n"
             "it = runtime.Interpreter.from_file(sys.argv[1], arena_size=4 << 20)\n"
             "d = it.get_input_details(0)\n"
             "it.set_input(np.zeros(d['shape'], d['dtype']), 0); it.invoke()\n")


# as installed by pip: bytecode compiled once, not on every start
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def timed(cmd: list[str], runs: int) -> tuple[float, float, int]:
    """(median seconds, min seconds, peak RSS KiB of the children) of ``cmd``."""
    times = []
    subprocess.run(cmd, capture_output=True, env=ENV)  # warm-up: writes bytecode caches
    for _ in range(runs):
        t = time.perf_counter()
        r = subprocess.run(cmd, capture_output=True, env=ENV)
        times.append(time.perf_counter() - t)
        if r.returncode not in (0, 1):
            raise RuntimeError(f"{cmd[0]} failed: {r.stderr.decode()[-300:]}")
    rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return statistics.median(times), min(times), rss


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("models", nargs="*", type=Path,
                    default=[MODELS / "tflite" / "tflm_person_detect_int8.tflite"])
    ap.add_argument("--runs", type=int, default=7)
    args = ap.parse_args()
    table = Table(title=f"whole-process wall time, median of {args.runs} (peak RSS of any child)")
    for col in ("model", "tool", "median s", "min s"):
        table.add_column(col, justify="left" if col in ("model", "tool") else "right")
    vela = shutil.which("vela")
    for m in args.models:
        rows = [("tinyir check --board nano33ble",
                 [sys.executable, "-m", "tinyir", "check", str(m), "--backend", "tflm",
                  "--board", "nano33ble"]),
                ("tinyir check --format json",
                 [sys.executable, "-m", "tinyir", "check", str(m), "--format", "json"]),
                ("tflite-micro: import + load + invoke", [sys.executable, "-c", TFLM_LOAD, str(m)])]
        if vela:
            out = tempfile.mkdtemp()
            rows.append(("vela (Ethos-U55 compile)", [vela, str(m), "--output-dir", out]))
        for name, cmd in rows:
            med, best, _ = timed(cmd, args.runs)
            table.add_row(m.name, name, f"{med:.3f}", f"{best:.3f}")
        if not vela:
            table.add_row(m.name, "vela", "-", "-", end_section=True)
    Console(width=120).print(table)
    print(f"peak RSS of any child process: {resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss} KiB")


if __name__ == "__main__":
    main()
