"""One board's waveform transmitter: what plays when, in wall-clock µs.

Waves are expanded into timed set/clear events lazily, only as far as the
clock has gone, so a REPEAT wave or a forever chain costs nothing ahead of
time. Only one program transmits at a time (pigpio has one wave DMA chain):
a plain send replaces the running one, a SYNC send follows it.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from rpilinkd.pigpio_protocol import NO_TX_WAVE, WAVE_NOT_FOUND, WAVE_START_DELAY_US
from rpilinkd.sim.waves import ChainDelay, ChainItem, ChainLoop, Pulses, WavePool

Segment = tuple[int | None, Pulses | None, int]
MAX_EMPTY_SEGMENTS = 10_000  # wave id (None: a delay), pulses, µs
#: pigpio writes a pulse's set mask, then its clear mask, one DMA beat apart: a sample
#: can fall between the two (a byte half written). Tens of ns on a Pi.
DEFAULT_SET_CLEAR_GAP_US = 0.02


@dataclass
class Events:
    """Timed events: at ``time`` (µs), set ``on`` then clear ``off``."""

    time: npt.NDArray[np.float64]
    on: npt.NDArray[np.uint32]
    off: npt.NDArray[np.uint32]

    @classmethod
    def empty(cls) -> Events:
        return cls(np.zeros(0), np.zeros(0, np.uint32), np.zeros(0, np.uint32))


NOTHING = Events.empty()


class _Program:
    """A source of segments; a repeating one can be asked to stop after its cycle."""

    def __init__(self, segments: Iterator[Segment], repeating: bool) -> None:
        self.segments = segments
        self.repeating = repeating
        self.stop_after_cycle = False


def _repeat(wave_id: int, pulses: Pulses, program: list[_Program]) -> Iterator[Segment]:
    while not program[0].stop_after_cycle:
        yield wave_id, pulses, pulses.micros


def _chain(items: tuple[ChainItem, ...], pool: WavePool) -> Iterator[Segment]:
    for item in items:
        if isinstance(item, int):
            wave = pool.get(item)
            if wave is not None:
                yield item, wave.pulses, wave.pulses.micros
        elif isinstance(item, ChainDelay):
            yield None, None, item.micros
        elif isinstance(item, ChainLoop):
            count = 0
            while item.count is None or count < item.count:
                yield from _chain(item.body, pool)
                count += 1


class Transmitter:
    def __init__(self) -> None:
        self._programs: deque[_Program] = deque()
        self._cursor = 0.0  # start of the next segment to expand
        self._pending = Events.empty()  # expanded, not yet taken
        self._segments: deque[tuple[float, float, int | None]] = deque(maxlen=64)
        self.waves_started = 0
        self.set_clear_gap_us = DEFAULT_SET_CLEAR_GAP_US

    # -- starting and stopping ------------------------------------------------

    def send(self, now: float, wave_id: int, pulses: Pulses, *, repeat: bool, sync: bool) -> None:
        holder: list[_Program] = []
        if repeat and pulses.micros > 0:  # a zero-length wave cannot repeat in time
            program = _Program(_repeat(wave_id, pulses, holder), repeating=True)
            holder.append(program)
        else:
            program = _Program(iter([(wave_id, pulses, pulses.micros)]), repeating=False)
        pulses.writes(self.set_clear_gap_us)  # worked out now, not when its time comes
        self._start(now, program, sync)

    def send_chain(self, now: float, items: tuple[ChainItem, ...], pool: WavePool) -> None:
        self._start(now, _Program(_chain(items, pool), repeating=False), sync=False)

    def _start(self, now: float, program: _Program, sync: bool) -> None:
        self.waves_started += 1
        if sync and self.busy(now):
            for running in self._programs:
                if running.repeating:
                    running.stop_after_cycle = True
            self._programs.append(program)
            return
        self.halt(now)
        self._cursor = now + WAVE_START_DELAY_US
        self._programs.append(program)

    def halt(self, now: float) -> None:
        """Stop at once; outputs keep the levels they have (WVHLT)."""
        keep = self._pending.time <= now
        self._pending = Events(
            self._pending.time[keep], self._pending.on[keep], self._pending.off[keep]
        )
        self._programs.clear()
        self._cursor = now
        while self._segments and self._segments[-1][0] > now:
            self._segments.pop()
        if self._segments:
            start, end, wave_id = self._segments[-1]
            self._segments[-1] = (start, min(end, now), wave_id)

    # -- queries ----------------------------------------------------------------

    def busy(self, now: float) -> bool:
        """Valid once the events up to ``now`` have been taken."""
        return bool(self._programs) or self._cursor > now

    def wave_at(self, now: float) -> int:
        """WVTAT: the wave id on the wire now."""
        if not self.busy(now):
            return NO_TX_WAVE
        for start, end, wave_id in reversed(self._segments):
            if start <= now < end:
                return WAVE_NOT_FOUND if wave_id is None else wave_id
        return WAVE_NOT_FOUND

    # -- playing ------------------------------------------------------------------

    def _writes(self, start: float, pulses: Pulses) -> Events:
        """A wave's GPIO writes: each pulse sets, then clears a moment later."""
        time, on, off = pulses.writes(self.set_clear_gap_us)
        return Events(start + time, on, off)

    def take_until(self, t: float) -> Events:
        """Every event at or before ``t``, in time order (never to be changed)."""
        playing = self._programs and self._cursor <= t
        if not playing and (not len(self._pending.time) or self._pending.time[0] > t):
            return NOTHING  # most calls: every command asks, few find a wave
        chunks = [self._pending]
        empty_run = 0
        while self._programs and self._cursor <= t:
            segment = next(self._programs[0].segments, None)
            if segment is None:
                self._programs.popleft()
                continue
            wave_id, pulses, micros = segment
            empty_run = empty_run + 1 if micros == 0 else 0
            if empty_run > MAX_EMPTY_SEGMENTS:  # a forever loop of zero-length waves
                self._programs.clear()
                break
            start = self._cursor
            self._cursor = start + micros
            self._segments.append((start, self._cursor, wave_id))
            if pulses is not None and len(pulses):
                chunks.append(self._writes(start, pulses))
        if len(chunks) == 1:
            events = self._pending
        else:
            events = Events(
                np.concatenate([c.time for c in chunks]),
                np.concatenate([c.on for c in chunks]),
                np.concatenate([c.off for c in chunks]),
            )
        cut = int(events.time.searchsorted(t, side="right"))
        self._pending = Events(events.time[cut:], events.on[cut:], events.off[cut:])
        return Events(events.time[:cut], events.on[:cut], events.off[:cut])
