"""A busy Pi starves pigpiod's alert thread: its reports stop, then come late all at
once, less those older than its sample ring (lost without a word). Messages wait, none
is lost or damaged, and the bus never collides. (This is a robustness test on the
emulator: it passed with the old resync too. The test that fails without the resync's
wait for the report stream is tests/service/test_resilience.py's
``test_late_reports_are_not_taken_for_lost_ones``.)

A starved stream can lose a whole pulse of the peer's grant (fall and rise): the lines
then read as the machine believes, nothing tells the loss, and the link's keepalive
timeout ends the wait with a relink; messages wait for it, none is lost."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path

from rpilinkd.client import Client
from rpilinkd.testbed import System
from tests.support.traffic import collect, pump


async def test_a_starved_alert_thread_costs_time_never_the_link(tmp_path: Path) -> None:
    rng = random.Random(16)
    messages = [rng.randbytes(rng.randint(10, 400)) for _ in range(80)]
    # stalls longer than the resync's quiet spell (100 ms) and shorter than the ring:
    # the late reports all come, after the resync could have acted
    with System(tmp_path, sim_args=("--buffer-ms", "250")) as system:
        ups = {board: system.daemon(board).status()["link_ups"] for board in "ab"}
        async with (
            Client(str(system.daemon("a").socket)) as sender,
            Client(str(system.daemon("b").socket)) as receiver,
        ):
            await receiver.bind(9)

            async def starve() -> None:
                for _ in range(20):
                    await asyncio.sleep(rng.uniform(0.05, 0.2))
                    board, ms = rng.choice("ab"), rng.uniform(110, 220)
                    await asyncio.to_thread(system.sim_request, op="stall", board=board, ms=ms)

            starving = asyncio.create_task(starve())
            sending = asyncio.create_task(pump(sender, 9, messages, in_flight=4))
            received = await collect(receiver, len(messages), timeout=60)
            await asyncio.gather(sending, starving)
        for board in "ab":  # a relink may be under way (see above)
            system.daemon(board).wait_for("up", 10)
        after = {board: system.daemon(board).status() for board in "ab"}
        stats = {board: system.daemon(board).request("stats") for board in "ab"}
    assert received == messages  # all of them, intact, in order
    for board, status in after.items():
        assert status["link"] == "up"
        assert stats[board]["bus"]["collisions"] == 0, stats[board]["bus"]
        assert status["link_ups"] - ups[board] <= 3  # lost pulses (see above)
