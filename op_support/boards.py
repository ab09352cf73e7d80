"""Board presets and size parsing for ``--board``, ``--sram`` and ``--flash``.

Figures are the on-chip SRAM and flash of each board's microcontroller as its vendor
documents them (the whole RAM, of which stack, heap and the runtime's own statics also
take a share; the check reports the model's needs next to the board's totals).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from tinyir.errors import InputError

KiB, MiB = 1024, 1024 * 1024


@dataclass(frozen=True)
class Board:
    name: str
    mcu: str
    sram: int
    flash: int
    note: str = ""


BOARDS: dict[str, Board] = {b.name: b for b in [
    Board("arduino-uno", "ATmega328P (AVR, 16 MHz)", 2 * KiB, 32 * KiB,
          "not Cortex-M: no TFLM port; listed because users ask"),
    Board("microbit", "nRF51822 (Cortex-M0, 16 MHz)", 16 * KiB, 256 * KiB, "micro:bit v1"),
    Board("microbit-v2", "nRF52833 (Cortex-M4F, 64 MHz)", 128 * KiB, 512 * KiB),
    Board("nano33ble", "nRF52840 (Cortex-M4F, 64 MHz)", 256 * KiB, 1 * MiB,
          "Arduino Nano 33 BLE (Sense)"),
    Board("nrf52840-dk", "nRF52840 (Cortex-M4F, 64 MHz)", 256 * KiB, 1 * MiB),
    Board("stm32f411-blackpill", "STM32F411CE (Cortex-M4F, 100 MHz)", 128 * KiB, 512 * KiB),
    Board("stm32f746-disco", "STM32F746NG (Cortex-M7, 216 MHz)", 320 * KiB, 1 * MiB),
    Board("stm32h743", "STM32H743 (Cortex-M7, 480 MHz)", 1 * MiB, 2 * MiB,
          "SRAM split over several banks; the largest contiguous block is 512 KiB"),
    Board("portenta-h7", "STM32H747 (Cortex-M7 + M4)", 1 * MiB, 2 * MiB),
    Board("rp2040", "RP2040 (dual Cortex-M0+, 133 MHz)", 264 * KiB, 2 * MiB,
          "Raspberry Pi Pico: flash is external QSPI"),
    Board("esp32", "ESP32 (Xtensa LX6, 240 MHz)", 520 * KiB, 4 * MiB, "flash is external"),
    Board("esp32-s3", "ESP32-S3 (Xtensa LX7, 240 MHz)", 512 * KiB, 8 * MiB,
          "ESP32-S3-DevKitC-1 N8: flash is external"),
    Board("sparkfun-edge", "Apollo3 (Cortex-M4F, 48 MHz)", 384 * KiB, 1 * MiB),
    Board("mps2-an386", "Cortex-M4 (Arm MPS2 FPGA image, as emulated by QEMU)", 4 * MiB, 4 * MiB,
          "the emulated board tinyir's reference C backend is tested on"),
]}

_UNITS = {"": 1, "b": 1, "kib": KiB, "mib": MiB, "gib": 1024 * MiB,
          "kb": 1000, "mb": 1000 ** 2, "gb": 1000 ** 3, "k": KiB, "m": MiB}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$")


def parse_size(text: str, what: str = "size") -> int:
    """Bytes in ``text``: ``256KiB``, ``1MiB``, ``64kB`` (SI, 1000), ``2048``, ``512k``.

    KiB/MiB/GiB and the short ``k``/``m`` are binary; kB/MB/GB are decimal.
    """
    m = _SIZE.match(text)
    unit = m.group(2).lower() if m else None
    if not m or unit not in _UNITS:
        raise InputError(f"{what} {text!r} is not a size; write e.g. 256KiB, 1MiB, 64kB or 2048")
    value = float(m.group(1)) * _UNITS[unit]
    if value <= 0 or value > (1 << 40):
        raise InputError(f"{what} {text!r} is out of range")
    return int(value)


def get_board(name: str) -> Board:
    try:
        return BOARDS[name]
    except KeyError:
        raise InputError(f"unknown board {name!r}; boards: {', '.join(sorted(BOARDS))}") from None


def fmt_size(n: int) -> str:
    if n < KiB:
        return f"{n} B"
    if n < MiB:
        return f"{n / KiB:.1f} KiB"
    return f"{n / MiB:.2f} MiB"
