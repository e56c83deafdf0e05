"""A record of when each alert pass ran and how the handshake wires moved, on request.

A round trip on a pigpio bus is a chain of legs, each from the pass that reported
the peer's hand-over (its reports out at that instant, on pigpiod) to this side's
own hand-over, the end of its turn: its RW changing after its last frame. Whole
legs are counted in pass periods, so a leg that ends just after a pass instant
costs a period more. ``rpilink-sim``'s control socket starts and stops the record
(op ``timeline``); the bench turns it into legs (rpilinkd/testbed/legs.py).
Bounded: past ``MAX_PASSES`` it stops and says it was cut short.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from rpilinkd.sim.wires import Side, Wire

#: each board's frame and RW outputs (a's to b are the _AB wires)
WIRES = ("FRM_AB", "RW_AB", "FRM_BA", "RW_BA")
MAX_PASSES = 50_000  # busy passes kept: some 9,000 round trips, tens of MB at most


@dataclass
class Timeline:
    """While recording, a pass only keeps references to the arrays it already made
    (the instants, and the driving side's latch and drive masks): the bench records
    the round trips it times, and cutting edges at every pass kept the emulator busy
    enough to make its later passes late (0.14-0.23 ms more per 64 B round trip on the
    2-core VM). The edges are cut once, at :meth:`stop`."""

    recording: bool = False
    truncated: bool = False
    _passes: list[_Pass] = field(default_factory=list)

    def start(self) -> None:
        self._passes = []
        self.recording, self.truncated = True, False

    def stop(self) -> dict[str, Any]:
        """The passes' instants (µs, the emulator's clock), each board's own, and every
        edge of the handshake wires (wire, µs, new level), in pass order."""
        self.recording = False
        passes, self._passes = self._passes, []
        levels: dict[str, int] = {}  # low at first: a wire high from the start rose
        edges: list[tuple[str, float, int]] = []
        for taken in passes:
            edges += taken.edges(levels)
        return {
            "passes": [p.t_end for p in passes],
            "board_passes": {
                name: [p.t_end for p in passes if name in p.boards] for name in ("a", "b")
            },
            "edges": edges,
            "truncated": self.truncated,
        }

    def record(
        self,
        t_end: float,
        times: npt.NDArray[np.float64],
        wires: Sequence[Wire],
        a: Side,
        b: Side,
        *,
        boards: tuple[str, ...] = ("a", "b"),
    ) -> None:
        """One pass of ``boards`` ending at ``t_end`` over these instants (both boards'
        pins since the last pass of either)."""
        self._passes.append(_Pass(t_end, boards, times, wires, a, b))
        if len(self._passes) >= MAX_PASSES:
            self.recording, self.truncated = False, True


@dataclass(frozen=True, slots=True)
class _Pass:
    t_end: float
    boards: tuple[str, ...]
    times: npt.NDArray[np.float64]
    wires: Sequence[Wire]
    a: Side
    b: Side

    def edges(self, levels: dict[str, int]) -> list[tuple[str, float, int]]:
        """The handshake wires' changes in this pass, after ``levels`` (updated). A
        wire's first level is not the one before the instants: a change right at the
        pass's start (a command held back to it) is in it, and must count."""
        found: list[tuple[str, float, int]] = []
        for wire in self.wires:
            if wire.name not in WIRES:
                continue
            side, gpio = (self.a, wire.a) if wire.name.endswith("_AB") else (self.b, wire.b)
            level = (side.bit(gpio, side.latch) & side.bit(gpio, side.drive)).astype(np.int8)
            changed = np.flatnonzero(np.diff(level, prepend=np.int8(levels.get(wire.name, 0))))
            found += [(wire.name, float(self.times[i]), int(level[i])) for i in changed]
            levels[wire.name] = int(level[-1])
        return found
