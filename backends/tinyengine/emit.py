"""Emit TinyEngine code (``genModel.h``, ``genInclude.h``, ``genModel.c``) for a passing graph.

The form is that of TinyEngine's own ``CodeGenerator`` with its defaults (in-place depthwise,
``fp_requantize=True``; reference ``tinyengine_utensor.md`` §1.8): one
``static signed char buffer[PEAK_MEM]`` holding the activation arena ``buffer0`` followed
by the scratch ``sbuf`` and ``kbuf``; weights as ``const`` arrays (flash); ``invoke()``
a straight-line list of kernel calls at fixed ``&buffer0[offset]``.  Kernel names and
argument orders are TinyEngine's (``TinyEngine/include/tinyengine_function.h``,
``fp_requantize_op.h``, ``operators/*.py``).  Offsets come from tinyir's planner over
TinyEngine's own buffer rules (:mod:`tinyir.backends.tinyengine.plan`), not from
TinyEngine's first-fit scheduler.

What TinyEngine drops or folds is dropped or folded here too: QUANTIZE / DEQUANTIZE /
RESHAPE at the model edges, PAD into the next convolution (the kernel pads k//2 itself),
TRANSPOSE -> MEAN -> MEAN into one global ``avg_pooling``.  Only graphs that pass
``check_model(graph, path, "tinyengine")`` are emitted.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tinyir.errors import UnsupportedError
from tinyir.graph import Graph, Node, Value
from tinyir.backends.tinyengine.plan import c_array, plan_buffers

DROPPED = ("tfl.QUANTIZE", "tfl.DEQUANTIZE", "tfl.RESHAPE", "tfl.PAD", "tfl.TRANSPOSE")


def require_pass(graph: Graph, backend: str, report=None) -> None:
    """UnsupportedError listing the findings unless ``graph`` passes ``backend``'s check."""
    from tinyir.op_support.report import check_model

    if report is None or getattr(report, "backend", backend) != backend:
        report = check_model(graph, graph.name, backend)
    bad = [f for f in report.errors if f.category != "budget"]
    if bad:
        lines = "\n".join(f"  {f.rule}: {f.message}" for f in bad)
        raise UnsupportedError(f"graph {graph.name} does not pass the {backend} check "
                               f"({len(bad)} finding(s)); nothing emitted:\n{lines}")


