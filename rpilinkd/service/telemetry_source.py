"""The daemon's figures as telemetry snapshots (throughput from the counters' deltas)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from rpilinkd.telemetry.payloads import StateSnapshot, StatsSnapshot

if TYPE_CHECKING:
    from rpilinkd.service.node import Node


class NodeTelemetry:
    def __init__(self, node: Node) -> None:
        self.node = node
        self._last: tuple[float, int, int] | None = None  # time, payload sent, received

    def telemetry_state(self) -> StateSnapshot:
        s = self.node.status()
        return StateSnapshot(
            node=s["node"],
            link=s["link"],
            role=s["role"],
            peer=s["peer"],
            protocol=s["protocol"],
            version=s["version"],
            uptime_s=s["uptime_s"],
            state_since_s=s["state_since_s"],
            epoch=s["epoch"],
            peer_epoch=s["peer_epoch"],
            link_ups=s["link_ups"],
            error_level=s["error_level"],
            backend=s["backend"],
        )

    def telemetry_stats(self) -> StatsSnapshot:
        node = self.node
        link = node.connection.stats
        figures = node.stats()
        api = node.api.snapshot() if node.api is not None else {}
        now = time.monotonic()
        tx_rate = rx_rate = 0.0
        if self._last is not None and now > self._last[0]:
            span = now - self._last[0]
            tx_rate = (link.payload_sent - self._last[1]) / span
            rx_rate = (link.payload_received - self._last[2]) / span
        self._last = (now, link.payload_sent, link.payload_received)
        return StatsSnapshot(
            node=node.node,
            uptime_s=round(now - node.started, 3),
            tx_messages=link.messages_sent,
            rx_messages=link.messages_received,
            tx_payload_bytes=link.payload_sent,
            rx_payload_bytes=link.payload_received,
            tx_frames=link.frames_sent,
            rx_frames=link.frames_received,
            tx_bytes=link.bytes_sent,
            rx_bytes=link.bytes_received,
            retransmissions=link.retransmissions,
            crc_errors=link.crc_errors,
            bad_frames=link.bad_frames,
            duplicates=link.duplicates,
            messages_delivered=link.messages_delivered,
            delivery_failures=link.delivery_failures,
            tx_Bps=round(tx_rate, 1),
            rx_Bps=round(rx_rate, 1),
            latency_p50_ms=figures["latency_p50_ms"],
            latency_p90_ms=figures["latency_p90_ms"],
            latency_p99_ms=figures["latency_p99_ms"],
            line_rate_Bps=node.line_rate_bps,
            pending_sends=figures["pending_sends"],
            api_clients=api.get("clients", 0),
            api_queued_bytes=api.get("queued_bytes", 0),
            tx_errors=link.tx_errors,
            error_level=link.error_level.value,
            link_ups=link.link_ups,
            peer_restarts=link.peer_restarts,
        )
