"""Build and run emitted C code: host gcc, Cortex-M4 under QEMU, and the TFLM reference.

Used by ``tests/test_backend_c.py`` and ``benchmarks/bench_backend_c.py``.  The QEMU
runner reads ``input.bin`` and writes ``output.bin`` in its working folder through
semihosting; ``arm_size`` reads ``arm-none-eabi-size -A``.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np

from tinyir.graph import Graph

QEMU_TOOLS = ("arm-none-eabi-gcc", "arm-none-eabi-size", "qemu-system-arm")


def have_qemu() -> str | None:
    """None when the cross tools are installed, else the reason to skip."""
    missing = [t for t in QEMU_TOOLS if shutil.which(t) is None]
    return f"missing {', '.join(missing)} (Debian: gcc-arm-none-eabi libnewlib-arm-none-eabi " \
        "qemu-system-arm)" if missing else None


def random_inputs(graph: Graph, seed: int) -> list[np.ndarray]:
    """Seeded inputs: uniform over the integer range, standard normal for floats."""
    rng = np.random.default_rng(seed)
    xs = []
    for v in graph.inputs:
        dt = v.type.dtype.numpy
        shape = tuple(v.type.shape)
        if dt.kind in "iu":
            info = np.iinfo(dt)
            xs.append(rng.integers(info.min, int(info.max) + 1, size=shape).astype(dt))
        else:
            xs.append(rng.standard_normal(shape).astype(dt))
    return xs


def make(folder: Path, target: str = "all", cflags: str = "-O1", timeout: float = 300) -> None:
    subprocess.run(["make", "-s", "-C", str(folder), target, f"CFLAGS={cflags}"], check=True,
                   capture_output=True, timeout=timeout)


def run_host(folder: Path, data: bytes, timeout: float = 120) -> bytes:
    return subprocess.run([str(folder / "run_model")], input=data, capture_output=True,
                          check=True, timeout=timeout).stdout


def run_qemu(folder: Path, data: bytes, timeout: float = 300) -> bytes:
    (folder / "input.bin").write_bytes(data)
    out = folder / "output.bin"
    if out.exists():
        out.unlink()
    subprocess.run(["qemu-system-arm", "-M", "mps2-an386", "-nographic", "-monitor", "none",
                    "-semihosting-config", "enable=on,target=native",
                    "-kernel", "run_model_qemu.elf"], cwd=folder, check=True,
                   capture_output=True, timeout=timeout)
    return out.read_bytes()


def arm_size(elf: Path) -> dict[str, int]:
    """{'flash': text+rodata (+ tables), 'ram': data+bss} from ``arm-none-eabi-size -A``."""
    text = subprocess.run(["arm-none-eabi-size", "-A", str(elf)], capture_output=True,
                          text=True, check=True).stdout
    sec = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[1].isdigit():
            sec[parts[0]] = int(parts[1])
    flash = sum(sec.get(s, 0) for s in (".text", ".rodata", ".ARM.exidx", ".init_array",
                                         ".fini_array", ".preinit_array"))
    return {"text": sec.get(".text", 0), "rodata": sec.get(".rodata", 0), "flash": flash,
            "data": sec.get(".data", 0), "bss": sec.get(".bss", 0),
            "ram": sec.get(".data", 0) + sec.get(".bss", 0)}


_TFLM = textwrap.dedent("""
    import sys
    import numpy as np
    from tflite_micro.python.tflite_micro import runtime
    feeds = np.load(sys.argv[1])
    out = {}
    for i, path in enumerate(sys.argv[2:]):
        it = runtime.Interpreter.from_bytes(open(path, "rb").read(), arena_size=1 << 22)
        n_in, n_out = int(feeds[f"m{i}_nin"]), int(feeds[f"m{i}_nout"])
        for s in range(int(feeds[f"m{i}_n"])):
            for k in range(n_in):
                it.set_input(feeds[f"m{i}_s{s}_x{k}"], k)
            it.invoke()
            data = b"".join(it.get_output(j).tobytes() for j in range(n_out))
            out[f"m{i}_s{s}"] = np.frombuffer(data, np.uint8)
    np.savez(sys.argv[1] + ".out.npz", **out)
""")


def tflm_outputs(paths: list[Path], inputs: list[list[list[np.ndarray]]], n_outputs: list[int],
                 work: Path) -> list[list[bytes]]:
    """Run the tflite-micro interpreter (child process) on ``inputs[model][sample]``."""
    feeds = {}
    for i, samples in enumerate(inputs):
        feeds[f"m{i}_n"] = np.array(len(samples))
        feeds[f"m{i}_nout"] = np.array(n_outputs[i])
        feeds[f"m{i}_nin"] = np.array(len(samples[0]))
        for s, xs in enumerate(samples):
            for k, x in enumerate(xs):
                feeds[f"m{i}_s{s}_x{k}"] = x
    path = work / "tflm_feeds.npz"
    np.savez(path, **feeds)
    subprocess.run([sys.executable, "-c", _TFLM, str(path), *map(str, paths)], check=True,
                   timeout=600, capture_output=True)
    out = np.load(str(path) + ".out.npz")
    return [[out[f"m{i}_s{s}"].tobytes() for s in range(len(samples))]
            for i, samples in enumerate(inputs)]
