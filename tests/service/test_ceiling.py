"""Past pigpiod's report ceiling (issue 15): the emulator loses reports as pigpiod would
(its ring overwritten) and counts them; the link rides it out with retransmissions and
delivers every message intact and in order, never a damaged one."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path

from rpilinkd.client import Client
from rpilinkd.testbed import System


async def test_reports_lost_past_the_ceiling_cost_retransmissions_never_damage(
    tmp_path: Path,
) -> None:
    # -s 1 puts 400,000 units a second on the wire; this pigpiod reports 200,000 and keeps
    # 20 ms of samples, so every long burst outruns it and loses its tail
    ceiling = ("--report-rate", "200000", "--buffer-ms", "20")
    rng = random.Random(15)
    messages = [rng.randbytes(rng.randint(100, 4000)) for _ in range(40)]
    with System(tmp_path, sample_us=1, sim_args=ceiling) as system:
        async with (
            Client(str(system.daemon("a").socket)) as sender,
            Client(str(system.daemon("b").socket)) as receiver,
        ):
            await receiver.bind(9)
            window = asyncio.Semaphore(8)

            async def send(data: bytes) -> None:
                async with window:
                    await sender.send(9, data)

            sending = asyncio.gather(*(send(m) for m in messages))
            received = [(await receiver.receive(timeout=60)).data for _ in messages]
            await sending
        lost = sum(board["reports_lost"] for board in system.sim_stats()["boards"].values())
        stats = {board: system.daemon(board).request("stats") for board in "ab"}
    assert received == messages  # all of them, intact, in order
    assert lost > 0
    assert stats["a"]["retransmissions"] > 0
    damaged = sum(stats[b]["crc_errors"] + stats[b]["bad_frames"] for b in "ab")
    assert damaged > 0  # seen, counted and dropped: never delivered
