"""pigpiod's alert thread as a bottleneck: how many level changes it can report.

On a Pi the sampling is DMA and never misses a sample, but turning changed
samples into reports is CPU work for one thread. The best public measurement
is about 400,000 changes a second at ``-s 1`` (joan2937/pigpio#35, a Pi 2B).
When changes come faster, the thread falls behind; the samples wait in
pigpiod's ring buffer (``-b``, 120 ms by default) and, once the thread is a
whole ring behind, the DMA overwrites them: those changes are never
reported, and nothing says so. That is what this models, per board:

* each pass may turn at most ``rate`` x (time since the last pass) changed
  samples into reports; the rest wait, in order (reports come late);
* a waiting sample older than the ring is lost (counted, never reported);
* a pass that comes late because the emulator itself was starved (a loaded
  machine, not a loaded Pi) brings its samples late but loses none: a starved
  alert thread is modelled on purpose (``stalled_until_us``, the ``stall`` action).

``rate = 0`` switches the ceiling off (an idealised pigpiod).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

U32 = npt.NDArray[np.uint32]
F64 = npt.NDArray[np.float64]
DEFAULT_REPORT_RATE = 400_000  # changes per second (joan2937/pigpio#35)
DEFAULT_BUFFER_MS = 120  # pigpiod -b
SUPERCYCLE, SAMPLES_PER_CYCLE = 800, 25  # pigpio.c SUPERCYCLE, PULSE_PER_CYCLE


def ring_ms(buffer_ms: float, sample_us: int) -> float:
    """How long pigpiod's sample ring really is for ``-b buffer_ms -s sample_us``: whole
    20 ms servo cycles, then whole super-cycles of 800 DMA cycles of 25 samples each
    (pigpio.c initAllocDMAMem). The default -b 120 keeps 200 ms at -s 5, 120 at -s 1."""
    servo_cycles = math.ceil(buffer_ms / 20)
    cycles = SUPERCYCLE * servo_cycles // sample_us
    cycles = SUPERCYCLE * math.ceil(cycles / SUPERCYCLE)
    return cycles * SAMPLES_PER_CYCLE * sample_us / 1000


@dataclass
class AlertThread:
    rate: float = DEFAULT_REPORT_RATE
    buffer_ms: float = DEFAULT_BUFFER_MS
    lost: int = 0
    worst_backlog: int = 0
    _at: F64 = field(default_factory=lambda: np.zeros(0))
    _level: U32 = field(default_factory=lambda: np.zeros(0, np.uint32))
    _changed: U32 = field(default_factory=lambda: np.zeros(0, np.uint32))
    _last_us: float | None = None
    stalled_until_us: float = 0.0  # a starved alert thread (a busy Pi) reports nothing
    _stalling: bool = False

    def process(self, at: F64, level: U32, changed: U32, now_us: float) -> tuple[F64, U32, U32]:
        """Take this pass's changed samples; give back those reported now, in order."""
        self._stalling = now_us < self.stalled_until_us
        if self._stalling:  # the samples wait in the ring; the thread's budget keeps
            self._backlog(at, level, changed)
            return at[:0], level[:0], changed[:0]
        span = 0.0 if self._last_us is None else now_us - self._last_us
        self._last_us = now_us
        if self.rate <= 0 and not len(self._at):
            return at, level, changed
        if len(self._at):
            # only samples that already waited can be a whole ring behind (module doc)
            overwritten = int(self._at.searchsorted(now_us - self.buffer_ms * 1000.0))
            self.lost += overwritten
            at = np.concatenate([self._at[overwritten:], at])
            level = np.concatenate([self._level[overwritten:], level])
            changed = np.concatenate([self._changed[overwritten:], changed])
        budget = len(at) if self.rate <= 0 else int(self.rate * span / 1e6)
        done = min(len(at), budget)
        self._at, self._level, self._changed = at[done:], level[done:], changed[done:]
        self.worst_backlog = max(self.worst_backlog, len(self._at))
        return at[:done], level[:done], changed[:done]

    def _backlog(self, at: F64, level: U32, changed: U32) -> None:
        self._at = np.concatenate([self._at, at])
        self._level = np.concatenate([self._level, level])
        self._changed = np.concatenate([self._changed, changed])
        self.worst_backlog = max(self.worst_backlog, len(self._at))

    @property
    def caught_up(self) -> bool:
        return not len(self._at) and not self._stalling

    def idle(self, now_us: float) -> None:
        """A pass with nothing to report."""
        self._last_us = now_us

    def reset(self) -> None:
        """pigpiod restarted: its ring and its backlog are gone."""
        self._at, self._level = np.zeros(0), np.zeros(0, np.uint32)
        self._changed = np.zeros(0, np.uint32)
        self._last_us = None
