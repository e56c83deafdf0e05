"""What a PIO state machine reads: GPIO input levels over time, in 5 ns ticks
(sim/pioemu.py), and the error for what the emulator does not model."""

from __future__ import annotations

import bisect

from rpilinkd.errors import SimError


class PioEmulationError(SimError):
    """The program did something this emulator does not model."""


class Inputs:
    """GPIO input levels over time: a level word from each change on (ticks ascending)."""

    def __init__(self, initial: int = 0) -> None:
        self.ticks: list[int] = []
        self.levels: list[int] = []
        self.initial = initial

    def add(self, tick: int, level: int) -> None:
        if self.ticks and tick < self.ticks[-1]:
            raise PioEmulationError("input changes must come in time order")
        if self.ticks and tick == self.ticks[-1]:
            self.levels[-1] = level
        elif level != (self.levels[-1] if self.levels else self.initial):
            self.ticks.append(tick)
            self.levels.append(level)

    def level(self, tick: int) -> int:
        index = bisect.bisect_right(self.ticks, tick) - 1
        return self.levels[index] if index >= 0 else self.initial

    def next_change(self, tick: int) -> int | None:
        """The first change after ``tick``."""
        index = bisect.bisect_right(self.ticks, tick)
        return self.ticks[index] if index < len(self.ticks) else None

    def forget_before(self, tick: int) -> None:
        """Drop changes no read can need any more (keeps long runs small)."""
        index = bisect.bisect_right(self.ticks, tick) - 1
        if index > 0:
            self.initial = self.levels[index - 1]
            del self.ticks[:index], self.levels[:index]
