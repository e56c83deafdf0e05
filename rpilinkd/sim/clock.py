"""The emulator's time keeper: sampling passes on pigpiod's grid, and the ends of delays.

pigpiod's alert thread sleeps 0.9 ms after each pass, whose work in C takes some
tens of µs: a pass about every PERIOD_S. A pass here, in Python, takes some
hundreds, so passes keep to a grid instead (one that comes late is not made up
for). A MICS or MILS holds the pigpiod thread of its socket only; here the
socket's session waits on :meth:`Clock.delay`, which ends before a pass that comes
after it, so what the socket does next is in that pass's samples (and acts at the
delay's end: sim/server.py). One alarm (sim/alarm.py: a timerfd) wakes the loop
for both: asyncio's own timers end on whole milliseconds.
While passes would find nothing (no pin moving, nothing pending), the clock skips
them until a command comes or a watchdog or ALIVE report falls due, and the next
pass is on the grid again, so pigpiod's phase is kept: the grid's first instant after
the command came, even when the command's batch kept the emulator busy past it.
Each board has a grid of its own (two Pis' pigpiods pass at their own phases); a
pass samples the boards whose instant it is.
"""

from __future__ import annotations

import asyncio
import enum
import heapq
import itertools
import math
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from rpilinkd.sim.alarm import Alarm, make_alarm

PERIOD_S = 0.00095  # pigpiod: a 0.9 ms sleep after each short pass
MIN_SLEEP_S = 0.0003  # the least rest between two passes, however late
MAX_QUIET_S = 0.1  # the longest run of passes skipped as quiet


@dataclass(frozen=True)
class Grid:
    """One board's alert thread: its period, and how long after the clock starts its
    first pass comes."""

    period_s: float = PERIOD_S
    offset_s: float = 0.0


RunPass = Callable[[tuple[str, ...]], None]  # the boards whose pass it is


class AlertPhases(enum.Enum):
    """How the two boards' alert threads stand to each other."""

    #: two Pis: b's first pass at a random instant of a's period, and its passes
    #: FREE_DRIFT slower, so the phase between them walks through every value
    FREE = "free"
    #: both boards' passes at the same instants (one pigpiod's view of two boards)
    SHARED = "shared"


#: on a Pi a pass comes 0.9 ms after the last one's end, so each board's period follows
#: its own pass's work: 0.3 % apart, the phase goes round about every 0.3 s
FREE_DRIFT = 0.003


def board_grids(phases: AlertPhases, rng: random.Random) -> dict[str, Grid]:
    if phases is AlertPhases.SHARED:
        return {"a": Grid(), "b": Grid()}
    return {"a": Grid(), "b": Grid(PERIOD_S * (1 + FREE_DRIFT), rng.uniform(0, PERIOD_S))}


class Clock:
    def __init__(
        self,
        run_pass: RunPass,
        quiet_until: Callable[[], float | None] = lambda: None,
        grids: Mapping[str, Grid] | None = None,
    ) -> None:
        """``quiet_until``: till when (time.monotonic) passes would find nothing unless
        a command comes first, or None (a pass may find something: keep the grids).
        ``grids``: each board's (default: boards a and b on one grid)."""
        self.run_pass, self.quiet_until = run_pass, quiet_until
        self.grids = dict(grids) if grids is not None else {"a": Grid(), "b": Grid()}
        self._delays: list[tuple[float, int, asyncio.Future[None]]] = []  # a heap by end
        self._order = itertools.count()
        self.alarm: Alarm | None = None  # while running
        self._skipping = False  # quiet passes are being skipped
        self._resumed_at = 0.0  # when the last run of skipped passes ended

    def stir(self) -> None:
        """A command came: the next pass may find something (the grid's pass, precisely).
        Called before the command acts: the passes skipped were quiet up to here."""
        if self._skipping:
            self._catch_up()
            self._ring()

    def _catch_up(self) -> None:
        """One quiet pass for those skipped, so the next one samples a period at most
        (a long one would look like a starved alert thread's)."""
        if self._skipping:
            self._skipping = False
            self._resumed_at = time.monotonic()
            self.run_pass(tuple(self.grids))

    def _ring(self) -> None:
        if self.alarm is not None:
            self.alarm.ring()

    async def delay_until(self, when: float) -> None:
        """Wait until ``when`` (time.monotonic), precisely: a pass due after it runs
        after the waiter has gone on, one due before it, before."""
        future = asyncio.get_running_loop().create_future()
        heapq.heappush(self._delays, (when, next(self._order), future))
        self._ring()  # whichever wait the clock is in ends: it plans again
        await future

    async def run(self, *, prefer_timerfd: bool = True) -> None:
        alarm = self.alarm = make_alarm(asyncio.get_running_loop(), prefer_timerfd=prefer_timerfd)
        started = time.monotonic()
        due = {name: started + grid.offset_s for name, grid in self.grids.items()}
        try:
            while True:
                if self._release(time.monotonic()):
                    await asyncio.sleep(0)  # the sessions go on before the pass
                now = time.monotonic()
                if ready := tuple(name for name, at in due.items() if now >= at):
                    self.run_pass(ready)
                    # a pass that ran late does not make the next come at once: pigpiod
                    # sleeps after every pass, and a starved emulator must not spin
                    rested = time.monotonic() + MIN_SLEEP_S
                    for name in ready:
                        due[name] = max(due[name] + self.grids[name].period_s, rested)
                wake = min(due.values())
                if self._delays:
                    wake = min(wake, self._delays[0][0])
                if wake <= time.monotonic():  # due already: the sessions go on in between
                    await asyncio.sleep(0)
                elif not self._delays and (quiet_until := self.quiet_until()) is not None:
                    self._skipping = True  # nothing to find: skip passes till a command
                    until = min(max(wake, quiet_until), time.monotonic() + MAX_QUIET_S)
                    await alarm.wait_until(until)
                    self._catch_up()
                    due = {name: self._on_grid(at, self.grids[name]) for name, at in due.items()}
                else:
                    await alarm.wait_until(wake)
        finally:
            self.alarm = None
            alarm.close()

    def _on_grid(self, due: float, grid: Grid) -> float:
        """The first instant of ``grid`` from when the skipping ended (the passes skipped
        were quiet ones). Not from now: a batch run since then may have kept the loop past
        an instant, and that pass is due at once, as pigpiod's alert thread ran it."""
        late = self._resumed_at - due
        return due + math.ceil(late / grid.period_s) * grid.period_s if late > 0 else due

    def _release(self, now: float) -> bool:
        released = False
        while self._delays and self._delays[0][0] <= now:
            future = heapq.heappop(self._delays)[2]
            if not future.done():  # its session may have gone
                future.set_result(None)
                released = True
        return released
