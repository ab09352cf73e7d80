"""Reference C backend: a TFLite-op-set graph -> portable C99 sources.

``emit(graph, out_dir)`` writes ``model.h`` / ``model.c`` (weights as ``static const``
arrays, the operator sequence calling the kernels at the planned arena offsets),
``kernels.c/.h`` (copied from ``runtime/``), the host and QEMU runners, a linker script,
a ``Makefile`` and a ``README.md``.

Arithmetic: every requantisation constant (per-channel multiplier/shift, activation
clamp, ADD's input/output multipliers, softmax scaling) is computed here with
:mod:`tinyir.interp.tfl_quant`, the same functions the numpy reference kernels use, and
emitted as integers, so the C code does no float math for int8 operators and is
bit-exact with TFLM.  Int8 element-wise functions (LOGISTIC, TANH, int8->int8
QUANTIZE, DEQUANTIZE) are tabulated by running the reference kernel on all 256 inputs.

Memory: :func:`tinyir.passes.memory.plan_memory` with the C backend's rules (views share
their input, element-wise ops and depthwise convolutions may overwrite an input read
last; a depthwise convolution gets a scratch buffer in the arena for that case) gives
the operator order and one offset per buffer in one static arena.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tinyir.errors import UnsupportedError
from tinyir.graph import Graph, Node, Value
from tinyir.interp import tfl_quant as fx
from tinyir.interp.core import KERNELS
from tinyir.interp.tfl_common import qparams, qscales, quant_act_range

CHECK_TABLE = "tflm"  # `tinyir check` table: the TFLite op set with TFLM arithmetic
RUNTIME = Path(__file__).parent / "runtime"
RUNTIME_FILES = ("kernels.c", "kernels.h", "main_host.c", "main_qemu.c", "startup_m4.c",
                 "mps2_an386.ld", "Makefile")

_VIEWS = frozenset({"tfl.RESHAPE", "tfl.SQUEEZE", "tfl.EXPAND_DIMS"})
# ops whose C kernel may write its output over an input it reads last (same position)
_INPLACE = frozenset({"tfl.ADD", "tfl.MUL", "tfl.LOGISTIC", "tfl.TANH", "tfl.QUANTIZE"})
_LUT_OPS = ("LOGISTIC", "TANH")
COVERED = frozenset({"tfl.CONV_2D", "tfl.DEPTHWISE_CONV_2D", "tfl.FULLY_CONNECTED", "tfl.ADD",
                     "tfl.MUL", "tfl.AVERAGE_POOL_2D", "tfl.MAX_POOL_2D", "tfl.MEAN",
                     "tfl.PAD", "tfl.PADV2", "tfl.SOFTMAX", "tfl.LOGISTIC", "tfl.TANH",
                     "tfl.CONCATENATION", "tfl.QUANTIZE", "tfl.DEQUANTIZE", "tfl.TRANSPOSE"}
                    | _VIEWS)
STACK_NOTE = ("plus the runner's stack (kernels keep a few dozen scalars and no arrays "
              "on the stack)")


# ---- what the kernels cover ------------------------------------------------------------


def _dt(v: Value | None) -> str:
    return "none" if v is None else v.type.dtype.numpy.name


def _static(v: Value) -> bool:
    s = v.type.shape
    return s is not None and all(isinstance(d, int) and d >= 0 for d in s)


def uncovered(graph: Graph) -> list[tuple[Node, str]]:
    """(node, reason) for every operator the C kernels cannot run."""
    bad = []
    for n in graph.nodes:
        why = _why_not(n)
        if why:
            bad.append((n, why))
    return bad


def _why_not(n: Node) -> str | None:
    if n.op not in COVERED:
        return f"{n.op} has no C kernel"
    vals = [v for v in list(n.inputs) + list(n.outputs) if v is not None]
    if not all(_static(v) for v in vals):
        return "dynamic shape"
    if any(len(v.type.shape) > 4 for v in vals if not v.is_const or v is n.inputs[0]):
        return "rank above 4"
    x, y = n.inputs[0], n.outputs[0]
    kind = n.op_type
    if kind in _VIEWS_T or kind in ("PAD", "PADV2", "TRANSPOSE", "CONCATENATION"):
        if kind == "PADV2" and n.inputs[2] is None:
            return "PADV2 without a value"
        return None
    if kind == "QUANTIZE":
        ok = (_dt(x), _dt(y)) in (("int8", "int8"), ("float32", "int8"))
        return None if ok else f"QUANTIZE {_dt(x)}->{_dt(y)} has no C kernel"
    if kind == "DEQUANTIZE":
        ok = _dt(x) == "int8" and _dt(y) == "float32" and not x.type.quant.per_axis
        return None if ok else f"DEQUANTIZE {_dt(x)}->{_dt(y)} has no C kernel"
    if _dt(x) != "int8" or _dt(y) != "int8":
        return f"{kind} on {_dt(x)}->{_dt(y)}: only int8 kernels"
    if kind in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED"):
        w = n.inputs[1]
        b = n.inputs[2] if len(n.inputs) > 2 else None
        if not w.is_const or _dt(w) != "int8" or (b is not None and (not b.is_const
                                                                    or _dt(b) != "int32")):
            return f"{kind} needs const int8 weights and int32 bias"
    if kind in ("ADD", "MUL") and (n.inputs[1] is None or _dt(n.inputs[1]) != "int8"):
        return f"{kind} needs two int8 operands"
    return None


_VIEWS_T = {"RESHAPE", "SQUEEZE", "EXPAND_DIMS"}


# ---- memory plan -----------------------------------------------------------------------


def _dw_scratch(n: Node) -> list[int]:
    """Depthwise convolutions may run in place: one input channel (or the whole input for
    a depth multiplier above 1) is staged in a scratch buffer."""
    if n.op != "tfl.DEPTHWISE_CONV_2D":
        return []
    shape = n.inputs[0].type.shape
    _, kh, kw, cout = n.inputs[1].type.shape
    if cout == shape[3] and shape[0] == 1:
        return [int(shape[1] * shape[2])]
    return [int(np.prod(shape))]


def c_rules():
    from tinyir.passes.memory.lifetimes import BackendRules

    return BackendRules("c", 16, _dw_scratch, _VIEWS, _INPLACE, True)


def plan(graph: Graph, budget_s: float = 1.0):
    """The optimised :class:`MemoryPlan` for the C backend (order, offsets, arena)."""
    from tinyir.passes.memory import plan_memory

    return plan_memory(graph, c_rules(), inplace=True, reorder=True,
                       budget_s=budget_s).optimized


# ---- small helpers ---------------------------------------------------------------------

_CTYPE = {"int8": "int8_t", "uint8": "uint8_t", "int16": "int16_t", "int32": "int32_t",
          "float32": "float", "int64": "int64_t", "bool": "uint8_t"}


def _shape4(shape) -> list[int]:
    s = [int(d) for d in shape]
    return [1] * (4 - len(s)) + s


def _arr(values, per_line: int = 24) -> str:
    vals = [str(int(v)) for v in np.ravel(values)]
    if not vals:
        vals = ["0"]
    lines = [", ".join(vals[i:i + per_line]) for i in range(0, len(vals), per_line)]
    return "{\n  " + ",\n  ".join(lines) + "\n}"


def _farr(values) -> str:
    vals = [repr(float(np.float32(v))) + "f" if np.isfinite(v) else "0.0f"
            for v in np.ravel(values)]
    vals = [v.replace("inf", "INFINITY") for v in vals]
    return "{\n  " + ",\n  ".join(", ".join(vals[i:i + 8]) for i in range(0, len(vals), 8)) \
        + "\n}"


def _c_ident(name: str) -> str:
    out = "".join(c if c.isalnum() else "_" for c in name)
    return out if out and not out[0].isdigit() else "_" + out


def _multipliers(s_in: float, w_v: Value, s_out: float, n: int, per_tensor_fc: bool):
    """TFLM's per-channel (or FC per-tensor) multipliers, as ``_requantize`` computes them."""
    if per_tensor_fc:
        f32 = np.float32
        m, s = fx.quantize_multiplier(float(f32(f32(s_in) * f32(qscales(w_v)[0]))) / s_out)
        return np.full(n, m, np.int64), np.full(n, s, np.int64)
    ws = qscales(w_v).astype(np.float64)
    ws = np.broadcast_to(ws, (n,)) if ws.size == 1 else ws
    return fx.quantize_multipliers(float(s_in) * ws / float(s_out))


