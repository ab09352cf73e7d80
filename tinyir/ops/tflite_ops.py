"""Declarations of the TFLite dialect (``tfl.*``): operands, options, inference, MACs.

Attribute names are the op's builtin-options fields (snake_case, from the table in
:mod:`tinyir.formats.tflite_options`) plus the operator-level facts every TFLite
operator may carry (``op_version``, ``intermediates``, ...).  Tensors are NHWC; conv
filters are ``[out, kh, kw, in]``, depthwise filters ``[1, kh, kw, out]``,
fully-connected weights ``[units, in]``.  Inference checks dtype and shape only
(quantization is the file's business); where the result depends on a non-constant
operand the dimension is left unknown.  Ops without inference are declared for their
operands and attributes only.
"""

from __future__ import annotations

import math

import numpy as np

from tinyir.formats.tflite_options import OP_OPTIONS, OPERATOR_ATTRS, attr_names
from tinyir.ops.registry import register
from tinyir.ops.shapes import broadcast, conv_out, normalize_axis
from tinyir.types import DType, TensorType


def tfl(op: str, inputs, outputs, macs=None):
    """Register ``tfl.<op>`` with its options fields as attributes."""
    attrs = attr_names(OP_OPTIONS.get(op)) + list(OPERATOR_ATTRS)
    return register(f"tfl.{op}", inputs, outputs, attrs=attrs, macs=macs)


def _const(node, i):
    v = node.inputs[i] if i < len(node.inputs) else None
    return None if v is None or v.const is None else np.asarray(v.const)


def _ints(node, i):
    c = _const(node, i)
    return None if c is None else [int(x) for x in c.reshape(-1)]


def _shape(node, i):
    return node.inputs[i].type.shape


def _static(node, i) -> bool:
    return node.inputs[i].type.is_static


def _numel(shape) -> int:
    return math.prod(d for d in shape if isinstance(d, int))


# ---- elementwise --------------------------------------------------------------------

def _same(node):
    """Result has the shape and element type of the first operand."""
    t = node.inputs[0].type
    return [TensorType(t.shape, t.dtype)]


for _op in ("ABS", "CEIL", "COS", "ELU", "EXP", "FLOOR", "HARD_SWISH", "LEAKY_RELU", "LOG",
            "LOGISTIC", "NEG", "RELU", "RELU6", "RELU_N1_TO_1", "RELU_0_TO_1", "ROUND", "RSQRT",
            "SIN", "SQRT", "SQUARE", "TANH", "LOG_SOFTMAX", "L2_NORMALIZATION",
            "ZEROS_LIKE", "SIGN", "GELU", "LOCAL_RESPONSE_NORMALIZATION", "REVERSE_V2"):
    tfl(_op, ["input", "axis?"] if _op == "REVERSE_V2" else ["input"], ["output"])(_same)
tfl("LOGICAL_NOT", ["input"], ["output"])(_same)
tfl("CUMSUM", ["input", "axis"], ["output"])(_same)


def _result_dtype(node):
    """Shape of the operand; element type as recorded (QUANTIZE/CAST choose it)."""
    return [TensorType(_shape(node, 0), node.outputs[0].dtype)]


tfl("QUANTIZE", ["input"], ["output"])(_result_dtype)
tfl("CAST", ["input"], ["output"])(_result_dtype)
tfl("SOFTMAX", ["input"], ["output"])(_result_dtype)  # int8 in, int16 out is legal


@tfl("DEQUANTIZE", ["input"], ["output"])
def _dequantize(node):
    """Float32 result of the operand's shape."""
    return [TensorType(_shape(node, 0), DType.FLOAT32)]


def _binary(node):
    a, b = node.inputs[0].type, node.inputs[1].type
    return [TensorType(broadcast(a.shape, b.shape), a.dtype)]


def _compare(node):
    a, b = node.inputs[0].type, node.inputs[1].type
    return [TensorType(broadcast(a.shape, b.shape), DType.BOOL)]


