"""tinyir passes: pure Graph -> PassResult transformations (see docs/ARCHITECTURE.md).

Pass modules register themselves when imported; :func:`all_passes` imports every one
(kept lazy so that commands which run no pass do not pay for loading them).
"""

from tinyir.passes.base import PASSES, Pass, PassResult, register_pass
from tinyir.passes.pipeline import all_passes, parse_pipeline, run_passes

__all__ = ["PASSES", "Pass", "PassResult", "all_passes", "parse_pipeline", "register_pass",
           "run_passes"]