class _Gen:
    def __init__(self, graph: Graph):
        self.g = graph
        self.alias: dict[str, Value] = {}
        self.layers: list[tuple[list[str], str, bool]] = []
        self.calls: list[tuple[str, list[str], str]] = []   # (fmt, reads, write)
        self.consts: list[str] = []
        self.sbuf = 0
        self.kbuf = 0
        self.kernels: set[str] = set()
        self.dw_protos: dict[str, str] = {}
        self.pending_mean: Node | None = None
        self.input_value: Value | None = None

    def real(self, v: Value) -> Value:
        while v.name in self.alias:
            v = self.alias[v.name]
        return v

    def layer(self, fmt: str, reads: list[Value], out: Value, inplace: bool = False) -> None:
        rs = [self.real(v).name for v in reads]
        self.layers.append((rs, out.name, inplace))
        self.calls.append((fmt, rs, out.name))

    def run(self) -> None:
        for n in self.g.nodes:
            getattr(self, "op_" + n.op_type.lower(), self.unsupported)(n)

    def unsupported(self, n: Node) -> None:
        raise UnsupportedError(f"node {n.name}: the TinyEngine emitter has no code for {n.op}")

    # ---- dropped / folded ---------------------------------------------------------------
    def _alias(self, n: Node) -> None:
        self.alias[n.outputs[0].name] = n.inputs[0]

    op_dequantize = op_reshape = op_pad = op_transpose = _alias

    def op_quantize(self, n: Node) -> None:
        # only at the model input (checked): the int8 result is what getInput() fills
        self.input_value = n.outputs[0]

    def op_mean(self, n: Node) -> None:
        if self.pending_mean is None:          # first of the pair: buffered, like TinyEngine
            self.pending_mean = n
            self._alias(n)
            return
        self.pending_mean = None
        x = self.real(n.inputs[0])
        _, h, w, c = x.type.shape
        self.layer(f"avg_pooling({{0}},{h},{w},{c},{h},{w},1,1,-128,127,{{out}});", [x],
                   n.outputs[0])
        self.kernels.add("avg_pooling")

    # ---- layers --------------------------------------------------------------------------
    def _quant(self, v: Value) -> tuple[float, int]:
        q = v.type.quant
        return float(q.scale[0]), int(q.zero_point[0])

    def _weights(self, n: Node, w: np.ndarray, dw: bool) -> int:
        i = len(self.consts)
        x, y = n.inputs[0], n.outputs[0]
        sx, zx = self._quant(x)
        sy, _ = self._quant(y)
        wq = n.inputs[1].type.quant
        cout = y.type.shape[-1]
        ws = np.broadcast_to(np.asarray(wq.scale, np.float64), (cout,))
        scales = (sx * ws / sy).astype(np.float32)
        bias = (np.asarray(n.inputs[2].const, np.int64).reshape(-1) if len(n.inputs) > 2
                and n.inputs[2] is not None else np.zeros(cout, np.int64))
        text = f"/* layer {i}: {n.op} {n.name} */\n"
        if dw:
            chw = np.transpose(w.reshape(w.shape[1], w.shape[2], w.shape[3]), (2, 0, 1))
            text += c_array("unsigned char", f"CHWweight{i}", chw.astype(np.int8).view(np.uint8))
            sums = chw.reshape(cout, -1).astype(np.int64).sum(axis=1)
            full = bias + sums * (-zx)
            off = np.clip(full, -(1 << 31), (1 << 31) - 1)
            text += c_array("int32_t", f"offsetBias{i}", off)
            text += c_array("int32_t", f"offsetRBias{i}", full - off)
        else:
            text += c_array("unsigned char", f"weight{i}", w.astype(np.int8).view(np.uint8))
            text += c_array("int32_t", f"bias{i}", bias)
        text += c_array("float", f"scales{i}", scales)
        self.consts.append(text)
        return i

    def _conv_call(self, n: Node, x: Value, kh: int, kw: int, stride: int) -> None:
        y = n.outputs[0]
        _, ih, iw, cin = x.type.shape if len(x.type.shape) == 4 else (1, 1, 1, x.type.shape[-1])
        oh, ow, cout = (y.type.shape[1], y.type.shape[2], y.type.shape[3]) \
            if len(y.type.shape) == 4 else (1, 1, y.type.shape[-1])
        _, zx = self._quant(x)
        _, zy = self._quant(y)
        i = self._weights(n, np.asarray(n.inputs[1].const), False)
        if kh == 1:
            name = (f"convolve_1x1_s8_ch{cin}_fpreq" if cin in (8, 16, 24, 48) and cout % 2 == 0
                    else "convolve_1x1_s8_fpreq")
            tail = "sbuf"
            self.sbuf = max(self.sbuf, 2 * 2 * kh * kw * cin)
        else:   # 3x3 stride 2, Cin 3: the stem (the checker allows no other)
            name = "convolve_s8_kernel3_inputch3_stride2_pad1_fpreq"
            tail = f"sbuf,kbuf,{zx}"
            self.sbuf = max(self.sbuf, 2 * 2 * kh * kw * cin)
            self.kbuf = max(self.kbuf, 2 * kh * kw * cin * cout)
        self.kernels.add(name)
        self.layer(f"{name}({{0}},{iw},{ih},{cin},(const q7_t*) weight{i},bias{i},scales{i},"
                   f"{zy},{-zx},-128,127,{{out}},{ow},{oh},{cout},{tail});", [x], y)

    def op_conv_2d(self, n: Node) -> None:
        w = n.inputs[1].type.shape
        self._conv_call(n, self.real(n.inputs[0]), w[1], w[2], n.attrs.get("stride_h", 1))

    def op_fully_connected(self, n: Node) -> None:
        self._conv_call(n, self.real(n.inputs[0]), 1, 1, 1)

    def op_depthwise_conv_2d(self, n: Node) -> None:
        x, y = self.real(n.inputs[0]), n.outputs[0]
        _, kh, kw, c = n.inputs[1].type.shape
        s = n.attrs.get("stride_h", 1)
        _, ih, iw, _ = x.type.shape
        _, oh, ow, _ = y.type.shape
        _, zx = self._quant(x)
        _, zy = self._quant(y)
        i = self._weights(n, np.asarray(n.inputs[1].const), True)
        name = f"depthwise_kernel{kh}x{kw}_stride{s}_inplace_CHW_fpreq"
        p = (kh - 1) // 2
        self.sbuf = max(self.sbuf, 2 * (ih + 2 * p) * (iw + 2 * p))
        self.dw_protos[name] = (
            f"tinyengine_status {name}(q7_t *input, const uint16_t input_x, "
            "const uint16_t input_y, const uint16_t input_ch, const q7_t *kernel, "
            "const int32_t *bias, const int32_t *biasR, const float *scales, "
            "const int32_t output_offset, const int32_t input_offset, "
            "const int32_t output_activation_min, const int32_t output_activation_max, "
            "q7_t *output, const uint16_t output_x, const uint16_t output_y, "
            "const uint16_t output_ch, q15_t *runtime_buf, q7_t pad_value);")
        self.layer(f"{name}({{0}},{iw},{ih},{c},(const q7_t*) CHWweight{i},offsetBias{i},"
                   f"offsetRBias{i},scales{i},{zy},{-zx},-128,127,{{out}},{ow},{oh},{c},sbuf,"
                   f"{zx});", [x], y, inplace=True)

    def op_add(self, n: Node) -> None:
        a, b = self.real(n.inputs[0]), self.real(n.inputs[1])
        y = n.outputs[0]
        (sa, za), (sb, zb), (sy, zy) = self._quant(a), self._quant(b), self._quant(y)
        size = int(np.prod(y.type.shape))
        self.kernels.add("add_fpreq")
        self.layer(f"add_fpreq({size}, {{0}},{sa!r},{za}, {{1}},{sb!r},{zb}, {sy!r},{zy}, "
                   "{out});", [a, b], y)

    def op_average_pool_2d(self, n: Node) -> None:
        x = self.real(n.inputs[0])
        _, h, w, c = x.type.shape
        self.kernels.add("avg_pooling")
        self.layer(f"avg_pooling({{0}},{h},{w},{c},{h},{w},1,1,-128,127,{{out}});", [x],
                   n.outputs[0])

    def op_max_pool_2d(self, n: Node) -> None:
        x, y = self.real(n.inputs[0]), n.outputs[0]
        _, h, w, c = x.type.shape
        self.kernels.add("max_pooling")
        self.layer(f"max_pooling({{0}},{h},{w},{c},{n.attrs.get('stride_h', 1)},"
                   f"{n.attrs.get('stride_w', 1)},{y.type.shape[1]},{y.type.shape[2]},-128,127,"
                   "{out});", [x], y)

    def op_resize_nearest_neighbor(self, n: Node) -> None:
        x, y = self.real(n.inputs[0]), n.outputs[0]
        _, h, w, c = x.type.shape
        self.kernels.add("upsample_byte")
        self.layer(f"upsample_byte({{0}},{w},{h},{c},{{out}},{y.type.shape[2] // w});", [x], y)


