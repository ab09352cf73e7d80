"""TFLM-exact arena prediction and offline plans, against the tflite-micro interpreter.

Every interpreter run happens in a child process: a too-small arena can crash it.
"""

from __future__ import annotations

import struct
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import tflite

import corpus
from tinyir.formats import load
from tinyir.formats.tflite_format import write_tflite_bytes
from tinyir.passes.memory import plan_memory, predict_tflm_arena, verify_plan
from tinyir.passes.memory.offline import METADATA_KEY, apply_plan, tensor_order, with_offline_plan

pytest.importorskip("tflite_micro")

CHILD = r"""
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
    np.savez(out, o0=it.get_output(0))
print("OK")
"""


def runs(path, arena, feeds="-", out="-") -> bool:
    p = subprocess.run([sys.executable, "-c", CHILD, str(path), str(arena), str(feeds),
                        str(out)], capture_output=True, text=True, timeout=120)
    return p.returncode == 0 and "OK" in p.stdout


@pytest.mark.parametrize("name", ["tflm_hello_world_int8.tflite", "tflm_micro_speech_int8.tflite",
                                  "mlperf_ad01_int8.tflite", "tflm_keyword_scrambled.tflite"])
def test_predicted_minimum_arena_is_the_real_one(name):
    """The predicted arena runs and 16 bytes less does not (within the 16-byte target)."""
    path = corpus.model(f"tflite/{name}")
    a = predict_tflm_arena(load(path))
    with ThreadPoolExecutor(2) as pool:
        ok_at, ok_below = pool.map(lambda n: runs(path, n), [a.min_arena, a.min_arena - 32])
    assert ok_at, f"{name}: predicted {a.min_arena} B is too small"
    assert not ok_below, f"{name}: runs in {a.min_arena - 32} B, prediction too large"


def test_prediction_parts_match_the_recorded_head():
    # head figures printed by RecordingMicroAllocator for these models (64-bit wheel)
    for name, head in [("tflm_person_detect_int8.tflite", 55296),
                       ("tflm_audio_preprocessor_int8.tflite", 3040),
                       ("mlperf_vww_mbv1_int8.tflite", 73728)]:
        a = predict_tflm_arena(load(corpus.model(f"tflite/{name}")))
        assert a.head == head, name
        assert a.mcu_min_arena < a.min_arena


def test_exporter_numbering_is_the_offline_numbering(tmp_path):
    g = load(corpus.model("tflite/mlperf_ic_resnet8_int8.tflite"))
    r = plan_memory(g, "tflm")
    planned = with_offline_plan(g, r.optimized)
    data = write_tflite_bytes(planned)
    m = tflite.Model.GetRootAs(data, 0)
    sg = m.Subgraphs(0)
    names = [sg.Tensors(i).Name().decode() for i in range(sg.TensorsLength())]
    meta = planned.metadata
    expect = [meta.get(f"tflite.tensor.{v.name}.name", v.name) for v in tensor_order(planned)]
    assert names == expect
    words = struct.unpack(f"<{len(meta[METADATA_KEY]) // 4}i", meta[METADATA_KEY])
    assert words[1] == 1 and words[2] == len(names)
    md = {m.Metadata(i).Name().decode(): m.Metadata(i).Buffer() for i in range(m.MetadataLength())}
    assert "OfflineMemoryAllocation" in md


def test_offline_plan_runs_in_the_smaller_arena_with_identical_outputs(tmp_path):
    path = corpus.model("tflite/mlperf_vww_mbv1_int8.tflite")
    g = load(path)
    r = plan_memory(g, "tflm")
    verify_plan(g, r.optimized)
    pred = predict_tflm_arena(*apply_plan(g, r.optimized)).min_arena
    assert pred < r.tflm.min_arena
    planned = tmp_path / "planned.tflite"
    planned.write_bytes(write_tflite_bytes(with_offline_plan(g, r.optimized)))
    x = np.random.default_rng(0).integers(-128, 128, g.inputs[0].type.shape).astype(np.int8)
    np.savez(tmp_path / "feeds.npz", i0=x)
    jobs = [(path, 1 << 22, tmp_path / "feeds.npz", tmp_path / "a.npz"),
            (planned, pred, tmp_path / "feeds.npz", tmp_path / "b.npz"),
            (path, pred, "-", "-")]
    with ThreadPoolExecutor(2) as pool:
        ok_ref, ok_planned, ok_stock_small = pool.map(lambda j: runs(*j), jobs)
    assert ok_ref and ok_planned
    assert not ok_stock_small, "the stock model should not fit in the planned arena"
    a, b = np.load(tmp_path / "a.npz")["o0"], np.load(tmp_path / "b.npz")["o0"]
    assert a.dtype == b.dtype and np.array_equal(a, b)
