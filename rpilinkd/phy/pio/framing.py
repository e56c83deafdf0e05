"""The host's side of the PIO FIFOs: frames to TX words, RX words back to frames (numpy).

TX, per frame: a header word (pairs of units - 1), then the frame's bytes as
little-endian words (frames are whole words, so no padding). RX: one word per
unit (a byte, or two bytes little-endian on the 16-bit bus) and, where FRM
fell, ``RX_MARKERS`` words 0xFFFFFFFF; a frame is the units between two frame
ends (a run of markers, in whole multiples of ``RX_MARKERS``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from rpilinkd.phy.codec import U32
from rpilinkd.phy.pio.programs import MARKER, RX_MARKERS

WORD = 4


def tx_words(frames: Sequence[bytes], width: int) -> U32:
    """The TX FIFO words of a burst (frames: whole words, checked by the caller)."""
    unit_bytes = width // 8
    parts: list[U32] = []
    for frame in frames:
        pairs = len(frame) // (2 * unit_bytes)
        parts.append(np.array([pairs - 1], np.uint32))
        parts.append(np.frombuffer(frame, "<u4").astype(np.uint32))
    return np.concatenate(parts) if parts else np.zeros(0, np.uint32)


def tx_frame_words(length: int) -> int:
    """TX FIFO words one frame of ``length`` bytes takes."""
    return 1 + length // WORD


@dataclass
class RxDecoded:
    frames: list[bytes] = field(default_factory=list)
    empty_frames: int = 0


class RxDecoder:
    """Streams RX FIFO words into frames; keeps the frame in progress between chunks."""

    def __init__(self, width: int, markers: int = RX_MARKERS) -> None:
        self.width, self.markers = width, markers
        self._pending = 0  # markers of the current run, modulo ``markers``
        self._partial = b""

    def reset(self) -> None:
        self._pending, self._partial = 0, b""

    def feed(self, words: U32) -> RxDecoded:
        out = RxDecoded()
        if not len(words):
            return out
        is_marker = words == np.uint32(MARKER)
        ends = (self._pending + np.cumsum(is_marker)) // self.markers  # frame ends so far
        units = np.flatnonzero(~is_marker)
        frame_of_unit = ends[units]
        data = self._bytes(words[units])
        finished = int(ends[-1])
        cuts = np.searchsorted(frame_of_unit, np.arange(1, finished + 1)) * (self.width // 8)
        start = 0
        for index, cut in enumerate(cuts.tolist()):
            frame = data[start:cut]
            if index == 0:
                frame, self._partial = self._partial + frame, b""
            if frame:
                out.frames.append(frame)
            else:
                out.empty_frames += 1
            start = cut
        self._partial += data[start:]
        self._pending = (self._pending + int(is_marker.sum())) % self.markers
        return out

    def _bytes(self, units: U32) -> bytes:
        if self.width == 8:
            return units.astype(np.uint8).tobytes()
        return units.astype("<u2").tobytes()
