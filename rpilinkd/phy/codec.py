"""The bus encoder: frames to pigpio pulses (decoder.py reads them back). Pure numpy.

On the wire (docs/protocol.md §1, bus version 2) every edge of STB, rising and
falling, carries one unit: a byte, or two on the 16-bit bus. The receiver's
pigpiod reports each STB edge once, with every data line in the same report:
one report per unit, and a unit per report. Units go in pairs:

* a **rising** edge: the data pulse (set the 1-bits, clear the 0-bits), then
  ``setup_us`` later a pulse that raises STB; then ``hold_us``;
* a **falling** edge: one pulse that sets the next unit's 1-bits, then clears
  its 0-bits *and* STB. pigpio writes a pulse's set mask before its clear mask,
  so a sample between the two writes sees STB unchanged (nothing to latch)
  and the sample after both sees STB fallen with every data bit in place. A
  rising edge cannot share its pulse that way (it would be in the set write,
  before the clear), hence its separate data pulse. Then ``hold_us``.

FRM rises with a frame's first data pulse, at least ``setup_us`` before the
first edge, and falls in one write with STB and the data lines after the last
unit's hold (frames are a multiple of 4 bytes, so STB is already low there):
idle lines are low. The receiver latches a unit at each STB change it sees
while FRM is high. ``hold_us`` must exceed the receiver's sample period: the
first sample after an edge must come before the next data change, even a
sample that falls on the very µs of that change (pigpio's waves and samples
both tick in whole µs, and either may come first); ``gap_us`` too, so that
a sample sees FRM low between two frames.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from rpilinkd.config import BusConfig
from rpilinkd.pins import ControlLine, PinMap

U32 = npt.NDArray[np.uint32]
ROWS_PER_PAIR = 3  # rising unit: data pulse, STB pulse; falling unit: one pulse


@dataclass(frozen=True)
class BusTiming:
    """The bus's time base, in µs, and its width in data lines."""

    sample_us: int
    setup_us: int  # data to a rising strobe edge
    hold_us: int  # a strobe edge to the next data change
    gap_us: int  # frame-enable low between frames
    debounce_us: int = 0  # control inputs: pigpiod's glitch filter (0: none)
    width: int = 8

    @classmethod
    def from_config(cls, bus: BusConfig) -> BusTiming:
        return cls(
            bus.sample_us,
            bus.effective_setup_us,
            bus.effective_hold_us,
            bus.effective_gap_us,
            bus.effective_debounce_us,
            bus.width,
        )

    @property
    def unit_bytes(self) -> int:
        return self.width // 8

    @property
    def pair_us(self) -> int:
        """Two units: a rising edge and a falling one."""
        return self.setup_us + 2 * self.hold_us

    @property
    def line_rate_bps(self) -> float:
        """Raw bytes per second while a frame is on the wire."""
        return 2 * self.unit_bytes * 1e6 / self.pair_us

    @property
    def edges_per_second(self) -> float:
        """Reports a second the receiver's pigpiod must make while a frame is on the wire."""
        return 2e6 / self.pair_us

    def frame_us(self, length: int) -> float:
        return length / self.unit_bytes / 2 * self.pair_us + self.gap_us

    def problems(self) -> list[str]:
        """Timings the receiver's sampling cannot resolve reliably."""
        found = []
        if self.hold_us <= self.sample_us:
            found.append(
                f"hold_us = {self.hold_us} µs does not exceed the {self.sample_us} µs sample "
                "period: a strobe edge may be seen with the next unit's data"
            )
        if self.gap_us <= self.sample_us:
            found.append(
                f"gap_us = {self.gap_us} µs does not exceed the {self.sample_us} µs sample "
                "period: two frames may run together"
            )
        if self.setup_us < 1:
            found.append("setup_us must be at least 1 µs")
        return found


@dataclass(frozen=True)
class Masks:
    """The pin map as GPIO masks, lookup tables and the set mask of each unit value."""

    data: int
    stb_out: int
    frm_out: int
    stb_in: int
    frm_in: int
    control_in: dict[ControlLine, int]
    data_shift: int | None
    data_bits: tuple[int, ...]
    unit_to_set: U32  # unit value (a byte, or two) -> data GPIOs to set

    @classmethod
    def from_pins(cls, pins: PinMap) -> Masks:
        values = np.arange(1 << pins.width, dtype=np.uint32)
        table = np.zeros(len(values), np.uint32)
        for bit, gpio in enumerate(pins.data):
            table |= ((values >> np.uint32(bit)) & np.uint32(1)) << np.uint32(gpio)
        return cls(
            data=pins.data_mask,
            stb_out=1 << pins.stb_out,
            frm_out=1 << pins.frm_out,
            stb_in=pins.stb_in,
            frm_in=pins.frm_in,
            control_in={line: pins.in_pin(line) for line in ControlLine},
            data_shift=pins.data_shift,
            data_bits=pins.data,
            unit_to_set=table,
        )

    @property
    def width(self) -> int:
        return len(self.data_bits)


