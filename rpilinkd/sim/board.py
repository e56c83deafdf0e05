"""One virtual Pi: its pins, its clock, its waves and its notification handles.

Every change of a pin's mode or latch is logged with its wall-clock time in
µs (commands at the moment they are processed, wave pulses at their scheduled
instants), so the sampler can replay exactly what the wires did between two
of its passes.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from rpilinkd.pigpio_protocol import (
    DEFAULT_PERMITTED,
    HW_REVISION_PI3B,
    MODE_INPUT,
    MODE_OUTPUT,
    NOTIFY_SLOTS,
    PUD_DOWN,
    PUD_UP,
)
from rpilinkd.sim.alerts import AlertThread
from rpilinkd.sim.transmitter import Events, Transmitter
from rpilinkd.sim.waves import WaveBuilder, WavePool

U32 = npt.NDArray[np.uint32]
GPIO_COUNT = 54
_BEFORE = np.array([-np.inf])  # the time of a log's first entry: the state before it


def boot_pulls() -> list[int]:
    """BCM283x reset pulls: GPIO 0-8 up, 9-27 down (the rest: down)."""
    return [PUD_UP if g <= 8 else PUD_DOWN for g in range(GPIO_COUNT)]


def fold_latch(latch0: int, on: U32, off: U32) -> U32:
    """The latch after each event (set ``on`` then clear ``off``), vectorised.

    Each event is the map ``x -> (x & keep) | put`` (keep = ~off, put = on & ~off),
    and such maps compose into maps of the same form, so the latch after every event
    is a prefix scan: log2(n) numpy steps, whatever the masks (pigpio's set and clear
    writes of a byte touch different bits every time).
    """
    keep = ~off
    put = on & keep
    step = 1
    while step < len(on):  # Hillis-Steele: each entry absorbs the one ``step`` before it
        put[step:] |= put[:-step] & keep[step:]  # (the right side is a new array)
        keep[step:] &= keep[:-step]  # numpy copies overlapping operands of a ufunc
        step *= 2
    return (np.uint32(latch0) & keep) | put


@dataclass
class NotifyHandle:
    handle: int
    sink: Callable[[bytes], bool] | None  # writes report bytes; False if dropped
    bits: int = 0
    running: bool = False
    seqno: int = 0
    last_emit_us: float = 0.0
    owner: object = None  # the connection that opened it, freed with it


@dataclass
class GlitchFilter:
    steady_us: int
    value: int = -1  # the level it reports; -1 until the first sample
    candidate: int = 0  # the raw level since ``since_us``
    since_us: float = 0.0


@dataclass
class Board:
    name: str
    sample_us: int
    rng: random.Random
    permitted: int = DEFAULT_PERMITTED
    hw_revision: int = HW_REVISION_PI3B
    modes: list[int] = field(default_factory=lambda: [MODE_INPUT] * GPIO_COUNT)
    pulls: list[int] = field(default_factory=boot_pulls)
    latch: int = 0
    drive: int = 0  # bank-1 GPIOs in OUTPUT mode
    latch2: int = 0
    builder: WaveBuilder = field(default_factory=WaveBuilder)
    pool: WavePool = field(default_factory=WavePool)
    tx: Transmitter = field(default_factory=Transmitter)
    handles: dict[int, NotifyHandle] = field(default_factory=dict)
    watchdogs: dict[int, int] = field(default_factory=dict)  # gpio -> timeout µs
    glitch: dict[int, GlitchFilter] = field(default_factory=dict)
    noise: dict[int, tuple[int, int]] = field(default_factory=dict)  # gpio -> steady, active
    pwm: dict[int, dict[str, int]] = field(default_factory=dict)
    pads: dict[int, int] = field(default_factory=lambda: {0: 8, 1: 8, 2: 8})
    wdog_since: dict[int, float] = field(default_factory=dict)
    alerts: AlertThread = field(default_factory=AlertThread)

    def __post_init__(self) -> None:
        self.phase_us = self.rng.uniform(0, self.sample_us)
        self.tick_offset = self.rng.randrange(1 << 32)
        self._log_t: list[npt.NDArray[np.float64]] = []
        self._log_drive: list[U32] = []
        self._log_latch: list[U32] = []
        # changes made by commands (one each), kept as numbers until the next wave
        # event or pass: an array per command cost more than the command itself
        self._now_log: list[tuple[float, int, int]] = []
        self.pass_state = (self.drive, self.latch)  # at the end of the last pass
        self._timed: list[tuple[float, int, int]] = []  # future latch writes (TRIG's end)
        self.advanced_us = 0.0  # the latest instant the pins were brought up to
        self.stats = {
            "commands": 0,
            "reports": 0,
            "reports_dropped": 0,
            "batches_dropped": 0,
            "reports_lost": 0,
        }

    # -- time ---------------------------------------------------------------

    def tick(self, now_us: float) -> int:
        """pigpio's tick: µs since boot, uint32, wrapping every ~71.6 minutes."""
        return (int(now_us) + self.tick_offset) & 0xFFFFFFFF

    # -- the change log ---------------------------------------------------------

    def advance(self, now_us: float) -> None:
        """Apply every wave event up to ``now_us`` to the latch, logging each."""
        self.advanced_us = max(self.advanced_us, now_us)
        events = self.tx.take_until(now_us)
        due = [w for w in self._timed if w[0] <= now_us] if self._timed else None
        if due:
            self._timed = [w for w in self._timed if w[0] > now_us]
            times = np.concatenate([events.time, [w[0] for w in due]])
            order = np.argsort(times, kind="stable")
            events = Events(
                times[order],
                np.concatenate([events.on, [w[1] for w in due]]).astype(np.uint32)[order],
                np.concatenate([events.off, [w[2] for w in due]]).astype(np.uint32)[order],
            )
        if len(events.time) == 0:
            return
        self._flush_now_log()  # they came before these events
        latches = fold_latch(self.latch, events.on, events.off)
        self._log_t.append(events.time)
        self._log_drive.append(np.full(len(latches), self.drive, np.uint32))
        self._log_latch.append(latches)
        self.latch = int(latches[-1])

    def _log_now(self, now_us: float) -> None:
        self._now_log.append((now_us, self.drive, self.latch))

    def _flush_now_log(self) -> None:
        if self._now_log:
            times, drives, latches = zip(*self._now_log, strict=True)
            self._log_t.append(np.array(times, np.float64))
            self._log_drive.append(np.array(drives, np.uint32))
            self._log_latch.append(np.array(latches, np.uint32))
            self._now_log = []

    @property
    def timed_writes(self) -> bool:
        """Whether a latch write is still to come (the end of a TRIG pulse)."""
        return bool(self._timed)

    @property
    def pins_moved(self) -> bool:
        """Whether any pin changed since the last pass."""
        return bool(self._log_t or self._now_log)

    @property
    def changes_logged(self) -> int:
        """How many pin changes wait for the next pass."""
        return sum(map(len, self._log_t)) + len(self._now_log)

    def take_log(self) -> tuple[npt.NDArray[np.float64], U32, U32]:
        """The pins since the last pass: (times, drive masks, latches), first the state
        the pass began with (at -inf), then every change."""
        self._flush_now_log()
        drive0, latch0 = self.pass_state
        out = (
            np.concatenate([_BEFORE, *self._log_t]),
            np.concatenate([np.array([drive0], np.uint32), *self._log_drive]),
            np.concatenate([np.array([latch0], np.uint32), *self._log_latch]),
        )
        self._log_t, self._log_drive, self._log_latch = [], [], []
        self.pass_state = (self.drive, self.latch)
        return out

    # -- pin operations (callers have checked arguments) --------------------------

    def set_mode(self, gpio: int, mode: int, now_us: float) -> None:
        self.advance(now_us)
        self.modes[gpio] = mode
        if gpio < 32:
            bit = 1 << gpio
            self.drive = self.drive | bit if mode == MODE_OUTPUT else self.drive & ~bit
            self._log_now(now_us)

    def set_pull(self, gpio: int, pud: int, now_us: float) -> None:
        self.advance(now_us)
        self.pulls[gpio] = pud
        self._log_now(now_us)

    def write(self, gpio: int, level: int, now_us: float) -> None:
        """WRITE: set the latch and force OUTPUT mode (gpioWrite does)."""
        self.advance(now_us)
        self.modes[gpio] = MODE_OUTPUT
        if gpio < 32:
            bit = 1 << gpio
            self.latch = self.latch | bit if level else self.latch & ~bit
            self.drive |= bit
            self._log_now(now_us)
        else:
            bit = 1 << (gpio - 32)
            self.latch2 = self.latch2 | bit if level else self.latch2 & ~bit

    def set_bits(self, on: int, off: int, now_us: float) -> None:
        """BS1/BC1: write the latch; modes unchanged."""
        self.advance(now_us)
        self.latch = (self.latch | on) & ~off & 0xFFFFFFFF
        self._log_now(now_us)

    def write_later(self, at_us: float, on: int, off: int) -> None:
        """A latch write at a future instant (the end of a TRIG pulse)."""
        self._timed.append((at_us, on, off))

    # -- notification handles -------------------------------------------------------

    def open_handle(
        self, sink: Callable[[bytes], bool] | None, owner: object, now_us: float
    ) -> int | None:
        for handle in range(NOTIFY_SLOTS):
            if handle not in self.handles:
                self.handles[handle] = NotifyHandle(handle, sink, last_emit_us=now_us, owner=owner)
                return handle
        return None

    def close_handles_of(self, owner: object) -> None:
        for handle in [h for h, n in self.handles.items() if n.owner is owner]:
            del self.handles[handle]

    def restart_daemon(self, now_us: float) -> None:
        """pigpiod restarted: its waves and handles are gone; pins keep their state."""
        self.advance(now_us)
        self.tx.halt(now_us)
        self.builder.clear()
        self.pool.clear()
        self.handles.clear()
        self.watchdogs.clear()
        self.glitch.clear()
        self.noise.clear()
        self.alerts.reset()