def _out_size(padding: str, size: int, filt: int, stride: int, dil: int) -> int:
    eff = (filt - 1) * dil + 1
    return (size + stride - 1) // stride if padding == "SAME" else (size + stride - eff) // stride


# ---- the emitter -----------------------------------------------------------------------


@dataclass
class Emitted:
    """What :func:`emit` wrote: the folder, arena size, weight bytes, plan."""

    out_dir: Path
    arena_bytes: int
    const_bytes: int
    plan: object


class _Writer:
    def __init__(self, graph: Graph, mplan):
        self.g = graph
        self.plan = mplan
        self.offsets = mplan.value_offsets()
        self.scratch = {name.split("/scratch")[0]: off
                        for name, off, _size, _step in mplan.scratch_offsets()}
        self.decls: list[str] = []
        self.body: list[str] = []
        self.consts: dict[str, str] = {}
        self.const_bytes = 0
        self.k = 0

    def uid(self, base: str) -> str:
        self.k += 1
        return f"{base}{self.k}"

    def const(self, ctype: str, values, base: str, floats: bool = False) -> str:
        name = self.uid(base)
        data = _farr(values) if floats else _arr(values)
        n = max(1, int(np.size(values)))
        self.decls.append(f"static const {ctype} {name}[{n}] TIR_ALIGN = {data};")
        self.const_bytes += n * {"int8_t": 1, "uint8_t": 1, "int16_t": 2, "float": 4}.get(ctype, 4)
        return name

    def ptr(self, v: Value, const_ok: bool = True) -> str:
        ctype = _CTYPE[_dt(v)]
        if v.is_const:
            if v.name not in self.consts:
                vals = v.const
                self.consts[v.name] = self.const(ctype, vals, "c_",
                                                 floats=vals.dtype == np.float32)
            return f"({'const ' if const_ok else ''}{ctype} *){self.consts[v.name]}"
        return f"({ctype} *)(arena + {self.offsets[v.name]})"

    def conv_params(self, n: Node, kh: int, kw: int, depth_mult: int, pool: bool = False) -> str:
        x, y = n.inputs[0], n.outputs[0]
        _, h, w, c = _shape4(x.type.shape)
        b, oh, ow, oc = _shape4(y.type.shape)
        a = n.attrs
        pad = a.get("padding", "SAME")
        sh, sw = int(a.get("stride_h", 1)), int(a.get("stride_w", 1))
        dh, dw = int(a.get("dilation_h_factor", 1)), int(a.get("dilation_w_factor", 1))
        if pool:
            dh = dw = 1
        pt = pl = 0
        if pad == "SAME":
            pt = max(0, (oh - 1) * sh + (kh - 1) * dh + 1 - h) // 2
            pl = max(0, (ow - 1) * sw + (kw - 1) * dw + 1 - w) // 2
        _, zi = qparams(x)
        _, zo = qparams(y)
        lo, hi = quant_act_range(n, y)
        name = self.uid("p_")
        self.decls.append(
            f"static const tir_conv_params {name} = {{{h}, {w}, {c}, {oh}, {ow}, {oc}, {b}, "
            f"{kh}, {kw}, {sh}, {sw}, {dh}, {dw}, {pt}, {pl}, {zi}, {zo}, {lo}, {hi}, "
            f"{depth_mult}}};")
        return name

    def requant(self, n: Node, nout: int, per_tensor_fc: bool = False) -> tuple[str, str]:
        s_in, _ = qparams(n.inputs[0])
        s_out, _ = qparams(n.outputs[0])
        m, s = _multipliers(s_in, n.inputs[1], s_out, nout, per_tensor_fc)
        return self.const("int32_t", m, "mult_"), self.const("int32_t", s, "shift_")

    def bias(self, n: Node) -> str:
        b = n.inputs[2] if len(n.inputs) > 2 else None
        return "0" if b is None else self.ptr(b)

    # ---- one statement per operator ----

    def node(self, n: Node) -> None:
        kind = n.op_type
        self.body.append(f"  /* {n.op} {n.name} */")
        getattr(self, "op_" + kind.lower())(n)

    def op_conv_2d(self, n):
        cout, kh, kw, cin_f = n.inputs[1].type.shape
        p = self.conv_params(n, kh, kw, cin_f)
        m, s = self.requant(n, cout)
        self.body.append(f"  tir_conv2d_s8(&{p}, {self.ptr(n.inputs[0])}, {self.ptr(n.inputs[1])}, "
                         f"{self.bias(n)}, {m}, {s}, {self.ptr(n.outputs[0])});")

    def op_depthwise_conv_2d(self, n):
        _, kh, kw, cout = n.inputs[1].type.shape
        mult = cout // _shape4(n.inputs[0].type.shape)[3]
        p = self.conv_params(n, kh, kw, mult)
        m, s = self.requant(n, cout)
        scratch = f"(int8_t *)(arena + {self.scratch[n.name]})" if n.name in self.scratch else "0"
        self.body.append(f"  tir_depthwise_s8(&{p}, {self.ptr(n.inputs[0])}, "
                         f"{self.ptr(n.inputs[1])}, {self.bias(n)}, {m}, {s}, "
                         f"{self.ptr(n.outputs[0])}, {scratch});")

    def op_fully_connected(self, n):
        x, w, y = n.inputs[0], n.inputs[1], n.outputs[0]
        units, depth = int(w.type.shape[0]), int(w.type.shape[-1])
        batches = int(np.prod(x.type.shape)) // depth
        m, s = self.requant(n, units, per_tensor_fc=qscales(w).size == 1)
        lo, hi = quant_act_range(n, y)
        self.body.append(
            f"  tir_fully_connected_s8({batches}, {depth}, {units}, {self.ptr(x)}, {self.ptr(w)}, "
            f"{self.bias(n)}, {qparams(x)[1]}, {qparams(y)[1]}, {m}, {s}, {lo}, {hi}, "
            f"{self.ptr(y)});")

    def _pool(self, n, fn):
        kh, kw = int(n.attrs.get("filter_height", 1)), int(n.attrs.get("filter_width", 1))
        p = self.conv_params(n, kh, kw, 1, pool=True)
        self.body.append(f"  {fn}(&{p}, {self.ptr(n.inputs[0])}, {self.ptr(n.outputs[0])});")

    def op_average_pool_2d(self, n):
        self._pool(n, "tir_avg_pool_s8")

    def op_max_pool_2d(self, n):
        self._pool(n, "tir_max_pool_s8")

    def _binary(self, n, fn, mul: bool):
        a, b, y = n.inputs[0], n.inputs[1], n.outputs[0]
        shape = _shape4(y.type.shape)

        def strides(v):
            s = _shape4(v.type.shape)
            st = [int(np.prod(s[k + 1:])) for k in range(4)]
            return [0 if s[k] == 1 and shape[k] != 1 else st[k] for k in range(4)]
        (s1, z1), (s2, z2), (so, zo) = qparams(a), qparams(b), qparams(y)
        lo, hi = quant_act_range(n, y)
        left, m1, e1, m2, e2 = 0, 0, 0, 0, 0
        if mul:
            mo, eo = fx.quantize_multiplier(s1 * s2 / so)
        else:  # ADD Prepare: inputs relative to twice the larger scale, left shift 20
            left = 20
            twice = 2.0 * max(s1, s2)
            m1, e1 = fx.quantize_multiplier(s1 / twice)
            m2, e2 = fx.quantize_multiplier(s2 / twice)
            mo, eo = fx.quantize_multiplier(twice / (float(1 << left) * so))
        p = self.uid("p_")
        br = lambda xs: "{" + ", ".join(str(v) for v in xs) + "}"  # noqa: E731
        self.decls.append(
            f"static const tir_binary_params {p} = {{{br(shape)}, {br(strides(a))}, "
            f"{br(strides(b))}, {z1}, {z2}, {zo}, {left}, {m1}, {e1}, {m2}, {e2}, {mo}, {eo}, "
            f"{lo}, {hi}}};")
        self.body.append(f"  {fn}(&{p}, {self.ptr(a)}, {self.ptr(b)}, {self.ptr(y)});")

    def op_add(self, n):
        self._binary(n, "tir_add_s8", mul=False)

    def op_mul(self, n):
        self._binary(n, "tir_mul_s8", mul=True)

    def op_softmax(self, n):
        x = n.inputs[0]
        beta = float(n.attrs.get("beta", 1.0))
        mult, shift = fx.preprocess_softmax_scaling(beta, qparams(x)[0], 5)
        diff_min = -fx.calculate_input_radius(5, shift)
        depth = int(x.type.shape[-1])
        rows = int(np.prod(x.type.shape)) // depth
        self.body.append(f"  tir_softmax_s8({rows}, {depth}, {mult}, {shift}, {diff_min}, "
                         f"{self.ptr(x)}, {self.ptr(n.outputs[0])});")

    def op_mean(self, n):
        x, y = n.inputs[0], n.outputs[0]
        shape = [int(d) for d in x.type.shape]
        axes = {int(a) % len(shape) for a in np.ravel(n.inputs[1].const)}
        pad = 4 - len(shape)
        reduced = [0] * pad + [1 if k in axes else 0 for k in range(len(shape))]
        (s_in, z_in), (s_out, z_out) = qparams(x), qparams(y)
        mult, shift = fx.quantize_multiplier(s_in / s_out)
        cnt = int(np.prod([shape[a] for a in axes]))
        s = min(cnt.bit_length() - 1, 32, 31 + shift)
        mult = (mult << s) // cnt
        shift -= s
        sh = self.const("int32_t", _shape4(shape), "shape_")
        red = self.const("int32_t", reduced, "axes_")
        self.body.append(f"  tir_mean_s8({sh}, {red}, {z_in}, {z_out}, {mult}, {shift}, "
                         f"{self.ptr(x)}, {self.ptr(y)});")

    def _view(self, n):
        x, y = n.inputs[0], n.outputs[0]
        if x.is_const or self.offsets.get(x.name) != self.offsets.get(y.name):
            self.body.append(f"  tir_copy({y.type.nbytes}, {self.ptr(x)}, {self.ptr(y)});")
        else:
            self.body.append("  /* in place: same buffer */")

    op_reshape = op_squeeze = op_expand_dims = _view

    def op_pad(self, n):
        x, y = n.inputs[0], n.outputs[0]
        pads = np.asarray(n.inputs[1].const).reshape(-1, 2)
        before = [0] * (4 - len(pads)) + [int(p) for p in pads[:, 0]]
        dtype = x.type.dtype.numpy
        if n.op_type == "PADV2":
            fill = np.asarray(n.inputs[2].const).astype(dtype).reshape(1)
        elif dtype == np.float32 or x.type.quant is None:
            fill = np.zeros(1, dtype)
        else:
            fill = np.array([qparams(y)[1]], dtype)
        fname = self.const("uint8_t", np.frombuffer(fill.tobytes(), np.uint8), "fill_")
        ish = self.const("int32_t", _shape4(x.type.shape), "shape_")
        bef = self.const("int32_t", before, "pad_")
        osh = self.const("int32_t", _shape4(y.type.shape), "shape_")
        self.body.append(f"  tir_pad({ish}, {bef}, {osh}, {dtype.itemsize}, {fname}, "
                         f"{self.ptr(x)}, {self.ptr(y)});")

    op_padv2 = op_pad

    def op_transpose(self, n):
        x, y = n.inputs[0], n.outputs[0]
        perm = [int(p) for p in np.ravel(n.inputs[1].const)]
        pad = 4 - len(perm)
        perm = list(range(pad)) + [p + pad for p in perm]
        s = _shape4(x.type.shape)
        st = [int(np.prod(s[k + 1:])) for k in range(4)]
        in_stride = [st[perm[k]] for k in range(4)]
        osh = self.const("int32_t", _shape4(y.type.shape), "shape_")
        ist = self.const("int32_t", in_stride, "stride_")
        self.body.append(f"  tir_transpose({osh}, {ist}, {x.type.dtype.numpy.itemsize}, "
                         f"{self.ptr(x)}, {self.ptr(y)});")

    def op_concatenation(self, n):
        y = n.outputs[0]
        xs = [v for v in n.inputs if v is not None]
        rank = len(y.type.shape)
        axis = int(n.attrs.get("axis", 0)) % rank
        outer = int(np.prod(y.type.shape[:axis]))
        item = y.type.dtype.numpy.itemsize
        chunks = [int(np.prod(v.type.shape[axis:])) * item for v in xs]
        ch = self.const("int32_t", chunks, "chunk_")
        ins = self.uid("ins_")
        self.body.append(f"  {{ const void *{ins}[{len(xs)}] = {{"
                         + ", ".join(self.ptr(v) for v in xs) + "};")
        self.body.append(f"    tir_concat({outer}, {len(xs)}, {ch}, {ins}, {self.ptr(y)}); }}")

    def _lut(self, n) -> np.ndarray:
        """The reference kernel applied to all 256 int8 inputs."""
        domain = np.arange(-128, 128, dtype=np.int8).reshape(1, 256)
        return KERNELS[n.op](n, [domain] + [None] * (len(n.inputs) - 1), None)[0].ravel()

    def op_logistic(self, n):
        lut = self.const("int8_t", self._lut(n), "lut_")
        self.body.append(f"  tir_lut_s8({n.inputs[0].type.numel}, {lut}, "
                         f"{self.ptr(n.inputs[0])}, {self.ptr(n.outputs[0])});")

    op_tanh = op_logistic

    def op_quantize(self, n):
        x, y = n.inputs[0], n.outputs[0]
        if _dt(x) == "int8":
            self.op_logistic(n)
            return
        so, zo = qparams(y)
        self.body.append(f"  tir_quantize_f32_s8({x.type.numel}, {float(np.float32(so))!r}f, "
                         f"{zo}, {self.ptr(x)}, {self.ptr(y)});")

    def op_dequantize(self, n):
        lut = self.const("float", self._lut(n), "lut_", floats=True)
        self.body.append(f"  tir_lut_s8_to_f32({n.inputs[0].type.numel}, {lut}, "
                         f"{self.ptr(n.inputs[0])}, {self.ptr(n.outputs[0])});")


