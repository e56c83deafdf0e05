"""A Value Change Dump of every wire, for GTKWave or PulseView.

Times are in units of 10 ns since the emulator started (``$timescale 10 ns``: a
pulse's set and clear writes are tens of ns apart); a short (both
ends driving a wire to different levels) is written as ``x``.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TextIO

import numpy as np
import numpy.typing as npt

from rpilinkd import __version__

TICKS_PER_US = 100  # the trace's time unit is 10 ns
_SYMBOLS = "!\"#$%&'()*+,-./:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[]^_`abcdefghijklmnopqrstuvwxyz{|}~"


def _symbol(index: int) -> str:
    out = ""
    index += 1
    while index:
        index, digit = divmod(index - 1, len(_SYMBOLS))
        out = _SYMBOLS[digit] + out
    return out


class VcdWriter:
    def __init__(self, path: Path, wire_names: list[str]) -> None:
        self._file: TextIO = path.open("w", encoding="ascii")
        self._ids = {name: _symbol(i) for i, name in enumerate(wire_names)}
        self._last: dict[str, int] = {}
        self._last_time = -1
        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
        header = [
            f"$date {stamp} $end",
            f"$version rpilink-sim {__version__} $end",
            "$timescale 10 ns $end",
            "$scope module rpilink $end",
            *(f"$var wire 1 {sym} {name} $end" for name, sym in self._ids.items()),
            "$upscope $end",
            "$enddefinitions $end",
        ]
        self._file.write("\n".join(header) + "\n")

    def record(
        self, times: npt.NDArray[np.float64], values: dict[str, npt.NDArray[np.int8]]
    ) -> None:
        """Write the changes among these instants (values per wire, parallel to times)."""
        if len(times) == 0:
            return
        stacked = np.stack([values[name] for name in self._ids])
        previous = np.array([self._last.get(name, 99) for name in self._ids], np.int8)
        changed = stacked != np.concatenate([previous[:, None], stacked[:, :-1]], axis=1)
        columns = np.flatnonzero(changed.any(axis=0))
        names = list(self._ids)
        lines: list[str] = []
        for col in columns:
            stamp: int = max(round(times[col] * TICKS_PER_US), self._last_time)
            if stamp != self._last_time:
                lines.append(f"#{stamp}")
                self._last_time = stamp
            for row in np.flatnonzero(changed[:, col]).tolist():
                value = int(stacked[row, col])
                lines.append(("x" if value < 0 else str(value)) + self._ids[names[row]])
        for index, name in enumerate(names):
            self._last[name] = int(stacked[index, -1])
        if lines:
            self._file.write("\n".join(lines) + "\n")

    def close(self) -> None:
        if not self._file.closed:
            self._file.close()
