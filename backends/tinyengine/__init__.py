"""TinyEngine backend: genModel.h / genModel.c in the form of TinyEngine's own code generator."""

from tinyir.backends.tinyengine.emit import emit

__all__ = ["emit"]
