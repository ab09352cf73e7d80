"""int8 accuracy of the quantize pass on the digits models, against onnxruntime.

    python benchmarks/bench_quantize.py [MODELS_DIR] [--samples 200]

For each trained digits model (``MODELS_DIR/trained``; test split ``digits_test.npz``):

* float accuracy (onnxruntime on the float ONNX model);
* tinyir ``fold-bn,quantize{calib=...,method=M}`` for minmax / entropy / percentile and
  ``quantize{datafree=1,input_range=0:1}`` (no data at all), each exported to .tflite
  and run on the whole test split **in the tflite-micro interpreter** (child process);
  the tinyir int8 reference interpreter must give the same bytes ("bit-exact" column);
* onnxruntime ``quantize_static`` (QDQ, per-channel int8, MinMax and Entropy) on the
  same calibration images, run in onnxruntime;
* tinyir's minmax model exported as ONNX QDQ (``passes/qdq.py`` ``to_onnx_qdq``) and run
  in onnxruntime;
* ``tinyir check --backend tflm`` errors on every model, onnxruntime's QDQ models
  included (they are lowered to int8 TFLite ops with their own params,
  ``backends/tflm/lower_qdq.py``).

Calibration uses the first N images of the *training* split that digits_results.json
records (sklearn ``load_digits``, pixel/16, stratified 75/25, random_state=0); the test
split is only ever used for accuracy.  A last table quantizes a small Conv/Concat/
Sigmoid/Softmax model with both tools and runs ``check_model(..., "tflm")`` on both.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

import tinyir
from tinyir.formats.tflite_format import write_tflite_bytes
from tinyir.interp import run
from tinyir.interp.tfl_quant import round_away

REPO = Path(__file__).resolve().parents[1]
DEFAULT_MODELS = Path(os.environ.get("TINYIR_MODELS", REPO.parent / "shared" / "models"))

TFLM_RUNNER = textwrap.dedent("""
    import sys
    import numpy as np
    from tflite_micro.python.tflite_micro import runtime
    it = runtime.Interpreter.from_bytes(open(sys.argv[1], "rb").read(), arena_size=1 << 20)
    x = np.load(sys.argv[2])
    outs = []
    for i in range(x.shape[0]):
        it.set_input(x[i:i + 1], 0)
        it.invoke()
        outs.append(it.get_output(0).copy())
    np.save(sys.argv[3], np.concatenate(outs))
