"""Emit uTensor C++ in the form of utensor_cgen's rearch generator (``use_model_api=True``).

Files: ``<name>.hpp`` (``class <Name> : public ModelInterface<n_in, n_out>`` with one member
per operator and the two arena allocators), ``<name>.cpp`` (``compute()``: constants as
``RomTensor`` over ``data_*`` arrays, intermediates as ``new RamTensor`` with their
quantisation parameters, ``op.set_inputs({...}).set_outputs({...}).eval();`` per operator
and ``free()`` after each tensor's last use), ``params_<name>.hpp`` (the ``const`` arrays)
and ``README.md``.  Reference: ``tinyengine_utensor.md`` §2.3-2.5.  The RAM arena is
tinyir's plan of the tensors with utensor_cgen's rules (closed intervals, no in-place) plus
the generator's 3000-byte margin; metadata is 64 bytes per tensor, as utensor_cgen sizes it.
Only graphs that pass ``check_model(graph, path, "utensor")`` are emitted.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tinyir.errors import UnsupportedError
from tinyir.graph import Graph
from tinyir.backends.tinyengine.emit import require_pass
from tinyir.backends.tinyengine.plan import c_array, c_name, plan_buffers

RAM_MARGIN = 3000        # utensor_cgen: ram_data_pool_size = total_size + 3000
META_PER_TENSOR = 64     # utensor_cgen: meta_data_pool_size = 64 * #tensors

_TT = {"i8": ("i8", "int8_t"), "f32": ("flt", "float"), "i32": ("i32", "int32_t"),
       "u8": ("u8", "uint8_t"), "i16": ("i16", "int16_t")}
_ACT = {"NONE": "kTfLiteActNone", "RELU": "kTfLiteActRelu", "RELU6": "kTfLiteActRelu6"}


def _op_class(n) -> tuple[str, str]:
    """(C++ operator type, constructor arguments) as utensor_cgen's rearch backend names it."""
    x = n.inputs[0].type.dtype.value
    t = _TT.get(x, ("i8", "int8_t"))[1]
    act = _ACT.get(n.attrs.get("fused_activation_function", "NONE"), "kTfLiteActNone")
    pad = "VALID" if n.attrs.get("padding", "VALID") == "VALID" else "SAME"
    strides = f"{{ 1, {n.attrs.get('stride_h', 1)}, {n.attrs.get('stride_w', 1)}, 1 }}"
    if n.op == "tfl.FULLY_CONNECTED":
        ns = "TflmSymQuantOps" if x == "i8" else "ReferenceOperators"
        return f"{ns}::FullyConnectedOperator<{t}>", f"TFLM::{act}"
    if n.op == "tfl.CONV_2D":
        return f"ReferenceOperators::Conv2dOperator<{t}>", f"{strides}, {pad}"
    if n.op == "tfl.DEPTHWISE_CONV_2D":
        return (f"TflmSymQuantOps::DepthwiseSeparableConvOperator<{t}>",
                f"{{ {n.attrs.get('stride_h', 1)}, {n.attrs.get('stride_w', 1)} }}, {pad}, "
                f"{n.attrs.get('depth_multiplier', 1)}, {{ {n.attrs.get('dilation_h_factor', 1)}, "
                f"{n.attrs.get('dilation_w_factor', 1)} }}, TFLM::{act}")
    if n.op == "tfl.MAX_POOL_2D":
        return (f"ReferenceOperators::MaxPoolOperator<{t}>",
                f"{{ {n.attrs.get('filter_height', 1)}, {n.attrs.get('filter_width', 1)} }}, "
                f"{strides}, {pad}")
    if n.op == "tfl.RESHAPE":
        shape = ", ".join(str(d) for d in n.outputs[0].type.shape)
        return f"ReferenceOperators::ReshapeOperator<{t}>", f"{{ {shape} }}"
    if n.op == "tfl.QUANTIZE":
        return "TflmSymQuantOps::QuantizeOperator<int8_t, float>", ""
    if n.op == "tfl.DEQUANTIZE":
        return "TflmSymQuantOps::DequantizeOperator<float, int8_t>", ""
    raise UnsupportedError(f"node {n.name}: the uTensor emitter has no code for {n.op}")