def units_of(data: npt.NDArray[np.uint8], width: int) -> U32:
    """Bytes as bus units: themselves, or little-endian pairs on the 16-bit bus."""
    if width == 8:
        return data.astype(np.uint32)
    return data[0::2].astype(np.uint32) | data[1::2].astype(np.uint32) << np.uint32(8)


class Encoder:
    """Frames to pulses for one pin map and timing, from two lookup tables: the rows of a
    rising unit (data pulse, STB pulse) and of a falling unit (one pulse), by unit value."""

    def __init__(self, masks: Masks, timing: BusTiming) -> None:
        self.masks, self.timing = masks, timing
        sets = masks.unit_to_set
        clears = np.uint32(masks.data) & ~sets
        stb = np.uint32(masks.stb_out)
        self.rising = np.zeros((len(sets), 6), np.uint32)  # two rows of (on, off, delay)
        self.rising[:, 0], self.rising[:, 1] = sets, clears
        self.rising[:, 2] = timing.setup_us
        self.rising[:, 3:] = (stb, 0, timing.hold_us)
        self.falling = np.stack([sets, clears | stb, np.full(len(sets), timing.hold_us)], 1)
        self.falling = self.falling.astype(np.uint32)
        self.pairs: U32 | None = None  # 8-bit bus: both units of a pair, by their two bytes
        if masks.width == 8:
            both = np.arange(1 << 16)
            self.pairs = np.concatenate([self.rising[both & 0xFF], self.falling[both >> 8]], 1)

    def encode(self, frames: Sequence[bytes]) -> U32:
        masks, timing = self.masks, self.timing
        unit_bytes = masks.width // 8
        # (plain Python over the frames, array methods: a burst is often one small frame,
        # where numpy's module functions cost more than the work)
        sizes = [len(frame) for frame in frames]
        if any(size % (2 * unit_bytes) for size in sizes):
            raise ValueError("frames must be whole numbers of unit pairs (whole 32-bit words)")
        lengths = np.array(sizes, np.int64)
        data = np.frombuffer(b"".join(frames), np.uint8)
        if self.pairs is not None:  # one lookup per byte pair (take: far faster than [...])
            rows = self.pairs.take(data.view("<u2"), axis=0).reshape(-1, 3)
        else:
            units = units_of(data, masks.width).astype(np.intp)  # 32-bit numpy: take
            rising = self.rising.take(units[0::2], axis=0)
            falling = self.falling.take(units[1::2], axis=0)
            rows = np.concatenate([rising, falling], axis=1).reshape(-1, 3)
        out = np.empty((len(rows) + len(frames), 3), np.uint32)
        idle = (0, masks.data | masks.stb_out | masks.frm_out, timing.gap_us)  # all low after
        src = dst = 0
        for length, count in _runs(lengths // unit_bytes // 2):  # equal frames: a 3-D block
            per = ROWS_PER_PAIR * length
            target = out[dst : dst + count * (per + 1)].reshape(count, per + 1, 3)
            target[:, :per] = rows[src : src + count * per].reshape(count, per, 3)
            target[:, 0, 0] |= np.uint32(masks.frm_out)  # FRM rises with the first data
            target[:, per] = idle
            src, dst = src + count * per, dst + count * (per + 1)
        return out


def encode(frames: Sequence[bytes], masks: Masks, timing: BusTiming) -> U32:
    """Pulses (rows of on, off, delay) that put ``frames`` on the wire back to back."""
    return Encoder(masks, timing).encode(frames)


def _runs(values: npt.NDArray[np.int64]) -> list[tuple[int, int]]:
    """(value, how many) for each run of equal consecutive values."""
    if len(values) < 2:
        return [(int(values[0]), 1)] if len(values) else []
    starts = np.diff(values).nonzero()[0] + 1
    edges = np.concatenate(([0], starts, [len(values)]))
    return [(int(values[a]), int(b - a)) for a, b in itertools.pairwise(edges)]


def frame_cost(length: int, width: int) -> tuple[int, int, int]:
    """(pulses, CBs, OOL words), at most, of one frame of ``length`` bytes in a wave.

    Per pair of units: three pulses, each one CB for its masks and one for its
    delay; five mask words. The end pulse: two CBs, one word.
    """
    pairs = length // (width // 8) // 2
    return 3 * pairs + 1, 6 * pairs + 2, 5 * pairs + 1


def pulse_cost(pulses: U32) -> tuple[int, int]:
    """(CBs, OOL words) a wave of these pulses takes in pigpiod, start CB included."""
    on, off, delay = pulses[:, 0], pulses[:, 1], pulses[:, 2]
    cbs = int(np.count_nonzero(on | off)) + int(np.count_nonzero(delay)) + 1
    return cbs, int(np.count_nonzero(on)) + int(np.count_nonzero(off))


def pack_wvag(pulses: U32) -> bytes:
    """The WVAG extension: 12 bytes per pulse, little-endian."""
    return np.ascontiguousarray(pulses, "<u4").tobytes()
