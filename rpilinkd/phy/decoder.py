"""The bus decoder: pigpiod's notification reports back to frames and control changes.

A streaming decoder, all numpy, no I/O: feed it bytes as they come off the
socket. While the link arbitrates it reports every change of the four control
inputs; once framing, it latches a unit (a byte, or two on the 16-bit bus) at
each STB change seen while FRM is high, frames from an FRM rise to its fall
(codec.py has the transmitter's side, docs/protocol.md §1 the rules).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from rpilinkd.phy.codec import U32, Masks
from rpilinkd.phy.events import ControlsChanged, FrameReceived, PhyEvent
from rpilinkd.pigpio_protocol import REPORT_FORMAT
from rpilinkd.pins import ControlLine

REPORT = np.dtype(REPORT_FORMAT)


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
        self.heard_tick: int | None = None  # pigpiod's tick of the newest report
        stb, frm = np.uint32(masks.stb_in), np.uint32(masks.frm_in)
        self._stb, self._frm = stb, frm
        self._control_mask = np.uint32(sum(1 << g for g in masks.control_in.values()))
        self._handshake_mask = np.uint32(
            (1 << masks.control_in[ControlLine.REQ]) | (1 << masks.control_in[ControlLine.RW])
        )
        self._mark_mask = self._handshake_mask | np.uint32(1 << masks.frm_in)
        self._unit = masks.width // 8  # bytes per latched unit

    def levels_of(self, word: int) -> dict[ControlLine, bool]:
        return {line: bool(word >> gpio & 1) for line, gpio in self.masks.control_in.items()}

    def feed(self, chunk: bytes) -> Decoded:
        data = self._partial + chunk if self._partial else chunk
        usable = len(data) - len(data) % REPORT.itemsize
        self._partial = data[usable:]
        words = np.frombuffer(data, "<u4", usable // 4).reshape(-1, 3)
        if len(words):
            self.heard_tick = int(words[-1, 1])  # any report, a watchdog's too
        # (array methods and count_nonzero: numpy's module functions and .any() cost
        # several µs more per call on a chunk of a few dozen reports)
        if np.count_nonzero(words[:, 0] >> 16):  # watchdog/alive reports carry no edge
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
        changed = (((levels ^ previous) & self._control_mask) != 0).nonzero()[0]
        self._frame = None
        return Decoded([ControlsChanged(self.levels_of(int(levels[i]))) for i in changed])

    def _framed(self, levels: U32, previous: U32) -> Decoded:
        one = np.uint32(1)
        changes = levels ^ previous
        latching = changes >> self._stb  # STB changed in this report ...
        latching &= levels >> self._frm  # ... while FRM is high
        byte_at = ((latching & one) != 0).nonzero()[0]  # bool first: nonzero is 8x faster
        marks = ((changes & self._mark_mask) != 0).nonzero()[0]  # FRM edges, REQ/RW: rare
        values = self._bytes(levels[byte_at]).tobytes()
        out = Decoded([])
        if not len(marks):
            self._collect(values, out)
            return out
        cuts = byte_at.searchsorted(marks) * self._unit  # bytes latched before each mark
        words, was = levels[marks], previous[marks]
        if not np.count_nonzero((words ^ was) & self._handshake_mask):
            return self._frames_only(values, cuts, (words >> self._frm) & one, out)
        taken = 0
        frm_bit, handshake = 1 << int(self._frm), int(self._handshake_mask)
        for cut, word, before in zip(cuts.tolist(), words.tolist(), was.tolist(), strict=True):
            self._collect(values[taken:cut], out)
            taken = cut
            # one report may show FRM and REQ/RW changed together (the reports between
            # were lost): in wire order a frame ends before a release or grant, and
            # starts after it
            frm_changed = (word ^ before) & frm_bit
            if frm_changed and not word & frm_bit:
                self._finish(out)
            if (word ^ before) & handshake:
                out.events.append(ControlsChanged(self.levels_of(word)))
            if frm_changed and word & frm_bit:  # a new frame (an unfinished one is dropped)
                self._frame = bytearray()
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
        fell = (~rising[:-1] & rising[1:]).nonzero()[0]
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
        """The units latched in these level words, as bytes (low byte first)."""
        shift, width = self.masks.data_shift, self.masks.width
        if shift is not None:
            value = (words >> np.uint32(shift)) & np.uint32((1 << width) - 1)
        else:
            value = np.zeros(len(words), np.uint32)
            for bit, gpio in enumerate(self.masks.data_bits):
                value |= ((words >> np.uint32(gpio)) & np.uint32(1)) << np.uint32(bit)
        if width == 8:
            return value.astype(np.uint8)
        return value.astype("<u2").view(np.uint8)
