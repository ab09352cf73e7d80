"""The TFLite builtin-options <-> node attrs table, used in both directions.

``OP_OPTIONS`` maps each builtin operator to the options table its operators carry
(``CONV_2D -> Conv2DOptions``).  The fields of an options table are not listed by
hand: they come from the generated ``tflite`` builder functions
(``Conv2DOptionsAddStrideW(builder, v)`` says "slot 1, int32, default 0"), read once
by calling them on a recording stand-in for the builder.  Attribute names are the
snake_case schema names (``stride_w``, ``fused_activation_function``).

Attribute values: enum fields (``ENUM_FIELDS``) are the enum member names
(``padding="SAME"``; an unknown number stays an ``int``), bools are ``bool``, floats
are Python floats of float32 values, vectors are lists of ``int`` (``bytes`` for
``[ubyte]``, list of ``bool`` for ``[bool]``), strings are ``str``.  Reading keeps
every field, defaults included; writing omits fields equal to the schema default
(flatbuffers does that), which reads back the same.
"""

from __future__ import annotations

import functools
import importlib
import re
from dataclasses import dataclass

import flatbuffers
import numpy as np
import tflite
from tflite.BuiltinOptions import BuiltinOptions
from tflite.BuiltinOptions2 import BuiltinOptions2
from tflite.utils import BUILTIN_OPCODE2NAME

# operator-level facts that nodes of every tfl op may carry as attrs (see tflite_format)
OPERATOR_ATTRS = ("custom_code", "custom_options", "custom_options_format", "op_version",
                  "intermediates", "mutating_variable_inputs", "debug_metadata_index",
                  "builtin_options_type")

BUILTIN_CODES = {name: code for code, name in BUILTIN_OPCODE2NAME.items()}

