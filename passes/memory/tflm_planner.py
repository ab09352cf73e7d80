"""TFLM-exact arena prediction: GreedyMemoryPlanner, the persistent tail and planning overheads.

**Head** (``greedy_offsets``) reproduces ``GreedyMemoryPlanner::CalculateOffsetsIfNeeded``
(tflite-micro 90b983c, memory_planner/greedy_memory_planner.cc) step for step: offline
buffers first in insertion order; online buffers copied to the end of the array in
*reverse* insertion order, then ``ReverseSortInPlace`` (a stable bubble sort, size
descending), so equal sizes go later-added first; the first buffer at offset 0 (or its
offline offset); every later one at the first gap, in address order, between buffers
that overlap it in time (closed intervals), else after the last of them.  The head is
``max(offset + size)``.

**Tail** (persistent section, 64-bit host build of the ``tflite-micro`` wheel)::

    tail = FIXED + 24*T + 64*N_ops + 64*n_io + 32*n_quantized_io + 8*n_io
         + sum_op [ sum(align16(a) for a in persistent(op)) + builtin(op) + 8*scratch(op) ]
         + sum(align16(variable tensor bytes))

``T`` counts every tensor of every subgraph (one TfLiteEvalTensor each), ``n_io`` the
model inputs and outputs (persistent TfLiteTensor, their quantization structs and the
pointer arrays).  ``persistent(op)`` lists the kernel's ``AllocatePersistentBuffer``
calls (OpData, per-channel multipliers and shifts, int16 softmax LUTs) and
``builtin(op)`` the parsed builtin-params struct; both tables were read from the kernel
sources and checked one operator at a time against the wheel's RecordingMicroAllocator.
Op types in neither the persistent table nor the measured no-allocation set are listed in
``TflmArena.unmodeled`` (counted as 0 B; ``tinyir check`` and ``tinyir memory`` say so).

**Minimum arena**: the steady state ``head + tail`` or, when larger, the transient peak of
``CommitStaticMemoryPlan`` (micro_allocator.cc), which holds at once the tail as it is
before the model's I/O tensors are made, the scratch-request array in the head, the
``AllocationInfo`` array and the planner's 40-byte-per-buffer scratch::

    transient = tail - io_structs + align16(16*(S + 12)) + 16 + align16(32*(T + S)) + 40*N

Both are rounded up to the 16-byte arena alignment.  The 32-bit MCU estimate swaps in
the 32-bit struct sizes (12 B eval tensors, 4 B pointers, 12 B scratch requests, 24 B
AllocationInfo); the head is the same on both.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from tinyir.errors import UnsupportedError
from tinyir.graph import Graph, Node

from tinyir.passes.memory.lifetimes import LiveRange, Lifetimes, align, live_ranges

ONLINE = -1
ALIGN = 16


# ---------------------------------------------------------------------------------------
# the planner itself

def greedy_offsets(ranges: Sequence[LiveRange],
                   offline: Sequence[int] | None = None) -> list[int]:
    """TFLM's GreedyMemoryPlanner: one offset per buffer, in the order given."""
    n = len(ranges)
    offline = list(offline) if offline is not None else [ONLINE] * n
    head_ids = [i for i in range(n) if offline[i] != ONLINE]
    tail_ids = [i for i in reversed(range(n)) if offline[i] == ONLINE]
    tail_ids = _reverse_sort(tail_ids, [ranges[i].size for i in tail_ids])
    ids = head_ids + tail_ids
    offsets = [offline[i] if offline[i] != ONLINE else -1 for i in range(n)]
    if not ids:
        return offsets
    placer = Placer(ranges)
    first = ids[0]
    if offsets[first] == -1:
        offsets[first] = 0
    placer.add(first, offsets[first])
    for b in ids[1:]:
        if offline[b] == ONLINE:
            offsets[b] = placer.fit(b)
        placer.add(b, offsets[b])
    return offsets


