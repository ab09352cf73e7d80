"""tinyir: a compiler-style graph IR and deployability checker for TinyML.

The front door of the Python API::

    import tinyir
    g = tinyir.load("model.onnx")                  # .onnx, .tflite or .tir
    g, results = tinyir.run_passes(g, "fold-bn")   # or a list of pass objects
    tinyir.save(g, "model.tir")
"""

__version__ = "0.1.0"


def load(path):
    """Import a model file (.onnx, .tflite, .tir) as a verified-ready Graph."""
    from tinyir.formats import load as _load

    return _load(path)


def save(graph, path) -> None:
    """Write a graph to .onnx, .tflite or .tir (by extension), atomically."""
    from tinyir.formats import save as _save

    _save(graph, path)


def run_passes(graph, passes, verify: bool = True):
    """Run passes (a pipeline string or pass objects) -> (graph, [PassResult])."""
    from tinyir.passes import run_passes as _run

    return _run(graph, passes, verify=verify)


__all__ = ["__version__", "load", "run_passes", "save"]
