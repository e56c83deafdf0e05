"""Catch the likeliest misconfiguration: pigpiod sampling more slowly than bus.sample_us.

pigpiod has no command that tells its ``-s``, but its reports do: inside a
frame, a strobe edge comes every ``hold_us`` or ``setup_us + hold_us`` (a sample
and a µs or two by default), so some reports are that close. When pigpiod samples
every 5 µs while the config says 1, edges 2-3 µs apart merge into samples 5 µs
apart: no two reports inside a frame are closer than about 5 µs, and frames
arrive damaged. Report ticks are not exact multiples of the period on a
real Pi (pigpio re-reads its clock every DMA cycle and spreads the drift), so
this looks at a low percentile of the gaps, not their common divisor. When the
period is a multiple of the bus's pair of edges, the edges cancel out in every
sample and no report comes at all: frames then arrive empty (FRM rose and fell
with nothing between), which is the other sign this watches for.
"""

from __future__ import annotations

import logging

import numpy as np

from rpilinkd.phy.codec import U32, BusTiming

_LOGGER = logging.getLogger(__name__)
INSIDE_FRAME_US = 64  # gaps longer than this are between frames or handshakes
GAPS_NEEDED = 256
EMPTY_NEEDED = 8  # frames without a byte, before saying so
PERCENTILE = 5


class SamplePeriodCheck:
    """Feed it the ticks of level-change reports until ``done``; it warns at most once."""

    def __init__(self, timing: BusTiming, where: str) -> None:
        self.sample_us, self.where = timing.sample_us, where
        # the closest reports a correctly set pigpiod shows are a sample apart (an edge
        # quantised down); a slower one shows nothing closer than its own period
        self._threshold = max(2 * timing.sample_us, timing.hold_us + 1)
        self.done = False
        self.suspected_us: int | None = None  # pigpiod's apparent period, if it is too slow
        self._last_tick: int | None = None
        self._gaps: list[U32] = []
        self._count = 0
        self._frames = self._empty = 0

    def frames(self, whole: int, empty: int) -> None:
        """Frames the decoder finished: plausible ones, and empty ones (or shorter than a
        frame can be)."""
        if self.done:
            return
        self._frames, self._empty = self._frames + whole, self._empty + empty
        if self._empty >= EMPTY_NEEDED and self._empty > 2 * self._frames:
            self.done = True
            _LOGGER.warning(
                "frames from %s arrive empty (%d of %d): pigpiod there seems to sample more "
                "slowly (pigpiod -s) than bus.sample_us = %d. Start pigpiod with -s %d, or set "
                "bus.sample_us to its -s on both Pis (docs/operations.md)",
                self.where,
                self._empty,
                self._empty + self._frames,
                self.sample_us,
                self.sample_us,
            )

    def feed(self, ticks: U32) -> None:
        if self.done or not len(ticks):
            return
        if self._last_tick is not None:
            ticks = np.concatenate(([np.uint32(self._last_tick)], ticks))
        self._last_tick = int(ticks[-1])
        gaps = np.diff(ticks)  # uint32 arithmetic: the tick's wrap-around is harmless
        gaps = gaps[(gaps > 0) & (gaps < INSIDE_FRAME_US)]
        self._gaps.append(gaps)
        self._count += len(gaps)
        if self._count >= GAPS_NEEDED:
            self._decide(np.concatenate(self._gaps))

    def _decide(self, gaps: U32) -> None:
        self.done = True
        self._gaps.clear()
        # nearest rank by partition: np.percentile imports numpy.ma on first use, a
        # 10-100 ms stall in the middle of the link's first messages
        rank = len(gaps) * PERCENTILE // 100
        shortest = float(np.partition(gaps, rank)[rank])
        if shortest >= self._threshold:
            self.suspected_us = round(shortest)
            _LOGGER.warning(
                "pigpiod at %s reports edges inside frames at least ~%d µs apart: it seems to "
                "sample every ~%d µs (pigpiod -s), more slowly than bus.sample_us = %d, so "
                "frames will arrive damaged. Start pigpiod with -s %d, or set bus.sample_us "
                "to its -s on both Pis (docs/operations.md)",
                self.where,
                self.suspected_us,
                self.suspected_us,
                self.sample_us,
                self.sample_us,
            )
