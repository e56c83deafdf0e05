"""A record of when each alert pass ran and how the handshake wires moved, on request.

A round trip on a pigpio bus is a chain of legs, each from the pass that reported
the peer's hand-over (its reports out at that instant, on pigpiod) to this side's
own hand-over, the end of its turn: its RW changing after its last frame. Whole
legs are counted in pass periods, so a leg that ends just after a pass instant
costs a period more. ``rpilink-sim``'s control socket starts and stops the record
(op ``timeline``); the bench turns it into legs (rpilinkd/testbed/legs.py).
Bounded: past ``MAX_ENTRIES`` it stops and says it was cut short.
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
MAX_ENTRIES = 400_000  # some 40,000 round trips: about 10 MB of JSON


@dataclass
class Timeline:
    recording: bool = False
    passes: list[float] = field(default_factory=list)  # µs, the emulator's clock
    edges: list[tuple[str, float, int]] = field(default_factory=list)  # wire, µs, new level
    truncated: bool = False
    _levels: dict[str, int] = field(default_factory=dict)

    def start(self) -> None:
        self.passes, self.edges, self._levels = [], [], {}
        self.recording, self.truncated = True, False

    def stop(self) -> dict[str, Any]:
        self.recording = False
        return {"passes": self.passes, "edges": self.edges, "truncated": self.truncated}

    def record(
        self, t_end: float, times: npt.NDArray[np.float64], wires: Sequence[Wire], a: Side, b: Side
    ) -> None:
        """One pass ending at ``t_end`` over these instants (both boards' pins). A
        wire's first level is not the one before the instants: a change right at the
        pass's start (a command held back to it) is in it, and must count."""
        self.passes.append(t_end)
        for wire in wires:
            if wire.name not in WIRES:
                continue
            side, gpio = (a, wire.a) if wire.name.endswith("_AB") else (b, wire.b)
            level = (side.bit(gpio, side.latch) & side.bit(gpio, side.drive)).astype(np.int8)
            before = self._levels.get(wire.name, 0)  # (high at the start: a rise first)
            changed = np.flatnonzero(np.diff(level, prepend=np.int8(before)))
            self.edges += [(wire.name, float(times[i]), int(level[i])) for i in changed]
            self._levels[wire.name] = int(level[-1])
        if len(self.passes) + len(self.edges) > MAX_ENTRIES:
            self.recording, self.truncated = False, True
