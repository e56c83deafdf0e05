"""The link driver: the only glue between the bus backend and the sans-IO link layer.

It feeds the backend's events and the time into the bus-access machine and the
connection, applies what they ask for (control writes in order, claims and releases
of the data lines, debouncing, bursts of frames), and sleeps until the next deadline
or input. A backend session is two tasks, the receiver (the event stream) and the
pump (this loop): whichever ends first ends the session, so a dying receiver always
wakes the driver, which closes the backend and opens it again. While the backend is
away the connection's timers still run (messages waiting for a relink expire on time).
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
from rpilinkd.link import Connection, LinkDown, LinkState
from rpilinkd.link.arbiter import Role
from rpilinkd.link.busaccess import BusAccess, BusLost, RoleConflict, RoleDecided, coalesce
from rpilinkd.link.events import DownReason
from rpilinkd.phy import ControlsChanged, FrameReceived, PhyBackend, PhyEvent, open_with_retry
from rpilinkd.phy.base import FIRST_RETRY_S, BusStep, DataLines
from rpilinkd.service.linkreason import bus_reason
from rpilinkd.service.resync import LineResync

_LOGGER = logging.getLogger(__name__)
EventSink = Callable[[Any, float], None]


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
        self.bus: BusAccess | None = None
        self.phy_up = False
        self.unsupported = unsupported
        self.conflict = False
        self.phy_problem = ""  # why the backend is not open (for status)
        self._wake = asyncio.Event()
        self._end_hold = False  # end_hold() was called: the pump ends the hold
        self._stop = asyncio.Event()
        self._tx: asyncio.Task[None] | None = None
        self._failure: Exception | None = None  # a bug met outside the pump
        self.bursts = 0
        self.internal_errors = 0  # bugs caught by run(): each reset the link
        self.sessions = 0  # backend sessions opened
        self.paused_until: float | None = None  # while the pins are lent out
        self.pins_free = False  # paused, and the backend session is over: a borrower may go
        self._bus_state = ""
        self.resync = LineResync(phy, clock)

    def wake(self) -> None:
        """Something changed (a message to send): run the loop now."""
        self._wake.set()

    def hold_turn(self, seconds: float) -> None:
        """Keep the bus (or turn) ``seconds`` past the next burst the peer must answer:
        a local client that answers at once sends its reply in it (docs/protocol.md §2.4)."""
        if self.bus is not None:
            now = self.now()
            self.bus.hold_turn(now + seconds, now)

    def end_hold(self) -> None:
        """No more holding for a reply (it came, or none is coming): from the next turn
        of the loop, once the bus knows what there is to send, or it hands over now."""
        self._end_hold = True
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
        if self.bus is None:
            return "starting the bus"
        return bus_reason(self.bus, conflict=self.conflict, refused=refused, now=self.now())

    def figures(self) -> dict[str, Any]:
        """The driver's counters, the bus machine's and the backend's, for ``stats``."""
        bus = self.bus
        return {
            "bus": dict(
                bus.counters,
                **bus.arbiter.counters,
                lines_resynced=self.resync.resyncs,
                resync_reads_lagging=self.resync.lagging,
            )
            if bus is not None
            else {},
            "bursts": self.bursts,
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
        self.phy.set_framing(False)
        self.bus = BusAccess(
            role=self.role_setting,
            rng=self.rng,
            turn_ms=self.turn_ms,
            now=self.now(),
            frame_line_in_step=self.phy.capabilities.frame_line_in_step,
        )
        tasks = {
            asyncio.create_task(self._receive(), name="link receive"),
            asyncio.create_task(self._pump_forever(), name="link pump"),
        }
        if self.phy.capabilities.reports_may_be_lost:
            tasks.add(asyncio.create_task(self.resync.run(self.bus, self._wake.set), name="resync"))
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        for task in done:
            if not task.cancelled() and (exc := task.exception()) is not None:
                raise exc
        if not self._stop.is_set() and not self.paused:
            raise PhyUnavailableError(f"the {self.phy.name} backend's event stream ended")

    async def _end_session(self) -> None:
        """Close the backend without ever waiting on a dead connection."""
        await self._cancel_tx()
        now = self.now()
        self.connection.stop(
            DownReason.STOPPED if self._stop.is_set() else DownReason.BUS_LOST, now
        )
        self._drain_connection(now)
        with contextlib.suppress(PhyError, OSError):
            await self.phy.aclose()  # the pins left safe
        self.bus = None

    async def _receive(self) -> None:
        """Take the backend's events as they come (in its task), until it is lost."""
        self.phy.listen(self._on_phy_event)
        await self.phy.ended()

    def _on_phy_event(self, event: PhyEvent) -> None:
        now = self.now()
        self.resync.saw_event(now)
        try:
            if isinstance(event, FrameReceived):
                if self.bus is not None:
                    self.bus.frame_seen(now)
                self.connection.receive_frame(event.data, now)
                self._drain_connection(now)  # a delivery or verdict goes up at once
            elif isinstance(event, ControlsChanged) and self.bus is not None:
                self.bus.peer_lines(event.levels, now)
        except Exception as exc:  # a bug: hand it to the pump, which ends the session
            self._failure = exc
        self._wake.set()

    # -- one turn of the loop ---------------------------------------------------------------

    async def _pump_forever(self) -> None:
        while not self._stop.is_set() and not self.paused:
            if self._failure is not None:
                failure, self._failure = self._failure, None
                raise failure
            await self._pump()

    async def _pump(self) -> None:
        # The bus goes first: the replies to the senders of verdicts that just came wait
        # for this turn, whose writes (the acknowledgement of the grant that came with
        # them) are then on their way. A client that sends again at once finds the
        # daemon free: replying first, its next message waited behind this turn.
        bus, connection = self.bus, self.connection
        assert bus is not None
        self._wake.clear()  # a wake from here on (the receiver runs meanwhile) is kept
        now = self.now()
        for machine in (bus, connection):
            timer = machine.get_timer()
            if timer is not None and timer <= now:
                machine.handle_timer(now)
        self._drain_connection(now)
        bus.want_bus(connection.wants_to_send(now), now, ask=connection.needs_bus(now))
        if self._end_hold:  # only now: a hold ended while nothing was wanted hands over
            self._end_hold = False
            bus.hold_turn(0.0, now)
        await self._apply_bus()
        if bus.may_transmit and connection.wants_to_send(self.now()) and self._tx is None:
            self._tx = asyncio.create_task(self._transmit(bus), name="link transmit")
        elif self._tx is None:
            self.phy.flush()  # no burst this turn: what apply held goes out alone
        deadlines = [t for t in (bus.get_timer(), connection.get_timer()) if t is not None]
        alarm = None
        if deadlines:  # a plain timer: wait_for would make a task for every turn
            delay = max(0.0, min(deadlines) - self.now())
            alarm = asyncio.get_running_loop().call_later(delay, self._wake.set)
        try:
            await self._wake.wait()
        finally:
            if alarm is not None:
                alarm.cancel()

    async def _apply_bus(self) -> None:
        """Apply what the bus machine asks for, as one backend call.

        The machine is told a claim or release is done as soon as it is queued: the
        backend applies the call's steps in order, so the writes that must wait for
        it (the grant after a release) follow it in the same call.
        """
        bus = self.bus
        assert bus is not None
        while True:
            steps: list[BusStep] = []
            while True:
                await self.phy.debounce_strobes(bus.debounce_strobes)
                steps += coalesce(bus.writes())
                request = bus.data_request()
                if request is True:
                    steps.append(DataLines.CLAIM)
                    bus.data_claimed(self.now())
                elif request is False:
                    await self._cancel_tx()
                    steps.append(DataLines.RELEASE)
                    bus.data_released(self.now())
                while (event := bus.next_event()) is not None:
                    self._bus_event(event)
                if not (bus.writes_pending or bus.has_request):
                    break  # else the steps just queued produced more to do
            if steps:
                await self.phy.apply(steps)
            bus.writes_applied(self.now())
            if not (bus.writes_pending or bus.has_request):
                break  # else the peer's lines changed meanwhile
        if bus.state != self._bus_state:
            _LOGGER.debug(
                "bus %s -> %s (peer %s, %s)",
                self._bus_state,
                bus.state,
                "".join(k.name if v else "-" for k, v in bus.peer.items()),
                bus.arbiter.counters,
            )
            self._bus_state = bus.state

    def _bus_event(self, event: RoleDecided | RoleConflict | BusLost) -> None:
        now = self.now()
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
            self.connection.stop(DownReason.BUS_LOST, now)
            self._drain_connection(now)

    def _drain_connection(self, now: float) -> None:
        while (event := self.connection.next_event()) is not None:
            self.on_event(event, now)
            lost_peer = isinstance(event, LinkDown) and event.reason not in (
                DownReason.BUS_LOST,
                DownReason.STOPPED,
            )
            if lost_peer and self.bus is not None and self.phy_up:  # re-arbitrate
                self.phy.set_framing(False)
                self.bus.restart(now)

    # -- sending ----------------------------------------------------------------------------

    async def _transmit(self, bus: BusAccess) -> None:
        limit = max(1, self.connection.config.window)
        over_at = self.now()  # when the last burst is off the wire
        try:
            while bus.may_transmit:
                frames = self.connection.frames_to_send(self.now(), max_frames=limit)
                if not frames:
                    break
                answer_expected = self.connection.answer_expected
                bus.burst_started(self.now())
                plays_on = await self.phy.send_frames(frames)
                over_at = self.now() + plays_on
                self.bursts += 1
                bus.burst_done(self.now(), answer_expected=answer_expected)
        except PhyError as exc:
            _LOGGER.warning("sending failed: %s", exc.message)
            bus.burst_done(self.now())
        except Exception as exc:  # a bug: hand it to the pump, which ends the session
            self._failure = exc
        finally:
            # the turn is over: the peer may answer once the last burst is out
            self.connection.frames_on_wire(max(over_at, self.now()))
            self._tx = None
            self._wake.set()

    async def _cancel_tx(self) -> None:
        task, self._tx = self._tx, None
        if task is not None and not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
