"""Emit a TFLM project folder: the planned ``.tflite``, its C array, resolver, arena size, main.

Files (``emit(graph, out_dir, report)``):

* ``model.tflite``: the graph in the TFLite op set (ONNX graphs are lowered first), its
  operators in the optimised order, carrying the optimised SRAM plan as the
  ``OfflineMemoryAllocation`` metadata that TFLM's GreedyMemoryPlanner reads
  (:mod:`tinyir.passes.memory.offline`).  The stock file-order plan is kept instead when
  it is not larger.
* ``model_data.h`` / ``model_data.cc``: the same bytes as ``alignas(16) const unsigned
  char g_model_data[]`` plus ``g_model_data_len`` (TFLM reads weights in place, so the
  array must be 16-byte aligned).
* ``op_resolver.h``: ``tflite::MicroMutableOpResolver<N>`` registering exactly the distinct
  operators of the model with TFLM's own ``AddXxx()`` method names (:data:`RESOLVER_METHODS`).
* ``model_config.h``: ``kTensorArenaSize``, the memory planner's TFLM-exact minimum arena
  for the written file (:func:`tinyir.passes.memory.predict_tflm_arena`, exact to the
  16-byte alignment step).  When the ``tflite-micro`` wheel is installed the figure is
  confirmed in child processes (the wheel can crash on a too-small arena): it must run at
  ``kTensorArenaSize`` and fail at ``kTensorArenaSize - 16``; a prediction that is one step
  off is corrected and the README says so.
* ``main.cc``: an example that sets up the interpreter, fills the input, invokes and prints
  the output; ``README.md``: how to build it and what RAM and flash it needs.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tinyir.backends.tflm.runner import ALIGN, have_tflite_micro, min_arena, runs_in_tflm
from tinyir.errors import UnsupportedError
from tinyir.graph import Graph

#: TFLite builtin -> ``MicroMutableOpResolver`` method
#: (tensorflow/tflite-micro: tensorflow/lite/micro/micro_mutable_op_resolver.h).
RESOLVER_METHODS = {
    "ABS": "AddAbs", "ADD": "AddAdd", "ADD_N": "AddAddN", "ARG_MAX": "AddArgMax",
    "ARG_MIN": "AddArgMin", "ASSIGN_VARIABLE": "AddAssignVariable",
    "AVERAGE_POOL_2D": "AddAveragePool2D", "BATCH_MATMUL": "AddBatchMatMul",
    "BATCH_TO_SPACE_ND": "AddBatchToSpaceNd", "BROADCAST_ARGS": "AddBroadcastArgs",
    "BROADCAST_TO": "AddBroadcastTo", "CALL_ONCE": "AddCallOnce", "CAST": "AddCast",
    "CEIL": "AddCeil", "CONCATENATION": "AddConcatenation", "CONV_2D": "AddConv2D",
    "COS": "AddCos", "CUMSUM": "AddCumSum", "DEPTH_TO_SPACE": "AddDepthToSpace",
    "DEPTHWISE_CONV_2D": "AddDepthwiseConv2D", "DEQUANTIZE": "AddDequantize",
    "DIV": "AddDiv", "DYNAMIC_UPDATE_SLICE": "AddDynamicUpdateSlice", "ELU": "AddElu",
    "EMBEDDING_LOOKUP": "AddEmbeddingLookup", "EQUAL": "AddEqual", "EXP": "AddExp",
    "EXPAND_DIMS": "AddExpandDims", "FILL": "AddFill", "FLOOR": "AddFloor",
    "FLOOR_DIV": "AddFloorDiv", "FLOOR_MOD": "AddFloorMod",
    "FULLY_CONNECTED": "AddFullyConnected", "GATHER": "AddGather",
    "GATHER_ND": "AddGatherNd", "GREATER": "AddGreater", "GREATER_EQUAL": "AddGreaterEqual",
    "HARD_SWISH": "AddHardSwish", "IF": "AddIf", "L2_NORMALIZATION": "AddL2Normalization",
    "L2_POOL_2D": "AddL2Pool2D", "LEAKY_RELU": "AddLeakyRelu", "LESS": "AddLess",
    "LESS_EQUAL": "AddLessEqual", "LOG": "AddLog", "LOGICAL_AND": "AddLogicalAnd",
    "LOGICAL_NOT": "AddLogicalNot", "LOGICAL_OR": "AddLogicalOr", "LOGISTIC": "AddLogistic",
    "LOG_SOFTMAX": "AddLogSoftmax", "MAXIMUM": "AddMaximum", "MAX_POOL_2D": "AddMaxPool2D",
    "MEAN": "AddMean", "MINIMUM": "AddMinimum", "MIRROR_PAD": "AddMirrorPad", "MUL": "AddMul",
    "NEG": "AddNeg", "NOT_EQUAL": "AddNotEqual", "PACK": "AddPack", "PAD": "AddPad",
    "PADV2": "AddPadV2", "PRELU": "AddPrelu", "QUANTIZE": "AddQuantize",
    "READ_VARIABLE": "AddReadVariable", "REDUCE_ALL": "AddReduceAll",
    "REDUCE_MAX": "AddReduceMax", "REDUCE_MIN": "AddReduceMin", "RELU": "AddRelu",
    "RELU6": "AddRelu6", "RESHAPE": "AddReshape", "RESIZE_BILINEAR": "AddResizeBilinear",
    "RESIZE_NEAREST_NEIGHBOR": "AddResizeNearestNeighbor", "REVERSE_V2": "AddReverseV2",
    "ROUND": "AddRound", "RSQRT": "AddRsqrt", "SELECT_V2": "AddSelectV2", "SHAPE": "AddShape",
    "SIN": "AddSin", "SLICE": "AddSlice", "SOFTMAX": "AddSoftmax",
    "SPACE_TO_BATCH_ND": "AddSpaceToBatchNd", "SPACE_TO_DEPTH": "AddSpaceToDepth",
    "SPLIT": "AddSplit", "SPLIT_V": "AddSplitV", "SQRT": "AddSqrt", "SQUARE": "AddSquare",
    "SQUARED_DIFFERENCE": "AddSquaredDifference", "SQUEEZE": "AddSqueeze",
    "STRIDED_SLICE": "AddStridedSlice", "SUB": "AddSub", "SUM": "AddSum", "SVDF": "AddSvdf",
    "TANH": "AddTanh", "TRANSPOSE": "AddTranspose", "TRANSPOSE_CONV": "AddTransposeConv",
    "UNIDIRECTIONAL_SEQUENCE_LSTM": "AddUnidirectionalSequenceLSTM", "UNPACK": "AddUnpack",
    "VAR_HANDLE": "AddVarHandle", "WHILE": "AddWhile", "ZEROS_LIKE": "AddZerosLike",
}
#: custom ops that the resolver registers by name
CUSTOM_METHODS = {"CIRCULAR_BUFFER": "AddCircularBuffer",
                  "TFLite_Detection_PostProcess": "AddDetectionPostprocess",
                  "ethos-u": "AddEthosU"}

_C_TYPES = {"i8": ("int8_t", "int8", "%d"), "u8": ("uint8_t", "uint8", "%u"),
            "i16": ("int16_t", "i16", "%d"), "i32": ("int32_t", "i32", "%ld"),
            "f32": ("float", "f", "%f")}


@dataclass(frozen=True)
class ArenaFigure:
    """``kTensorArenaSize`` and how it was obtained."""

    bytes: int
    predicted: int
    method: str           # "predicted", "confirmed", "corrected" or "bisected"
    mcu_estimate: int | None = None
    plan: str = ""        # "offline (optimised)" or "TFLM online (file order)"


# ---------------------------------------------------------------------------------------
# the pieces


def resolver_methods(graph: Graph) -> list[str]:
    """The ``AddXxx`` calls for the distinct operators of ``graph``, in first-use order."""
    out: list[str] = []
    subs = [graph] + list(graph.metadata.get("tflite.subgraphs", []))
    for g in subs:
        for _, n in g.walk():
            if n.op == "tfl.CUSTOM":
                code = n.attrs.get("custom_code", "")
                method = CUSTOM_METHODS.get(code)
                if method is None:
                    raise UnsupportedError(f"node {n.name}: TFLM has no resolver method for "
                                           f"custom op {code!r}")
            else:
                method = RESOLVER_METHODS.get(n.op_type) if n.dialect == "tfl" else None
                if method is None:
                    raise UnsupportedError(f"node {n.name}: TFLM cannot register {n.op}")
            if method not in out:
                out.append(method)
    return out


def planned_model(graph: Graph) -> tuple[Graph, int, int | None, str]:
    """(graph to write, predicted arena, 32-bit estimate, plan name) for ``graph``."""
    from tinyir.passes.memory import plan_memory, predict_tflm_arena
    from tinyir.passes.memory.offline import apply_plan, with_offline_plan

    try:
        report = plan_memory(graph, "tflm")
    except UnsupportedError:
        a = predict_tflm_arena(graph)
        return graph, a.min_arena, a.mcu_min_arena, "TFLM online (file order)"
    stock = report.tflm
    opt = predict_tflm_arena(*apply_plan(graph, report.optimized))
    if opt.min_arena <= stock.min_arena:
        return (with_offline_plan(graph, report.optimized), opt.min_arena, opt.mcu_min_arena,
                "offline (optimised order and offsets)")
    return graph, stock.min_arena, stock.mcu_min_arena, "TFLM online (file order)"


def confirm_arena(path: Path, predicted: int, max_steps: int = 4) -> tuple[int, str]:
    """The smallest 16-byte multiple that runs, searched from ``predicted``."""
    from concurrent.futures import ThreadPoolExecutor

    n = predicted
    with ThreadPoolExecutor(2) as pool:
        ok, below = pool.map(lambda a: runs_in_tflm(path, a), [n, n - ALIGN])
    if ok and not below:
        return n, "confirmed"
    if ok:          # too large: step down
        n -= ALIGN
        for _ in range(max_steps):
            if not runs_in_tflm(path, n - ALIGN):
                return n, "corrected"
            n -= ALIGN
    else:           # too small: step up
        for _ in range(max_steps):
            n += ALIGN
            if runs_in_tflm(path, n):
                return n, "corrected"
    return bisect_arena(path, predicted), "bisected"


def bisect_arena(path: Path, guess: int) -> int:
    """Smallest working arena by bisection at 16-byte granularity (tflite-micro needed)."""
    found = min_arena(path, guess, limit=1 << 30)
    if found is None:
        raise UnsupportedError(f"{path}: does not run in tflite-micro with any arena")
    return found


# ---------------------------------------------------------------------------------------
# the emitter


def emit(graph: Graph, out_dir: Path, report=None, *, confirm: bool = True) -> list[Path]:
    """Write the TFLM project for ``graph`` into ``out_dir``; returns the files written."""
    from tinyir.backends.lowering import lower_for
    from tinyir.formats.tflite_format import write_tflite_bytes

    _refuse_errors(report)
    lowered = lower_for("tflm", graph)
    g = lowered.graph
    foreign = sorted({n.op for _, n in g.walk() if n.dialect != "tfl"})
    if foreign:
        raise UnsupportedError(f"graph {graph.name}: cannot emit TFLM code, ops left unlowered: "
                               f"{', '.join(foreign)}")
    methods = resolver_methods(g)
    planned, predicted, mcu, plan_name = planned_model(g)
    data = write_tflite_bytes(planned)

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tfl = out / "model.tflite"
    tfl.write_bytes(data)
    arena, method = predicted, "predicted"
    if confirm and have_tflite_micro():
        arena, method = confirm_arena(tfl, predicted)
    fig = ArenaFigure(arena, predicted, method, mcu, plan_name)

    files = {
        "model_data.h": _model_data_h(),
        "model_data.cc": _model_data_cc(data),
        "op_resolver.h": _op_resolver_h(methods),
        "model_config.h": _model_config_h(planned, fig),
        "main.cc": _main_cc(planned),
        "README.md": _readme(planned, fig, methods, len(data), report),
    }
    written = [tfl]
    for name, text in files.items():
        p = out / name
        p.write_text(text)
        written.append(p)
    return written


def _refuse_errors(report) -> None:
    if report is None:
        return
    bad = [f for f in getattr(report, "errors", []) if f.category != "budget"]
    if bad:
        lines = "; ".join(f"{f.rule}: {f.message}" for f in bad[:10])
        raise UnsupportedError(f"model does not pass the tflm check ({len(bad)} finding(s)): "
                               f"{lines}")


def _model_data_h() -> str:
    return """// Generated by tinyir: the model flatbuffer as a C array.
