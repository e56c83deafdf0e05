"""A bug in one part of the daemon is logged and survived, never the end of the link."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import pytest

from rpilinkd.config import Config
from rpilinkd.phy.virtual import VirtualBus
from rpilinkd.service import daemon as daemon_module
from rpilinkd.service.daemon import Daemon, build
from tests.support.system import wait_until


@pytest.fixture
async def pair() -> AsyncIterator[tuple[Daemon, Daemon]]:
    bus = VirtualBus(line_rate_bps=500_000, seed=1)
    a = build(Config(), backend="virtual", bus=bus, end="a")
    b = build(Config(), backend="virtual", bus=bus, end="b")
    tasks = [asyncio.create_task(d.driver.run()) for d in (a, b)]
    try:
        await wait_until(lambda: a.node.link_state == b.node.link_state == "up", 10)
        yield a, b
    finally:
        for d in (a, b):
            d.driver.stop()
        await asyncio.wait_for(asyncio.gather(*tasks), 10)


async def test_a_bug_in_the_link_resets_it_and_it_comes_back(
    pair: tuple[Daemon, Daemon], caplog: pytest.LogCaptureFixture
) -> None:
    a, b = pair
    connection = a.node.connection
    real = connection.frames_to_send
    broken = True

    def frames_to_send(now: float, max_frames: int | None = None) -> list[bytes]:
        nonlocal broken
        if broken:
            broken = False
            raise RuntimeError("a planted bug")
        return real(now, max_frames)

    connection.frames_to_send = frames_to_send  # type: ignore[method-assign]
    await wait_until(lambda: a.driver.internal_errors == 1, 10)
    await wait_until(lambda: a.node.link_state == b.node.link_state == "up", 10)
    assert a.node.stats()["internal_errors"] == 1
    logged = [r for r in caplog.records if "internal error in the link driver" in r.getMessage()]
    assert len(logged) == 1
    assert logged[0].exc_info is not None  # with its traceback


async def test_a_failing_optional_service_starts_again(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(daemon_module, "RESTART_SERVICE_S", 0.01)
    runs = 0

    async def flaky() -> None:
        nonlocal runs
        runs += 1
        if runs < 3:
            raise ValueError("broken telemetry")

    with caplog.at_level(logging.ERROR):
        await asyncio.wait_for(daemon_module._supervised("telemetry", flaky), 5)
    assert runs == 3
    assert sum("telemetry failed; restarting" in r.getMessage() for r in caplog.records) == 2
