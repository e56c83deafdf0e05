"""Reading the peer's control lines afresh after a quiet spell.

The bus machine sees the peer's control lines only through the backend's
reports of changes. pigpiod drops reports when its alert thread falls behind
(a busy Pi, past its report ceiling), and a dropped report of the peer's grant
or return leaves both Pis waiting for a change that already happened: each
holds its lines, nothing moves, and only the link's keepalive timeout (900 ms)
ends it with a relink. So while no event has come for ``QUIET_S``, the driver
reads the lines directly (one pigpiod round trip) and, if they differ from what
the machine believes, waits until the report stream has caught up with the read
(pigpiod's tick on a report, a heartbeat's at least): a report merely late (a
stalled pigpiod catching up) then arrives and nothing is done; if none came and
the lines still differ, the report was lost, and the machine is told the truth.
Only for backends whose capabilities say reports may be lost (pigpio; the pio
backend's control lines are the kernel's edge events).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from rpilinkd.link.busaccess import BusAccess
from rpilinkd.phy import PhyBackend
from rpilinkd.phy.events import Levels
from rpilinkd.pins import ControlLine

_LOGGER = logging.getLogger(__name__)
#: no report for this long means none is in flight (pigpiod sends a batch every ms or so)
QUIET_S = 0.1
#: the handshake lines; STB and FRM rest wherever a burst left them and arbitration
#: has its own stall timer
HANDSHAKE = (ControlLine.REQ, ControlLine.RW)
#: how long the report stream may take to catch up with a read (pigpiod's heartbeat
#: comes every 50 ms); a stream later than this lags: the read is not acted on
CATCH_UP_S = 0.2
#: after catching up, a second read this much later must agree, with no report between
SETTLE_S = 0.02


class LineResync:
    """Counts the backend's events and corrects the bus machine's view after a lost report."""

    def __init__(self, phy: PhyBackend, clock: Callable[[], float]) -> None:
        self.phy, self.now = phy, clock
        self.events = 0
        self.last_event = clock()
        self.resyncs = 0  # lost reports corrected (shown in stats as bus.lines_resynced)
        self.lagging = 0  # reads not acted on: the report stream lagged behind them

    def saw_event(self, now: float) -> None:
        self.events, self.last_event = self.events + 1, now

    async def run(self, bus: BusAccess, wake: Callable[[], None]) -> None:
        """Check the lines whenever the event stream has been quiet for QUIET_S."""
        while True:
            quiet = self.now() - self.last_event
            if bus.role is None or quiet < QUIET_S:
                await asyncio.sleep(QUIET_S - quiet if bus.role is not None else QUIET_S)
                continue
            levels = await self.phy.read_controls()
            seen = self.events
            if not self._stale(bus, levels):
                await asyncio.sleep(QUIET_S)
                continue
            # the change may be only this moment's, or the stream may lag (a busy
            # pigpiod): wait until everything before the read has been reported
            if not await self.phy.reports_caught_up(CATCH_UP_S):
                self.lagging += 1
                await asyncio.sleep(QUIET_S)
                continue
            # and read once more a moment later: a backlog just caught up may still be
            # on its way through the backend (seen on a starved emulator)
            await asyncio.sleep(SETTLE_S)
            stale = self._stale(bus, await self.phy.read_controls())
            if stale and self.events == seen:  # a report that came meanwhile is newer
                self.resyncs += 1
                _LOGGER.info(
                    "peer lines read afresh after %.0f ms without a report: %s "
                    "(a report was lost; pigpiod was too busy)",
                    (self.now() - self.last_event) * 1000,
                    ", ".join(
                        f"{line.name} {'high' if up else 'low'}" for line, up in stale.items()
                    ),
                )
                bus.peer_lines(stale, self.now())
                wake()
            await asyncio.sleep(QUIET_S)

    @staticmethod
    def _stale(bus: BusAccess, levels: Levels) -> dict[ControlLine, bool]:
        return {line: levels[line] for line in HANDSHAKE if bus.peer[line] != levels[line]}