def _model_h(g: Graph, arena: int) -> str:
    return f"""/* Generated by tinyir (backend c) from graph {g.name!r}. */
#ifndef TINYIR_MODEL_H
#define TINYIR_MODEL_H
#include <stddef.h>

#define MODEL_NUM_INPUTS {len(g.inputs)}
#define MODEL_NUM_OUTPUTS {len(g.outputs)}
#define MODEL_ARENA_BYTES {arena}

/* Pointers into the static arena: write inputs, call model_invoke(), read outputs.
 * Inputs are overwritten by the run; outputs stay valid until the next run. */
void *model_input(int i);
size_t model_input_bytes(int i);
void *model_output(int i);
size_t model_output_bytes(int i);
void model_invoke(void);
#endif
"""


def _io_table(w: _Writer, values, kind: str) -> str:
    offs = ", ".join(str(w.offsets[v.name]) if not v.is_const else "0" for v in values) or "0"
    sizes = ", ".join(str(v.type.nbytes) for v in values) or "0"
    return (f"static const size_t {kind}_offset[] = {{{offs}}};\n"
            f"static const size_t {kind}_bytes[] = {{{sizes}}};\n"
            f"void *model_{kind}(int i) {{ return arena + {kind}_offset[i]; }}\n"
            f"size_t model_{kind}_bytes(int i) {{ return {kind}_bytes[i]; }}\n")


