"""The TensorFlow Lite Micro operator table (reference kernels).

Source: tensorflow/tflite-micro at 90b983c (``micro_mutable_op_resolver.h`` for the
op list, ``tensorflow/lite/micro/kernels/*`` for element types and limits); facts and
measured error texts are collected in ``shared/reference/tflm.md``.

The op specs below are the *type gate*: ``dtypes`` lists the (first input, first
output) element types a kernel runs, ``max_rank`` the rank it accepts (6 everywhere:
``RuntimeShape`` holds six dims; less where a kernel says so).  Where TFLM's own
check is richer than a type pair (weights, zero points, constant operands, ...) a
rule in one of the ``tflm_*`` modules says so:

* ``tflm_conv``  - conv, depthwise, transpose conv, fully connected (hybrid models,
  per-channel scales, weight zero points, bias scales, fused activations);
* ``tflm_quant`` - quantization parameters TFLM requires of activations (softmax,
  logistic, tanh, concatenation, pooling, mul, quantize, pad);
* ``tflm_shape`` - constant operands, operand counts, LSTM variants, custom ops and
  the graph-level rules (dynamic shapes, rank, subgraphs).
"""

from __future__ import annotations

from itertools import product

from tinyir.op_support.rules import Table

TABLE = Table("tflm", "TensorFlow Lite Micro",
              source="tensorflow/tflite-micro@90b983c2b3f1480642e040bbd2ddb37b998f3424")

MAX_RANK = 6  # RuntimeShape::kMaxSmallSize; beyond it only a DCHECK guards memory

F32, I8, I16, I32, I64, U8, U32, BOOL = "f32", "i8", "i16", "i32", "i64", "u8", "u32", "bool"
ANY_DATA = (F32, I8, I16, I32, I64, U8, BOOL)


def same(*types: str) -> list[tuple[str, str]]:
    """Kernels whose output has the input's element type."""
    return [(t, t) for t in types]


def to(ins, outs) -> list[tuple[str, str]]:
    return list(product(ins, outs))


def op(name: str, dtypes=(), max_rank: int = MAX_RANK, note: str = "") -> None:
    TABLE.op(f"tfl.{name}", dtypes, max_rank, note)


# ---- convolution, matrix products and pooling (4-D NHWC) -------------------------------
_CONV_NOTE = ("weights: f32 with f32, i8 or packed i4 with i8 activations, i8 with i16; "
              "u8 (legacy) is refused as a hybrid model (rule tflm.conv.hybrid)")
op("CONV_2D", same(F32, I8, I16, U8), 4, _CONV_NOTE)
op("DEPTHWISE_CONV_2D", same(F32, I8, I16, U8), 4, _CONV_NOTE)
op("TRANSPOSE_CONV", to([I32], [F32, I8, I16]), 4,
   "first operand is the constant output shape; no dilation")
op("FULLY_CONNECTED", same(F32, I8, I16), MAX_RANK,
   "weights: f32 with f32, i8 or i4 with i8, i8 with i16")
op("BATCH_MATMUL", same(F32, I8, I16))
op("SVDF", same(F32, I8), 2, "int8: weights_time and state i8 or i16")
op("UNIDIRECTIONAL_SEQUENCE_LSTM", same(F32, I8, I16), MAX_RANK,
   "24 operands; no peephole, projection, layer norm or CIFG; variable states")
for _p in ("AVERAGE_POOL_2D", "MAX_POOL_2D"):
    op(_p, same(F32, I8, I16), 4)
op("L2_POOL_2D", same(F32), 4)

# ---- elementwise arithmetic ------------------------------------------------------------
for _b in ("ADD", "SUB", "MUL"):
    op(_b, same(F32, I32, I8, I16), MAX_RANK, "i32 unquantized; broadcast up to 6-D")
