"""What every bus backend must do, run against each one (virtual, pigpio on the emulator,
and two real Pis when RPILINK_TEST_PIGPIO_A/_B name their pigpiods)."""

from __future__ import annotations

import asyncio
import os

import pytest

from rpilinkd.errors import PhyError
from rpilinkd.phy import ControlsChanged, FrameReceived, PhyBackend
from rpilinkd.pins import ControlLine

Pair = tuple[PhyBackend, PhyBackend]


async def next_event(phy: PhyBackend, kind: type, timeout: float = 10.0) -> object:
    events = phy.events()

    async def find() -> object:
        async for event in events:
            if isinstance(event, kind):
                return event
        raise AssertionError("the event stream ended")

    return await asyncio.wait_for(find(), timeout)


async def wait_levels(phy: PhyBackend, line: ControlLine, level: bool) -> None:
    while True:
        event = await next_event(phy, ControlsChanged)
        assert isinstance(event, ControlsChanged)
        if event.levels[line] == level:
            return


async def collect_frames(phy: PhyBackend, count: int, timeout: float = 30.0) -> list[bytes]:
    frames: list[bytes] = []

    async def run() -> None:
        async for event in phy.events():
            if isinstance(event, FrameReceived):
                frames.append(event.data)
                if len(frames) == count:
                    return

    await asyncio.wait_for(run(), timeout)
    return frames


async def test_capabilities(pair: Pair) -> None:
    a, _ = pair
    caps = a.capabilities
    assert caps.max_frame >= 256
    assert caps.line_rate_bps > 0


async def test_control_lines_are_crossed(pair: Pair) -> None:
    a, b = pair
    await a.set_controls({ControlLine.REQ: True, ControlLine.RW: False})
    await wait_levels(b, ControlLine.REQ, True)
    assert (await b.read_controls())[ControlLine.REQ] is True
    assert (await a.read_controls())[ControlLine.REQ] is False  # b's REQ is low
    await a.set_controls({ControlLine.REQ: False})
    await wait_levels(b, ControlLine.REQ, False)


async def test_frames_both_ways(pair: Pair) -> None:
    a, b = pair
    for phy in pair:
        phy.set_framing(True)
    for sender, receiver in ((a, b), (b, a)):
        frames = [os.urandom(n) for n in (4, 16, 256, 1000, 8)]
        await sender.drive_data(True)
        receiving = asyncio.create_task(collect_frames(receiver, len(frames)))
        await sender.send_frames(frames)
        assert await receiving == frames
        await sender.drive_data(False)


async def test_sending_needs_the_data_lines(pair: Pair) -> None:
    a, _ = pair
    with pytest.raises(PhyError, match="drive_data"):
        await a.send_frames([b"x"])


@pytest.mark.parametrize("size", [0, 5000, 6])
async def test_bad_frame_sizes_are_refused(pair: Pair, size: int) -> None:
    a, _ = pair
    await a.drive_data(True)
    with pytest.raises(PhyError, match="bytes: must be"):
        await a.send_frames([bytes(size)])
    await a.drive_data(False)


async def test_events_keep_wire_order(pair: Pair) -> None:
    a, b = pair
    for phy in pair:
        phy.set_framing(True)
    await a.drive_data(True)
    await a.send_frames([b"1st!"])
    await a.set_controls({ControlLine.RW: True})
    await a.send_frames([b"2nd!"])
    seen: list[object] = []

    async def run() -> None:
        async for event in b.events():
            if isinstance(event, FrameReceived):
                seen.append(event.data)
            elif isinstance(event, ControlsChanged) and event.levels[ControlLine.RW]:
                seen.append("rw")
            if len(seen) == 3:
                return

    await asyncio.wait_for(run(), 10)
    assert seen == [b"1st!", "rw", b"2nd!"]


async def test_close_and_reopen(pair: Pair) -> None:
    a, b = pair
    await a.aclose()
    await a.aclose()  # idempotent
    await a.open()
    await a.set_controls({ControlLine.STB: True})
    await wait_levels(b, ControlLine.STB, True)
