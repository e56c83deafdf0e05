"""How late the event loop runs: the link driver's deadlines wait exactly as long.

A timer that should fire every ``PERIOD_S`` notes how late it fired. The worst
lateness of each second is kept for a minute (``recent_ms``); ``worst_ms`` is
since the start. asyncio's timers end on a 1 ms grid, so ~1 ms is the floor.
"""

from __future__ import annotations

import asyncio
from collections import deque

PERIOD_S = 0.01
WINDOW_SECONDS = 60


class LoopLag:
    def __init__(self) -> None:
        self.worst_s = 0.0
        self._seconds: deque[float] = deque([0.0], maxlen=WINDOW_SECONDS)
        self._second_started = 0.0

    @property
    def recent_ms(self) -> float:
        return round(max(self._seconds) * 1e3, 2)

    @property
    def worst_ms(self) -> float:
        return round(self.worst_s * 1e3, 2)

    def note(self, lag_s: float, now: float) -> None:
        if now - self._second_started >= 1.0:
            self._seconds.append(0.0)
            self._second_started = now
        self._seconds[-1] = max(self._seconds[-1], lag_s)
        self.worst_s = max(self.worst_s, lag_s)

    async def watch(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            due = loop.time() + PERIOD_S
            await asyncio.sleep(PERIOD_S)
            now = loop.time()
            self.note(max(0.0, now - due), now)
