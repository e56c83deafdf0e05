"""The MQTT publisher against a real mosquitto (issue 6)."""

from __future__ import annotations

import asyncio
import json
import logging
import random
import signal
import subprocess
import sys
from dataclasses import fields
from pathlib import Path
from typing import Any

import pytest

from rpilinkd.config import MqttConfig
from rpilinkd.errors import ConfigError
from rpilinkd.events import Event, EventKind
from rpilinkd.telemetry.discovery import ENTITIES, machine_tag
from rpilinkd.telemetry.mqtt import TelemetryPublisher
from rpilinkd.telemetry.payloads import StatsSnapshot
from rpilinkd.testbed.processes import child_env
from tests.support.mosquitto import Broker
from tests.support.procs import REPO
from tests.support.telemetry_fakes import MovingSource, Recorder
from tests.support.waiting import wait_until


def publisher(port: int, **config: Any) -> TelemetryPublisher:
    settings = MqttConfig(
        enabled=True, port=port, stats_interval_s=0.3, reconnect_max_s=1.0, **config
    )
    return TelemetryPublisher(settings, node="alpha", version="test", source=MovingSource())


async def test_online_state_and_growing_stats(broker: Broker) -> None:
    async with Recorder(broker.port, "rpilink/#") as seen:
        pub = publisher(broker.port)
        task = asyncio.create_task(pub.run())
        try:
            await seen.wait_for("/availability", b"online")
            await seen.wait_for("/stats", count=3)
            pub.on_node_event(Event(EventKind.LINK_DOWN, {"reason": "timeout", "detail": ""}))
            await seen.wait_for("/event")
            async with Recorder(broker.port, "rpilink/#") as late:  # gets what is retained
                await late.wait_for("/state")
                await late.wait_for("/availability", b"online")
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        await seen.wait_for("/availability", b"offline")  # said on a clean stop
    retained = {t for t, _, r in late.seen if r}
    assert retained >= {"rpilink/alpha/availability", "rpilink/alpha/state"}
    assert not any(r for t, _, r in late.seen if t.endswith(("/stats", "/event")))
    state = seen.json("/state")[-1]
    assert state["link"] == "up"
    assert state["role"] == "master"
    stats = seen.json("/stats")
    assert set(stats[0]) == {f.name for f in fields(StatsSnapshot)}
    assert stats[-1]["tx_messages"] > stats[0]["tx_messages"]
    event = seen.json("/event")[0]
    assert (event["event"], event["node"], event["reason"]) == ("link_down", "alpha", "timeout")


async def test_discovery_payloads_are_complete_for_home_assistant(broker: Broker) -> None:
    pub = publisher(broker.port)
    task = asyncio.create_task(pub.run())
    try:
        async with Recorder(broker.port, "rpilink/#") as seen:
            await seen.wait_for("/availability", b"online")
        async with Recorder(broker.port, "homeassistant/#") as seen:  # retained, so late is fine
            await seen.wait_for("/config", count=len(ENTITIES))
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    configs = [(t, json.loads(p)) for t, p, r in seen.seen if t.endswith("/config") and r]
    assert any(t.startswith("homeassistant/binary_sensor/") for t, _ in configs)
    ids = [c["unique_id"] for _, c in configs]
    assert len(ids) == len(set(ids))
    for _, config in configs:
        for key in ("name", "unique_id", "state_topic", "availability_topic", "device"):
            assert config[key], key
        assert config["availability_topic"] == "rpilink/alpha/availability"
        assert config["state_topic"].startswith("rpilink/alpha/")
        assert config["device"]["identifiers"] == [f"rpilink_alpha_{machine_tag()}"]


def test_never_drops_link_events_but_drops_the_oldest_others() -> None:
    pub = publisher(1, queue_size=5)  # no broker needed: nothing is sent
    for i in range(20):
        pub.event(Event(EventKind.DELIVERY_FAILED, {"index": i}))
    pub.event(Event(EventKind.LINK_DOWN, {"reason": "timeout"}))
    pub.event(Event(EventKind.LINK_UP, {"peer": "beta"}))
    for i in range(20):
        pub.event(Event(EventKind.DELIVERY_FAILED, {"index": 100 + i}))
    kinds = [kind for kind, _ in pub._events]
    assert EventKind.LINK_DOWN in kinds
    assert EventKind.LINK_UP in kinds
    assert len(kinds) == 5
    assert pub.counters["events_dropped"] >= 35