def emit(graph: Graph, out_dir: Path, report=None) -> list[Path]:
    """Write ``genModel.h``, ``genInclude.h``, ``genModel.c`` and ``README.md`` to ``out_dir``."""
    require_pass(graph, "tinyengine", report)
    from tinyir.backends.lowering import lower_for

    g = lower_for("tinyengine", graph).graph
    gen = _Gen(g)
    gen.run()
    if not gen.layers:
        raise UnsupportedError(f"graph {g.name}: nothing for TinyEngine to run")
    inp = gen.input_value or gen.real(g.inputs[0])
    outs = [gen.real(v) for v in g.outputs]
    sizes = {}
    for _, n in g.walk():
        for v in list(n.inputs) + list(n.outputs):
            if v is not None and not v.is_const and v.type.nbytes is not None:
                sizes[v.name] = v.type.nbytes
    sizes[inp.name] = inp.type.nbytes
    plan = plan_buffers(gen.layers, sizes, [inp.name], [o.name for o in outs])

    def buf(name: str) -> str:
        return f"&buffer0[{plan.offsets[name]}]"

    body = []
    for fmt, reads, out in gen.calls:
        body.append("    " + fmt.format(*[buf(r) for r in reads], out=buf(out)))
    sbuf = (gen.sbuf + 3) // 4 * 4
    kbuf = (gen.kbuf + 3) // 4 * 4
    peak = plan.arena + sbuf + kbuf
    weights = sum(_const_bytes(t) for t in gen.consts)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    files = {
        "genModel.h": _gen_model_h(gen, plan, outs[0], peak, sbuf, kbuf, weights),
        "genInclude.h": _gen_include_h(gen),
        "genModel.c": _gen_model_c(inp, outs, body, buf),
        "README.md": _readme(g, plan, peak, sbuf, kbuf, weights, inp, outs),
    }
    written = []
    for name, text in files.items():
        p = out_dir / name
        p.write_text(text)
        written.append(p)
    return written


