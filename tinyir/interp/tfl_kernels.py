"""Reference kernels for TFLite ops: float, and integer arithmetic bit-exact with TFLM."""