async def test_broker_outage_blocks_nothing_and_telemetry_resumes(
    broker: Broker, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    pub = publisher(broker.port)
    task = asyncio.create_task(pub.run())
    try:
        async with Recorder(broker.port, "rpilink/#") as seen:
            await seen.wait_for("/availability", b"online")
        broker.stop()
        await wait_until(lambda: not pub.connected)
        for i in range(1000):  # the daemon's events go on: the queue stays bounded
            pub.event(Event(EventKind.DELIVERY_FAILED, {"index": i}))
        assert pub.queued <= 2 * pub.config.queue_size
        await wait_until(lambda: pub.counters["failed_connects"] >= 2)  # attempts, each failing
        broker.start()
        async with Recorder(broker.port, "rpilink/#") as seen:
            await seen.wait_for("/availability", b"online", timeout=10)  # within the backoff
            await seen.wait_for("/stats", timeout=10)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    outage_lines = [r for r in caplog.records if "unreachable" in r.getMessage()]
    assert len(outage_lines) == 1  # the outage is logged once, not once per attempt
    assert any("reachable again" in r.getMessage() for r in caplog.records)


async def test_password_auth(auth_broker: Broker, caplog: pytest.LogCaptureFixture) -> None:
    good = publisher(auth_broker.port, username="rpilink", password="s3cret")
    bad = publisher(auth_broker.port, username="rpilink", password="wrong")
    caplog.set_level(logging.ERROR)
    tasks = [asyncio.create_task(good.run()), asyncio.create_task(bad.run())]
    try:
        await wait_until(lambda: good.connected and bad.counters["failed_connects"] >= 2)
        assert not bad.connected
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    refusals = [r for r in caplog.records if "refused the credentials" in r.getMessage()]
    assert len(refusals) == 1
    assert "'rpilink'" in refusals[0].getMessage()


async def test_password_file(auth_broker: Broker, tmp_path: Path) -> None:
    secret = tmp_path / "pw"
    secret.write_text("s3cret\n")
    pub = publisher(auth_broker.port, username="rpilink", password_file=str(secret))
    task = asyncio.create_task(pub.run())
    try:
        await wait_until(lambda: pub.connected)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_a_cancel_always_stops_the_publisher(broker: Broker) -> None:
    """A stopping daemon cancels the publisher at any moment; it must end every time.

    On Python 3.11 a cancel landing as one of aiomqtt's round trips completes was
    swallowed (about one stop in five hung for good before the fix).
    """
    rng = random.Random(7)
    for attempt in range(80):
        pub = publisher(broker.port)
        task = asyncio.create_task(pub.run())
        await wait_until(lambda: pub.connected, step=0.002)  # noqa: B023 (this attempt's)
        await asyncio.sleep(rng.random() * 0.01)  # land anywhere in the first round trips
        task.cancel()
        done, _ = await asyncio.wait({task}, timeout=5)
        assert done, f"attempt {attempt}: the publisher ignored its cancel"


def test_unreadable_password_file_names_the_key() -> None:
    with pytest.raises(ConfigError, match=r"mqtt\.password_file"):
        publisher(1, password_file="/nonexistent/pw")


async def test_stopped_as_it_says_online_it_still_says_offline(broker: Broker) -> None:
    """A daemon stopped while its "online" waits for the broker's acknowledgement (it
    was just started) says "offline" all the same: leaving with a clean disconnect
    drops the will, so nothing else would, and "online" stayed retained for good."""
    async with Recorder(broker.port, "rpilink/#") as seen:
        pub = publisher(broker.port)
        said_online, gate = asyncio.Event(), asyncio.Event()
        publish = pub._publish

        async def held_after_online(
            client: Any, topic: str, payload: bytes, *, retain: bool
        ) -> None:
            await publish(client, topic, payload, retain=retain)
            if payload == b"online":
                said_online.set()
                await gate.wait()  # the acknowledgement still on its way

        pub._publish = held_after_online  # type: ignore[method-assign]
        task = asyncio.create_task(pub.run())
        await asyncio.wait_for(said_online.wait(), 10)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await seen.wait_for("/availability", b"offline", timeout=5)


@pytest.mark.parametrize("signum", [signal.SIGKILL, signal.SIGTERM])
async def test_offline_on_kill_and_on_terminate(broker: Broker, signum: int) -> None:
    async with Recorder(broker.port, "rpilink/lwt/#") as seen:
        proc = subprocess.Popen(
            [sys.executable, "-m", "tests.support.telemetry_runner", str(broker.port), "lwt"],
            env=child_env(),
            cwd=REPO,
            stdout=subprocess.DEVNULL,
        )
        try:
            await seen.wait_for("/availability", b"online")
            proc.send_signal(signum)
            await seen.wait_for("/availability", b"offline", timeout=90)  # LWT: keepalive x 1.5
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait(10)