_SAME = "{}Options"
# builtin operator -> options table (BuiltinOptions union member); None: no options.
_TABLE = """
ADD Add | AVERAGE_POOL_2D Pool2D | MAX_POOL_2D Pool2D | L2_POOL_2D Pool2D
CONCATENATION Concatenation | CONV_2D Conv2D | DEPTHWISE_CONV_2D DepthwiseConv2D
DEPTH_TO_SPACE DepthToSpace | DEQUANTIZE Dequantize | FULLY_CONNECTED FullyConnected
L2_NORMALIZATION L2Norm | LOCAL_RESPONSE_NORMALIZATION LocalResponseNormalization
LSH_PROJECTION LSHProjection | LSTM LSTM | MUL Mul | RESHAPE Reshape
RESIZE_BILINEAR ResizeBilinear | RNN RNN | SOFTMAX Softmax | SPACE_TO_DEPTH SpaceToDepth
SVDF SVDF | CONCAT_EMBEDDINGS ConcatEmbeddings | SKIP_GRAM SkipGram | CALL Call
EMBEDDING_LOOKUP_SPARSE EmbeddingLookupSparse | PAD Pad
UNIDIRECTIONAL_SEQUENCE_RNN SequenceRNN | GATHER Gather | BATCH_TO_SPACE_ND BatchToSpaceND
SPACE_TO_BATCH_ND SpaceToBatchND | TRANSPOSE Transpose | MEAN Reducer | SUM Reducer
REDUCE_PROD Reducer | REDUCE_MAX Reducer | REDUCE_MIN Reducer | REDUCE_ANY Reducer
REDUCE_ALL Reducer | SUB Sub | DIV Div | SQUEEZE Squeeze
UNIDIRECTIONAL_SEQUENCE_LSTM UnidirectionalSequenceLSTM | STRIDED_SLICE StridedSlice
BIDIRECTIONAL_SEQUENCE_RNN BidirectionalSequenceRNN | EXP Exp | TOPK_V2 TopKV2
SPLIT Split | LOG_SOFTMAX LogSoftmax | BIDIRECTIONAL_SEQUENCE_LSTM BidirectionalSequenceLSTM
CAST Cast | MAXIMUM MaximumMinimum | MINIMUM MaximumMinimum | ARG_MAX ArgMax
ARG_MIN ArgMin | LESS Less | NEG Neg | PADV2 PadV2 | GREATER Greater
GREATER_EQUAL GreaterEqual | LESS_EQUAL LessEqual | SELECT Select | SLICE Slice
TRANSPOSE_CONV TransposeConv | SPARSE_TO_DENSE SparseToDense | TILE Tile
EXPAND_DIMS ExpandDims | EQUAL Equal | NOT_EQUAL NotEqual | SHAPE Shape | POW Pow
FAKE_QUANT FakeQuant | PACK Pack | LOGICAL_OR LogicalOr | ONE_HOT OneHot
LOGICAL_AND LogicalAnd | LOGICAL_NOT LogicalNot | UNPACK Unpack | FLOOR_DIV FloorDiv
SQUARE Square | ZEROS_LIKE ZerosLike | FILL Fill | FLOOR_MOD FloorMod | RANGE Range
RESIZE_NEAREST_NEIGHBOR ResizeNearestNeighbor | LEAKY_RELU LeakyRelu
SQUARED_DIFFERENCE SquaredDifference | MIRROR_PAD MirrorPad | ABS Abs | SPLIT_V SplitV
UNIQUE Unique | REVERSE_V2 ReverseV2 | ADD_N AddN | GATHER_ND GatherNd | COS Cos
WHERE Where | RANK Rank | REVERSE_SEQUENCE ReverseSequence | MATRIX_DIAG MatrixDiag
QUANTIZE Quantize | MATRIX_SET_DIAG MatrixSetDiag | HARD_SWISH HardSwish | IF If
WHILE While | NON_MAX_SUPPRESSION_V4 NonMaxSuppressionV4
NON_MAX_SUPPRESSION_V5 NonMaxSuppressionV5 | SCATTER_ND ScatterNd | SELECT_V2 SelectV2
DENSIFY Densify | SEGMENT_SUM SegmentSum | BATCH_MATMUL BatchMatMul | CUMSUM Cumsum
CALL_ONCE CallOnce | BROADCAST_TO BroadcastTo | RFFT2D Rfft2d | CONV_3D Conv3D
CONV_3D_TRANSPOSE Conv3D | HASHTABLE Hashtable | HASHTABLE_FIND HashtableFind
HASHTABLE_IMPORT HashtableImport | HASHTABLE_SIZE HashtableSize | VAR_HANDLE VarHandle
READ_VARIABLE ReadVariable | ASSIGN_VARIABLE AssignVariable
RANDOM_STANDARD_NORMAL Random | RANDOM_UNIFORM Random | MULTINOMIAL Random
BUCKETIZE Bucketize | GELU Gelu | DYNAMIC_UPDATE_SLICE DynamicUpdateSlice
UNSORTED_SEGMENT_PROD UnsortedSegmentProd | UNSORTED_SEGMENT_MAX UnsortedSegmentMax
UNSORTED_SEGMENT_SUM UnsortedSegmentSum | UNSORTED_SEGMENT_MIN UnsortedSegmentMin
ATAN2 ATan2 | SIGN Sign | BITCAST Bitcast | BITWISE_XOR BitwiseXor | RIGHT_SHIFT RightShift
DILATE Dilate | REDUCE_WINDOW ReduceWindow | STABLEHLO_COMPOSITE StableHLOComposite
"""


def _parse_table() -> dict[str, str]:
    out = {}
    for entry in re.split(r"\||\n", _TABLE):
        if entry.strip():
            op, short = entry.split()
            out[op] = _SAME.format(short)
    for code, op in BUILTIN_OPCODE2NAME.items():  # STABLEHLO_DOT_GENERAL -> StablehloDotGeneral
        if op.startswith("STABLEHLO_") and op not in out:
            camel = "Stablehlo" + "".join(p.title() for p in op[10:].split("_")) + "Options"
            if hasattr(BuiltinOptions2, camel):
                out[op] = camel
    return out


OP_OPTIONS: dict[str, str] = _parse_table()

