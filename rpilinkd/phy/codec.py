"""The bus codec: frames to pigpio pulses, notification reports back to frames.

Pure functions and one small streaming decoder, all numpy, no I/O.

On the wire (docs/protocol.md §1) each byte is a strobe pulse: the data lines
change together with a falling STB, STB rises ``setup_us`` later and stays high
``hold_us``; the receiver latches the byte on the rising edge. FRM rises with
the first byte's data and falls with the last strobe, then stays low
``gap_us``. A level shorter than the receiver's sample period may be missed,
so each of the three times must be at least one sample period.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from rpilinkd.config import BusConfig
from rpilinkd.phy.events import ControlsChanged, FrameReceived, PhyEvent
from rpilinkd.pigpio_protocol import REPORT_FORMAT
from rpilinkd.pins import ControlLine, PinMap

U32 = npt.NDArray[np.uint32]
REPORT = np.dtype(REPORT_FORMAT)


@dataclass(frozen=True)
class BusTiming:
    """The bus's time base, all in µs; each at least one sample period to be safe."""

    sample_us: int
    setup_us: int
    hold_us: int
    gap_us: int
    debounce_us: int = 0  # control inputs: pigpiod's glitch filter (0: none)

    @classmethod
    def from_config(cls, bus: BusConfig) -> BusTiming:
        return cls(
            bus.sample_us,
            bus.effective_setup_us,
            bus.effective_hold_us,
            bus.effective_gap_us,
            bus.effective_debounce_us,
        )

    @property
    def byte_us(self) -> int:
        return self.setup_us + self.hold_us

    @property
    def line_rate_bps(self) -> float:
        """Raw bytes per second while a frame is on the wire."""
        return 1e6 / self.byte_us

    def frame_us(self, length: int) -> int:
        return length * self.byte_us + self.gap_us

    def problems(self) -> list[str]:
        """Timings the receiver's sampling cannot resolve reliably."""
        return [
            f"{name} = {value} µs is below the {self.sample_us} µs sample period: "
            "strobes or frame gaps will be missed"
            for name, value in (
                ("setup_us", self.setup_us),
                ("hold_us", self.hold_us),
                ("gap_us", self.gap_us),
            )
            if value < self.sample_us
        ]


@dataclass(frozen=True)
class Masks:
    """The pin map as GPIO masks, lookup tables and the pulse blocks of each byte value."""

    data: int
    stb_out: int
    frm_out: int
    stb_in: int
    frm_in: int
    control_in: dict[ControlLine, int]
    data_shift: int | None
    data_bits: tuple[int, ...]
    byte_to_set: U32  # byte value -> data GPIOs to set

    @classmethod
    def from_pins(cls, pins: PinMap) -> Masks:
        values = np.arange(256, dtype=np.uint32)
        table = np.zeros(256, np.uint32)
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
            byte_to_set=table,
        )

    def byte_blocks(self, timing: BusTiming) -> U32:
        """For each byte value, its two pulses (data, then strobe rise) as 6 words."""
        blocks = np.zeros((256, 6), np.uint32)
        blocks[:, 0] = self.byte_to_set
        blocks[:, 1] = (np.uint32(self.data) & ~self.byte_to_set) | np.uint32(self.stb_out)
        blocks[:, 2] = timing.setup_us
        blocks[:, 3] = self.stb_out
        blocks[:, 5] = timing.hold_us
        return blocks


def encode(frames: Sequence[bytes], masks: Masks, timing: BusTiming) -> U32:
    """Pulses (rows of on, off, delay) that put ``frames`` on the wire back to back.

    Per byte: a data pulse (set the 1-bits, clear the 0-bits and STB; wait setup)
    and a rise pulse (set STB; wait hold); the first data pulse of a frame also
    raises FRM; after a frame's last byte one pulse lowers STB and FRM (wait gap).
    """
    blocks = masks.byte_blocks(timing)  # cheap: 256 rows
    data = np.frombuffer(b"".join(frames), np.uint8)
    body = np.take(blocks, data, axis=0).reshape(-1, 3)  # two rows per byte
    out = np.empty((len(body) + len(frames), 3), np.uint32)
    end_row = np.array([0, masks.stb_out | masks.frm_out, timing.gap_us], np.uint32)
    src = dst = 0
    for length, count in _runs(frames):  # frames of one length go as one 3-D block
        rows = 2 * length
        target = out[dst : dst + count * (rows + 1)].reshape(count, rows + 1, 3)
        target[:, :rows] = body[src : src + count * rows].reshape(count, rows, 3)
        target[:, 0, 0] |= np.uint32(masks.frm_out)
        target[:, rows] = end_row
        src, dst = src + count * rows, dst + count * (rows + 1)
    return out


