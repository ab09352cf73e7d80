"""Declarations of the ONNX dialect (``onnx.*``): operands, attributes, inference, MACs.

Every op of the ONNX default domain that TinyML models use is declared once, with
the operand list and every attribute name of every opset version, so that
``Graph.verify()`` rejects only attributes no version of the op defines.  Where a
value moved from attribute to operand across opsets (Reshape ``shape``, Squeeze and
Unsqueeze ``axes``, Slice, Pad, Clip, Split, the Reduce ops, Resize/Upsample scales)
both forms are accepted; the opset comes from ``graph.opsets[""]`` of the node's graph
or the nearest enclosing graph that records one.  Ops of other ONNX domains are
``onnx.<domain>.<Op>`` (``onnx.com.microsoft.QLinearAdd``); QONNX custom ops
(``onnx.qonnx.custom_op.*``) are deliberately left unregistered, that is opaque.

Inference returns one :class:`~tinyir.types.TensorType` (element type and shape,
``quant=None``) per result.  Result shapes that depend on operands (``shape``,
``axes``, ``pads``, ``sizes``...) are computed when those operands are constants; an
unknowable dim is the symbolic dim ``"?"`` and an unknowable rank is shape ``None``.
Inference raises ``ValueError`` only when operands contradict each other (a Conv
whose W does not match X's channels, shapes that do not broadcast); the verifier
turns that into a ``VerifyError``.

MAC counting convention: one MAC is one multiply-accumulate.  Conv, ConvInteger and
QLinearConv cost ``N * Cout * outH * outW * (Cin/group) * kH * kW`` (generally
``prod(Y.shape) * prod(W.shape[1:])``); ConvTranspose ``prod(X.shape) *
prod(W.shape[1:])``; Gemm, MatMul, MatMulInteger and QLinearMatMul ``prod(Y.shape) *
K``; LSTM/GRU/RNN ``seq * batch * directions * gates * hidden * (input + hidden)``.
Bias adds, activations, normalisation, pooling and elementwise ops count zero (their
``macs`` is unset).  A MAC function returns None when the count depends on a dim
that is not known.

The declarations live in topic modules: ``onnx_ops_elementwise`` (activations,
arithmetic, comparisons, Cast, Clip, Where, Dropout), ``onnx_ops_nn`` (convolution,
pooling, normalisation, Gemm, MatMul, Resize), ``onnx_ops_shape`` (data movement,
Shape, Constant), ``onnx_ops_reduce`` (reductions, ArgMax, TopK), ``onnx_ops_quant``
(quantization and the com.microsoft QLinear ops) and ``onnx_ops_rnn`` (LSTM, GRU,
RNN, If, Loop); ``onnx_ops_common`` has the helpers they share.
"""

from __future__ import annotations

from tinyir.ops import onnx_ops_elementwise  # noqa: F401  (each import registers its ops)
from tinyir.ops import onnx_ops_nn  # noqa: F401
from tinyir.ops import onnx_ops_quant  # noqa: F401
from tinyir.ops import onnx_ops_reduce  # noqa: F401
from tinyir.ops import onnx_ops_rnn  # noqa: F401
from tinyir.ops import onnx_ops_shape  # noqa: F401
from tinyir.ops.onnx_ops_common import ONNX_DTYPES, UNKNOWN, dtype_of_code

__all__ = ["ONNX_DTYPES", "UNKNOWN", "dtype_of_code"]
