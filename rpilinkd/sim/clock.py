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
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import math
import time
from collections.abc import Callable

from rpilinkd.sim.alarm import Alarm, make_alarm

PERIOD_S = 0.00095  # pigpiod: a 0.9 ms sleep after each short pass
MIN_SLEEP_S = 0.0003  # the least rest between two passes, however late
MAX_QUIET_S = 0.1  # the longest run of passes skipped as quiet


class Clock:
    def __init__(
        self,
        run_pass: Callable[[], None],
        quiet_until: Callable[[], float | None] = lambda: None,
        period_s: float = PERIOD_S,
    ) -> None:
        """``quiet_until``: till when (time.monotonic) passes would find nothing unless
        a command comes first, or None (a pass may find something: keep the grid)."""
        self.run_pass, self.quiet_until, self.period_s = run_pass, quiet_until, period_s
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
            self.run_pass()

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
        due = time.monotonic()
        try:
            while True:
                if self._release(time.monotonic()):
                    await asyncio.sleep(0)  # the sessions go on before the pass
                if time.monotonic() >= due:
                    self.run_pass()
                    # a pass that ran late does not make the next come at once: pigpiod
                    # sleeps after every pass, and a starved emulator must not spin
                    due = max(due + self.period_s, time.monotonic() + MIN_SLEEP_S)
                wake = min(due, self._delays[0][0]) if self._delays else due
                if wake <= time.monotonic():  # due already: the sessions go on in between
                    await asyncio.sleep(0)
                elif not self._delays and (quiet_until := self.quiet_until()) is not None:
                    self._skipping = True  # nothing to find: skip passes till a command
                    until = min(max(wake, quiet_until), time.monotonic() + MAX_QUIET_S)
                    await alarm.wait_until(until)
                    self._catch_up()
                    due = self._on_grid(due)
                else:
                    await alarm.wait_until(wake)
        finally:
            self.alarm = None
            alarm.close()

    def _on_grid(self, due: float) -> float:
        """The first grid instant from when the skipping ended (the passes skipped were
        quiet ones). Not from now: a batch run since then may have kept the loop past
        an instant, and that pass is due at once, as pigpiod's alert thread ran it."""
        late = self._resumed_at - due
        return due + math.ceil(late / self.period_s) * self.period_s if late > 0 else due

    def _release(self, now: float) -> bool:
        released = False
        while self._delays and self._delays[0][0] <= now:
            future = heapq.heappop(self._delays)[2]
            if not future.done():  # its session may have gone
                future.set_result(None)
                released = True
        return released
