"""Run a .tflite in the real tflite-micro interpreter, in a child process.

The interpreter can abort or crash the process when the arena is too small, so each
trial runs in its own Python process.  :func:`run_in_tflm` allocates, feeds the inputs
(zeros when none are given), invokes once and returns the outputs; :func:`min_arena`
finds the smallest working arena by bisection at TFLM's 16-byte granularity.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ALIGN = 16

_CHILD = r"""
import sys
import numpy as np
from tflite_micro.python.tflite_micro import runtime
path, arena, feeds, out = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
it = runtime.Interpreter.from_bytes(open(path, "rb").read(), arena_size=arena)
data = np.load(feeds) if feeds != "-" else None
i = 0
while True:
    try:
        d = it.get_input_details(i)
    except Exception:
        break
    it.set_input(data[f"i{i}"] if data is not None else np.zeros(d["shape"], d["dtype"]), i)
    i += 1
it.invoke()
if out != "-":
    outs, k = {}, 0
    while True:
        try:
            it.get_output_details(k)
        except Exception:
            break
        outs[f"o{k}"] = it.get_output(k)
        k += 1
    np.savez(out, **outs)
print("OK")
"""


@dataclass
class TflmRun:
    ok: bool
    outputs: list[np.ndarray] = field(default_factory=list)
    stderr: str = ""


def have_tflite_micro() -> bool:
    try:
        import tflite_micro  # noqa: F401
    except Exception:  # a broken install counts as absent
        return False
    return True


def run_in_tflm(path: str | Path, arena: int, feeds: list[np.ndarray] | None = None,
                outputs: bool = False, timeout: float = 600) -> TflmRun:
    """Allocate ``path`` in ``arena`` bytes, invoke once; outputs when asked."""
    with tempfile.TemporaryDirectory() as tmp:
        feed_file, out_file = "-", "-"
        if feeds is not None:
            feed_file = str(Path(tmp) / "feeds.npz")
            np.savez(feed_file, **{f"i{i}": x for i, x in enumerate(feeds)})
        if outputs:
            out_file = str(Path(tmp) / "outputs.npz")
        try:
            p = subprocess.run([sys.executable, "-c", _CHILD, str(path), str(arena), feed_file,
                                out_file], capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            return TflmRun(False, stderr="timed out")
        ok = p.returncode == 0 and "OK" in p.stdout
        outs = []
        if ok and outputs:
            with np.load(out_file) as z:
                outs = [z[f"o{k}"] for k in range(len(z.files))]
        return TflmRun(ok, outs, p.stderr)


def runs_in_tflm(path: str | Path, arena: int) -> bool:
    """Does ``path`` allocate and invoke in ``arena`` bytes?"""
    return run_in_tflm(path, arena).ok


def min_arena(path: str | Path, guess: int, limit: int = 256 << 20) -> int | None:
    """Smallest 16-byte multiple that runs, or None when no arena up to ``limit`` does."""
    hi = max(guess, 1024)
    while not runs_in_tflm(path, hi):
        hi *= 2
        if hi > limit:
            return None
    lo_u, hi_u = 0, (hi + ALIGN - 1) // ALIGN  # lo fails (or is 0), hi works
    while hi_u - lo_u > 1:
        mid = (lo_u + hi_u) // 2
        if runs_in_tflm(path, mid * ALIGN):
            hi_u = mid
        else:
            lo_u = mid
    return hi_u * ALIGN
