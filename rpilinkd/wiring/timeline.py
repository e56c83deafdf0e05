"""The bus pins' levels over time, from pigpiod's reports: a step function of level words.

Times are the local monotonic clock in seconds (pigpiod's ticks, converted).
Each entry is a change; the level holds until the next one.
"""

from __future__ import annotations

import bisect

from rpilinkd.wiring.cable import gpios
from rpilinkd.wiring.plan import Window


class Timeline:
    def __init__(self, start: float, level: int) -> None:
        self.times = [start]
        self.levels = [level]

    def add(self, t: float, level: int) -> None:
        """A new level at ``t`` (a report a little out of order is moved to the last time)."""
        if level == self.levels[-1]:
            return
        self.times.append(max(t, self.times[-1]))
        self.levels.append(level)

    def dump(self, origin: float) -> list[tuple[float, str]]:
        """Every change, in ms from ``origin``, with its level word in hex (for --trace)."""
        return [
            (round((t - origin) * 1000, 3), f"{level:08x}")
            for t, level in zip(self.times, self.levels, strict=True)
        ]

    def __len__(self) -> int:
        return len(self.times)

    def since(self, index: int) -> list[tuple[float, int]]:
        """The changes from entry ``index`` on (keep ``len(timeline)`` as the next cursor)."""
        return list(zip(self.times[index:], self.levels[index:], strict=True))

    def level_at(self, t: float) -> int:
        index = bisect.bisect_right(self.times, t) - 1
        return self.levels[max(index, 0)]

    def first_rise(self, mask: int, after: float) -> float | None:
        """When a bit of ``mask`` first went from low to high after ``after``."""
        previous = self.level_at(after)
        for t, level in zip(self.times, self.levels, strict=True):
            if t <= after:
                continue
            if level & mask & ~previous:
                return t
            previous = level
        return None

    def rises(self, window: Window) -> int:
        """The bits that went from low to high inside ``window``."""
        first = max(bisect.bisect_right(self.times, window.start) - 1, 0)
        previous, out = self.levels[first], 0
        for index in range(first + 1, len(self.times)):
            if self.times[index] >= window.end:
                break
            out |= self.levels[index] & ~previous
            previous = self.levels[index]
        return out

    def majority(self, window: Window, share: float = 0.5) -> int:
        """The bits that were high for more than ``share`` of ``window``."""
        high_s: dict[int, float] = {}
        first = max(bisect.bisect_right(self.times, window.start) - 1, 0)
        for index in range(first, len(self.times)):
            start = max(self.times[index], window.start)
            end = self.times[index + 1] if index + 1 < len(self.times) else window.end
            end = min(end, window.end)
            if start >= window.end:
                break
            if end > start:
                for gpio in gpios(self.levels[index]):
                    high_s[gpio] = high_s.get(gpio, 0.0) + end - start
        least = (window.end - window.start) * share
        return sum(1 << gpio for gpio, seconds in high_s.items() if seconds > least)
