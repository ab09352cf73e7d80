"""Textual IR (``.tir``): one lark grammar, one printer, one parser, lossless both ways."""

from tinyir.formats.tir.parser import parse_tir
from tinyir.formats.tir.printer import format_type, print_tir

__all__ = ["format_type", "parse_tir", "print_tir"]
