"""Telemetry from two real daemons on the emulator, through a real broker (issue 6)."""

from __future__ import annotations

import asyncio
import json
import re
import signal
import time
from collections.abc import Iterator
from dataclasses import fields
from pathlib import Path

import pytest

from rpilinkd.client import Client
from rpilinkd.telemetry.discovery import ENTITIES
from rpilinkd.telemetry.payloads import StateSnapshot, StatsSnapshot
from rpilinkd.testbed import System
from tests.support.mosquitto import Broker
from tests.support.telemetry_fakes import Recorder


@pytest.fixture
def system(tmp_path: Path, broker: Broker) -> Iterator[System]:
    config = (
        f"[mqtt]\nenabled = true\nport = {broker.port}\nstats_interval_s = 0.5\n"
        "reconnect_max_s = 2.0\n"
    )
    running = System(tmp_path, config=config).start()
    try:
        yield running
    finally:
        running.stop()


async def exchange(system: System, count: int, size: int = 500) -> list[float]:
    """Send ``count`` messages from alpha to beta; their latencies in seconds."""
    latencies = []
    async with (
        Client(str(system.daemon("a").socket)) as a,
        Client(str(system.daemon("b").socket)) as b,
    ):
        await b.bind(40)
        for index in range(count):
            began = time.monotonic()
            await a.send(40, index.to_bytes(4, "little") + bytes(size))
            latencies.append(time.monotonic() - began)
        got = []
        for _ in range(count):
            received = await b.receive(timeout=10)
            got.append(int.from_bytes(received.data[:4], "little"))
    assert got == list(range(count))  # no loss, in order
    return latencies


async def test_dashboards_see_availability_state_and_growing_stats(
    system: System, broker: Broker
) -> None:
    async with Recorder(broker.port, "rpilink/#") as seen:
        await seen.wait_for("alpha/availability", b"online")
        await seen.wait_for("beta/availability", b"online")
        await seen.wait_for("alpha/stats")
        await seen.wait_for("beta/stats")
        sent_before = seen.json("alpha/stats")[-1]["tx_messages"]
        received_before = seen.json("beta/stats")[-1]["rx_messages"]
        await exchange(system, 30)
        await seen.wait_for("alpha/stats", count=len(seen.json("alpha/stats")) + 2)
    state = seen.json("alpha/state")[-1]
    assert set(state) == {f.name for f in fields(StateSnapshot)}  # the documented fields
    assert state["link"] == "up"
    assert state["peer"] == "beta"
    assert state["role"] in ("master", "slave")
    stats = seen.json("alpha/stats")
    assert set(stats[-1]) == {f.name for f in fields(StatsSnapshot)}
    assert stats[-1]["tx_messages"] >= sent_before + 30  # the counters grew with the traffic
    assert seen.json("beta/stats")[-1]["rx_messages"] >= received_before + 30


@pytest.mark.parametrize("signum", [signal.SIGKILL, signal.SIGTERM])
async def test_a_dying_daemon_goes_offline(system: System, broker: Broker, signum: int) -> None:
    async with Recorder(broker.port, "rpilink/beta/availability") as seen:
        await seen.wait_for("availability", b"online")
        system.daemon("b").kill(signum)
        await seen.wait_for("availability", b"offline", timeout=90)


async def test_broker_down_changes_nothing_for_the_data(system: System, broker: Broker) -> None:
    before = await exchange(system, 20)
    broker.stop()
    during = await exchange(system, 20)
    broker.start()
    async with Recorder(broker.port, "rpilink/#") as seen:
        await seen.wait_for("alpha/availability", b"online", timeout=15)  # within the backoff
        await seen.wait_for("alpha/stats", timeout=15)
    slow = sorted(during)[len(during) // 2]
    usual = sorted(before)[len(before) // 2]
    assert slow < usual * 3 + 0.05  # no added latency beyond noise (a loose bound: shared CPUs)


async def test_two_pis_with_one_hostname_warn_and_share_the_broker(
    tmp_path: Path, broker: Broker, full_run: bool
) -> None:
    """Both called raspberrypi (the default hostname): each warns once, neither kicks the
    other off the broker (distinct client ids), and Home Assistant sees two devices."""
    config = f"[mqtt]\nenabled = true\nport = {broker.port}\n"
    names = {"a": "raspberrypi", "b": "raspberrypi"}
    async with Recorder(broker.port, "homeassistant/#") as seen:
        with System(tmp_path, config=config, node_names=names) as system:
            await seen.wait_for("/config", count=2 * len(ENTITIES))
            await asyncio.sleep(30 if full_run else 5)  # long enough for a fight to show
            statuses = [d.status() for d in system.daemons.values()]
            logs = [d.log.read_text() for d in system.daemons.values()]
    broker_log = (tmp_path / "mosquitto.log").read_text()
    clients = re.findall(r"New client connected from \S+ as (rpilinkd-\S+)", broker_log)
    assert sorted(clients) == sorted(set(clients))  # each connected once: no fight
    assert len(clients) == 2
    assert "already connected" not in broker_log
    for status, log in zip(statuses, logs, strict=True):
        assert log.count("the peer is also called 'raspberrypi'") == 1
        assert "same node name" in status["warnings"][0]
    devices = {
        json.loads(p)["device"]["identifiers"][0] for t, p, _ in seen.seen if t.endswith("/config")
    }
    assert len(devices) == 2
