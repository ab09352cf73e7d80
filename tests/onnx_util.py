"""Helpers for tests that run ONNX models in onnxruntime (the float oracle)."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort

_ORT_DT = {"tensor(float)": np.float32, "tensor(double)": np.float64,
           "tensor(int64)": np.int64, "tensor(int32)": np.int32, "tensor(uint8)": np.uint8,
           "tensor(int8)": np.int8, "tensor(bool)": np.bool_, "tensor(float16)": np.float16}

# Inputs that random data would make meaningless (MANIFEST.md: silero gets sr=16000).
SPECIAL = {"sr": lambda shape: np.array(16000, dtype=np.int64)}


def session(model_bytes: bytes) -> ort.InferenceSession:
    so = ort.SessionOptions()
    so.log_severity_level = 3
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    so.intra_op_num_threads = 1
    return ort.InferenceSession(model_bytes, so, providers=["CPUExecutionProvider"])


def random_feeds(sess: ort.InferenceSession, seed: int = 0) -> dict[str, np.ndarray]:
    """Seeded inputs for every graph input; symbolic dims become 1 (512 for 'sequence')."""
    rng = np.random.default_rng(seed)
    feeds = {}
    for i in sess.get_inputs():
        shape = [d if isinstance(d, int) else (512 if "seq" in str(d) else 1) for d in i.shape]
        if i.name in SPECIAL:
            feeds[i.name] = SPECIAL[i.name](shape)
            continue
        dt = _ORT_DT[i.type]
        if np.issubdtype(dt, np.floating):
            feeds[i.name] = rng.standard_normal(shape).astype(dt)
        elif dt == np.bool_:
            feeds[i.name] = rng.integers(0, 2, shape).astype(dt)
        else:
            feeds[i.name] = rng.integers(0, 10, shape).astype(dt)
    return feeds


def rel_err(ref: np.ndarray, got: np.ndarray) -> float:
    """max |ref - got| divided by the output range (1 when the range is 0)."""
    ref = np.asarray(ref, dtype=np.float64)
    got = np.asarray(got, dtype=np.float64)
    if ref.shape != got.shape:
        return float("inf")
    if ref.size == 0:
        return 0.0
    rng = float(ref.max() - ref.min()) or 1.0
    return float(np.max(np.abs(ref - got))) / rng
