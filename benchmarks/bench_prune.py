"""Prune benchmark: digits accuracy at 30 % fewer MACs (plain L1 vs. recovery) and budget fits.

Calibration: sklearn digits, stratified 75/25 split (random_state=0), first 200 training
images, pixel/16, NCHW.  Test: ../shared/models/trained/digits_test.npz (450 images).
Run: python benchmarks/bench_prune.py
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from tinyir import interp
from tinyir.errors import PassError
from tinyir.formats import load
from tinyir.passes.pipeline import run_passes

MODELS = Path(__file__).resolve().parents[2] / "shared" / "models"


def calib_file(d: str) -> str:
    dg = load_digits()
    x = (dg.images / 16).astype(np.float32)[:, None]
    xtr, _, _, _ = train_test_split(x, dg.target, test_size=0.25, stratify=dg.target,
                                    random_state=0)
    path = str(Path(d) / "digits_calib.npz")
    np.savez(path, input=xtr[:200])
    return path


def accuracy(g) -> float:
    t = np.load(MODELS / "trained/digits_test.npz")
    out = g.outputs[0].name
    hits = sum(int(interp.run(g, {g.inputs[0].name: t["x_test"][i:i + 1]})[out].argmax()
                   == t["y_test"][i]) for i in range(len(t["y_test"])))
    return 100.0 * hits / len(t["y_test"])


def main() -> int:
    with tempfile.TemporaryDirectory() as d:
        calib = calib_file(d)
        print("## digits accuracy, test split (450), keep 70 % of MACs")
        print(f"{'model':18} {'variant':34} {'acc %':>6} {'MACs':>15} {'params':>13} {'s':>5}")
        for m in ("digits_resdw_bn", "digits_lenet_bn"):
            path = MODELS / f"trained/{m}.onnx"
            base = accuracy(load(path))
            print(f"{m:18} {'float (unpruned)':34} {base:6.2f}")
            for label, pipe in (("L1, no recovery", "prune{macs=0.7,criterion=l1}"),
                                ("L1 choice + LS refit", f"prune{{macs=0.7,criterion=l1,calib={calib}}}"),
                                ("recon choice + LS refit", f"prune{{macs=0.7,calib={calib}}}")):
                t0 = time.time()
                g, res = run_passes(load(path), pipe)
                s = res[0].stats
                acc = accuracy(g)
                print(f"{m:18} {label:34} {acc:6.2f} {s['macs'][0]:>7}->{s['macs'][1]:<7} "
                      f"{s['params'][0]:>6}->{s['params'][1]:<6} {time.time() - t0:5.1f}  "
                      f"(drop {base - acc:.2f})")
        print("\n## prune to a budget (tflm)")
        cases = [("trained/digits_resdw_bn.onnx", "int8, sram=6KiB flash=42KiB",
                  f"prune{{fit=tflm,sram=6KiB,flash=42KiB,int8=true,calib={calib},samples=50}}"),
                 ("onnx-from-tflite/mlperf_ic_resnet8_fp32.onnx", "float, board microbit-v2",
                  "prune{fit=tflm,board=microbit-v2}"),
                 ("onnx-from-tflite/mlperf_vww_mbv1_fp32.onnx", "float, board arduino-uno",
                  "prune{fit=tflm,board=arduino-uno}")]
        for rel, what, pipe in cases:
            t0 = time.time()
            try:
                g, res = run_passes(load(MODELS / rel), pipe)
            except PassError as e:
                print(f"{rel} ({what}): {e}  [{time.time() - t0:.1f}s]")
                continue
            s = res[0].stats
            b, a = s["before"], s["after"]
            print(f"{rel} ({what}): ratio {s['ratio']}, SRAM {b['sram']} -> {a['sram']} B, "
                  f"flash {b['flash']} -> {a['flash']} B, MACs {s['macs'][0]} -> {s['macs'][1]}, "
                  f"params {s['params'][0]} -> {s['params'][1]}, passes: {a['passed']} "
                  f"[{time.time() - t0:.1f}s]")
            for layer, (w0, w1) in s["widths"].items():
                print(f"    {layer[-60:]:60} out {w0} -> {w1}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
