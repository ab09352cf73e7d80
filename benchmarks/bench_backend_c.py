"""Reference C backend on Cortex-M4: real sizes vs `tinyir check`, and QEMU bit-exactness.

For every int8 corpus model the C backend covers (and the two quantized digits models):
emit, cross-compile (-mcpu=cortex-m4 -mthumb -Os, newlib rdimon), run on QEMU mps2-an386
against the tflite-micro interpreter on one seeded random input, and print a markdown
table: flash (text+rodata) and RAM (data+bss) from `arm-none-eabi-size -A` next to
`tinyir check --backend tflm`'s flash/SRAM figures and the C backend's planned arena.

    python benchmarks/bench_backend_c.py [--out FILE.md]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

import tinyir  # noqa: E402
from tinyir.backends.c import harness  # noqa: E402
from tinyir.backends.c.emit import emit  # noqa: E402
from tinyir.op_support.report import check_model  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", help="also write the table to this markdown file")
    args = ap.parse_args()
    reason = harness.have_qemu()
    if reason:
        print(f"skipped: {reason}")
        return 0
    from test_backend_c import covered_models

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        models = covered_models(work)
        rows, folders, inputs, n_out, graphs = [], {}, [], [], {}
        for name, path in models.items():
            g = tinyir.load(path)
            graphs[name] = g
            folders[name] = emit(g, work / name)
            inputs.append([harness.random_inputs(g, 0)])
            n_out.append(len(g.outputs))
        with ThreadPoolExecutor(2) as pool:
            list(pool.map(lambda e: harness.make(e.out_dir, "qemu"), folders.values()))
        refs = harness.tflm_outputs(list(models.values()), inputs, n_out, work)
        for (name, e), ins, ref in zip(folders.items(), inputs, refs):
            got = harness.run_qemu(e.out_dir, b"".join(x.tobytes() for x in ins[0]))
            size = harness.arm_size(e.out_dir / "run_model_qemu.elf")
            fp = check_model(graphs[name], name, "tflm").footprint
            rows.append((name, size["flash"], fp.flash.bytes, size["ram"], e.arena_bytes,
                         size["ram"] - e.arena_bytes, fp.sram.bytes,
                         "bit-identical" if got == ref[0] else "DIFFERS"))
    head = ("| model | C flash (text+rodata) | check flash (tflm) | C RAM (data+bss) | "
            "C arena (planned) | RAM - arena | check SRAM (tflm) | QEMU vs tflite-micro |\n"
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |\n")
    table = head + "".join("| " + " | ".join(f"{c:,}" if isinstance(c, int) else str(c)
                                              for c in r) + " |\n" for r in rows)
    note = ("\nC RAM = the planned arena + newlib's fixed data (rdimon stdio buffers and the "
            "impure struct, the 'RAM - arena' column) + stack; the generated code itself keeps "
            "no other static data.  Flash includes newlib's semihosting stdio (~10 KB).\n")
    print(table + note)
    if args.out:
        Path(args.out).write_text("# Reference C backend on Cortex-M4 (QEMU mps2-an386)\n\n"
                                  + table + note)
    return 0 if all(r[-1] == "bit-identical" for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
