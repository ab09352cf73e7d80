"""uTensor backend: a model class in the form of utensor_cgen's rearch generator."""

from tinyir.backends.utensor.emit import emit

__all__ = ["emit"]
