"""Emulator-side constants of pigpiod: limits and identity (pigpio v79).

The protocol itself (command numbers, error codes, packing) is shared with
the bus backend in :mod:`rpilinkd.pigpio_protocol`.
"""

from __future__ import annotations

from typing import Final

from rpilinkd.pigpio_protocol import (
    COMMAND_NAMES,
    MAX_EXTENSION,
    NTFY_ALIVE,
    NTFY_EVENT,
    NTFY_WDOG,
    REPORT_FORMAT,
    REQUEST,
    UNSIGNED_RESULTS,
    Cmd,
    Err,
    pack_reply,
)

__all__ = [
    "COMMAND_NAMES", "MAX_EXTENSION", "NTFY_ALIVE", "NTFY_EVENT", "NTFY_WDOG", "REPORT_FORMAT",
    "REQUEST", "UNSIGNED_RESULTS", "Cmd", "Err", "pack_reply",
]

#: reports are written in chunks of PIPE_BUF / 12
MAX_EMITS: Final = 341

PIGPIO_VERSION: Final = 79
HW_REVISION_PI3B: Final = 0xA02082
#: GPIO 2-27 for a Pi 3B/4B (pigpio's default `-x` permission mask)
DEFAULT_PERMITTED: Final = 0x0FFFFFFC

ALIVE_AFTER_US: Final = 60_000_000
NOTIFY_SLOTS: Final = 32

# waveform limits
WAVE_MAX_PULSES: Final = 12_000
WAVE_MAX_MICROS: Final = 1_800_000_000
MAX_WAVES: Final = 250
WAVE_MAX_CBS: Final = 25_016
WAVE_USABLE_CBS: Final = 23_836
WAVE_MAX_OOL: Final = 16_748
WAVE_USABLE_OOL: Final = 15_958
WAVE_START_DELAY_US: Final = 20
WAVE_NOT_FOUND: Final = 9998
NO_TX_WAVE: Final = 9999