op("DIV", same(F32, I32, I8))
op("FLOOR_DIV", same(F32))
op("FLOOR_MOD", same(F32))
op("SQUARED_DIFFERENCE", same(F32, I32, I8, I16))
op("MAXIMUM", same(F32, I8, I16, I32, I64))
op("MINIMUM", same(F32, I8, I16, I32, I64))
op("ADD_N", same(F32, I8))
op("PRELU", same(F32, I8, I16), MAX_RANK, "i16 output needs i8 alpha")
for _u in ("SIN", "COS", "LOG", "SQRT", "SQUARE", "CEIL", "FLOOR", "ROUND", "EXP", "NEG"):
    op(_u, same(F32))
op("ABS", same(F32, I8, I16))
op("RSQRT", same(F32, I8))
op("LOGICAL_NOT", same(BOOL))
op("LOGICAL_AND", same(BOOL))
op("LOGICAL_OR", same(BOOL))
for _c in ("EQUAL", "NOT_EQUAL"):
    op(_c, to([BOOL, F32, I32, I64, I8], [BOOL]))
op("GREATER", to([F32, I32, I64, I8, I16], [BOOL]))
for _c in ("GREATER_EQUAL", "LESS", "LESS_EQUAL"):
    op(_c, to([F32, I32, I64, I8], [BOOL]))
op("SELECT_V2", to([BOOL], [F32, I8, I16]), MAX_RANK, "first operand is the condition")
op("CUMSUM", same(F32, I8))

# ---- activations -----------------------------------------------------------------------
for _a in ("RELU", "RELU6", "LOGISTIC", "TANH", "LEAKY_RELU"):
    op(_a, same(F32, I8, I16))
op("HARD_SWISH", same(F32, I8), MAX_RANK,
   "no int16 kernel: Prepare accepts i16, Invoke fails with 'Unsupported type INT16'")
op("ELU", same(F32, I8))
op("SOFTMAX", [(F32, F32), (I8, I8), (I8, I16), (I16, I16)])
op("LOG_SOFTMAX", same(F32, I8))
op("L2_NORMALIZATION", same(F32, I8), 4)

# ---- quantization and casts --------------------------------------------------------------
op("QUANTIZE", [(F32, I8), (F32, I16), (I8, I8), (I8, U8), (I8, I16), (I8, I32), (U8, I8),
                (I16, I8), (I16, I16), (I16, I32), (I32, I8), (I32, I16)], MAX_RANK,
   "per-tensor output only")
op("DEQUANTIZE", to([I8, I16, U8], [F32]))
op("CAST", to([I8, I16, I32, U32, F32, BOOL], [I8, I16, I32, U32, F32]), MAX_RANK,
   "type errors appear at Invoke")

# ---- reductions and arg ops ------------------------------------------------------------------
op("MEAN", same(F32, I8, I16), MAX_RANK, "axis i32")
op("SUM", same(F32, I8, I16), MAX_RANK, "axis i32")
op("REDUCE_MAX", same(F32, I8), MAX_RANK, "axis i32")
op("REDUCE_MIN", same(F32, I8), MAX_RANK, "axis i32")
op("REDUCE_ALL", same(BOOL))
for _a in ("ARG_MAX", "ARG_MIN"):
    op(_a, to([F32, I8], [I32]), MAX_RANK,
       "no Prepare: an i64 output or axis fails only at Invoke "
       "('Only int32_t are supported currently, got INT64.')")

# ---- shape and data movement -------------------------------------------------------------------
op("RESHAPE", [], MAX_RANK, "any type (memcpy); never in place")
op("SQUEEZE", [], MAX_RANK, "any type but string")
op("EXPAND_DIMS", same(F32, I8, I16), MAX_RANK, "axis: constant i32")
op("SHAPE", to(ANY_DATA, [I32]))
op("CONCATENATION", same(F32, I8, I16, I32, I64, BOOL), MAX_RANK,
   "at most 10 inputs; no fused activation; int8 inputs share the output's q-params")