#ifndef TINYIR_MODEL_DATA_H_
#define TINYIR_MODEL_DATA_H_

extern const unsigned char g_model_data[];
extern const unsigned int g_model_data_len;

#endif  // TINYIR_MODEL_DATA_H_
"""


def _model_data_cc(data: bytes) -> str:
    rows = []
    for i in range(0, len(data), 12):
        rows.append("    " + ", ".join(f"0x{b:02x}" for b in data[i:i + 12]) + ",")
    body = "\n".join(rows)
    return f"""// Generated by tinyir: model.tflite ({len(data)} bytes), 16-byte aligned because
// TFLM reads weights and the flatbuffer in place.
#include "model_data.h"

alignas(16) const unsigned char g_model_data[] = {{
{body}
}};
const unsigned int g_model_data_len = {len(data)};
"""


def _op_resolver_h(methods: list[str]) -> str:
    calls = "\n".join(f"    resolver.{m}();" for m in methods)
    return f"""// Generated by tinyir: a resolver registering exactly the model's {len(methods)} operator(s).
#ifndef TINYIR_OP_RESOLVER_H_
#define TINYIR_OP_RESOLVER_H_

#include "tensorflow/lite/micro/micro_mutable_op_resolver.h"

constexpr unsigned int kNumOps = {len(methods)};
using ModelOpResolver = tflite::MicroMutableOpResolver<kNumOps>;

