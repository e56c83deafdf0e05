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


async def test_the_reply_of_a_client_that_answers_at_once_rides_the_same_turn(
    tmp_path: Path,
) -> None:
    """docs/protocol.md §2.4: a daemon that hands a message to a client which answered
    the last one at once keeps the bus a moment (REPLY_HOLD), and the answer goes in
    the same turn: about one turn-around per exchange, not a request, a grant and two
    more (64 B each way at -s 5: 2.9 turns and 17-20 ms p50 an exchange before, about
    1 turn and 6 ms with it)."""
    exchanges = 60
    # a hold longer than the default: beside a loaded suite the client answers late
    with System(tmp_path, sample_us=5, config="[link]\nreply_hold_ms = 30\n") as system:
        async with (
            Client(str(system.daemon("a").socket)) as asking,
            Client(str(system.daemon("b").socket)) as answering,
        ):
            await asking.bind(40)
            await answering.bind(41)

            async def answer() -> None:
                while True:
                    message = await answering.receive(timeout=60)
                    await answering.send(40, message.data)

            answerer = asyncio.create_task(answer())
            await asking.send(41, b"warm")  # the first answer shows the client answers
            await asking.receive(timeout=60)
            before = turns(system)
            for _ in range(exchanges):
                await asking.send(41, bytes(64))
                await asking.receive(timeout=60)
            taken = turns(system) - before
            answerer.cancel()
    # 2.9 an exchange without the hold; with it about 1 (the default 5 ms hold: 1.0-1.1
    # quiet, up to 1.7 in a suite beside two CPU hogs, whose answers come late)
    assert taken <= exchanges * 2, taken


def turns(system: System) -> int:
    """The turns the master has granted so far (the slave's are the same count)."""
    return sum(system.daemon(board).request("stats")["bus"]["turns_granted"] for board in "ab")
