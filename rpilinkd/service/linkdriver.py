"""The link driver: the only glue between the bus backend and the sans-IO link layer.

It feeds the backend's events and ``loop.time()`` into the bus-access machine
and the connection, applies what they ask for (control-line writes in order,
claiming and releasing the data lines, bursts of frames), and sleeps until the
next deadline or the next input. When pigpiod goes away it closes the backend,
fails what was in flight, and reconnects (logging the outage once).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Callable, Iterable
from typing import Any

from rpilinkd.errors import PhyError, PhyUnavailableError
from rpilinkd.link import Connection, LinkDown, LinkState
from rpilinkd.link.arbiter import Role
from rpilinkd.link.busaccess import BusAccess, BusLost, RoleConflict, RoleDecided
from rpilinkd.phy import ControlsChanged, FrameReceived, PhyBackend, open_with_retry
from rpilinkd.phy.pins import ControlLine

_LOGGER = logging.getLogger(__name__)
EventSink = Callable[[Any, float], None]


def coalesce(writes: Iterable[tuple[ControlLine, bool]]) -> list[dict[ControlLine, bool]]:
    """Ordered single-line writes as few ``set_controls`` calls as keep their order.

    A call drives its low lines before its high ones, so a run of lows followed by
    highs (the slave's REQ low, RW high) is one call and one pigpiod round trip; a
    low after a high, or a line written twice, starts a new call.
    """
    calls: list[dict[ControlLine, bool]] = []
    for line, level in writes:
        current = calls[-1] if calls else None
        if current is None or line in current or (not level and any(current.values())):
            calls.append({line: level})
        else:
            current[line] = level
    return calls


class LinkDriver:
    def __init__(
        self, phy: PhyBackend, connection: Connection, *, role: str, turn_ms: float,
        retry_s: float, on_event: EventSink, rng: random.Random | None = None,
    ) -> None:  # fmt: skip
        self.phy, self.connection = phy, connection
        self.role_setting, self.turn_ms, self.retry_s = role, turn_ms, retry_s
        self.on_event = on_event
        self.rng = rng or random.Random()
        self.bus: BusAccess | None = None
        self.phy_up = False
        self.conflict = False
        self._wake = asyncio.Event()
        self._stop = asyncio.Event()
        self._tx: asyncio.Task[None] | None = None
        self._tx_failure: Exception | None = None
        self._now: Callable[[], float] = time.monotonic  # what loop.time() reads
        self.bursts = 0
        self.internal_errors = 0  # bugs caught by run(): each reset the link

    def wake(self) -> None:
        """Something changed (a message to send): run the loop now."""
        self._wake.set()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()

    @property
    def link_state(self) -> str:
        if not self.phy_up:
            return "down"
        if self.conflict:
            return "conflict"
        if self.connection.state is LinkState.UP:
            return "up"
        return "arbitrating"

    # -- the outer loop: (re)connect to pigpiod ------------------------------------------

    async def run(self) -> None:
        while not self._stop.is_set():
            if not await open_with_retry(self.phy, retry_s=self.retry_s, stop=self._stop):
                return
            self.phy_up = True
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
                await self._cancel_tx()
                self.connection.stop("bus_lost", self._now())
                self._drain_connection(self._now())
                with contextlib.suppress(PhyError, OSError):
                    await self.phy.aclose()
            if not self._stop.is_set():
                await asyncio.sleep(self.retry_s)

    async def _session(self) -> None:
        self.phy.set_framing(False)
        self.bus = BusAccess(role=self.role_setting, rng=self.rng, turn_ms=self.turn_ms,
                             now=self._now())  # fmt: skip
        receiver = asyncio.create_task(self._receive(), name="link receive")
        try:
            while not self._stop.is_set():
                if self._tx_failure is not None:
                    failure, self._tx_failure = self._tx_failure, None
                    raise failure
                if receiver.done():
                    receiver.result()  # raises what ended the event stream
                    return
                await self._pump()
        finally:
            receiver.cancel()
            await asyncio.gather(receiver, return_exceptions=True)
            if self._stop.is_set():
                await self._cancel_tx()
                with contextlib.suppress(PhyError, OSError):
                    await self.phy.drive_data(False)

    async def _receive(self) -> None:
        async for event in self.phy.events():
            now = self._now()
            if isinstance(event, FrameReceived):
                self.connection.receive_frame(event.data, now)
            elif isinstance(event, ControlsChanged) and self.bus is not None:
                self.bus.peer_lines(event.levels, now)
            self._wake.set()

    # -- one turn of the loop ---------------------------------------------------------------

    async def _pump(self) -> None:
        bus, connection = self.bus, self.connection
        assert bus is not None
        now = self._now()
        for machine in (bus, connection):
            timer = machine.get_timer()
            if timer is not None and timer <= now:
                machine.handle_timer(now)
        self._drain_connection(now)
        bus.want_bus(connection.wants_to_send(now), now)
        await self._apply_bus()
        if bus.may_transmit and connection.wants_to_send(self._now()) and self._tx is None:
            self._tx = asyncio.create_task(self._transmit(bus), name="link transmit")
        deadlines = [t for t in (bus.get_timer(), connection.get_timer()) if t is not None]
        timeout = max(0.0, min(deadlines) - self._now()) if deadlines else None
        self._wake.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout)

    async def _apply_bus(self) -> None:
        bus = self.bus
        assert bus is not None
        for levels in coalesce(bus.writes()):
            await self.phy.set_controls(levels)
        request = bus.data_request()
        if request is True:
            await self.phy.drive_data(True)
            bus.data_claimed(self._now())
        elif request is False:
            await self._cancel_tx()
            await self.phy.drive_data(False)
            bus.data_released(self._now())
        while (event := bus.next_event()) is not None:
            self._bus_event(event)
        if bus.writes_pending or bus.has_request:
            await self._apply_bus()  # confirmations may have produced more to do

    def _bus_event(self, event: RoleDecided | RoleConflict | BusLost) -> None:
        now = self._now()
        self.on_event(event, now)
        if isinstance(event, RoleDecided):
            self.conflict = False
            self.phy.set_framing(True)
            self.connection.start(now, leader=event.role is Role.MASTER)
            _LOGGER.info("bus roles decided: this node is %s", event.role.value)
        elif isinstance(event, RoleConflict):
            if not self.conflict:
                _LOGGER.error("role conflict: %s", event.message)
            self.conflict = True
        else:
            _LOGGER.info("bus lost (%s); arbitrating again", event.reason)
            self.phy.set_framing(False)
            self.connection.stop("bus_lost", now)
            self._drain_connection(now)

    def _drain_connection(self, now: float) -> None:
        while (event := self.connection.next_event()) is not None:
            self.on_event(event, now)
            lost_peer = isinstance(event, LinkDown) and event.reason != "bus_lost"
            if lost_peer and self.bus is not None and self.phy_up:  # re-arbitrate
                self.phy.set_framing(False)
                self.bus.restart(str(getattr(event, "reason", "")), now)

    # -- sending ----------------------------------------------------------------------------

    async def _transmit(self, bus: BusAccess) -> None:
        limit = max(1, self.connection.config.window)
        try:
            while bus.may_transmit:
                frames = self.connection.frames_to_send(self._now(), max_frames=limit)
                if not frames:
                    break
                bus.burst_started(self._now())
                await self.phy.send_frames(frames)
                self.bursts += 1
                bus.burst_done(self._now())
        except PhyError as exc:
            _LOGGER.warning("sending failed: %s", exc.message)
            bus.burst_done(self._now())
        except Exception as exc:  # a bug: hand it to the session loop, which resets the link
            self._tx_failure = exc
        finally:
            self._tx = None
            self._wake.set()

    async def _cancel_tx(self) -> None:
        task, self._tx = self._tx, None
        if task is not None and not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
