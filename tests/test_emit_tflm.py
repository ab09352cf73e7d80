"""tflm emitter: the folder's .tflite runs in tflite-micro with exactly kTensorArenaSize.

Every interpreter run is a child process (a too-small arena can crash the wheel).
"""

from __future__ import annotations

import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import corpus
from tinyir.backends.lowering import lower_for
from tinyir.backends.tflm.emit import emit
from tinyir.formats import load
from tinyir.formats.tflite_format import write_tflite_bytes

pytest.importorskip("tflite_micro")

CHILD = r"""
import sys
import numpy as np
from tflite_micro.python.tflite_micro import runtime
path, arena, feeds, out = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
it = runtime.Interpreter.from_bytes(open(path, "rb").read(), arena_size=arena)
it.set_input(np.load(feeds)["x"], 0)
it.invoke()
np.save(out, it.get_output(0))
print("OK")
"""

MODELS = ["tflite/mlperf_kws_dscnn_int8.tflite", "tflite/mlperf_ic_resnet8_int8.tflite",
          "tflite/mlperf_ad01_int8.tflite", "tflite/tflm_person_detect_int8.tflite",
          "tflite/tflm_hello_world_int8.tflite", "example:kws_cnn.onnx"]


def _load(rel):
    if rel.startswith("example:"):
        from pathlib import Path

        import tinyir.examples
        return load(Path(tinyir.examples.__file__).parent / rel.split(":")[1])
    return load(corpus.model(rel))


def _run(path, arena, feeds, out) -> bool:
    p = subprocess.run([sys.executable, "-c", CHILD, str(path), str(arena), str(feeds), str(out)],
                       capture_output=True, text=True, timeout=120)
    return p.returncode == 0 and "OK" in p.stdout


@pytest.mark.parametrize("rel", MODELS)
def test_emitted_model_runs_in_exactly_the_emitted_arena(rel, tmp_path):
    g = _load(rel)
    out = tmp_path / "out"
    files = {p.name for p in emit(g, out)}
    assert files == {"model.tflite", "model_data.h", "model_data.cc", "op_resolver.h",
                     "model_config.h", "main.cc", "README.md"}
    arena = int(re.search(r"kTensorArenaSize = (\d+);", (out / "model_config.h").read_text())[1])
    assert arena % 16 == 0
    # reference: the original (lowered) model without any plan, in a large arena
    lowered = lower_for("tflm", g).graph
    ref = tmp_path / "ref.tflite"
    ref.write_bytes(write_tflite_bytes(lowered))
    x = lowered.inputs[0]
    rng = np.random.default_rng(0)
    if x.type.dtype.value == "f32":
        data = rng.standard_normal(x.type.shape).astype(np.float32)
    else:
        data = rng.integers(-128, 128, x.type.shape).astype(np.int8)
    np.savez(tmp_path / "feeds.npz", x=data)
    feeds = tmp_path / "feeds.npz"
    jobs = [(ref, 1 << 22, feeds, tmp_path / "a.npy"),
            (out / "model.tflite", arena, feeds, tmp_path / "b.npy"),
            (out / "model.tflite", arena - 16, feeds, tmp_path / "c.npy")]
    with ThreadPoolExecutor(3) as pool:
        ok_ref, ok_at, ok_below = pool.map(lambda j: _run(*j), jobs)
    assert ok_ref
    assert ok_at, f"{rel}: does not run with kTensorArenaSize = {arena}"
    assert not ok_below, f"{rel}: runs with {arena - 16} B, the emitted arena is not minimal"
    a, b = np.load(tmp_path / "a.npy"), np.load(tmp_path / "b.npy")
    assert a.dtype == b.dtype and np.array_equal(a, b)
    # the resolver registers exactly the model's ops, N = their count
    resolver = (out / "op_resolver.h").read_text()
    calls = re.findall(r"resolver\.(Add\w+)\(\);", resolver)
    n = int(re.search(r"kNumOps = (\d+);", resolver)[1])
    ops = {node.op_type for node in lowered.nodes}
    from tinyir.backends.tflm.emit import RESOLVER_METHODS
    assert sorted(calls) == sorted({RESOLVER_METHODS[o] for o in ops})
    assert n == len(calls) == len(set(calls)) == len(ops)
    assert "MicroMutableOpResolver<kNumOps>" in resolver
    # model_data.cc holds the bytes of model.tflite, 16-byte aligned
    cc = (out / "model_data.cc").read_text()
    assert "alignas(16) const unsigned char g_model_data[]" in cc
    body = cc.split("g_model_data[] = {")[1].split("};")[0]
    data_bytes = bytes(int(h, 16) for h in re.findall(r"0x([0-9a-f]{2})", body))
    assert data_bytes == (out / "model.tflite").read_bytes()
    assert f"g_model_data_len = {len(data_bytes)};" in cc
    readme = (out / "README.md").read_text()
    assert f"{arena} bytes" in readme and "## Build" in readme


def test_main_compiles_against_stub_tflm_headers(tmp_path):
    import shutil
    from pathlib import Path

    if shutil.which("g++") is None:
        pytest.skip("no g++")
    emit(load(corpus.model("tflite/tflm_hello_world_int8.tflite")), tmp_path, confirm=False)
    stub = Path(__file__).parent / "data" / "tflm_stub"
    for src in ("main.cc", "model_data.cc"):
        p = subprocess.run(["g++", "-std=c++17", "-fsyntax-only", "-Wall", f"-I{stub}",
                            f"-I{tmp_path}", str(tmp_path / src)], capture_output=True, text=True)
        assert p.returncode == 0, p.stderr
