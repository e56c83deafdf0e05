"""One backend session of the link driver: the bus machine and the connection, driven.

A session is two tasks, the receiver (the backend's event stream, fed to the link
as it comes) and the pump (a loop that feeds the time to the bus-access machine
and the connection, applies what they ask for, and sleeps until the next deadline
or input), plus the resync watch where reports may be lost. Whichever ends first
ends the session: a dying receiver always wakes the driver (linkdriver.py), which
closes the backend and opens it again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from rpilinkd.errors import PhyError, PhyUnavailableError
from rpilinkd.link import Connection, LinkDown
from rpilinkd.link.arbiter import Role
from rpilinkd.link.busaccess import BusAccess, BusEvent, BusLost, RoleDecided, coalesce
from rpilinkd.link.events import DownReason
from rpilinkd.phy import ControlsChanged, FrameReceived, PhyBackend, PhyEvent
from rpilinkd.phy.base import BusStep, DataLines
from rpilinkd.service.resync import LineResync

_LOGGER = logging.getLogger(__name__)
EventSink = Callable[[Any, float], None]


class BusSession:
    def __init__(
        self,
        phy: PhyBackend,
        connection: Connection,
        bus: BusAccess,
        *,
        wake: asyncio.Event,
        resync: LineResync,
        on_event: EventSink,
        clock: Callable[[], float],
        running: Callable[[], bool],
    ) -> None:
        """``wake``: set to run the pump now (the driver's, shared); ``running``: False
        once the driver stops or lends the pins (the pump then returns)."""
        self.phy, self.connection, self.bus = phy, connection, bus
        self.wake, self.resync, self.on_event = wake, resync, on_event
        self.now, self.running = clock, running
        self.bursts = 0
        self._end_hold = False  # end_hold() was called: the pump ends the hold
        self._tx: asyncio.Task[None] | None = None
        self._failure: Exception | None = None  # a bug met outside the pump
        self._bus_state = ""

    def end_hold(self) -> None:
        """No more holding for a reply: from the pump's next turn, once the bus knows
        what there is to send, or it hands over now."""
        self._end_hold = True
        self.wake.set()

    async def run(self) -> None:
        """Until the backend is lost (raised), the driver stops, or the pins are lent."""
        self.phy.set_framing(False)
        tasks = {
            asyncio.create_task(self._receive(), name="link receive"),
            asyncio.create_task(self._pump_forever(), name="link pump"),
        }
        if self.phy.capabilities.reports_may_be_lost:
            tasks.add(asyncio.create_task(self.resync.run(self.bus, self.wake.set), name="resync"))
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await self._cancel_tx()
        for task in done:
            if not task.cancelled() and (exc := task.exception()) is not None:
                raise exc
        if self.running():
            raise PhyUnavailableError(f"the {self.phy.name} backend's event stream ended")

    # -- receiving ------------------------------------------------------------------------

    async def _receive(self) -> None:
        """Take the backend's events as they come (in its task), until it is lost."""
        self.phy.listen(self._on_phy_event)
        await self.phy.ended()

    def _on_phy_event(self, event: PhyEvent) -> None:
        now = self.now()
        self.resync.saw_event(now)
        try:
            if isinstance(event, FrameReceived):
                self.bus.frame_seen(now)
                self.connection.receive_frame(event.data, now)
                self._drain_connection(now)  # a delivery or verdict goes up at once
            elif isinstance(event, ControlsChanged):
                self.bus.peer_lines(event.levels, now)
        except Exception as exc:  # a bug: hand it to the pump, which ends the session
            self._failure = exc
        # the pump after what the events scheduled: an accepted message's reply goes to
        # its sender first, whose client then works on its next one while the pump turns
        asyncio.get_running_loop().call_soon(self.wake.set)

    # -- one turn of the loop ---------------------------------------------------------------

    async def _pump_forever(self) -> None:
        while self.running():
            if self._failure is not None:
                failure, self._failure = self._failure, None
                raise failure
            await self._pump()

    async def _pump(self) -> None:
        bus, connection = self.bus, self.connection
        self.wake.clear()  # a wake from here on (the receiver runs meanwhile) is kept
        now = self.now()
        for machine in (bus, connection):
            timer = machine.get_timer()
            if timer is not None and timer <= now:
                machine.handle_timer(now)
        self._drain_connection(now)
        self._tell_wants(now)
        if self._end_hold:  # only now: a hold ended while nothing was wanted hands over
            self._end_hold = False
            bus.hold_turn(0.0, now)
        await self._apply_bus()
        if bus.may_transmit and connection.wants_to_send(self.now()) and self._tx is None:
            self._tx = asyncio.create_task(self._transmit(), name="link transmit")
        elif self._tx is None:
            self.phy.flush()  # no burst this turn: what apply held goes out alone
        deadlines = [t for t in (bus.get_timer(), connection.get_timer()) if t is not None]
        alarm = None
        if deadlines:  # a plain timer: wait_for would make a task for every turn
            delay = max(0.0, min(deadlines) - self.now())
            alarm = asyncio.get_running_loop().call_later(delay, self.wake.set)
        try:
            await self.wake.wait()
        finally:
            if alarm is not None:
                alarm.cancel()

    async def _apply_bus(self) -> None:
        """Apply what the bus machine asks for, as one backend call."""
        bus = self.bus
        while True:
            steps = await self._take_steps(in_burst=False)
            if steps:
                await self.phy.apply(steps)
            bus.writes_applied(self.now())
            if not (bus.writes_pending or bus.has_request):
                break  # else the peer's lines changed meanwhile
        self._log_state()

    async def _take_steps(self, *, in_burst: bool) -> list[BusStep]:
        """What the bus machine asks for, as backend steps in order.

        The machine is told a claim or release is done as soon as it is queued: the
        backend applies the steps in order, so the writes that must wait for it (the
        grant after a release) follow it in the same call. A release first stops a
        burst still being sent, unless ``in_burst``: the steps then go behind it.
        """
        bus = self.bus
        steps: list[BusStep] = []
        while True:
            await self.phy.debounce_strobes(bus.debounce_strobes)
            steps += coalesce(bus.writes())
            request = bus.data_request()
            if request is True:
                steps.append(DataLines.CLAIM)
                bus.data_claimed(self.now())
            elif request is False:
                if not in_burst:
                    await self._cancel_tx()
                steps.append(DataLines.RELEASE)
                bus.data_released(self.now())
            while (event := bus.next_event()) is not None:
                self._bus_event(event)
            if not (bus.writes_pending or bus.has_request):
                return steps  # else the steps just queued produced more to do

    def _log_state(self) -> None:
        bus = self.bus
        if bus.state != self._bus_state:
            if _LOGGER.isEnabledFor(logging.DEBUG):  # the peer's lines cost a join
                peer = "".join(k.name if v else "-" for k, v in bus.peer.items())
                _LOGGER.debug(
                    "bus %s -> %s (peer %s, %s)",
                    self._bus_state,
                    bus.state,
                    peer,
                    bus.arbiter.counters,
                )
            self._bus_state = bus.state

    def _bus_event(self, event: BusEvent) -> None:
        now = self.now()
        self.on_event(event, now)
        if isinstance(event, RoleDecided):
            self.phy.set_framing(True)
            self.connection.start(now, leader=event.role is Role.MASTER)
            _LOGGER.info("bus roles decided: this node is %s", event.role.value)
        elif isinstance(event, BusLost):
            _LOGGER.info("bus lost (%s); arbitrating again", event.reason)
            self.phy.set_framing(False)
            self.connection.stop(DownReason.BUS_LOST, now)
            self._drain_connection(now)

    def _drain_connection(self, now: float) -> None:
        """Hand the connection's events on; a lost peer sends the bus back to arbitration."""
        while (event := self.connection.next_event()) is not None:
            self.on_event(event, now)
            lost_peer = isinstance(event, LinkDown) and event.reason not in (
                DownReason.BUS_LOST,
                DownReason.STOPPED,
            )
            if lost_peer:  # re-arbitrate
                self.phy.set_framing(False)
                self.bus.restart(now)

    # -- sending ----------------------------------------------------------------------------

    async def _transmit(self) -> None:
        bus = self.bus
        limit = max(1, self.connection.config.window)
        over_at = self.now()  # when the last burst is off the wire
        try:
            while bus.may_transmit:
                frames = self.connection.frames_to_send(self.now(), max_frames=limit)
                if not frames:
                    break
                answer_expected = self.connection.answer_expected
                bus.burst_started(self.now())
                then = await self._turn_end(frames, answer_expected)
                plays_on = await self.phy.send_burst(frames, then)
                over_at = self.now() + plays_on
                self.bursts += 1
                if then:
                    bus.writes_applied(self.now())
                else:
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
            self.wake.set()

    async def _turn_end(self, frames: list[bytes], answer_expected: bool) -> list[BusStep]:
        """If the burst about to go is the turn's last and ends it (or our drive of the
        data lines), the steps that do so, for the backend to queue with it: the machine
        is told the burst is done now, as a claim is done once queued. Only where the
        backend queues both at once: a write the pump applied in between (the peer's
        revoke answered) would overtake the burst. Else none, and the burst stays one
        till it is sent (the pump must not end the turn under it)."""
        bus, now = self.bus, self.now()
        if not self.phy.queues_turn_end(frames):
            return []
        if self._tell_wants(now):
            return []  # more bursts to come: the turn goes on
        bus.burst_done(now, answer_expected=answer_expected)
        then = await self._take_steps(in_burst=True)
        if not then:
            bus.burst_started(now)
        return then

    def _tell_wants(self, now: float) -> bool:
        """Tell the bus machine whether there is something to send (returned too)."""
        connection = self.connection
        wants = connection.wants_to_send(now)
        self.bus.want_bus(wants, now, ask=connection.needs_bus(now))
        return wants

    async def _cancel_tx(self) -> None:
        task, self._tx = self._tx, None
        if task is not None and not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