_ROLES = {"tfl.FULLY_CONNECTED": ("input", "filter", "bias"),
          "tfl.CONV_2D": ("in", "filter", "bias"),
          "tfl.DEPTHWISE_CONV_2D": ("in", "filter", "bias")}


def _quant(v) -> str:
    q = v.type.quant
    if q is None:
        return ""
    if len(q.scale) == 1:
        return f"PerTensorQuantizationParams({int(q.zero_point[0])}, {float(q.scale[0])!r}f)"
    zps = ", ".join(str(int(z)) for z in q.zero_points())
    scales = ", ".join(f"{float(s)!r}f" for s in q.scale)
    return f"PerChannelQuantizationParams({{ {zps} }}, {{ {scales} }})"


def emit(graph: Graph, out_dir: Path, report=None) -> list[Path]:
    """Write ``<name>.hpp``, ``<name>.cpp``, ``params_<name>.hpp`` and README.md."""
    require_pass(graph, "utensor", report)
    from tinyir.backends.lowering import lower_for

    g = lower_for("utensor", graph).graph
    name = c_name(g.name or "model").lower()
    cls = "".join(p.capitalize() for p in name.split("_")) or "Model"
    nodes = list(g.nodes)
    ident = {v.name: "t_" + c_name(v.name) for v in g.values}
    # buffer plan over RAM tensors (closed intervals, no in-place)
    layers = [([v.name for v in n.inputs if v is not None and not v.is_const],
               n.outputs[0].name, False) for n in nodes]
    sizes = {v.name: v.type.nbytes for v in g.values if not v.is_const}
    plan = plan_buffers(layers, sizes, [v.name for v in g.inputs],
                        [v.name for v in g.outputs], alignment=2)
    ram = plan.arena + RAM_MARGIN
    n_tensors = len(g.values)
    meta = META_PER_TENSOR * n_tensors
    idx_t = lambda n: "uint16_t" if n <= 32768 else "uint32_t"  # noqa: E731
    last_use = {}
    for i, n in enumerate(nodes):
        for v in n.inputs:
            if v is not None:
                last_use[v.name] = i

    params, members, body = [], [], []
    declared: set[str] = set()
    for v in g.constants:
        tt, ct = _TT.get(v.type.dtype.value, ("i8", "int8_t"))
        params.append(c_array(ct, "data_" + c_name(v.name), np.asarray(v.const)))
    for i, n in enumerate(nodes):
        op_t, args = _op_class(n)
        op = f"op_{c_name(n.op_type).lower()}_{i:03d}"
        members.append(f"  {op_t} {op}" + (f"{{{args}}};" if args else ";"))
        ins = []
        roles = _ROLES.get(n.op, ("input",))
        for k, v in enumerate(n.inputs):
            if v is None:
                continue
            if v.is_const and v.name not in declared:
                declared.add(v.name)
                tt, _ = _TT.get(v.type.dtype.value, ("i8", "int8_t"))
                shape = ", ".join(str(d) for d in v.type.shape)
                body.append(f"  Tensor {ident[v.name]} = new RomTensor({{ {shape} }}, {tt}, "
                            f"data_{c_name(v.name)});")
                q = _quant(v)
                if q:
                    body.append(f"  {ident[v.name]}->set_quantization_params({q});")
            role = roles[k] if k < len(roles) else f"in{k}"
            ins.append(f"{{ {op_t}::{role}, {ident[v.name]} }}")
        y = n.outputs[0]
        if y in g.outputs:
            out_ref = f"outputs[{g.outputs.index(y)}].tensor()"
            body.append(f"  Tensor& {ident[y.name]} = {out_ref};")
        else:
            tt, _ = _TT.get(y.type.dtype.value, ("i8", "int8_t"))
            shape = ", ".join(str(d) for d in y.type.shape)
            body.append(f"  Tensor {ident[y.name]} = new RamTensor({{ {shape} }}, {tt});")
            q = _quant(y)
            if q:
                body.append(f"  {ident[y.name]}->set_quantization_params({q});")
        out_role = "out" if n.op in _ROLES and n.op != "tfl.FULLY_CONNECTED" else "output"
        body.append(f"  {op}\n    .set_inputs({{ {', '.join(ins)} }})\n"
                    f"    .set_outputs({{ {{ {op_t}::{out_role}, {ident[y.name]} }} }})\n"
                    "    .eval();")
        for v in n.inputs:
            if v is not None and last_use.get(v.name) == i and v not in g.inputs \
                    and v not in g.outputs:
                body.append(f"  {ident[v.name]}.free();")
    for v in g.inputs:
        body.insert(0, f"  Tensor& {ident[v.name]} = inputs[input_{g.inputs.index(v)}].tensor();")

    in_enum = ", ".join(f"input_{i}" for i in range(len(g.inputs)))
    out_enum = ", ".join(f"output_{i}" for i in range(len(g.outputs)))
    hpp = f"""// Generated by tinyir in the form of utensor_cgen's rearch model API.
#ifndef __{name.upper()}_INTERFACE_H
#define __{name.upper()}_INTERFACE_H
#include "uTensor.h"

using namespace uTensor;

class {cls} : public ModelInterface<{len(g.inputs)}, {len(g.outputs)}> {{
 public:
  enum input_names : uint8_t {{ {in_enum} }};
  enum output_names : uint8_t {{ {out_enum} }};
  {cls}();

 protected:
  virtual void compute();

 private:
{chr(10).join(members)}
  // memory allocators
  localCircularArenaAllocator<{ram}, {idx_t(ram)}> ram_allocator;
  localCircularArenaAllocator<{meta}, {idx_t(meta)}> metadata_allocator;
}};

#endif  // __{name.upper()}_INTERFACE_H
"""
    cpp = f"""// Generated by tinyir in the form of utensor_cgen's rearch model API.
#include "{name}.hpp"
#include "params_{name}.hpp"

{cls}::{cls}() {{
  Context::get_default_context()->set_ram_data_allocator(&ram_allocator);
  Context::get_default_context()->set_metadata_allocator(&metadata_allocator);
}}

void {cls}::compute() {{
{chr(10).join(body)}
}}
"""
    par = f"""// Generated by tinyir: model constants (const, placed in flash).
#ifndef __PARAMS_{name.upper()}_H
#define __PARAMS_{name.upper()}_H
#include <stdint.h>

{"".join(params)}
#endif
"""
    flash = sum(v.const.nbytes for v in g.constants)
    readme = f"""# {g.name}: uTensor code (generated by tinyir)

`{name}.hpp` (class `{cls}`), `{name}.cpp` (`compute()`), `params_{name}.hpp` (weights).

## Memory

* **RAM**: {ram + meta} bytes of arenas: `ram_allocator` {ram} B (tinyir's plan of the
  {len(plan.ranges)} RAM tensors with uTensor's rules, {plan.arena} B, lower bound
  {plan.lower_bound} B, plus utensor_cgen's 3000 B margin) and `metadata_allocator` {meta} B
  (64 B per tensor). Add stack.
* **Flash**: {flash} bytes of constants plus the uTensor runtime (~2 kB core) and kernels.

## Build

Add the three files to a project that builds uTensor (`uTensor/uTensor`, C++11, e.g. its
CMake build or Mbed/Arduino library) and include `{name}.hpp`:

    {cls} model;
    model.set_inputs({{ {{ {cls}::input_0, input_tensor }} }})
         .set_outputs({{ {{ {cls}::output_0, output_tensor }} }})
         .eval();
"""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for fname, text in ((f"{name}.hpp", hpp), (f"{name}.cpp", cpp),
                        (f"params_{name}.hpp", par), ("README.md", readme)):
        p = out_dir / fname
        p.write_text(text)
        written.append(p)
    return written
