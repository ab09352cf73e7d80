"""Declarations of the TFLite dialect (``tfl.*``): operands, options, inference, MACs."""