class Placer:
    """Placed buffers in address order (equal addresses: insertion order), vectorised.

    ``fit(i)`` scans the placed buffers that overlap buffer ``i`` in time (closed
    intervals) in address order, keeping ``cand`` = the end of the highest one seen
    (from 0): first fit returns the first ``cand`` with a gap of at least the buffer's
    size before the next one, best fit the smallest such gap (the first of equals),
    else the end of the last one -- the loop of TFLM's GreedyMemoryPlanner, as arrays.
    """

    def __init__(self, ranges: Sequence[LiveRange]):
        self.F = np.array([r.first for r in ranges], dtype=np.int64)
        self.L = np.array([r.last for r in ranges], dtype=np.int64)
        self.Z = np.array([r.size for r in ranges], dtype=np.int64)
        self.buf = np.zeros((4, len(ranges) + 1), dtype=np.int64)  # offset, first, last, size
        self.count = 0

    def add(self, i: int, offset: int) -> None:
        c, buf = self.count, self.buf
        if c == buf.shape[1]:
            self.buf = buf = np.concatenate([buf, np.zeros_like(buf)], axis=1)
        k = int(buf[0, :c].searchsorted(offset, side="right"))
        if k < c:
            buf[:, k + 1:c + 1] = buf[:, k:c].copy()
        buf[0, k], buf[1, k], buf[2, k], buf[3, k] = offset, self.F[i], self.L[i], self.Z[i]
        self.count = c + 1

    def fit(self, i: int, best: bool = False) -> int:
        pos, f, l, z = self.buf[:, :self.count]
        m = (f <= self.L[i]) & (l >= self.F[i])
        lo = pos[m]
        if not lo.size:
            return 0
        his = np.maximum.accumulate(lo + z[m])
        prev = np.empty_like(his)
        prev[0] = 0
        prev[1:] = his[:-1]
        np.maximum(prev, 0, out=prev)
        gap = lo - prev
        ok = gap >= self.Z[i]
        if not best:
            k = int(ok.argmax())
            return int(prev[k]) if ok[k] else max(int(his[-1]), 0)
        if not ok.any():
            return max(int(his[-1]), 0)
        return int(prev[int(np.where(ok, gap, np.iinfo(np.int64).max).argmin())])


def conflicts(ranges: Sequence[LiveRange]) -> list[list[int]]:
    """For each buffer, the buffers whose closed intervals [first, last] overlap it."""
    idx = sorted(range(len(ranges)), key=lambda i: ranges[i].first)
    out: list[list[int]] = [[] for _ in ranges]
    active: list[int] = []
    for i in idx:
        r = ranges[i]
        if active:
            f = r.first
            active = [j for j in active if ranges[j].last >= f]
        for j in active:
            out[i].append(j)
            out[j].append(i)
        active.append(i)
    return out


def _reverse_sort(ids: list[int], sizes: list[int]) -> list[int]:
    """ReverseSortInPlace: stable, size descending (a stable sort gives the same result)."""
    return [i for _, i in sorted(zip(sizes, ids), key=lambda p: -p[0])]


def head_size(ranges: Sequence[LiveRange], offsets: Sequence[int]) -> int:
    return max((o + r.size for r, o in zip(ranges, offsets)), default=0)


# ---------------------------------------------------------------------------------------
# per-kernel tables (reference kernels, 64-bit host build)

_CONV_LIKE = {"CONV_2D", "DEPTHWISE_CONV_2D", "TRANSPOSE_CONV"}
# one entry per AllocatePersistentBuffer call, in bytes (the OpData structs)
_PERSISTENT = {
    "FULLY_CONNECTED": [72], "CONV_2D": [80], "DEPTHWISE_CONV_2D": [80],
    "ADD": [60], "SUB": [60], "MUL": [36], "DIV": [28], "AVERAGE_POOL_2D": [32],
    "MAX_POOL_2D": [32], "SOFTMAX": [80], "STRIDED_SLICE": [84], "CONCATENATION": [80],
    "LOGISTIC": [16], "QUANTIZE": [32], "DEQUANTIZE": [32], "SVDF": [36],
    "UNIDIRECTIONAL_SEQUENCE_LSTM": [688], "PAD": [56], "MEAN": [44], "SUM": [44],
    "REDUCE_MAX": [44], "REDUCE_MIN": [44],
    # measured on single-op models lowered from ONNX (RecordingMicroAllocator,
    # 'Persistent buffer data': one more allocation of this many requested bytes)
    "RELU": [28], "PADV2": [56], "LEAKY_RELU": [24], "RELU6": [8], "TANH": [16],
    "PRELU": [28],
}
# ops measured (or read from the kernels) to make no persistent allocation of their own
_NO_PERSISTENT = {
    "RESHAPE", "TRANSPOSE", "SPLIT", "SPLIT_V", "MAXIMUM", "MINIMUM",
    "RESIZE_NEAREST_NEIGHBOR", "EXP", "SQRT", "CAST", "GATHER", "PACK", "UNPACK", "SQUEEZE",
    "TRANSPOSE_CONV", "LOG_SOFTMAX",
}
_CUSTOM_NO_PERSISTENT = {"SignalFftAutoScale", "SignalFilterBankSquareRoot"}
# builtin-params struct as allocated by the flatbuffer parser (plus padding)
_BUILTIN = {
    "FULLY_CONNECTED": 32, "CONV_2D": 28, "DEPTHWISE_CONV_2D": 28, "ADD": 8, "SUB": 8,
    "MUL": 4, "DIV": 4, "AVERAGE_POOL_2D": 40, "MAX_POOL_2D": 40, "RESHAPE": 36,
    "SOFTMAX": 4, "STRIDED_SLICE": 24, "CONCATENATION": 8, "SVDF": 16,
    "UNIDIRECTIONAL_SEQUENCE_LSTM": 16, "RESIZE_NEAREST_NEIGHBOR": 2, "MEAN": 1, "SUM": 1,
    "REDUCE_MAX": 1, "REDUCE_MIN": 1, "CAST": 8, "LEAKY_RELU": 4, "GATHER": 8, "SPLIT": 4,
    "PACK": 8, "UNPACK": 8, "SQUEEZE": 36, "TRANSPOSE_CONV": 20,
}
# TFLM Signal library custom ops (measured on tflm_audio_preprocessor's shapes)
_CUSTOM_PERSISTENT = {
    "SignalWindow": [8], "SignalRfft": [16, 2880], "SignalEnergy": [8],
    "SignalFilterBank": [16, 376], "SignalFilterBankSpectralSubtraction": [16, 200],
    "SignalPCAN": [4], "SignalFilterBankLog": [8],
}
FIXED_TAIL = 488