// The resolver, registered once on first use.
inline ModelOpResolver& GetModelOpResolver() {{
  static ModelOpResolver resolver;
  static bool registered = false;
  if (!registered) {{
{calls}
    registered = true;
  }}
  return resolver;
}}

#endif  // TINYIR_OP_RESOLVER_H_
"""


def _model_config_h(g: Graph, fig: ArenaFigure) -> str:
    how = {"predicted": "predicted by tinyir's TFLM planner (exact to +-16 bytes; not run)",
           "confirmed": "predicted by tinyir's TFLM planner and confirmed in tflite-micro "
                        "(runs at this size, fails 16 bytes below)",
           "corrected": f"tinyir predicted {fig.predicted} B; tflite-micro needs exactly this "
                        "(runs at this size, fails 16 bytes below)",
           "bisected": "found by bisection in tflite-micro (16-byte steps)"}[fig.method]
    mcu = (f"// 32-bit MCU estimate (smaller pointer structs): {fig.mcu_estimate} bytes.\n"
           if fig.mcu_estimate else "")
    lines = []
    for i, v in enumerate(g.inputs):
        lines.append(f"constexpr int kInput{i}Elements = {_numel(v)};")
    for i, v in enumerate(g.outputs):
        lines.append(f"constexpr int kOutput{i}Elements = {_numel(v)};")
    return f"""// Generated by tinyir.