for _op in ("ADD", "SUB", "MUL", "DIV", "MAXIMUM", "MINIMUM", "FLOOR_DIV", "FLOOR_MOD",
            "SQUARED_DIFFERENCE", "POW", "PRELU", "ATAN2", "BITWISE_XOR", "RIGHT_SHIFT"):
    tfl(_op, ["x", "y"], ["output"])(_binary)
for _op in ("EQUAL", "NOT_EQUAL", "LESS", "LESS_EQUAL", "GREATER", "GREATER_EQUAL"):
    tfl(_op, ["x", "y"], ["output"])(_compare)
for _op in ("LOGICAL_AND", "LOGICAL_OR"):
    tfl(_op, ["x", "y"], ["output"])(_binary)


@tfl("ADD_N", ["inputs*"], ["sum"])
def _add_n(node):
    """Broadcast of all operands."""
    t = node.inputs[0].type
    return [TensorType(broadcast(*[v.type.shape for v in node.inputs]), t.dtype)]


@tfl("SELECT_V2", ["condition", "x", "y"], ["output"])
def _select_v2(node):
    """Broadcast of condition, x and y; element type of x."""
    shapes = [v.type.shape for v in node.inputs]
    return [TensorType(broadcast(*shapes), node.inputs[1].type.dtype)]


tfl("SELECT", ["condition", "x", "y"], ["output"])(_select_v2)


# ---- convolution, pooling, matrix products --------------------------------------------

