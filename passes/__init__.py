"""tinyir passes: pure Graph -> PassResult transformations (see docs/ARCHITECTURE.md)."""
