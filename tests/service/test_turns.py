"""Retransmission timers and bus turns: the peer cannot answer while this side holds
the bus, however many bursts it sends in one turn (docs/protocol.md §4.3)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from rpilinkd.cli.commands import measure
from rpilinkd.client import Client
from rpilinkd.testbed import System

COUNT, SIZE, IN_FLIGHT = 200, 1024, 16


async def test_a_turn_of_many_bursts_times_out_nothing_that_got_across(
    tmp_path: Path,
) -> None:
    """16 sends of 1 KiB in flight at -s 5: the sender sends burst after burst as its
    client's next messages come, holding the bus for tens of ms. Timed from each
    burst's end (and before that from when pigpiod took the wave, not when it ended),
    3-12 % of the frames were resent though the peer had them (counted there as
    duplicates). Timed from the end of the turn: none, with two CPU hogs beside it too."""
    with System(tmp_path, sample_us=5) as system:
        async with (
            Client(str(system.daemon("a").socket)) as sender,
            Client(str(system.daemon("b").socket)) as receiver,
        ):
            await receiver.bind(21)

            async def receive_all() -> None:
                for _ in range(COUNT):
                    await receiver.receive(timeout=60)

            receiving = asyncio.create_task(receive_all())
            summary = await measure(sender, 21, count=COUNT, size=SIZE, parallel=IN_FLIGHT)
            await receiving
        a, b = (system.daemon(board).request("stats") for board in "ab")
    assert not summary["failed"], summary
    assert b["messages_received"] >= COUNT
    assert a["frames_sent"] > COUNT * 4  # 1 KiB is five frames of 256 B
    # a host that starves the receiver past the timeout may cost the odd resend
    assert b["duplicates"] <= a["frames_sent"] // 50, (a, b)
    assert a["retransmissions"] <= a["frames_sent"] // 50, (a, b)
