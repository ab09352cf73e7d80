"""Float reference kernels with ONNX semantics (and exact integer ones for ONNX quant ops).

The kernels live in topic modules, all registered on import of this one:

* ``onnx_kernels_elementwise``: arithmetic, comparisons, activations, Cast, Clip, softmax
* ``onnx_kernels_nn``: Conv/ConvTranspose/ConvInteger, pooling, normalisation, Gemm, MatMul
* ``onnx_kernels_shape``: constants, Reshape/Transpose/Slice/Gather/Pad/Split/Concat, ...
* ``onnx_kernels_reduce``: Reduce*, ArgMax/ArgMin, Resize/Upsample
* ``onnx_kernels_control``: If, LSTM
* ``onnx_kernels_quant``: QuantizeLinear/DequantizeLinear, QLinearConv/MatMul, QLinearAdd
* ``onnx_kernels_qonnx``: QONNX Quant and channels-last Conv/MaxPool

Each kernel reads its attributes with the ONNX defaults and, where an op changed form
across opsets (attribute -> operand), the form of the node's opset (``graph.opsets``,
asked of enclosing graphs for nested bodies).  Results carry the element type recorded
on the node's results.
"""

from tinyir.interp import onnx_kernels_control  # noqa: F401  (registers kernels)
from tinyir.interp import onnx_kernels_elementwise  # noqa: F401
from tinyir.interp import onnx_kernels_nn  # noqa: F401
from tinyir.interp import onnx_kernels_qonnx  # noqa: F401
from tinyir.interp import onnx_kernels_quant  # noqa: F401
from tinyir.interp import onnx_kernels_reduce  # noqa: F401
from tinyir.interp import onnx_kernels_shape  # noqa: F401