op("PACK", same(F32, I8, I16, I32, I64))
op("UNPACK", same(F32, I8, I16, I32))
op("SPLIT", to([I32], [F32, I8, I16, I32]), MAX_RANK, "first operand is the constant axis")
op("SPLIT_V", same(F32, I8, I16, I32), MAX_RANK, "constant axis")
op("SLICE", same(F32, I8, I16, I32, BOOL), 5)
op("STRIDED_SLICE", same(F32, I8, I16, I32, BOOL), 4,
   "'input dim should not exceed 4'; constant begin/end/strides")
op("TRANSPOSE", same(F32, I8, I16), 5, "constant perm")
op("PAD", same(F32, I8, I16, I32), 5, "constant paddings")
op("PADV2", same(F32, I8, I16, I32), 5, "constant paddings; int8 constant shares out q-params")
op("MIRROR_PAD", same(F32, I8))
op("GATHER", same(F32, I8), MAX_RANK, "indices i32")
op("GATHER_ND", same(F32, I8), MAX_RANK, "indices i32")
op("EMBEDDING_LOOKUP", to([I32], [F32, I8]), MAX_RANK, "first operand is the ids (i32)")
op("REVERSE_V2", same(F32, I8, U8, I16, I32, I64, BOOL))
op("DYNAMIC_UPDATE_SLICE", same(F32, I8, I16, I32))
op("FILL", to([I8, I16, I32, I64], [F32, I32, I8]), MAX_RANK, "first operand is the dims")
op("ZEROS_LIKE", same(F32, I8, I32, I64))
op("BROADCAST_TO", [], 5, "any type but string")
op("BROADCAST_ARGS", same(I32, I64))
op("RESIZE_BILINEAR", same(F32, I8), 4, "size: constant i32[2]")
op("RESIZE_NEAREST_NEIGHBOR", same(F32, I8, I16), 4, "size: constant i32[2]")
op("DEPTH_TO_SPACE", same(F32, I8), 4)
op("SPACE_TO_DEPTH", same(F32, I8), 4)
op("SPACE_TO_BATCH_ND", same(F32, I8), 4, "rank 3 or 4")
op("BATCH_TO_SPACE_ND", same(F32, I8), 4, "rank 3 or 4")

# ---- control flow and resource variables -----------------------------------------------------
op("IF", [], MAX_RANK, "runs its then/else subgraphs")
op("WHILE", [], MAX_RANK, "runs its cond/body subgraphs")
op("CALL_ONCE", [], MAX_RANK, "runs its init subgraph once")
op("VAR_HANDLE", [], MAX_RANK, "resource variables live in the arena tail")
op("READ_VARIABLE")
op("ASSIGN_VARIABLE")

# ---- custom ops TFLM registers by name ---------------------------------------------------------
for _name in ("SignalWindow", "SignalRfft", "SignalIrfft", "SignalEnergy",
              "SignalFftAutoScale", "SignalFilterBank", "SignalFilterBankLog",
              "SignalFilterBankSquareRoot", "SignalFilterBankSpectralSubtraction",
              "SignalPCAN", "SignalFramer", "SignalOverlapAdd", "SignalStacker",
              "SignalDelay"):
    TABLE.op(f"tfl.CUSTOM:{_name}", note="signal library (audio front end)")
TABLE.op("tfl.CUSTOM:TFLite_Detection_PostProcess", note="SSD box decoding and NMS")
TABLE.op("tfl.CUSTOM:CIRCULAR_BUFFER", note="streaming buffer")
TABLE.op("tfl.CUSTOM:TFLM_DECODE", note="weight decompression (compressed models)")
TABLE.op("tfl.CUSTOM:ethos-u",
         note="Vela-compiled NPU command stream: only in a build with an Ethos-U NPU "
              "(rule tflm.custom.ethos-u)")

# The rule families register themselves on TABLE when imported.
from tinyir.op_support import tflm_conv, tflm_quant, tflm_shape  # noqa: E402,F401