#ifndef TINYIR_MODEL_CONFIG_H_
#define TINYIR_MODEL_CONFIG_H_

#include <cstddef>

// Tensor arena for a 64-bit host build of TFLM, {how}.
// Memory plan: {fig.plan}.
{mcu}constexpr size_t kTensorArenaSize = {fig.bytes};

{chr(10).join(lines)}

#endif  // TINYIR_MODEL_CONFIG_H_
"""


def _numel(v) -> int:
    n = 1
    for d in v.type.shape:
        n *= int(d)
    return n


def _main_cc(g: Graph) -> str:
    fills, prints = [], []
    for i, v in enumerate(g.inputs):
        fills.append(f"  memset(interpreter.input({i})->data.raw, 0, interpreter.input({i})->bytes);")
    for i, v in enumerate(g.outputs):
        ctype, field, fmt = _C_TYPES.get(v.type.dtype.value, ("int8_t", "int8", "%d"))
        cast = "(long)" if field == "i32" else ("(double)" if field == "f" else "(int)")
        if field == "f":
            cast = "(double)"
        prints.append(f"""  {{
    const TfLiteTensor* out = interpreter.output({i});
    printf("output {i}:");
    for (int k = 0; k < kOutput{i}Elements; ++k) printf(" {fmt}", {cast}out->data.{field}[k]);
    printf("\\n");
  }}""")
    return f"""// Generated by tinyir: example that runs the model once on zero input.
#include <cstdint>
#include <cstdio>
#include <cstring>

#include "tensorflow/lite/micro/micro_interpreter.h"
#include "tensorflow/lite/schema/schema_generated.h"

#include "model_config.h"
#include "model_data.h"
#include "op_resolver.h"

namespace {{
alignas(16) uint8_t tensor_arena[kTensorArenaSize];
}}  // namespace

