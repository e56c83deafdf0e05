"""Bus steps as pigpiod requests: claiming, releasing, writing the control lines.

The pigpio backend sends these in batches (``apply``; a burst's first and last
batch carry a pending claim and a turn's end), and pigpiod runs them in order.
"""

from __future__ import annotations

from dataclasses import dataclass

from rpilinkd.phy.codec import BusTiming, Masks
from rpilinkd.phy.events import Levels
from rpilinkd.phy.pigpiod import Request
from rpilinkd.pigpio_protocol import MODE_INPUT, MODE_OUTPUT, Cmd
from rpilinkd.pins import PinMap

WRITE_GUARD_FILTERS = 2  # see write(): the guard is this many debounce times ...
#: ... and at least this: a peer told another bus.sample_us (a mistake the daemons must
#: live with long enough to report it) filters for up to 40 µs by default (-s 10)
WRITE_GUARD_MIN_US = 80


@dataclass(frozen=True)
class StepRequests:
    pins: PinMap
    masks: Masks
    timing: BusTiming

    def claim(self) -> list[Request]:
        """The data lines latched low, then made outputs."""
        requests: list[Request] = [(Cmd.BC1, self.pins.data_mask, 0, b"")]
        return requests + [(Cmd.MODES, gpio, MODE_OUTPUT, b"") for gpio in self.pins.data]

    def release(self) -> list[Request]:
        """No wave, the frame lines low, the data lines inputs (pulled down)."""
        frame_lines = self.masks.stb_out | self.masks.frm_out
        requests: list[Request] = [(Cmd.WVHLT, 0, 0, b""), (Cmd.BC1, frame_lines, 0, b"")]
        return requests + [(Cmd.MODES, gpio, MODE_INPUT, b"") for gpio in self.pins.data]

    def write(self, levels: Levels, *, guarded: bool) -> list[Request]:
        """Clears first, then sets. ``guarded`` (while the arbitration toggles STB,
        debounced): a MICS before them, so two writes are never closer in pigpiod than
        the peer's filter lets through. The toggle gap is timed from when a write is
        sent; a busy pigpiod reads the socket late and runs what piled up in µs (its
        thread takes one command after another), and two toggles that close vanish in
        the peer's glitch filter."""
        requests: list[Request] = []
        if guarded:
            guard_us = max(WRITE_GUARD_FILTERS * self.timing.debounce_us, WRITE_GUARD_MIN_US)
            requests.append((Cmd.MICS, guard_us, 0, b""))
        set_mask = sum(1 << self.pins.out_pin(line) for line, up in levels.items() if up)
        clear_mask = sum(1 << self.pins.out_pin(line) for line, up in levels.items() if not up)
        requests += [(Cmd.BC1, clear_mask, 0, b"")] if clear_mask else []
        return requests + ([(Cmd.BS1, set_mask, 0, b"")] if set_mask else [])
