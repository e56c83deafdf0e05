"""A telemetry source with moving numbers, and a subscriber that records what it sees."""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

import aiomqtt

from rpilinkd.telemetry.payloads import StateSnapshot, StatsSnapshot


class MovingSource:
    def __init__(self, node: str = "alpha") -> None:
        self.node = node
        self.sent = 0
        self.link = "up"

    def telemetry_state(self) -> StateSnapshot:
        return StateSnapshot(
            self.node,
            self.link,
            "master",
            "beta",
            1,
            "0.1.0",
            1.0,
            1.0,
            7,
            8,
            1,
            "active",
            "pigpio 127.0.0.1:8888",
        )

    def telemetry_stats(self) -> StatsSnapshot:
        self.sent += 10
        return StatsSnapshot(
            node=self.node,
            uptime_s=1.0,
            tx_messages=self.sent,
            rx_messages=self.sent,
            tx_payload_bytes=self.sent * 100,
            rx_payload_bytes=0,
            tx_frames=self.sent,
            rx_frames=0,
            tx_bytes=0,
            rx_bytes=0,
            retransmissions=0,
            crc_errors=0,
            bad_frames=0,
            duplicates=0,
            messages_delivered=self.sent,
            delivery_failures=0,
            tx_Bps=1.0,
            rx_Bps=0.0,
            latency_p50_ms=1.0,
            latency_p90_ms=2.0,
            latency_p99_ms=3.0,
            line_rate_Bps=100000.0,
            pending_sends=0,
            api_clients=1,
            api_queued_bytes=0,
            tx_errors=0,
            error_level="active",
            link_ups=1,
            peer_restarts=0,
        )


class Recorder:
    """Subscribes to a topic filter and keeps (topic, payload, retained) in order."""

    def __init__(self, port: int, topic: str = "#") -> None:
        self.port, self.topic = port, topic
        self.seen: list[tuple[str, bytes, bool]] = []
        self._task: asyncio.Task[None] | None = None
        self.ready = asyncio.Event()

    async def __aenter__(self) -> Recorder:
        self._task = asyncio.create_task(self._run())
        await asyncio.wait_for(self.ready.wait(), 10)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(aiomqtt.MqttError):
                async with aiomqtt.Client("127.0.0.1", self.port, identifier=None) as client:
                    await client.subscribe(self.topic, qos=1)
                    self.ready.set()
                    async for message in client.messages:
                        payload = message.payload if isinstance(message.payload, bytes) else b""
                        self.seen.append((str(message.topic), payload, bool(message.retain)))
            await asyncio.sleep(0.2)

    def payloads(self, suffix: str) -> list[bytes]:
        return [p for t, p, _ in self.seen if t.endswith(suffix)]

    def json(self, suffix: str) -> list[dict[str, Any]]:
        return [json.loads(p) for p in self.payloads(suffix) if p]

    async def wait_for(
        self, suffix: str, payload: bytes | None = None, *, count: int = 1, timeout: float = 20.0
    ) -> None:
        async def check() -> None:
            while sum(payload is None or p == payload for p in self.payloads(suffix)) < count:
                await asyncio.sleep(0.05)

        await asyncio.wait_for(check(), timeout)