# union member name <-> (union number, which union: 1 = builtin_options, 2 = builtin_options2)
UNION_TYPES: dict[str, tuple[int, int]] = {}
for _which, _enum in ((1, BuiltinOptions), (2, BuiltinOptions2)):
    for _k, _v in vars(_enum).items():
        if not _k.startswith("_") and _k != "NONE":
            UNION_TYPES.setdefault(_k, (_v, _which))
UNION_NAMES = {(v, w): k for k, (v, w) in UNION_TYPES.items()}
for _op, _opt in OP_OPTIONS.items():
    assert _opt in UNION_TYPES, f"{_op}: {_opt} is not an options table"

ENUM_FIELDS = {
    "Padding": tflite.Padding, "FusedActivationFunction": tflite.ActivationFunctionType,
    "WeightsFormat": tflite.FullyConnectedOptionsWeightsFormat,
    "KernelType": tflite.LSTMKernelType, "Type": tflite.LSHProjectionType,
    "Combiner": tflite.CombinerType, "Mode": tflite.MirrorPadMode,
    "QuantizedBiasType": tflite.TensorType, "InDataType": tflite.TensorType,
    "OutDataType": tflite.TensorType, "OutputType": tflite.TensorType,
    "OutType": tflite.TensorType, "IdxOutType": tflite.TensorType,
    "KeyDtype": tflite.TensorType, "ValueDtype": tflite.TensorType,
    "Algorithm": tflite.RngAlgorithm, "CompositeAttributesFormat": tflite.CustomOptionsFormat,
    "ComparisonDirection": tflite.StablehloComparisonDirection,
    "CompareType": tflite.StablehloComparisonType,
}


def enum_names(enum_cls) -> dict[int, str]:
    return {v: k for k, v in vars(enum_cls).items() if not k.startswith("_")}


_NUMPY_OF_FLAGS = {"Bool": np.bool_, "Int8": np.int8, "Uint8": np.uint8, "Int16": np.int16,
                   "Uint16": np.uint16, "Int32": np.int32, "Uint32": np.uint32,
                   "Int64": np.int64, "Uint64": np.uint64, "Float32": np.float32,
                   "Float64": np.float64}


@dataclass(frozen=True)
class Field:
    """One field of an options table, as the generated builder function declares it."""

    slot: int
    camel: str          # accessor name: StrideW
    attr: str           # attr name: stride_w
    kind: str           # scalar flag name (Int32, Bool, ...), "vector" or "string"
    default: object
    vector_elem: int = 0  # element size of a vector field


class _Recorder:
    """Stands in for flatbuffers.Builder and records what a generated function does."""

    def __init__(self):
        self.calls = []

    def __getattr__(self, name):
        return lambda *args: self.calls.append((name, args))


def snake(camel: str) -> str:
    return re.sub(r"(?<=[a-z0-9])([A-Z])|(?<=[A-Z])([A-Z])(?=[a-z])", r"_\1\2", camel).lower()


@functools.cache
def fields(options: str) -> tuple[Field, ...]:
    """The fields of options table ``options`` (``Conv2DOptions``), in slot order."""
    mod = importlib.import_module(f"tflite.{options}")
    out = []
    for fn in dir(mod):
        m = re.fullmatch(re.escape(options) + r"Add(\w+)", fn)
        if not m:
            continue
        camel = m.group(1)
        rec = _Recorder()
        getattr(mod, fn)(rec, 0)
        call, (slot, _, default) = rec.calls[0]
        kind = call[len("Prepend"):-len("Slot")]
        elem = 0
        if kind == "UOffsetTRelative":
            start = getattr(mod, f"{options}Start{camel}Vector", None)
            if start is None:
                kind = "string"
            else:
                rec = _Recorder()
                start(rec, 1)
                kind, elem = "vector", rec.calls[0][1][0]
        out.append(Field(slot, camel, snake(camel), kind, default, elem))
    return tuple(sorted(out, key=lambda f: f.slot))


