"""Float reference kernels with ONNX semantics."""