""")


def digits_split():
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    d = load_digits()
    x = (d.images / 16.0).astype(np.float32)[:, None]
    return train_test_split(x, d.target, test_size=0.25, stratify=d.target, random_state=0)


def input_for(graph, x: np.ndarray) -> np.ndarray:
    """The test images as the model takes them (quantized with its input params if int8)."""
    v = graph.inputs[0]
    if v.type.quant is None:
        return x
    s, z = v.type.quant.scale[0], v.type.quant.zero_point[0]
    return np.clip(round_away(x / np.float32(s)) + z, -128, 127).astype(np.int8)


def tflm_outputs(tflite_path: Path, x: np.ndarray, tmp: Path) -> np.ndarray:
    np.save(tmp / "x.npy", x)
    subprocess.run([sys.executable, "-c", TFLM_RUNNER, str(tflite_path), str(tmp / "x.npy"),
                    str(tmp / "y.npy")], check=True, timeout=600)
    return np.load(tmp / "y.npy")


def ort_accuracy(path, x, y) -> float:
    import onnxruntime as ort

    s = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    name = s.get_inputs()[0].name
    pred = [int(np.argmax(s.run(None, {name: x[i:i + 1]})[0])) for i in range(len(x))]
    return float(np.mean(np.asarray(pred) == y))


def ort_quantize(src, dst, calib: np.ndarray, method: str) -> None:
    from onnxruntime.quantization import (CalibrationDataReader, CalibrationMethod, QuantFormat,
                                          QuantType, quantize_static)

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.it = iter([{"input": calib[i:i + 1]} for i in range(len(calib))])

        def get_next(self):
            return next(self.it, None)

    quantize_static(str(src), str(dst), Reader(), quant_format=QuantFormat.QDQ,
                    per_channel=True, activation_type=QuantType.QInt8,
                    weight_type=QuantType.QInt8,
                    calibrate_method={"minmax": CalibrationMethod.MinMax,
                                      "entropy": CalibrationMethod.Entropy}[method])


def tflm_errors(graph) -> list[str]:
    from tinyir.op_support.report import check_model

    r = check_model(graph, "model", "tflm")
    return [f.rule for f in r.findings if f.severity == "error"]


def tinyir_row(model_path, pipeline, x_test, y_test, tmp):
    g = tinyir.load(model_path)
    t0 = time.perf_counter()
    g, results = tinyir.run_passes(g, pipeline)
    t_q = time.perf_counter() - t0
    path = tmp / "q.tflite"
    path.write_bytes(write_tflite_bytes(g))
    g = tinyir.load(path)
    xq = input_for(g, x_test)
    tflm = tflm_outputs(path, xq, tmp)
    ref = np.concatenate([run(g, {g.inputs[0].name: xq[i:i + 1]})[g.outputs[0].name]
                          for i in range(len(xq))])
    acc = float(np.mean(tflm.reshape(len(y_test), -1).argmax(1) == y_test))
    return acc, bool(np.array_equal(tflm, ref)), tflm_errors(g), t_q, g


def _errs(errs: list[str]) -> str:
    return str(len(errs)) + (f" {sorted(set(errs))}" if errs else "")


def _qdq_export_accuracy(g, path: Path, x_test, y_test) -> float:
    from tinyir.formats.onnx_format import write_onnx_bytes
    from tinyir.passes.qdq import to_onnx_qdq

    path.write_bytes(write_onnx_bytes(to_onnx_qdq(g)))
    return ort_accuracy(path, x_test, y_test)


def digits_table(models: Path, samples: int, con: Console) -> None:
    x_train, _, _, _ = digits_split()
    test = np.load(models / "trained" / "digits_test.npz")
    x_test, y_test = test["x_test"], test["y_test"]
    calib = x_train[:samples]
    table = Table(title=f"digits test accuracy (%), {len(y_test)} images; calibration: first "
                        f"{samples} training images")
    for col in ("model", "variant", "runs in", "accuracy", "vs float", "bit-exact ref",
                "TFLM check errors", "quantize s"):
        table.add_column(col)
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        np.savez(tmp / "calib.npz", input=calib)
        for name in ("digits_lenet_bn", "digits_resdw_bn"):
            src = models / "trained" / f"{name}.onnx"
            f_acc = ort_accuracy(src, x_test, y_test)
            table.add_row(name, "float", "onnxruntime", f"{100 * f_acc:.2f}", "", "", "", "")
            variants = [(f"tinyir {m}", f"fold-bn,quantize{{calib={tmp / 'calib.npz'},method={m}}}")
                        for m in ("minmax", "entropy", "percentile")]
            variants.append(("tinyir datafree (no data)",
                             "quantize{datafree=1,input_range=0:1}"))
            for label, pipe in variants:
                acc, exact, errs, t_q, g = tinyir_row(src, pipe, x_test, y_test, tmp)
                table.add_row("", label, "tflite-micro", f"{100 * acc:.2f}",
                              f"{100 * (acc - f_acc):+.2f}", "yes" if exact else "NO",
                              _errs(errs), f"{t_q:.1f}")
                if label == "tinyir minmax":
                    qdq_acc = _qdq_export_accuracy(g, tmp / "tinyir_qdq.onnx", x_test, y_test)
                    table.add_row("", "tinyir minmax -> ONNX QDQ export", "onnxruntime",
                                  f"{100 * qdq_acc:.2f}", f"{100 * (qdq_acc - f_acc):+.2f}", "",
                                  _errs(tflm_errors(tinyir.load(tmp / "tinyir_qdq.onnx"))), "")
            for m in ("minmax", "entropy"):
                dst = tmp / f"ort_{m}.onnx"
                ort_quantize(src, dst, calib, m)
                acc = ort_accuracy(dst, x_test, y_test)
                table.add_row("", f"onnxruntime quantize_static {m} (QDQ)", "onnxruntime",
                              f"{100 * acc:.2f}", f"{100 * (acc - f_acc):+.2f}", "",
                              _errs(tflm_errors(tinyir.load(dst))), "")
    con.print(table)


def rules_model(path: Path) -> None:
    """Conv x2 -> Concat -> Sigmoid -> GlobalAveragePool -> Flatten -> Gemm -> Softmax."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    inits = [numpy_helper.from_array(a.astype(np.float32), n) for n, a in [
        ("wa", rng.normal(0, 0.3, (4, 3, 3, 3))), ("ba", rng.normal(0, 0.1, 4)),
        ("wb", rng.normal(0, 3.0, (4, 3, 3, 3))), ("bb", rng.normal(0, 1.0, 4)),
        ("wf", rng.normal(0, 1.0, (5, 8))), ("bf", rng.normal(0, 0.1, 5))]]
    nodes = [
        helper.make_node("Conv", ["x", "wa", "ba"], ["a"], pads=[1, 1, 1, 1]),
        helper.make_node("Conv", ["x", "wb", "bb"], ["b"], pads=[1, 1, 1, 1]),
        helper.make_node("Concat", ["a", "b"], ["c"], axis=1),
        helper.make_node("Sigmoid", ["c"], ["s"]),
        helper.make_node("GlobalAveragePool", ["s"], ["p"]),
        helper.make_node("Flatten", ["p"], ["f"]),
        helper.make_node("Gemm", ["f", "wf", "bf"], ["g"], transB=1),
        helper.make_node("Softmax", ["g"], ["y"], axis=1)]
    graph = helper.make_graph(nodes, "rules", [helper.make_tensor_value_info(
        "x", TensorProto.FLOAT, [1, 3, 8, 8])], [helper.make_tensor_value_info(
            "y", TensorProto.FLOAT, [1, 5])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, path)


def check_rows(graph) -> list[str]:
    """Error findings of ``check_model(graph, ..., "tflm")`` by rule: nodes, first message."""
    from tinyir.op_support.report import check_model

    by_rule: dict[str, list] = {}
    for f in check_model(graph, "model", "tflm").findings:
        if f.severity == "error":
            by_rule.setdefault(f.rule, []).append(f)
    out = []
    for rule, fs in by_rule.items():
        msg = fs[0].message if len(fs[0].message) < 150 else fs[0].message[:147] + "..."
        out.append(f"{rule} ({', '.join(f.node for f in fs)}): {msg}")
    return out


def rules_table(con: Console) -> None:
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        src = tmp / "rules.onnx"
        rules_model(src)
        calib = np.random.default_rng(1).normal(0, 1, (64, 1, 3, 8, 8)).astype(np.float32)
        np.savez(tmp / "calib.npz", x=calib[:, 0])
        g, _ = tinyir.run_passes(tinyir.load(src), f"quantize{{calib={tmp / 'calib.npz'}}}")
        from onnxruntime.quantization import (CalibrationDataReader, QuantFormat, QuantType,
                                              quantize_static)

        class Reader(CalibrationDataReader):
            def __init__(self):
                self.it = iter([{"x": c} for c in calib])

            def get_next(self):
                return next(self.it, None)

        rows = [("tinyir quantize", check_rows(g))]
        for label, act in (("QInt8", QuantType.QInt8), ("QUInt8", QuantType.QUInt8)):
            dst = tmp / f"ort_{label}.onnx"
            quantize_static(str(src), str(dst), Reader(), quant_format=QuantFormat.QDQ,
                            per_channel=True, activation_type=act, weight_type=QuantType.QInt8)
            rows.append((f"onnxruntime quantize_static QDQ, {label} activations, lowered by "
                         "tinyir", check_rows(tinyir.load(dst))))
        sm = g.outputs[0].type.quant
        table = Table(title="check_model(..., 'tflm') on a Conv/Concat/Sigmoid/Softmax model")
        table.add_column("model")
        table.add_column("TFLM errors")
        for label, errs in rows:
            table.add_row(label, "\n".join(errs) or f"0 errors (softmax out ({sm.scale[0]}, "
                                                    f"{sm.zero_point[0]}))")
    con.print(table)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("models", nargs="?", default=str(DEFAULT_MODELS))
    ap.add_argument("--samples", type=int, default=200)
    args = ap.parse_args()
    con = Console(width=160)
    digits_table(Path(args.models), args.samples, con)
    rules_table(con)


if __name__ == "__main__":
    main()