def _dtype_bytes(v) -> int:
    return max(v.type.dtype.bits, 8) // 8


def unmodeled_ops(graph: Graph) -> tuple[str, ...]:
    """Op types whose persistent (tail) allocations the tables do not know: the prediction
    counts 0 bytes for them, so it may be short by their OpData (typically 16-96 B each)."""
    out = set()
    for n in graph.nodes:
        op = n.op_type
        if op == "CUSTOM":
            code = n.attrs.get("custom_code", "")
            if code not in _CUSTOM_PERSISTENT and code not in _CUSTOM_NO_PERSISTENT:
                out.add(f"CUSTOM:{code}")
        elif op not in _PERSISTENT and op not in _NO_PERSISTENT:
            out.add(op)
    return tuple(sorted(out))


def persistent_allocations(node: Node) -> list[int]:
    """Bytes of each persistent (tail) allocation the kernel makes in Init/Prepare."""
    op = node.op_type
    if op == "CUSTOM":
        return list(_CUSTOM_PERSISTENT.get(node.attrs.get("custom_code", ""), []))
    out = list(_PERSISTENT.get(op, []))
    if op in _CONV_LIKE:
        c_out = int(node.outputs[0].type.shape[-1])
        out += [4 * c_out, 4 * c_out]  # per-channel output multiplier and shift
    if op == "SOFTMAX" and node.inputs[0].type.dtype.bits == 16:
        out += [1026, 1026]            # exp and 1/(1+x) lookup tables, 513 int16 each
    return out