def _const_bytes(text: str) -> int:
    total = 0
    for line in text.splitlines():
        if line.startswith("const "):
            ctype = line.split("[")[0]
            n = int(line.split("[")[1].split("]")[0])
            total += n * (1 if "unsigned char" in ctype else 4)
    return total


def _gen_model_h(gen, plan, out, peak, sbuf, kbuf, weights) -> str:
    return f"""/* Automatically generated by tinyir in the form of TinyEngine's code generator. */
#include <stdint.h>

{"".join(gen.consts)}
#define NNoutput &buffer0[{plan.offsets[out.name]}];

/* sram:{peak}, flash:{weights} */
#define PEAK_MEM {peak}
#define MODEL_SIZE {weights}
static signed char buffer[PEAK_MEM];
static signed char *buffer0 = &buffer[0];
static int16_t *sbuf = (int16_t *)&buffer[{plan.arena}];
static int16_t *kbuf = (int16_t *)&buffer[{plan.arena + sbuf}];
const int SBuffer_size = {sbuf};
const int KBuffer_size = {kbuf};
"""


def _gen_include_h(gen) -> str:
    protos = "\n".join(gen.dw_protos.values())
    return f"""/* Automatically generated by tinyir: prototypes of the per-shape depthwise kernels
   (TinyEngine generates their sources with code_generator/codetemplate/depthwiseTemplate.py). */
{protos}
"""


def _gen_model_c(inp, outs, body, buf) -> str:
    return f"""/* Automatically generated by tinyir in the form of TinyEngine's code generator. */
#include "arm_nnfunctions.h"
#include "genNN.h"
#include "genModel.h"
#include "tinyengine_function.h"

signed char* getInput() {{
    return {buf(inp.name)};
}}
signed char* getOutput() {{
    return NNoutput;
}}
void end2endinference(q7_t* img) {{
    invoke(NULL);
}}
void invoke(float* labels) {{
{chr(10).join(body)}
}}
void invoke_inf() {{
    invoke(NULL);
}}
"""


def _readme(g, plan, peak, sbuf, kbuf, weights, inp, outs) -> str:
    return f"""# {g.name}: TinyEngine code (generated by tinyir)

`genModel.h` (weights as `const` arrays, `PEAK_MEM`, the static `buffer`), `genInclude.h`
(prototypes of the depthwise kernels used), `genModel.c` (`getInput`, `getOutput`,
`invoke`: {len(plan.ranges)} buffers, straight-line kernel calls at planned offsets).

## Memory

* **RAM**: `PEAK_MEM` = **{peak} bytes**: activation arena {plan.arena} B (tinyir's plan of
  TinyEngine's buffers, lower bound {plan.lower_bound} B; in-place depthwise as TinyEngine
  does) + `sbuf` {sbuf} B + `kbuf` {kbuf} B of kernel scratch. Add stack.
* **Flash**: {weights} bytes of weights, biases and scales, plus TinyEngine's kernels.

The model input is int8 at `getInput()` ({list(inp.type.shape)}); the output is int8 at
`getOutput()` ({", ".join(str(list(o.type.shape)) for o in outs)}). QUANTIZE / DEQUANTIZE
at the edges are dropped, as TinyEngine drops them: quantise the input yourself.

## Build

Copy this folder as TinyEngine's `codegen/` (`Include/genModel.h`, `Include/genInclude.h`,
`Source/genModel.c`) into a project with `TinyEngine/include`, `TinyEngine/src` and the
CMSIS-NN/DSP headers (`import_arm_inference.sh`), for an ARMv7E-M core (Cortex-M4/M7).
Generate the depthwise kernel sources named in `genInclude.h` with TinyEngine's
`code_generator/codetemplate/depthwiseTemplate.py`. Then call `invoke(NULL)` after filling
`getInput()`.
"""
