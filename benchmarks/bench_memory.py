"""SRAM planning against the real tflite-micro interpreter, and the optimised planner.

    python benchmarks/bench_memory.py [MODELS_DIR] [--skip-bisect] [--offline-only]

Tables:

1. Predicted minimum arena (``predict_tflm_arena``, host 64-bit) against the real minimum,
   found by bisection at 16-byte steps with each trial (load, allocate, invoke on zeros)
   in a child process (too-small arenas can crash the interpreter); two trials at a time.
2. Optimised plan against TFLM's own plan and the lower bound of the optimised order, for
   every corpus model (ONNX graphs use the generic rules), with planning times.
3. Offline plans: the optimised order and offsets written as OfflineMemoryAllocation
   metadata; tflite-micro runs the file in the predicted (smaller) arena and its outputs
   are compared bit for bit with the original model's outputs on seeded random inputs.

Nothing is cached; temporary files go to a temporary directory.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from tinyir.backends.lowering import lower_for
from tinyir.backends.tflm.runner import min_arena, run_in_tflm
from tinyir.formats import load
from tinyir.formats.tflite_format import write_tflite_bytes
from tinyir.passes.memory import plan_memory, predict_tflm_arena
from tinyir.passes.memory.offline import apply_plan, with_offline_plan

REPO = Path(__file__).resolve().parents[1]
DEFAULT_MODELS = Path(os.environ.get("TINYIR_MODELS", REPO.parent / "shared" / "models"))

def bisect_min_arena(path: str, hint: int) -> int | None:
    """Smallest multiple of 16 that works, or None when the model does not run at all."""
    return min_arena(path, hint)


def table_prediction(models: Path, tmp: Path, pool: ThreadPoolExecutor) -> list[dict]:
    rows = []
    files = sorted((models / "tflite").glob("*.tflite"))

    def one(f: Path) -> dict:
        g = load(f)
        try:
            a = predict_tflm_arena(g)
        except Exception as e:  # noqa: BLE001 - report, keep going
            return {"model": f.name, "error": str(e)}
        real = bisect_min_arena(str(f), a.min_arena)
        return {"model": f.name, "head": a.head, "tail": a.tail, "predicted": a.min_arena,
                "mcu32": a.mcu_min_arena, "real": real}

    for r in pool.map(one, files):
        rows.append(r)
    print("\n## 1. Predicted minimum arena vs tflite-micro (bisection, 16-byte steps)\n")
    print(f"{'model':44} {'head':>9} {'tail':>7} {'predicted':>10} {'real':>10} {'error':>6}"
          f" {'MCU32 est.':>10}")
    ok = n = 0
    for r in rows:
        if "error" in r:
            print(f"{r['model']:44} prediction refused: {r['error']}")
            continue
        if r["real"] is None:
            print(f"{r['model']:44} {r['head']:9} {r['tail']:7} {r['predicted']:10} "
                  f"{'(does not run in tflite-micro)':>28}")
            continue
        err = r["predicted"] - r["real"]
        n += 1
        ok += abs(err) <= 16
        print(f"{r['model']:44} {r['head']:9} {r['tail']:7} {r['predicted']:10} {r['real']:10} "
              f"{err:+6} {r['mcu32']:10}")
    print(f"\nwithin 16 bytes: {ok}/{n} runnable models; exact: "
          f"{sum(1 for r in rows if r.get('real') and r['predicted'] == r['real'])}/{n}")
    return rows


def table_optimized(models: Path) -> list[dict]:
    files = sorted((models / "tflite").glob("*.tflite")) + sorted(models.glob("onnx*/*.onnx"))
    print("\n## 2. Optimised plan vs TFLM's greedy planner (head bytes) and the lower bound\n")
    print(f"{'model':46} {'TFLM head':>11} {'optimised':>11} {'LB(order)':>11} {'arena/LB':>8}"
          f" {'vs TFLM':>8} {'order':>9} {'time s':>7}")
    rows = []
    for f in files:
        rel = f"{f.parent.name}/{f.name}"
        try:
            g = load(f)
            r = plan_memory(g, "tflm")
        except Exception as e:  # noqa: BLE001
            print(f"{rel:46} not planned: {str(e)[:70]}")
            continue
        base, opt, lb = r.baseline.arena_bytes, r.optimized.arena_bytes, r.lower_bound
        red = 1 - opt / base if base else 0.0
        order = ("changed" if r.optimized.order != r.baseline.order else "file") + \
            ("" if r.order_exact else "*")
        print(f"{rel:46} {base:11} {opt:11} {lb:11} {opt / lb if lb else 1:8.3f} "
              f"{-red:+8.1%} {order:>9} {r.plan_seconds:7.2f}")
        rows.append({"model": rel, "tflm": base, "optimized": opt, "lb": lb,
                     "seconds": r.plan_seconds})
    worse = [r["model"] for r in rows if r["optimized"] > r["tflm"]]
    print(f"\noptimised > TFLM on: {worse or 'no model'}; at the lower bound: "
          f"{sum(r['optimized'] == r['lb'] for r in rows)}/{len(rows)}; "
          f"slowest: {max(rows, key=lambda r: r['seconds'])['model']} "
          f"{max(r['seconds'] for r in rows):.2f} s   (* = order search hit its cap or budget)")
    slow = [f"{r['model']} {r['seconds']:.2f} s" for r in rows if r["seconds"] > 1.0]
    print(f"planning time target 1 s per model: {'met' if not slow else 'missed on ' + ', '.join(slow)}")
    return rows


def table_offline(models: Path, tmp: Path, pool: ThreadPoolExecutor, names: list[str]) -> None:
    print("\n## 3. Offline plan (OfflineMemoryAllocation) in tflite-micro\n")
    print(f"{'model':40} {'TFLM min':>9} {'predicted':>9} {'real min':>9} {'saved':>7} "
          f"{'runs@pred':>9} {'bit-identical':>13}")
    for name in names:
        g = load(models / name)
        if name.endswith(".onnx"):  # ONNX models run in TFLM as tinyir lowers them
            g = lower_for("tflm", g).graph
        f = tmp / f"stock_{Path(name).stem}.tflite"
        f.write_bytes(write_tflite_bytes(g))
        r = plan_memory(g, "tflm")
        planned = with_offline_plan(g, r.optimized)
        path = tmp / f"offline_{Path(name).stem}.tflite"
        path.write_bytes(write_tflite_bytes(planned))
        pred = predict_tflm_arena(*apply_plan(g, r.optimized)).min_arena
        base = predict_tflm_arena(g).min_arena
        rng = np.random.default_rng(0)
        feeds = []
        for v in g.inputs:
            dt = v.type.dtype.numpy
            if dt.kind in "iu":
                info = np.iinfo(dt)
                feeds.append(rng.integers(info.min, info.max + 1, v.type.shape).astype(dt))
            else:
                feeds.append(rng.standard_normal(v.type.shape).astype(dt))
        ref, got = pool.map(lambda a: run_in_tflm(a[0], a[1], feeds, outputs=True),
                            [(f, 64 << 20), (path, pred)])
        ran_pred = got.ok
        same = ref.ok and got.ok and all(np.array_equal(x, y) and x.dtype == y.dtype
                                         for x, y in zip(ref.outputs, got.outputs))
        real = bisect_min_arena(str(path), pred)
        print(f"{Path(name).name:40} {base:9} {pred:9} {real or '-':>9} {base - pred:7} "
              f"{'yes' if ran_pred else 'NO':>9} {'yes' if same else 'NO':>13}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("models", nargs="?", default=str(DEFAULT_MODELS))
    ap.add_argument("--skip-bisect", action="store_true", help="skip table 1")
    ap.add_argument("--offline-only", action="store_true", help="only table 3")
    args = ap.parse_args()
    models = Path(args.models)
    offline = [f"tflite/{n}" for n in (
        "mlperf_vww_mbv1_int8.tflite", "mlperf_vww_mbv1_fp32.tflite",
        "tf_mobilenet_v1_025_128_fp32.tflite", "mlperf_ic_resnet8_int8.tflite",
        "tflm_person_detect_int8.tflite", "mlperf_kws_dscnn_int8.tflite",
        "tinyengine_vww_int8.tflite", "tflm_micro_speech_int8.tflite")] + [
        "trained/digits_resdw_bn.onnx", "onnx-from-tflite/tf_mobilenet_v1_025_128_fp32.onnx"]
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as d, ThreadPoolExecutor(2) as pool:
        tmp = Path(d)
        if not args.offline_only:
            if not args.skip_bisect:
                table_prediction(models, tmp, pool)
            table_optimized(models)
        table_offline(models, tmp, pool, offline)
    print(f"\ntotal {time.perf_counter() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
