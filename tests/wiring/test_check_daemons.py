"""wiring-check with rpilinkd running on both boards: each daemon lends its pins, the link
pauses, the check reports, the link comes back, and a message sent meanwhile arrives."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from rpilinkd.client import Client
from rpilinkd.exits import ExitCode
from rpilinkd.testbed import System
from rpilinkd.wiring.plan import MAX_DRIVE_S
from tests.wiring.support import run_checks

#: the documented bound on a short (docs/wiring.md): a drive's length, plus a busy host's delay
SHORT_BOUND_MS = (MAX_DRIVE_S + 0.070) * 1000


@pytest.fixture
def system(tmp_path: Path) -> Iterator[System]:
    with System(tmp_path, config="[link]\nresume_s = 60\n") as running:  # sends wait it out
        yield running


async def test_the_check_pauses_the_link_and_loses_no_message(system: System) -> None:
    alpha, beta = system.daemon("a"), system.daemon("b")
    system.sim_request(op="reset-stats")
    async with Client(str(alpha.socket)) as a, Client(str(beta.socket)) as b:
        await b.bind(9)
        checking = asyncio.create_task(asyncio.to_thread(run_checks, system, daemons=True))
        await asyncio.to_thread(alpha.wait_for, "paused", 20)
        sending = asyncio.create_task(a.send(9, b"sent during the check"))
        checks = await checking
        await asyncio.wait_for(sending, 60)
        assert (await b.receive(timeout=10)).data == b"sent during the check"
    for board, check in checks.items():
        assert check.code == ExitCode.OK, f"{board}: {check.report} {check.stderr}"
        assert check.report["borrowed"] is True
        assert {w["verdict"] for w in check.report["wires"]} == {"ok"}
        status = await asyncio.to_thread(system.daemon(board).wait_for, "up", 20)
        assert status["pins_free"] is False
    longest = system.sim_stats()["shorts_longest_ms"]
    assert max(longest.values(), default=0.0) <= SHORT_BOUND_MS, longest