def attr_names(options: str | None) -> list[str]:
    return [f.attr for f in fields(options)] if options else []


def _vector_dtype(options: str, f: Field) -> np.dtype:
    """Element type of a vector field, read from the generated AsNumpy accessor."""
    src = getattr(getattr(tflite, options), f.camel + "AsNumpy")
    code = src.__code__.co_names
    for flag in code:
        if flag.endswith("Flags") and flag[:-5] in _NUMPY_OF_FLAGS:
            return np.dtype(_NUMPY_OF_FLAGS[flag[:-5]])
    return np.dtype({1: np.uint8, 4: np.int32, 8: np.int64}[f.vector_elem])


def read_options(options: str, table, check_vector) -> dict:
    """Attrs from an options table (a ``flatbuffers.table.Table``).

    ``check_vector(tab, vtable_offset, elem_size, what)`` validates a vector before
    it is read (the file is untrusted).
    """
    obj = getattr(tflite, options)()
    obj.Init(table.Bytes, table.Pos)
    attrs = {}
    for f in fields(options):
        if f.kind in ("vector", "string") and not obj._tab.Offset(4 + 2 * f.slot):
            continue  # absent differs from empty: keep it absent
        if f.kind == "vector":
            n = check_vector(obj._tab, 4 + 2 * f.slot, f.vector_elem, f"{options}.{f.attr}")
            dt = _vector_dtype(options, f)
            arr = obj._tab.GetVectorAsNumpy(getattr(flatbuffers.number_types,
                                                    _flags_name(dt)), 4 + 2 * f.slot) \
                if n else np.zeros(0, dt)
            if dt == np.uint8:
                attrs[f.attr] = bytes(np.asarray(arr, np.uint8))
            elif dt == np.bool_:
                attrs[f.attr] = [bool(x) for x in arr]
            else:
                attrs[f.attr] = [int(x) for x in arr]
        elif f.kind == "string":
            check_vector(obj._tab, 4 + 2 * f.slot, 1, f"{options}.{f.attr}")
            s = getattr(obj, f.camel)()
            attrs[f.attr] = s.decode("utf-8") if s is not None else ""
        else:
            v = getattr(obj, f.camel)()
            if f.kind == "Bool":
                v = bool(v)
            elif f.kind.startswith("Float"):
                v = float(v)
            else:
                v = int(v)
                enum = ENUM_FIELDS.get(f.camel)
                if enum is not None:
                    v = enum_names(enum).get(v, v)
            attrs[f.attr] = v
    return attrs


def _flags_name(dt: np.dtype) -> str:
    for name, t in _NUMPY_OF_FLAGS.items():
        if np.dtype(t) == dt:
            return name + "Flags"
    raise ValueError(dt)


def write_options(builder, options: str, attrs: dict) -> int:
    """Build options table ``options`` from ``attrs``; returns its offset."""
    mod = importlib.import_module(f"tflite.{options}")
    offsets = {}
    for f in fields(options):  # vectors and strings go before the table starts
        if f.attr not in attrs:
            continue
        v = attrs[f.attr]
        if f.kind == "string":
            offsets[f.attr] = builder.CreateString(str(v))
        elif f.kind == "vector":
            dt = _vector_dtype(options, f)
            arr = np.frombuffer(v, np.uint8) if isinstance(v, bytes) else np.asarray(v, dt)
            offsets[f.attr] = builder.CreateNumpyVector(arr.astype(dt).reshape(-1))
    getattr(mod, f"{options}Start")(builder)
    for f in fields(options):
        if f.attr not in attrs:
            continue
        v = offsets.get(f.attr, attrs[f.attr])
        if isinstance(v, str) and f.kind not in ("string", "vector"):
            enum = ENUM_FIELDS.get(f.camel)
            if enum is None or not hasattr(enum, v):
                raise ValueError(f"{f.attr}={v!r} is not a value of {options}.{f.attr}")
            v = getattr(enum, v)
        getattr(mod, f"{options}Add{f.camel}")(builder, v)
    return getattr(mod, f"{options}End")(builder)