int main() {{
  const tflite::Model* model = tflite::GetModel(g_model_data);
  if (model->version() != TFLITE_SCHEMA_VERSION) {{
    printf("model schema %u is not %d\\n", (unsigned)model->version(), TFLITE_SCHEMA_VERSION);
    return 1;
  }}
  tflite::MicroInterpreter interpreter(model, GetModelOpResolver(), tensor_arena,
                                       kTensorArenaSize);
  if (interpreter.AllocateTensors() != kTfLiteOk) {{
    printf("AllocateTensors failed: arena of %u bytes too small?\\n", (unsigned)kTensorArenaSize);
    return 1;
  }}
{chr(10).join(fills)}
  if (interpreter.Invoke() != kTfLiteOk) {{
    printf("Invoke failed\\n");
    return 1;
  }}
{chr(10).join(prints)}
  printf("arena used: %u of %u bytes\\n", (unsigned)interpreter.arena_used_bytes(),
         (unsigned)kTensorArenaSize);
  return 0;
}}
"""


def _readme(g: Graph, fig: ArenaFigure, methods: list[str], n_bytes: int, report) -> str:
    how = {"predicted": "predicted by tinyir's TFLM arena model (exact to the 16-byte step); "
                        "tflite-micro was not available to confirm it",
           "confirmed": "predicted by tinyir and confirmed in the tflite-micro interpreter: the "
                        "model runs with this arena and fails with 16 bytes less",
           "corrected": f"tinyir predicted {fig.predicted} B; the tflite-micro interpreter "
                        "needs exactly this (runs at it, fails 16 bytes below)",
           "bisected": "found by bisection in the tflite-micro interpreter (16-byte steps); "
                       "tinyir's prediction was more than 4 steps off"}[fig.method]
    code = ""
    fp = getattr(report, "footprint", None)
    if fp is not None and getattr(fp, "code_bytes", None):
        code = f" plus about {fp.code_bytes} bytes of TFLM kernel code (tinyir's estimate)"
    ins = ", ".join(f"`{v.name}` {list(v.type.shape)} {v.type.dtype.value}" for v in g.inputs)
    outs = ", ".join(f"`{v.name}` {list(v.type.shape)} {v.type.dtype.value}" for v in g.outputs)
    mcu = (f" On a 32-bit MCU the arena is smaller (pointer-sized structs): about "
           f"{fig.mcu_estimate} bytes; keep {fig.bytes} unless you have measured it."
           if fig.mcu_estimate else "")
    return f"""# {g.name}: TensorFlow Lite Micro project (generated by tinyir)

| file | what |
| --- | --- |
| `model.tflite` | the model in the TFLite op set; memory plan: {fig.plan} |
| `model_data.h`, `model_data.cc` | the same bytes as `alignas(16) const unsigned char g_model_data[]` |
| `op_resolver.h` | `tflite::MicroMutableOpResolver<{len(methods)}>` with {", ".join(f"`{m}()`" for m in methods)} |
| `model_config.h` | `kTensorArenaSize = {fig.bytes}` |
| `main.cc` | example: interpreter, zero input, `Invoke()`, prints the output |

Inputs: {ins}. Outputs: {outs}.

## Memory

* **RAM**: `kTensorArenaSize` = **{fig.bytes} bytes** of tensor arena, {how}.{mcu}
  Add your stack and the interpreter object.
* **Flash**: {n_bytes} bytes of model data (`g_model_data`){code}.

## Build

Inside a tflite-micro checkout (or a project that already builds TFLM):

    cp model_data.h model_data.cc op_resolver.h model_config.h main.cc <your app>/
    # host build against the TFLM static library:
    make -f tensorflow/lite/micro/tools/make/Makefile microlite
    g++ -std=c++17 -I<tflite-micro> -I<tflite-micro>/tensorflow/lite/micro/tools/make/downloads/flatbuffers/include \\
        -I<tflite-micro>/tensorflow/lite/micro/tools/make/downloads/gemmlowp \\
        main.cc model_data.cc <gen>/lib/libtensorflow-microlite.a -o model_main

On a board, call the code of `main.cc` from your firmware and link the TFLM library
built for your target (`TARGET=cortex_m_generic TARGET_ARCH=...`). The arena was sized
on a 64-bit host build; the 32-bit figure above is an estimate.

{_plan_note(fig)}
"""


def _plan_note(fig: ArenaFigure) -> str:
    if fig.plan.startswith("offline"):
        return ("The offline memory plan in `model.tflite` (metadata `OfflineMemoryAllocation`) "
                "sets the arena layout;\nTFLM does not validate it, tinyir's `verify_plan` did.")
    return "TFLM plans the arena online (GreedyMemoryPlanner, file order)."
