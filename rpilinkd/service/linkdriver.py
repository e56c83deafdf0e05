"""The link driver: the only glue between the bus backend and the sans-IO link layer.

It opens the backend (retrying), runs a backend session on it (bussession.py: the
bus-access machine and the connection fed the backend's events and the time, what
they ask for applied) until the backend is lost, closes it and opens it again. While
the backend is away the connection's timers still run (messages waiting for a relink
expire on time); while the pins are lent out (``rpilink wiring-check``) it waits for
the lease to end. It also says how the link stands (status, reason, figures).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Callable
from typing import Any

from rpilinkd.errors import PhyError, PhyUnavailableError
from rpilinkd.events import LinkStatus
from rpilinkd.link import Connection, LinkState
from rpilinkd.link.busaccess import BusAccess, RoleConflict, RoleDecided
from rpilinkd.link.events import DownReason
from rpilinkd.phy import PhyBackend, open_with_retry
from rpilinkd.phy.base import FIRST_RETRY_S
from rpilinkd.service.bussession import BusSession, EventSink
from rpilinkd.service.linkreason import bus_reason
from rpilinkd.service.resync import LineResync

_LOGGER = logging.getLogger(__name__)


class LinkDriver:
    def __init__(
        self,
        phy: PhyBackend,
        connection: Connection,
        *,
        role: str,
        turn_ms: float,
        retry_s: float,
        on_event: EventSink | None = None,
        rng: random.Random | None = None,
        clock: Callable[[], float] = time.monotonic,
        unsupported: str = "",
    ) -> None:
        """``unsupported``: why this board cannot run the backend (shown while it fails)."""
        self.phy, self.connection = phy, connection
        self.role_setting, self.turn_ms, self.retry_s = role, turn_ms, retry_s
        self.on_event: EventSink = on_event or (lambda event, now: None)
        self.rng = rng or random.Random()
        self.now = clock  # the daemon's one clock (the event loop's is the same monotonic)
        self.session: BusSession | None = None  # while the backend is open
        self.phy_up = False
        self.unsupported = unsupported
        self.conflict = False
        self.phy_problem = ""  # why the backend is not open (for status)
        self._wake = asyncio.Event()
        self._stop = asyncio.Event()
        self.bursts_before = 0  # bursts of the sessions that ended
        self.internal_errors = 0  # bugs caught by run(): each reset the link
        self.sessions = 0  # backend sessions opened
        self.paused_until: float | None = None  # while the pins are lent out
        self.pins_free = False  # paused, and the backend session is over: a borrower may go
        self.resync = LineResync(phy, clock)

    def wake(self) -> None:
        """Something changed (a message to send): run the loop now."""
        self._wake.set()

    def hold_turn(self, seconds: float) -> None:
        """Keep the bus (or turn) ``seconds`` past the next burst the peer must answer:
        a local client that answers at once sends its reply in it (docs/protocol.md §2.4)."""
        if self.session is not None:
            now = self.now()
            self.session.bus.hold_turn(now + seconds, now)

    def end_hold(self) -> None:
        """No more holding for a reply (it came, or none is coming): from the next turn
        of the loop, once the bus knows what there is to send, or it hands over now."""
        if self.session is not None:
            self.session.end_hold()
        self._wake.set()

    def stop(self) -> None:
        self._stop.set()
        self.paused_until = None
        self._wake.set()

    def pause(self, seconds: float) -> None:
        """Lend the pins: end the backend session (pins left safe, pigpiod let go) until
        :meth:`resume` or for ``seconds`` at most, whatever the borrower does."""
        self.paused_until = self.now() + seconds
        self._wake.set()

    def resume(self) -> None:
        self.paused_until = None

    @property
    def paused(self) -> bool:
        return self.paused_until is not None

    @property
    def link_state(self) -> LinkStatus:
        if self.paused:
            return LinkStatus.PAUSED
        if not self.phy_up:
            return LinkStatus.DOWN
        if self.conflict:
            return LinkStatus.CONFLICT
        if self.connection.state is LinkState.UP:
            return LinkStatus.UP
        return LinkStatus.ARBITRATING

    def reason(self, refused: str = "") -> str:
        """Why the link is not up, in words a user can act on."""
        if self.paused_until is not None:
            left = max(0.0, self.paused_until - self.now())
            return f"paused: the pins are lent out (to rpilink wiring-check?) for {left:.0f} s more"
        if not self.phy_up:
            return (
                self.unsupported or self.phy_problem or f"connecting to the {self.phy.name} backend"
            )
        if self.session is None:
            return "starting the bus"
        return bus_reason(self.session.bus, conflict=self.conflict, refused=refused, now=self.now())

    def figures(self) -> dict[str, Any]:
        """The driver's counters, the bus machine's and the backend's, for ``stats``."""
        session = self.session
        bus = session.bus if session is not None else None
        return {
            "bus": dict(
                bus.counters,
                **bus.arbiter.counters,
                lines_resynced=self.resync.resyncs,
                resync_reads_lagging=self.resync.lagging,
            )
            if bus is not None
            else {},
            "bursts": self.bursts_before + (session.bursts if session is not None else 0),
            "internal_errors": self.internal_errors,
            "backend_sessions": self.sessions,
            "phy": dict(self.phy.stats),
        }

    # -- the outer loop: (re)open the backend ----------------------------------------------

    async def run(self) -> None:
        if self.unsupported:
            _LOGGER.error("%s", self.unsupported)
        while not self._stop.is_set():
            if not await self._open():
                return
            self.phy_up, self.sessions = True, self.sessions + 1
            try:
                await self._session()
            except PhyUnavailableError as exc:
                _LOGGER.warning("bus backend lost: %s; reconnecting", exc.message)
            except PhyError as exc:
                _LOGGER.error("bus backend failed: %s; starting over", exc.message)
            except Exception:  # a bug of ours: reset the link rather than lose the daemon
                self.internal_errors += 1
                _LOGGER.exception("internal error in the link driver; resetting the link")
            finally:
                self.phy_up = False
                await self._end_session()
            if self.paused:
                await self._lent()
            elif not self._stop.is_set():
                await self._idle(FIRST_RETRY_S)  # pigpiod restarting: back within a second

    async def _lent(self) -> None:
        """While the pins are lent out: the connection's timers run; the lease expires."""
        _LOGGER.warning("link paused: the pins are lent out (e.g. to rpilink wiring-check)")
        self.pins_free = True
        try:
            while (until := self.paused_until) is not None and not self._stop.is_set():
                if self.now() >= until:
                    _LOGGER.warning("the pins' lease ran out; taking them back")
                    self.resume()
                    break
                await self._idle(min(until - self.now(), 0.5))
        finally:
            self.pins_free = False
        _LOGGER.info("link resumed: taking the pins back")

    async def _open(self) -> bool:
        """Open the backend, retrying (each cause logged once); False if told to stop."""
        opened = await open_with_retry(
            self.phy,
            retry_s=self.retry_s,
            stop=self._stop,
            idle=self._idle,
            problem=self._phy_problem,
        )
        self.phy_problem = ""
        return opened

    def _phy_problem(self, message: str) -> None:
        self.phy_problem = message

    async def _idle(self, seconds: float) -> None:
        """Wait while the backend is away, running the connection's timers meanwhile."""
        until = self.now() + seconds
        while not self._stop.is_set() and (now := self.now()) < until:
            timer = self.connection.get_timer()
            if timer is not None and timer <= now:
                self.connection.handle_timer(now)
                self._drain_connection(now)
                continue
            wait = min(until, timer if timer is not None else until) - now
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(max(0.0, wait)):
                    await self._stop.wait()

    async def _session(self) -> None:
        bus = BusAccess(
            role=self.role_setting,
            rng=self.rng,
            turn_ms=self.turn_ms,
            now=self.now(),
            frame_line_in_step=self.phy.capabilities.frame_line_in_step,
        )
        self.session = BusSession(
            self.phy,
            self.connection,
            bus,
            wake=self._wake,
            resync=self.resync,
            on_event=self._on_session_event,
            clock=self.now,
            running=lambda: not (self._stop.is_set() or self.paused),
        )
        await self.session.run()

    def _on_session_event(self, event: Any, now: float) -> None:
        if isinstance(event, RoleDecided):
            self.conflict = False
        elif isinstance(event, RoleConflict):
            if not self.conflict:
                _LOGGER.error("role conflict: %s", event.message)
            self.conflict = True
        self.on_event(event, now)  # read at each event: the node sets it after __init__

    async def _end_session(self) -> None:
        """Close the backend without ever waiting on a dead connection."""
        session, self.session = self.session, None
        if session is not None:
            self.bursts_before += session.bursts
        now = self.now()
        self.connection.stop(
            DownReason.STOPPED if self._stop.is_set() else DownReason.BUS_LOST, now
        )
        self._drain_connection(now)
        with contextlib.suppress(PhyError, OSError):
            await self.phy.aclose()  # the pins left safe

    def _drain_connection(self, now: float) -> None:
        """Between sessions: the connection's events go on (no bus to send back)."""
        while (event := self.connection.next_event()) is not None:
            self.on_event(event, now)
