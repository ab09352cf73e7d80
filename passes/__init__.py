"""tinyir passes: pure Graph -> PassResult transformations (see docs/ARCHITECTURE.md)."""

from tinyir.passes.base import PASSES, Pass, PassResult, register_pass
from tinyir.passes.pipeline import parse_pipeline, run_passes
from tinyir.passes import dce as _dce  # noqa: F401  (registers the passes)
from tinyir.passes import fold_bn as _fold_bn  # noqa: F401

__all__ = ["PASSES", "Pass", "PassResult", "parse_pipeline", "register_pass", "run_passes"]