def emit(graph: Graph, out_dir: str | Path, report=None) -> Emitted:
    """Write the C sources for ``graph`` (a ``tfl.*`` NHWC graph) into ``out_dir``."""
    check_figures = None if report is None else {
        "sram": report.footprint.sram.bytes, "flash": report.footprint.flash.bytes}
    bad = uncovered(graph)
    if bad:
        raise UnsupportedError("the C backend cannot run: " + "; ".join(
            f"{n.name} ({why})" for n, why in bad))
    if any(v.is_const for v in graph.outputs):
        raise UnsupportedError("the C backend needs graph outputs computed by operators")
    mplan = plan(graph)
    w = _Writer(graph, mplan)
    by_name = {n.name: n for n in graph.nodes}
    for name in mplan.order:
        w.node(by_name[name])
    arena = max(16, int(mplan.arena_bytes))
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "model.h").write_text(_model_h(graph, arena))
    model_c = "\n".join([
        f"/* Generated by tinyir (backend c): {len(mplan.order)} operators, arena {arena} bytes"
        f" ({mplan.method} plan). */",
        "#include <stdint.h>", "#include <math.h>", '#include "model.h"', '#include "kernels.h"',
        "",
        "#if defined(__GNUC__)", "#define TIR_ALIGN __attribute__((aligned(16)))", "#else",
        "#define TIR_ALIGN", "#endif", "",
        f"static uint8_t arena[{arena}] TIR_ALIGN;", "",
        *w.decls, "",
        _io_table(w, graph.inputs, "input"), _io_table(w, graph.outputs, "output"),
        "void model_invoke(void) {", *w.body, "}", ""])
    (out / "model.c").write_text(model_c)
    for f in RUNTIME_FILES:
        shutil.copyfile(RUNTIME / f, out / f)
    (out / "README.md").write_text(_readme(graph, arena, w.const_bytes, mplan, check_figures))
    return Emitted(out, arena, w.const_bytes, mplan)


