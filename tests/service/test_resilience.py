"""A bug in one part of the daemon is logged and survived, never the end of the link."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from rpilinkd.client import Client
from rpilinkd.config import Config, config_from_mapping
from rpilinkd.errors import RpilinkError
from rpilinkd.events import LinkStatus
from rpilinkd.phy.virtual import VirtualBus
from rpilinkd.service import daemon as daemon_module
from rpilinkd.service.daemon import Daemon, build
from rpilinkd.service.health import WireHealth
from tests.support.waiting import wait_until


def config_for(socket: Path) -> Config:
    return config_from_mapping({"api": {"socket": str(socket)}})


@pytest.fixture
def bus() -> VirtualBus:
    return VirtualBus(line_rate_bps=500_000, seed=1)


@pytest.fixture
async def pair(bus: VirtualBus, tmp_path: Path) -> AsyncIterator[tuple[Daemon, Daemon]]:
    a = build(config_for(tmp_path / "a.sock"), backend="virtual", bus=bus, end="a")
    b = build(config_for(tmp_path / "b.sock"), backend="virtual", bus=bus, end="b")
    tasks = [asyncio.create_task(d.driver.run()) for d in (a, b)]
    try:
        await wait_until(lambda: a.node.link_state == b.node.link_state is LinkStatus.UP, 10)
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
    await wait_until(lambda: a.node.link_state == b.node.link_state is LinkStatus.UP, 10)
    assert a.node.stats()["internal_errors"] == 1
    logged = [r for r in caplog.records if "internal error in the link driver" in r.getMessage()]
    assert len(logged) == 1
    assert logged[0].exc_info is not None  # with its traceback


async def test_a_lost_report_of_the_peer_lines_is_read_afresh_not_a_relink(
    pair: tuple[Daemon, Daemon], bus: VirtualBus
) -> None:
    """A busy pigpiod drops reports: a lost grant or return must not leave both ends
    waiting until the keepalive timeout ends the link."""
    a, b = pair
    ups = [d.node.connection.stats.link_ups for d in (a, b)]
    bus.report_loss = 0.2  # idle keepalives hand the bus over several times a second
    await wait_until(lambda: bus.reports_lost >= 10, 20)
    bus.report_loss = 0.0
    await asyncio.sleep(0.3)  # a last resync, if one is due
    assert a.driver.resync.resyncs + b.driver.resync.resyncs >= 1
    for daemon, before in zip((a, b), ups, strict=True):
        assert daemon.node.connection.stats.link_ups == before  # never down
        assert daemon.node.link_state is LinkStatus.UP
    assert a.node.stats()["bus"]["lines_resynced"] == a.driver.resync.resyncs


async def test_late_reports_are_not_taken_for_lost_ones(
    pair: tuple[Daemon, Daemon], bus: VirtualBus
) -> None:
    """A starved pigpiod reports nothing for a while, then everything at once. The
    resync reads the lines meanwhile and finds them changed; acting on that before the
    late reports are in made a master take back the bus its slave was still sending on
    ("the peer sent a frame while we held the data lines")."""
    a, b = pair
    ups = [d.node.connection.stats.link_ups for d in (a, b)]
    for end in "ab" * 6:  # quiet spells longer than the resync's (idle keepalives move)
        bus.stall(end, 0.3)
        await asyncio.sleep(0.35)
    await asyncio.sleep(0.1)
    for daemon, before in zip((a, b), ups, strict=True):
        assert daemon.node.stats()["bus"]["collisions"] == 0
        assert daemon.node.connection.stats.link_ups == before  # never down
    assert a.driver.resync.lagging + b.driver.resync.lagging >= 1  # it did hold back


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


async def test_wire_damage_and_cable_health_are_logged_and_published(
    pair: tuple[Daemon, Daemon], bus: VirtualBus, caplog: pytest.LogCaptureFixture
) -> None:
    a, _ = pair
    health = WireHealth(a.node)
    events: list[dict[str, object]] = []
    a.node.listeners.append(lambda event: events.append(event.payload()))
    health.check()
    assert not events  # a clean wire: nothing to say
    bus.bit_flip = 0.5
    await wait_until(lambda: a.node.connection.stats.crc_errors >= 3, 10)
    bus.bit_flip = 0.0
    health.check()
    damage = [e for e in events if e["event"] == "wire_errors"]
    assert len(damage) == 1
    assert damage[0]["crc_errors"] == a.node.connection.stats.crc_errors
    assert any("damaged frame(s) from the wire" in r.getMessage() for r in caplog.records)
    a.node.connection.stats.tx_errors = 130  # as many retransmissions would leave it
    health.check()
    levels = [e for e in events if e["event"] == "error_level"]
    assert levels == [
        {"event": "error_level", "level": "passive", "previous": "active", "tx_errors": 130}
    ]
    assert any("cable health active -> passive" in r.getMessage() for r in caplog.records)


async def test_a_bug_answering_a_request_is_an_internal_error_not_a_lost_client(
    pair: tuple[Daemon, Daemon], caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    a, _ = pair
    await a.api.start()

    def broken_status() -> dict[str, Any]:
        raise KeyError("a planted bug")

    monkeypatch.setattr(a.node, "status", broken_status)
    try:
        async with Client(a.config.api.socket) as client:
            with pytest.raises(RpilinkError) as info:
                await client.status()
            assert info.value.code == "internal"
            await client.request("ping")  # the connection still serves
    finally:
        await a.api.close()
    assert any("internal error answering" in r.getMessage() for r in caplog.records)
