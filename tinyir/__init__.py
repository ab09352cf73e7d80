"""tinyir: a compiler-style graph IR and deployability checker for TinyML."""

__version__ = "0.1.0"
