"""Agreement of ``tinyir check --backend tflm`` with the real tflite-micro interpreter.

For every corpus .tflite and every rule probe of ``tests/test_op_support_tflm.py``:
tinyir's verdict (error rule ids), TFLM's verdict (allocate + invoke in a child
process, its stderr), and whether they agree.  Probes whose rule flags a silent
failure (TFLM runs them but answers wrongly, or with undefined behaviour) are marked
"TFLM runs, tinyir rejects on purpose".

    python benchmarks/bench_check_tflm.py
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # the probes live there

from test_op_support_tflm import agreement  # noqa: E402


def _cell(text: str, width: int) -> str:
    text = text.replace("|", "\\|")
    return text if len(text) <= width else text[:width - 1] + "…"


def main() -> int:
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        rows = agreement(tmp)
    took = time.perf_counter() - t0
    print("| model | tinyir | TFLM | agree? |")
    print("| --- | --- | --- | --- |")
    for r in rows:
        print(f"| {r['model']} | {_cell(', '.join(r['tinyir']), 70)} | "
              f"{_cell(r['tflm'], 110)} | {r['verdict']} |")
    n_bad = sum(not r["agree"] for r in rows)
    n_silent = sum(r["verdict"].startswith("TFLM runs") for r in rows)
    print(f"\n{len(rows)} models, {len(rows) - n_bad} agree ({n_silent} rejected on purpose "
          f"though TFLM runs them), {n_bad} disagree; {took:.1f} s")
    return 1 if n_bad else 0


if __name__ == "__main__":
    sys.exit(main())
