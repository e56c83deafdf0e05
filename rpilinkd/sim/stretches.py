"""What a pass samples: the instants the pins changed, and the faults that strike.

Each board's alert thread passes at instants of its own (sim/clock.py), so the pins
of both boards are cut at every pass of either into stretches, each kept until both
boards have sampled it; a board's pass samples the stretches since its last one,
joined into one window.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from rpilinkd.sim.wires import Side

F64 = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Window:
    """A stretch of time, or a board's pass: the instants anything changed, and the
    faults that strike in it."""

    start: float
    end: float
    times: F64
    glitches: list[tuple[str, float, float]]
    flips: list[str]


@dataclass(frozen=True)
class Stretch:
    """Both boards' pins from one pass of either board to the next, and its faults:
    kept until every board has sampled it (each board's alert thread has its own
    instants, sim/clock.py)."""

    window: Window
    a: Side
    b: Side


def joined(stretches: list[Stretch]) -> tuple[Window, Side, Side]:
    """Consecutive stretches as one window (one board's pass since its last)."""
    if len(stretches) == 1:
        only = stretches[0]
        return only.window, only.a, only.b
    windows = [s.window for s in stretches]
    window = Window(
        windows[0].start,
        windows[-1].end,
        np.concatenate([w.times for w in windows]),
        [g for w in windows for g in w.glitches],
        [f for w in windows for f in w.flips],
    )
    return window, _joined_side([s.a for s in stretches]), _joined_side([s.b for s in stretches])


def _joined_side(parts: list[Side]) -> Side:
    drive = np.concatenate([side.drive for side in parts])
    return Side(drive, np.concatenate([side.latch for side in parts]), parts[0].pulls)