def _window(node, size, kernel, stride, dilation):
    pad = node.attrs.get("padding")
    if not isinstance(size, int) or stride <= 0:
        return size if isinstance(size, str) else None
    if pad == "SAME":
        return -(-size // stride)
    return conv_out(size, kernel, stride, dilation, 0)


def _spatial(node, kh, kw, channels):
    a = node.attrs
    if "stride_h" not in a:
        return [None]
    n, h, w, _ = _shape(node, 0)
    oh = _window(node, h, kh, a["stride_h"], a.get("dilation_h_factor", 1))
    ow = _window(node, w, kw, a["stride_w"], a.get("dilation_w_factor", 1))
    if oh is None or ow is None:
        return [None]
    return [TensorType((n, oh, ow, channels), node.inputs[0].type.dtype)]


def _conv_macs(node):
    out = node.outputs[0].type
    f = _shape(node, 1)
    return _numel(out.shape) * f[1] * f[2] * f[3] if out.is_static else 0


@tfl("CONV_2D", ["input", "filter", "bias?"], ["output"], macs=_conv_macs)
def _conv2d(node):
    """NHWC convolution; filter [out, kh, kw, in/groups]."""
    f = _shape(node, 1)
    return _spatial(node, f[1], f[2], f[0])


def _dw_macs(node):
    out = node.outputs[0].type
    f = _shape(node, 1)
    return _numel(out.shape) * f[1] * f[2] if out.is_static else 0


@tfl("DEPTHWISE_CONV_2D", ["input", "filter", "bias?"], ["output"], macs=_dw_macs)
def _depthwise(node):
    """NHWC depthwise convolution; filter [1, kh, kw, in * depth_multiplier]."""
    f = _shape(node, 1)
    return _spatial(node, f[1], f[2], f[3])


def _pool(node):
    """NHWC pooling window over H and W."""
    a = node.attrs
    if "filter_height" not in a:
        return [None]
    return _spatial(node, a["filter_height"], a["filter_width"], _shape(node, 0)[3])


for _op in ("AVERAGE_POOL_2D", "MAX_POOL_2D", "L2_POOL_2D"):
    tfl(_op, ["input"], ["output"])(_pool)


def _tconv_macs(node):
    x = node.inputs[2].type
    f = _shape(node, 1)
    return _numel(x.shape) * f[0] * f[1] * f[2] if x.is_static else 0


@tfl("TRANSPOSE_CONV", ["output_shape", "weights", "input", "bias?"], ["output"],
     macs=_tconv_macs)
def _transpose_conv(node):
    """Result shape is the constant ``output_shape`` operand."""
    shape = _ints(node, 0)
    return [TensorType(tuple(shape), node.inputs[2].type.dtype) if shape else None]


def _fc_macs(node):
    out = node.outputs[0].type
    return _numel(out.shape) * _shape(node, 1)[-1] if out.is_static else 0


@tfl("FULLY_CONNECTED", ["input", "weights", "bias?"], ["output"], macs=_fc_macs)
def _fully_connected(node):
    """``[rows, units]``, or the input's leading dims + ``[units]`` with keep_num_dims."""
    x, w = _shape(node, 0), _shape(node, 1)
    units, k = w[0], w[-1]
    dt = node.inputs[0].type.dtype
    if node.attrs.get("keep_num_dims"):
        return [TensorType(tuple(x[:-1]) + (units,), dt)]
    if not _static(node, 0) or not isinstance(k, int) or k == 0:
        return [None]
    return [TensorType((_numel(x) // k, units), dt)]


def _bmm_macs(node):
    out = node.outputs[0].type
    a = _shape(node, 0)
    k = a[-2] if node.attrs.get("adj_x") else a[-1]
    return _numel(out.shape) * k if out.is_static and isinstance(k, int) else 0


@tfl("BATCH_MATMUL", ["x", "y"], ["output"], macs=_bmm_macs)
def _batch_matmul(node):
    """Batched matrix product with broadcast batch dims."""
    a, b = list(_shape(node, 0)), list(_shape(node, 1))
    if node.attrs.get("adj_x"):
        a[-2], a[-1] = a[-1], a[-2]
    if node.attrs.get("adj_y"):
        b[-2], b[-1] = b[-1], b[-2]
    batch = broadcast(tuple(a[:-2]), tuple(b[:-2]))
    return [TensorType(tuple(batch) + (a[-2], b[-1]), node.inputs[0].type.dtype)]


# ---- shape manipulation -------------------------------------------------------------

@tfl("RESHAPE", ["input", "shape?"], ["output"])
def _reshape(node):
    """New shape from the constant shape operand (or ``new_shape``); one -1 is inferred."""
    shape = _ints(node, 1) if len(node.inputs) > 1 and node.inputs[1] is not None else None
    if shape is None:
        shape = node.attrs.get("new_shape")
    if shape is None or (len(node.inputs) > 1 and node.inputs[1] is not None
                         and _const(node, 1) is None):
        return [None]
    if -1 in shape:
        if not _static(node, 0):
            return [None]
        rest = math.prod(d for d in shape if d != -1)
        shape = [(_numel(_shape(node, 0)) // rest if rest else 0) if d == -1 else d
                 for d in shape]
    return [TensorType(tuple(shape), node.inputs[0].type.dtype)]


@tfl("SQUEEZE", ["input"], ["output"])
def _squeeze(node):
    """Drops the listed unit dims (all unit dims when none are listed)."""
    x = _shape(node, 0)
    dims = {normalize_axis(a, len(x)) for a in node.attrs.get("squeeze_dims", [])}
    keep = [d for i, d in enumerate(x) if (i not in dims if dims else d != 1)]
    return [TensorType(tuple(keep), node.inputs[0].type.dtype)]


@tfl("EXPAND_DIMS", ["input", "axis"], ["output"])
def _expand_dims(node):
    """Inserts a unit dim at the constant axis."""
    axis = _ints(node, 1)
    if axis is None:
        return [None]
    x = list(_shape(node, 0))
    a = axis[0] + len(x) + 1 if axis[0] < 0 else axis[0]
    return [TensorType(tuple(x[:a] + [1] + x[a:]), node.inputs[0].type.dtype)]


@tfl("CONCATENATION", ["inputs*"], ["output"])
def _concat(node):
    """Sum of the operands' sizes along ``axis``."""
    shapes = [v.type.shape for v in node.inputs]
    axis = normalize_axis(node.attrs.get("axis", 0), len(shapes[0]))
    out = list(shapes[0])
    sizes = [s[axis] for s in shapes]
    out[axis] = sum(sizes) if all(isinstance(d, int) for d in sizes) else "?"
    return [TensorType(tuple(out), node.inputs[0].type.dtype)]


@tfl("SPLIT", ["axis", "input"], ["outputs*"])
def _split(node):
    """``num_splits`` equal parts along the constant axis."""
    axis = _ints(node, 0)
    if axis is None:
        return [None] * len(node.outputs)
    x = list(_shape(node, 1))
    a = normalize_axis(axis[0], len(x))
    if isinstance(x[a], int):
        x[a] //= max(len(node.outputs), 1)
    return [TensorType(tuple(x), node.inputs[1].type.dtype)] * len(node.outputs)


@tfl("SPLIT_V", ["input", "size_splits", "axis"], ["outputs*"])
def _split_v(node):
    """Parts of the constant sizes along the constant axis."""
    sizes, axis = _ints(node, 1), _ints(node, 2)
    if sizes is None or axis is None:
        return [None] * len(node.outputs)
    x = list(_shape(node, 0))
    a = normalize_axis(axis[0], len(x))
    if -1 in sizes and isinstance(x[a], int):
        sizes[sizes.index(-1)] = x[a] - sum(s for s in sizes if s != -1)
    return [TensorType(tuple(x[:a] + [s] + x[a + 1:]), node.inputs[0].type.dtype)
            for s in sizes]


@tfl("PACK", ["inputs*"], ["output"])
def _pack(node):
    """Stacks the operands along a new ``axis``."""
    x = list(_shape(node, 0))
    a = node.attrs.get("axis", 0)
    a = a + len(x) + 1 if a < 0 else a
    return [TensorType(tuple(x[:a] + [len(node.inputs)] + x[a:]), node.inputs[0].type.dtype)]


@tfl("UNPACK", ["input"], ["outputs*"])
def _unpack(node):
    """Slices along ``axis``, which is dropped."""
    x = list(_shape(node, 0))
    a = normalize_axis(node.attrs.get("axis", 0), len(x))
    return [TensorType(tuple(x[:a] + x[a + 1:]), node.inputs[0].type.dtype)] * len(node.outputs)


@tfl("TRANSPOSE", ["input", "perm"], ["output"])
def _transpose(node):
    """Permutes dims by the constant perm."""
    perm = _ints(node, 1)
    if perm is None:
        return [None]
    x = _shape(node, 0)
    return [TensorType(tuple(x[p] for p in perm), node.inputs[0].type.dtype)]


def _pad(node):
    """Adds the constant paddings [rank, 2] to each dim."""
    pads = _const(node, 1)
    if pads is None:
        return [None]
    pads = pads.reshape(-1, 2)
    x = _shape(node, 0)
    out = tuple(d + int(p[0]) + int(p[1]) if isinstance(d, int) else d for d, p in zip(x, pads))
    return [TensorType(out, node.inputs[0].type.dtype)]


tfl("PAD", ["input", "paddings"], ["output"])(_pad)
tfl("PADV2", ["input", "paddings", "constant_values?"], ["output"])(_pad)
tfl("MIRROR_PAD", ["input", "paddings"], ["output"])(_pad)


def _reduce(node):
    """Reduces the constant axes; ``keep_dims`` keeps them as 1."""
    axes = _ints(node, 1)
    if axes is None:
        return [None]
    x = _shape(node, 0)
    axes = {normalize_axis(a, len(x)) for a in axes}
    keep = node.attrs.get("keep_dims", False)
    out = [1 if i in axes else d for i, d in enumerate(x)] if keep else \
        [d for i, d in enumerate(x) if i not in axes]
    return [TensorType(tuple(out), node.inputs[0].type.dtype)]


for _op in ("MEAN", "SUM", "REDUCE_PROD", "REDUCE_MAX", "REDUCE_MIN", "REDUCE_ANY",
            "REDUCE_ALL"):
    tfl(_op, ["input", "axes"], ["output"])(_reduce)


def _arg(node):
    """Drops the constant axis; element type from ``output_type``."""
    axis = _ints(node, 1)
    dt = DType[node.attrs.get("output_type", "INT64")] \
        if isinstance(node.attrs.get("output_type", "INT64"), str) else node.outputs[0].dtype
    if axis is None:
        return [None]
    x = _shape(node, 0)
    a = normalize_axis(axis[0], len(x))
    return [TensorType(tuple(d for i, d in enumerate(x) if i != a), dt)]


tfl("ARG_MAX", ["input", "axis"], ["output"])(_arg)
tfl("ARG_MIN", ["input", "axis"], ["output"])(_arg)


def _resize(node):
    """``[N, size[0], size[1], C]`` from the constant size operand."""
    size = _ints(node, 1)
    if size is None:
        return [None]
    n, _, _, c = _shape(node, 0)
    return [TensorType((n, size[0], size[1], c), node.inputs[0].type.dtype)]


tfl("RESIZE_BILINEAR", ["input", "size"], ["output"])(_resize)
tfl("RESIZE_NEAREST_NEIGHBOR", ["input", "size"], ["output"])(_resize)


@tfl("DEPTH_TO_SPACE", ["input"], ["output"])
def _depth_to_space(node):
    """``[N, H*b, W*b, C/(b*b)]``."""
    n, h, w, c = _shape(node, 0)
    b = node.attrs.get("block_size", 0)
    if not all(isinstance(d, int) for d in (h, w, c)) or b <= 0:
        return [None]
    return [TensorType((n, h * b, w * b, c // (b * b)), node.inputs[0].type.dtype)]


@tfl("SPACE_TO_DEPTH", ["input"], ["output"])
def _space_to_depth(node):
    """``[N, H/b, W/b, C*b*b]``."""
    n, h, w, c = _shape(node, 0)
    b = node.attrs.get("block_size", 0)
    if not all(isinstance(d, int) for d in (h, w, c)) or b <= 0:
        return [None]
    return [TensorType((n, h // b, w // b, c * b * b), node.inputs[0].type.dtype)]


@tfl("SLICE", ["input", "begin", "size"], ["output"])
def _slice(node):
    """Constant begin and size (-1: to the end)."""
    begin, size = _ints(node, 1), _ints(node, 2)
    if begin is None or size is None:
        return [None]
    x = _shape(node, 0)
    out = [(d - b if isinstance(d, int) else d) if s == -1 else s
           for d, b, s in zip(x, begin, size)]
    return [TensorType(tuple(out), node.inputs[0].type.dtype)]


@tfl("STRIDED_SLICE", ["input", "begin", "end", "strides?"], ["output"])
def _strided_slice(node):
    """Constant begin/end/strides with begin, end and shrink masks (no ellipsis/new axis)."""
    a = node.attrs
    begin, end = _ints(node, 1), _ints(node, 2)
    strides = _ints(node, 3) if len(node.inputs) > 3 and node.inputs[3] is not None \
        else [1] * len(begin or [])
    if begin is None or end is None or strides is None or not _static(node, 0) \
            or a.get("ellipsis_mask") or a.get("new_axis_mask"):
        return [None]
    x = _shape(node, 0)
    out = []
    for i, d in enumerate(x):
        if i >= len(begin):
            out.append(d)
            continue
        s = strides[i]
        if s == 0:
            raise ValueError("stride 0")
        b, e = begin[i], end[i]
        if a.get("offset"):
            e = b + e
        lo, hi = (0, d) if s > 0 else (-1, d - 1)
        b = (lo if s > 0 else hi) if a.get("begin_mask", 0) >> i & 1 else \
            min(max(b + d if b < 0 else b, lo), hi)
        e = (hi if s > 0 else lo) if a.get("end_mask", 0) >> i & 1 else \
            min(max(e + d if e < 0 else e, lo), hi)
        if a.get("shrink_axis_mask", 0) >> i & 1:
            continue
        n = (e - b + s - (1 if s > 0 else -1)) // s
        out.append(max(n, 0))
    return [TensorType(tuple(out), node.inputs[0].type.dtype)]


@tfl("GATHER", ["params", "indices"], ["output"])
def _gather(node):
    """params[:axis] + indices[batch_dims:] + params[axis+1:]."""
    p, i = _shape(node, 0), _shape(node, 1)
    axis = normalize_axis(node.attrs.get("axis", 0), len(p))
    bd = node.attrs.get("batch_dims", 0)
    return [TensorType(tuple(p[:axis]) + tuple(i[bd:]) + tuple(p[axis + 1:]),
                       node.inputs[0].type.dtype)]


@tfl("SHAPE", ["input"], ["output"])
def _shape_op(node):
    """``[rank]`` of ``out_type`` (int32 by default)."""
    t = node.attrs.get("out_type", "INT32")
    dt = DType[t] if isinstance(t, str) and t in DType.__members__ else node.outputs[0].dtype
    return [TensorType((len(_shape(node, 0)),), dt)]


@tfl("FILL", ["dims", "value"], ["output"])
def _fill(node):
    """Shape from the constant dims, element type of value."""
    dims = _ints(node, 0)
    return [TensorType(tuple(dims), node.inputs[1].type.dtype) if dims is not None else None]


@tfl("BROADCAST_TO", ["input", "shape"], ["output"])
def _broadcast_to(node):
    """Shape from the constant shape operand."""
    dims = _ints(node, 1)
    return [TensorType(tuple(dims), node.inputs[0].type.dtype) if dims is not None else None]


@tfl("TILE", ["input", "multiples"], ["output"])
def _tile(node):
    """Each dim times the constant multiple."""
    m = _ints(node, 1)
    if m is None:
        return [None]
    x = _shape(node, 0)
    return [TensorType(tuple(d * k if isinstance(d, int) else d for d, k in zip(x, m)),
                       node.inputs[0].type.dtype)]


# ---- recurrent ----------------------------------------------------------------------

_LSTM_OPERANDS = [
    "input", "input_to_input_weights?", "input_to_forget_weights", "input_to_cell_weights",
    "input_to_output_weights", "recurrent_to_input_weights?", "recurrent_to_forget_weights",
    "recurrent_to_cell_weights", "recurrent_to_output_weights", "cell_to_input_weights?",
    "cell_to_forget_weights?", "cell_to_output_weights?", "input_gate_bias?",
    "forget_gate_bias", "cell_gate_bias", "output_gate_bias", "projection_weights?",
    "projection_bias?", "output_state", "cell_state", "input_layer_norm_coefficients?",
    "forget_layer_norm_coefficients?", "cell_layer_norm_coefficients?",
    "output_layer_norm_coefficients?"]


def _lstm_macs(node):
    x = _shape(node, 0)
    n_in, n_cell = x[-1], _shape(node, 2)[0]
    n_out = _shape(node, 8)[1]
    steps = _numel(x[:-1])
    proj = n_cell * n_out if node.inputs[16] is not None else 0
    return steps * (4 * n_cell * (n_in + n_out) + proj)


@tfl("UNIDIRECTIONAL_SEQUENCE_LSTM", _LSTM_OPERANDS, ["output", "intermediates*"],
     macs=_lstm_macs)
def _uni_lstm(node):
    """Input's leading dims + ``[n_output]`` (recurrent_to_output_weights dim 1)."""
    x = _shape(node, 0)
    return [TensorType(tuple(x[:-1]) + (_shape(node, 8)[1],), node.inputs[0].type.dtype)]


tfl("LSTM", _LSTM_OPERANDS, ["output", "intermediates*"], macs=_lstm_macs)(None)
tfl("BIDIRECTIONAL_SEQUENCE_LSTM", ["inputs*"], ["outputs*"])(None)


def _svdf_macs(node):
    x, wf, wt = _shape(node, 0), _shape(node, 1), _shape(node, 2)
    return x[0] * wf[0] * (wf[1] + wt[1]) if all(isinstance(d, int) for d in
                                                 (x[0], wf[0], wf[1], wt[1])) else 0


@tfl("SVDF", ["input", "weights_feature", "weights_time", "bias?", "activation_state"],
     ["output"], macs=_svdf_macs)
def _svdf(node):
    """``[batch, num_filters / rank]``."""
    rank = node.attrs.get("rank", 0)
    x, wf = _shape(node, 0), _shape(node, 1)
    if not rank or not isinstance(wf[0], int):
        return [None]
    return [TensorType((x[0], wf[0] // rank), node.inputs[0].type.dtype)]


# ---- declared without inference -------------------------------------------------------

for _op, _ins, _outs in (
        ("CUSTOM", ["inputs*"], ["outputs*"]),
        ("DENSIFY", ["input"], ["output"]),
        ("IF", ["cond", "inputs*"], ["outputs*"]),
        ("WHILE", ["inputs*"], ["outputs*"]),
        ("CALL_ONCE", [], []),
        ("VAR_HANDLE", [], ["resource"]),
        ("READ_VARIABLE", ["resource"], ["value"]),
        ("ASSIGN_VARIABLE", ["resource", "value"], []),
        ("EMBEDDING_LOOKUP", ["ids", "params"], ["output"]),
        ("GATHER_ND", ["params", "indices"], ["output"]),
        ("DYNAMIC_UPDATE_SLICE", ["operand", "update", "start_indices"], ["output"]),
        ("BROADCAST_ARGS", ["s0", "s1"], ["output"]),
        ("SPACE_TO_BATCH_ND", ["input", "block_shape", "paddings"], ["output"]),
        ("BATCH_TO_SPACE_ND", ["input", "block_shape", "crops"], ["output"]),
        ("TOPK_V2", ["input", "k"], ["values", "indices"]),
        ("ONE_HOT", ["indices", "depth", "on_value", "off_value"], ["output"]),
        ("RANGE", ["start", "limit", "delta"], ["output"]),
        ("WHERE", ["condition"], ["index"]),
        ("RANK", ["input"], ["output"]),
        ("UNIQUE", ["input"], ["output", "idx"]),
        ("SCATTER_ND", ["indices", "updates", "shape"], ["output"]),
        ("NON_MAX_SUPPRESSION_V4", ["inputs*"], ["outputs*"]),
        ("NON_MAX_SUPPRESSION_V5", ["inputs*"], ["outputs*"]),
        ("RNN", ["inputs*"], ["outputs*"]),
        ("UNIDIRECTIONAL_SEQUENCE_RNN", ["inputs*"], ["outputs*"]),
        ("CONV_3D", ["input", "filter", "bias?"], ["output"]),
        ("CONV_3D_TRANSPOSE", ["output_shape", "filter", "input", "bias?"], ["output"]),
        ("FAKE_QUANT", ["input"], ["output"]),
        ("SPARSE_TO_DENSE", ["inputs*"], ["output"]),
        ("MATRIX_DIAG", ["diagonal"], ["output"]),
        ("MATRIX_SET_DIAG", ["input", "diagonal"], ["output"]),
        ("REVERSE_SEQUENCE", ["input", "seq_lengths"], ["output"]),
        ("SEGMENT_SUM", ["data", "segment_ids"], ["output"]),
        ("BUCKETIZE", ["input"], ["output"]),
        ("BITCAST", ["input"], ["output"]),
):
    tfl(_op, _ins, _outs)(None)
