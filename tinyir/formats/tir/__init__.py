"""Textual IR (``.tir``): one lark grammar, one printer, one parser, lossless both ways.

The parser (and lark) load on first use of :func:`parse_tir`, so that printing types
and values does not pay for the grammar.
"""

from tinyir.formats.tir.printer import format_type, print_tir

__all__ = ["format_type", "parse_tir", "print_tir"]


def __getattr__(name):
    if name == "parse_tir":
        from tinyir.formats.tir.parser import parse_tir

        return parse_tir
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