def scratch_requests(node: Node) -> list[int]:
    """Bytes of each ``RequestScratchBufferInArena`` call (reference kernels)."""
    op = node.op_type
    ins = node.inputs
    if op in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED") and len(ins) > 1 \
            and ins[1] is not None and ins[1].type.dtype.bits == 4:
        return [ins[1].type.numel]     # unpacked int4 weights
    if op in ("MEAN", "SUM"):
        out = []
        if ins[0].type.dtype.bits in (8, 16) and ins[0].type.dtype.is_int:
            out.append(4 * node.outputs[0].type.numel)
        return out + [4 * len(ins[0].type.shape), 4 * ins[1].type.numel]
    if op in ("REDUCE_MAX", "REDUCE_MIN", "REDUCE_ALL"):
        return [4 * len(ins[0].type.shape), 4 * ins[1].type.numel]
    if op == "SVDF":
        batch, units = node.outputs[0].type.shape[0], node.outputs[0].type.shape[-1]
        filters = ins[1].type.shape[0]
        if ins[0].type.dtype.is_float:
            return [4 * batch * filters]
        return [4 * batch * filters, 4 * batch * units]
    if op == "UNIDIRECTIONAL_SEQUENCE_LSTM" and len(ins) > 19 and ins[19] is not None:
        cell = ins[19]                 # cell state [batch, n_cell]: four gate buffers of it
        return [cell.type.numel * _dtype_bytes(cell)] * 4
    if op == "TRANSPOSE_CONV":
        bits = ins[2].type.dtype.bits if len(ins) > 2 else 32
        if ins[2].type.dtype.is_int:
            return [(4 if bits == 8 else 8) * node.outputs[0].type.numel]
        return []
    if op == "CUSTOM" and node.attrs.get("custom_code") == "SignalRfft":
        fft_length = (int(node.outputs[0].type.shape[-1]) // 2 - 1) * 2
        return [fft_length * _dtype_bytes(ins[0])]
    return []


# ---------------------------------------------------------------------------------------
# the prediction


@dataclass(frozen=True)
class TflmArena:
    """Predicted TFLM arena for one model (bytes); ``min_arena`` is the host (64-bit) figure."""

    head: int
    tail: int
    transient: int
    min_arena: int
    mcu_tail: int
    mcu_min_arena: int
    n_tensors: int
    n_planned: int
    n_scratch: int
    lifetimes: Lifetimes
    offsets: tuple[int, ...]
    unmodeled: tuple[str, ...] = ()   # op types missing from the tail tables (counted as 0)

    @property
    def used(self) -> int:
        return self.head + self.tail

    @property
    def recommended(self) -> int:
        """``min_arena`` plus one alignment step: the tail model is exact to +-16 bytes."""
        return self.min_arena + ALIGN


def _subgraphs(graph: Graph) -> list[Graph]:
    return [graph] + list(graph.metadata.get("tflite.subgraphs", []))


def tensor_count(g: Graph) -> int:
    """Tensors the exporter writes for one subgraph: inputs, constants, results, outputs."""
    names = {v.name for v in g.inputs} | {v.name for v in g.constants}
    names |= {o.name for n in g.nodes for o in n.outputs} | {v.name for v in g.outputs}
    return len(names)


def predict_tflm_arena(graph: Graph, order: Sequence[Node] | None = None,
                       offline: dict[str, int] | None = None) -> TflmArena:
    """The smallest arena the tflite-micro interpreter accepts for ``graph`` run in ``order``.

    ``offline`` maps value names to offline-planned offsets (OfflineMemoryAllocation);
    values it maps share those offsets, the rest (and every scratch buffer) are planned
    online around them, as TFLM does.
    """
    subs = _subgraphs(graph)
    if len(subs) > 1 or any(n.subgraphs() for n in graph.nodes):
        raise UnsupportedError(f"graph {graph.name}: TFLM arena prediction does not model "
                               "control-flow subgraphs yet")
    foreign = sorted({n.op for n in graph.nodes if n.dialect != "tfl"})
    if foreign:
        raise UnsupportedError(f"graph {graph.name}: TFLM arena prediction needs tfl ops "
                               f"(found {', '.join(foreign[:3])}); lower the graph first")
    lt = live_ranges(graph, order, "tflm")
    ranges = list(lt.ranges)
    if offline:
        # every value of an offline buffer is its own TFLM tensor with the same offset
        split = []
        off = []
        for r in ranges:
            if r.kind == "tensor" and r.values[0] in offline:
                split.append(r)
                off.append(offline[r.values[0]])
            else:
                split.append(r)
                off.append(ONLINE)
        ranges, offline_list = split, off
    else:
        offline_list = None
    offsets = greedy_offsets(ranges, offline_list)
    head = head_size(ranges, offsets)
    T = sum(tensor_count(g) for g in subs)
    nodes = graph.nodes
    S = sum(len(scratch_requests(n)) for n in nodes)
    N = len(ranges)
    io = list({v.name: v for v in list(graph.inputs) + list(graph.outputs)}.values())
    n_in, n_out = len(graph.inputs), len(graph.outputs)
    n_qio = sum(1 for v in io if v.type.quant is not None)
    variables = [v for v in graph.constants
                 if graph.metadata.get(f"tflite.tensor.{v.name}.is_variable")
                 and not (offline and v.name in offline)]
    var_bytes = sum(align(v.type.nbytes or 0, ALIGN) for v in variables)

    def tail_for(eval_tensor: int, node_reg: int, tensor: int, ptr: int, handle: int) -> int:
        ops = sum(sum(align(a, ALIGN) for a in persistent_allocations(n))
                  + _BUILTIN.get(n.op_type, 0) + handle * len(scratch_requests(n))
                  for n in nodes)
        return (FIXED_TAIL + eval_tensor * T + node_reg * len(nodes) + tensor * len(io)
                + 32 * n_qio + align(ptr * n_in, ALIGN) + align(ptr * n_out, ALIGN)
                + ops + var_bytes)

    def minimum(tail: int, tensor: int, ptr: int, request: int, info: int) -> tuple[int, int]:
        io_structs = tensor * len(io) + 32 * n_qio + align(ptr * n_in, ALIGN) \
            + align(ptr * n_out, ALIGN)
        transient = (tail - io_structs + align(request * (S + 12), ALIGN) + 16
                     + align(info * (T + S), ALIGN) + 40 * N)
        return transient, align(max(head + tail, transient), ALIGN)

    tail = tail_for(24, 64, 64, 8, 8)
    transient, min_arena = minimum(tail, 64, 8, 16, 32)
    mcu_tail = tail_for(12, 40, 40, 4, 4)
    _, mcu_min = minimum(mcu_tail, 40, 4, 12, 24)
    return TflmArena(head, tail, transient, min_arena, mcu_tail, mcu_min, T,
                     sum(1 for r in ranges if r.kind == "tensor"), S, lt, tuple(offsets),
                     unmodeled_ops(graph))
