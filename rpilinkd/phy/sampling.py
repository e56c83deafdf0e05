"""Catch the likeliest misconfiguration: pigpiod sampling more slowly than bus.sample_us.

pigpiod has no command that tells its ``-s``, but its reports do: inside a
frame, the edges come every setup or hold time (one sample by default), so
consecutive reports are one sample apart. When pigpiod samples every 5 µs while
the config says 1, no two edges inside a frame are closer than about 5 µs, and
frames arrive damaged. Report ticks are not exact multiples of the period on a
real Pi (pigpio re-reads its clock every DMA cycle and spreads the drift), so
this looks at a low percentile of the gaps, not their common divisor.
"""

from __future__ import annotations

import logging

import numpy as np

from rpilinkd.phy.codec import U32

_LOGGER = logging.getLogger(__name__)
INSIDE_FRAME_US = 64  # gaps longer than this are between frames or handshakes
GAPS_NEEDED = 256
PERCENTILE = 5


class SamplePeriodCheck:
    """Feed it the ticks of level-change reports until ``done``; it warns at most once."""

    def __init__(self, sample_us: int, where: str) -> None:
        self.sample_us, self.where = sample_us, where
        self.done = False
        self.suspected_us: int | None = None  # pigpiod's apparent period, if it is too slow
        self._last_tick: int | None = None
        self._gaps: list[U32] = []
        self._count = 0

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
        shortest = float(np.percentile(gaps, PERCENTILE))
        if shortest >= 2 * self.sample_us:
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
