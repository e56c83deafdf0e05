"""The link driver's own logic, without a bus."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence

import pytest

from rpilinkd.config import Config
from rpilinkd.link import Connection, LinkState, MessageDelivered, MessageReceived
from rpilinkd.link.busaccess import coalesce
from rpilinkd.phy import ControlsChanged, FrameReceived, PhyEvent, create_backend
from rpilinkd.phy.base import BusStep
from rpilinkd.phy.virtual import VirtualBus
from rpilinkd.pins import ControlLine
from rpilinkd.platform import detect_board
from rpilinkd.service import daemon
from rpilinkd.service.linkdriver import LinkDriver

REQ, RW, STB, FRM = ControlLine.REQ, ControlLine.RW, ControlLine.STB, ControlLine.FRM


def test_lows_then_highs_share_a_call_and_nothing_is_reordered() -> None:
    assert coalesce([]) == []
    assert coalesce([(REQ, False), (RW, True)]) == [{REQ: False, RW: True}]  # one round trip
    assert coalesce([(RW, True), (REQ, False)]) == [{RW: True}, {REQ: False}]  # high first
    assert coalesce([(STB, True), (STB, False)]) == [{STB: True}, {STB: False}]  # a pulse
    assert coalesce([(FRM, False), (STB, False), (RW, True), (REQ, True)]) == [
        {FRM: False, STB: False, RW: True, REQ: True}
    ]
    assert coalesce([(FRM, True), (STB, True), (FRM, False)]) == [
        {FRM: True, STB: True},
        {FRM: False},
    ]


def test_an_unsupported_board_is_the_reason_the_link_is_down(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A Pi 5 has no pigpiod: status says so, rather than "pigpiod unreachable" forever."""
    pi5 = detect_board("Raspberry Pi 5 Model B Rev 1.0", "Revision\t: c04170\n")
    monkeypatch.setattr(daemon, "read_board", lambda: pi5)
    assert "RP1" in daemon.board_problem("pigpio", "127.0.0.1")
    assert daemon.board_problem("pigpio", "192.168.1.20") == ""  # a remote pigpiod's board
    assert daemon.board_problem("pio", "127.0.0.1") == ""
    config = Config()
    phy = create_backend("pigpio", config, host="127.0.0.1", port=1)
    connection = Connection(config.link, node="n", epoch=1)
    driver = LinkDriver(phy, connection, role="auto", turn_ms=20, retry_s=1, unsupported="X")
    assert driver.reason() == "X"


async def test_the_bus_turn_a_verdict_wakes_goes_before_the_senders_reply() -> None:
    """The verdict that settles a send comes with the events that wake the next bus
    turn (the peer's grant); that turn's backend call goes first, the sender's reply
    (the future's callback) right after it. Replying first, a client that sends again
    at once found the daemon busy with that turn: on the emulator, the 64 B round trip
    took a grid period more (5 instead of 4) for a larger share of round trips
    (docs/speed.md)."""
    bus, config = VirtualBus(seed=2), Config()
    order: list[str] = []
    ends = {name: bus.end(name) for name in "ab"}
    connections = {name: Connection(config.link, node=name, epoch=1) for name in "ab"}
    connections["b"].bind(9)
    replies: dict[int, asyncio.Future[None]] = {}

    def on_event(name: str) -> Callable[[object, float], None]:
        def handle(event: object, now: float) -> None:
            if isinstance(event, MessageReceived):
                connections[name].accept(event.message_id, now)
            elif isinstance(event, MessageDelivered):
                order.append("verdict")
                replies[event.message_id].set_result(None)

        return handle

    drivers = {
        name: LinkDriver(
            ends[name],
            connections[name],
            role="auto",
            turn_ms=20,
            retry_s=1,
            on_event=on_event(name),
        )
        for name in "ab"
    }
    apply = ends["a"].apply

    async def recorded(steps: Sequence[BusStep]) -> None:
        order.append("turn")
        await apply(steps)

    ends["a"].apply = recorded  # type: ignore[method-assign]
    deliver = ends["a"]._deliver
    held: list[FrameReceived] = []
    seen: dict[ControlLine, bool] = {}

    def as_report_batches(event: PhyEvent) -> None:
        """As pigpio's reports come: b's lines, its frames and its hand-over in one read."""
        if isinstance(event, FrameReceived):
            held.append(event)
            return
        assert isinstance(event, ControlsChanged)
        if held:
            deliver(ControlsChanged(dict(seen)))
            for frame in held:
                deliver(frame)
            held.clear()
        seen.update(event.levels)
        deliver(event)

    ends["a"]._deliver = as_report_batches  # type: ignore[method-assign]
    running = [asyncio.create_task(driver.run()) for driver in drivers.values()]
    try:
        while connections["a"].state is not LinkState.UP:
            await asyncio.sleep(0.01)
        for _ in range(5):
            message = connections["a"].send(9, b"x" * 64, time.monotonic())
            replies[message] = asyncio.get_running_loop().create_future()
            replies[message].add_done_callback(lambda _: order.append("reply"))
            drivers["a"].wake()
            await asyncio.wait_for(replies[message], 5)
            await asyncio.sleep(0.05)
            verdict = order.index("verdict")
            assert order[verdict : verdict + 3] == ["verdict", "turn", "reply"], order
            order.clear()
    finally:
        for driver in drivers.values():
            driver.stop()
        await asyncio.gather(*running)