def _runs(frames: Sequence[bytes]) -> list[tuple[int, int]]:
    """(length, how many) for each run of consecutive frames of equal length."""
    runs: list[tuple[int, int]] = []
    for frame in frames:
        if runs and runs[-1][0] == len(frame):
            runs[-1] = (len(frame), runs[-1][1] + 1)
        else:
            runs.append((len(frame), 1))
    return runs


def pulse_cost(pulses: U32) -> tuple[int, int]:
    """(CBs, OOL words) a wave of these pulses takes in pigpiod, start CB included."""
    on, off, delay = pulses[:, 0], pulses[:, 1], pulses[:, 2]
    cbs = int(np.count_nonzero(on | off)) + int(np.count_nonzero(delay)) + 1
    return cbs, int(np.count_nonzero(on)) + int(np.count_nonzero(off))


@dataclass
class Decoded:
    """What one chunk of reports held: frames and control changes, in wire order."""

    events: list[PhyEvent]
    orphan_bytes: int = 0
    empty_frames: int = 0
    ticks: U32 | None = None  # of the level-change reports (sampling.py reads pigpiod's -s)


class ReportDecoder:
    """Turns pigpiod's notification stream into frames and control changes, in bulk.

    Feed it raw bytes as they come off the socket (any chunking); it keeps the
    partial report, the last level word and the frame being received. With
    ``framing`` off (during arbitration) every change of the four control inputs
    is an event; with it on, STB and FRM carry frames and only REQ and RW
    changes are events.
    """

    def __init__(self, masks: Masks, initial_level: int = 0) -> None:
        self.masks = masks
        self.framing = False
        self._partial = b""
        self._last = initial_level
        self._frame: bytearray | None = None  # None: not inside a frame
        stb, frm = np.uint32(masks.stb_in), np.uint32(masks.frm_in)
        self._stb, self._frm = stb, frm
        self._control_mask = np.uint32(sum(1 << g for g in masks.control_in.values()))
        self._handshake_mask = np.uint32(
            (1 << masks.control_in[ControlLine.REQ]) | (1 << masks.control_in[ControlLine.RW])
        )
        self._mark_mask = self._handshake_mask | np.uint32(1 << masks.frm_in)

    def levels_of(self, word: int) -> dict[ControlLine, bool]:
        return {line: bool(word >> gpio & 1) for line, gpio in self.masks.control_in.items()}

    def feed(self, chunk: bytes) -> Decoded:
        data = self._partial + chunk if self._partial else chunk
        usable = len(data) - len(data) % REPORT.itemsize
        self._partial = data[usable:]
        words = np.frombuffer(data, "<u4", usable // 4).reshape(-1, 3)
        if len(words) and words[:, 0].max() > 0xFFFF:  # watchdog/alive reports carry no edge
            words = words[(words[:, 0] >> 16) == 0]
        levels = words[:, 2].copy()  # contiguous: every later pass runs faster
        if not len(levels):
            return Decoded([])
        previous = np.empty(len(levels), np.uint32)
        previous[0] = self._last
        previous[1:] = levels[:-1]
        self._last = int(levels[-1])
        decode = self._framed if self.framing else self._controls
        decoded = decode(levels, previous)
        decoded.ticks = words[:, 1]
        return decoded

    def _controls(self, levels: U32, previous: U32) -> Decoded:
        changed = np.flatnonzero(((levels ^ previous) & self._control_mask) != 0)
        self._frame = None
        return Decoded([ControlsChanged(self.levels_of(int(levels[i]))) for i in changed])

    def _framed(self, levels: U32, previous: U32) -> Decoded:
        one = np.uint32(1)
        changes = levels ^ previous
        latching = (changes & levels) >> self._stb  # STB rose in this report ...
        latching &= levels >> self._frm  # ... while FRM is high
        byte_at = np.flatnonzero((latching & one) != 0)  # bool first: nonzero is 8x faster
        marks = np.flatnonzero((changes & self._mark_mask) != 0)  # FRM edges, REQ/RW: rare
        values = self._bytes(levels[byte_at]).tobytes()
        out = Decoded([])
        if not len(marks):
            self._collect(values, out)
            return out
        cuts = np.searchsorted(byte_at, marks)  # bytes latched before each mark
        words, was = levels[marks], previous[marks]
        if not ((words ^ was) & self._handshake_mask).any():
            return self._frames_only(values, cuts, (words >> self._frm) & one, out)
        taken = 0
        frm_bit, handshake = 1 << int(self._frm), int(self._handshake_mask)
        for cut, word, before in zip(cuts.tolist(), words.tolist(), was.tolist(), strict=True):
            self._collect(values[taken:cut], out)
            taken = cut
            if (word ^ before) & handshake:  # REQ or RW changed (maybe with FRM)
                out.events.append(ControlsChanged(self.levels_of(word)))
            if not (word ^ before) & frm_bit:
                continue
            if word & frm_bit:  # FRM rose: a new frame (an unfinished one is dropped)
                self._frame = bytearray()
            else:
                self._finish(out)
        self._collect(values[taken:], out)
        return out

    def _frames_only(
        self, values: bytes, cuts: npt.NDArray[np.intp], rose: U32, out: Decoded
    ) -> Decoded:
        """The common case, FRM edges only: slice the frames out in one go."""
        rising = rose.astype(bool)
        if not rising[0]:  # the first edge closes the frame carried over from the last chunk
            self._collect(values[: cuts[0]], out)
            self._finish(out)
        whole = rising[:-1] & ~rising[1:]  # a rise followed by a fall
        starts, ends = cuts[:-1][whole].tolist(), cuts[1:][whole].tolist()
        pairs = zip(starts, ends, strict=True)
        out.events += [FrameReceived(values[a:b]) for a, b in pairs if b > a]
        out.empty_frames += sum(b == a for a, b in zip(starts, ends, strict=True))
        # bytes between a fall and the next rise belong to no frame
        fell = np.flatnonzero(~rising[:-1] & rising[1:])
        out.orphan_bytes += int((cuts[fell + 1] - cuts[fell]).sum())
        if rising[-1]:  # the last edge opens a frame that goes on in the next chunk
            self._frame = bytearray(values[cuts[-1] :])
        else:
            self._frame = None
            out.orphan_bytes += len(values) - int(cuts[-1])
        return out

    def _collect(self, values: bytes, out: Decoded) -> None:
        if not values:
            return
        if self._frame is None:
            out.orphan_bytes += len(values)  # strobes outside any frame we saw start
        else:
            self._frame += values

    def _finish(self, out: Decoded) -> None:
        if self._frame is None:
            return
        frame = bytes(self._frame)
        self._frame = None
        if frame:
            out.events.append(FrameReceived(frame))
        else:
            out.empty_frames += 1

    def _bytes(self, words: U32) -> npt.NDArray[np.uint8]:
        shift = self.masks.data_shift
        if shift is not None:
            return ((words >> np.uint32(shift)) & np.uint32(0xFF)).astype(np.uint8)
        value = np.zeros(len(words), np.uint32)
        for bit, gpio in enumerate(self.masks.data_bits):
            value |= ((words >> np.uint32(gpio)) & np.uint32(1)) << np.uint32(bit)
        return value.astype(np.uint8)


def pack_wvag(pulses: U32) -> bytes:
    """The WVAG extension: 12 bytes per pulse, little-endian."""
    return np.ascontiguousarray(pulses, "<u4").tobytes()
