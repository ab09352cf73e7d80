"""The real-model corpus (../shared/models), reached through one setting.

``TINYIR_MODELS`` names the folder; by default it is ``../shared/models`` beside the
checkout.  When it is missing, tests that need it skip with a visible reason, and
``.ci/run`` turns the missing folder into an error so that CI never skips silently.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
MODELS = Path(os.environ.get("TINYIR_MODELS", REPO.parent / "shared" / "models")).resolve()
MISSING = f"model corpus not found at {MODELS} (set TINYIR_MODELS)"


def have_models() -> bool:
    return (MODELS / "MANIFEST.md").is_file()


def model(rel: str) -> Path:
    """One corpus file; skips the test when the corpus is missing."""
    if not have_models():
        pytest.skip(MISSING)
    p = MODELS / rel
    if not p.exists():
        pytest.fail(f"corpus file {rel} is missing from {MODELS}")
    return p


def files(*patterns: str) -> list:
    """pytest params for corpus files matching glob patterns (relative to MODELS)."""
    if not have_models():
        return [pytest.param(None, marks=pytest.mark.skip(reason=MISSING), id="no-corpus")]
    out = []
    for pat in patterns:
        for p in sorted(MODELS.glob(pat)):
            out.append(pytest.param(p, id=str(p.relative_to(MODELS))))
    return out


def manifest() -> dict:
    """manifest.json as {relative path: entry}."""
    data = json.loads((MODELS / "manifest.json").read_text())
    out = {}
    for section, entries in data.items():
        if isinstance(entries, list):
            for e in entries:
                if isinstance(e, dict) and "file" in e:
                    out[f"{section}/{e['file']}"] = e
    return out


def digits_train_images(n: int):
    """The first ``n`` images of the digits training split that
    trained/digits_results.json records (sklearn load_digits, pixel/16, stratified 75/25,
    random_state=0), as float32 NCHW [n, 1, 8, 8].  Calibration data; never the test split."""
    import numpy as np
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    d = load_digits()
    x = (d.images / 16.0).astype(np.float32)[:, None]
    x_train = train_test_split(x, d.target, test_size=0.25, stratify=d.target,
                               random_state=0)[0]
    return x_train[:n]