def _readme(g: Graph, arena: int, const_bytes: int, mplan, figs: dict | None) -> str:
    ins = "\n".join(f"| input {i} | `{v.name}` | {v.type} | {v.type.nbytes} |"
                    for i, v in enumerate(g.inputs))
    outs = "\n".join(f"| output {i} | `{v.name}` | {v.type} | {v.type.nbytes} |"
                     for i, v in enumerate(g.outputs))
    check = ""
    if figs:
        check = ("\n`tinyir check --backend tflm` predicted for the TFLM interpreter: "
                 f"SRAM {figs.get('sram')} bytes, flash {figs.get('flash')} bytes.\n")
    return f"""# {g.name or 'model'}: tinyir reference C

Generated by `tinyir compile --backend c`: portable C99, no dynamic memory.  Integer
arithmetic is TFLM's, so int8 outputs are bit-identical to the tflite-micro interpreter.

## Build and run

    make                      # host program ./run_model (needs a C99 compiler)
    ./run_model < in.bin > out.bin

`run_model` reads the raw bytes of the input tensors (in input order) on stdin and writes
the raw bytes of the output tensors (in output order) on stdout.

    make qemu                 # Cortex-M4 build: arm-none-eabi-gcc -mcpu=cortex-m4 -mthumb -Os
    make run-qemu             # QEMU mps2-an386 + semihosting: input.bin -> output.bin
    make size                 # arm-none-eabi-size of the Cortex-M4 image

In your own firmware: compile `model.c` and `kernels.c`, write the inputs through
`model_input(i)`, call `model_invoke()`, read `model_output(i)` (see `model.h`).

| tensor | name | type | bytes |
| --- | --- | --- | --- |
{ins}
{outs}

## Memory

* **RAM**: one static arena of **{arena} bytes** (`MODEL_ARENA_BYTES`; {len(mplan.order)}
  operators, offsets from tinyir's memory planner, in place where planned; lower bound
  {mplan.lower_bound} bytes), {STACK_NOTE}.  The QEMU runner adds newlib's own data.
* **Flash**: {const_bytes} bytes of constant arrays (weights, biases, requantisation
  multipliers) plus the kernels' code (a few KB at `-Os`).
{check}"""
