"""What the daemon publishes over MQTT, as typed snapshots and their JSON (docs/mqtt.md).

Pure: no MQTT here, so every payload is testable on its own.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any, Protocol


@dataclass(frozen=True)
class StateSnapshot:
    """Retained on ``<prefix>/<node>/state``."""

    node: str
    link: str  # up, arbitrating, down, conflict
    role: str | None
    peer: str | None
    protocol: int
    version: str
    uptime_s: float
    state_since_s: float
    epoch: int
    peer_epoch: int | None
    link_ups: int
    error_level: str
    backend: str


@dataclass(frozen=True)
class StatsSnapshot:
    """Published on ``<prefix>/<node>/stats`` every interval."""

    node: str
    uptime_s: float
    tx_messages: int
    rx_messages: int
    tx_payload_bytes: int
    rx_payload_bytes: int
    tx_frames: int
    rx_frames: int
    tx_bytes: int  # frame bytes on the wire, headers and CRCs included
    rx_bytes: int
    retransmissions: int
    crc_errors: int
    bad_frames: int
    duplicates: int
    messages_delivered: int
    delivery_failures: int
    tx_Bps: float  # message payload per second over the last interval  # noqa: N815
    rx_Bps: float  # noqa: N815
    latency_p50_ms: float | None
    latency_p90_ms: float | None
    latency_p99_ms: float | None
    line_rate_Bps: float  # noqa: N815
    pending_sends: int
    api_clients: int
    api_queued_bytes: int
    tx_errors: int
    error_level: str
    link_ups: int
    peer_restarts: int


class TelemetrySource(Protocol):
    """Where the publisher gets its figures (the daemon's node, or a test double)."""

    def telemetry_state(self) -> StateSnapshot: ...
    def telemetry_stats(self) -> StatsSnapshot: ...


def to_json(snapshot: StateSnapshot | StatsSnapshot) -> bytes:
    return json.dumps(asdict(snapshot), separators=(",", ":")).encode()


def event_json(node: str, kind: str, fields: Mapping[str, Any]) -> bytes:
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    return json.dumps(
        {"event": kind, "node": node, "time": stamp, **fields}, separators=(",", ":")
    ).encode()
