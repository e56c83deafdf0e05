"""Home Assistant MQTT discovery: one device per node, a few useful entities. Pure.

Each entity's config goes retained to
``<discovery_prefix>/<component>/rpilink_<node>_<tag>/<object>/config`` and points
at the node's availability topic, so Home Assistant greys them out when the
daemon is gone (its Last Will).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import uuid
from pathlib import Path
from typing import Any

from rpilinkd import __version__

SERIAL_SOURCES = (Path("/proc/device-tree/serial-number"), Path("/etc/machine-id"))
ORIGIN = {"name": "rpilinkd", "sw": __version__, "url": "https://github.com/rpilinkd/rpilinkd"}

#: object id -> (component, name, topic kind, value template, extra fields)
ENTITIES: dict[str, tuple[str, str, str, str, dict[str, Any]]] = {
    "link": (
        "binary_sensor",
        "Link",
        "state",
        "{{ 'ON' if value_json.link == 'up' else 'OFF' }}",
        {"device_class": "connectivity", "payload_on": "ON", "payload_off": "OFF"},
    ),
    "link_state": ("sensor", "Link state", "state", "{{ value_json.link }}", {}),
    "role": ("sensor", "Role", "state", "{{ value_json.role or 'none' }}", {}),
    "peer": ("sensor", "Peer", "state", "{{ value_json.peer or 'none' }}", {}),
    "tx_throughput": (
        "sensor",
        "Send throughput",
        "stats",
        "{{ value_json.tx_Bps }}",
        {"unit_of_measurement": "B/s", "state_class": "measurement", "device_class": "data_rate"},
    ),
    "rx_throughput": (
        "sensor",
        "Receive throughput",
        "stats",
        "{{ value_json.rx_Bps }}",
        {"unit_of_measurement": "B/s", "state_class": "measurement", "device_class": "data_rate"},
    ),
    "latency": (
        "sensor",
        "Latency p50",
        "stats",
        "{{ value_json.latency_p50_ms }}",
        {"unit_of_measurement": "ms", "state_class": "measurement"},
    ),
    "retransmissions": (
        "sensor",
        "Retransmissions",
        "stats",
        "{{ value_json.retransmissions }}",
        {"state_class": "total_increasing"},
    ),
    "crc_errors": (
        "sensor",
        "CRC errors",
        "stats",
        "{{ value_json.crc_errors }}",
        {"state_class": "total_increasing"},
    ),
    "delivery_failures": (
        "sensor",
        "Delivery failures",
        "stats",
        "{{ value_json.delivery_failures }}",
        {"state_class": "total_increasing"},
    ),
    "error_level": ("sensor", "Cable health", "stats", "{{ value_json.error_level }}", {}),
}


def machine_tag() -> str:
    """Six hex digits that tell this Pi from another with the same hostname.

    From the board's serial number (unique per board, even when two SD cards
    were cloned from one image), else systemd's machine id, else the network
    card's MAC address. ``RPILINK_MACHINE_TAG`` overrides it (containers, and
    the testbed, which runs two emulated boards on one machine).
    """
    override = os.environ.get("RPILINK_MACHINE_TAG", "")
    if re.fullmatch(r"[0-9a-f]{6}", override):
        return override
    for path in SERIAL_SOURCES:
        try:
            text = path.read_text(encoding="ascii", errors="ignore").strip("\x00\n ")
        except OSError:
            continue
        if re.fullmatch(r"[0-9a-fA-F]{8,32}", text) and text.strip("0"):
            return hashlib.sha256(text.lower().encode()).hexdigest()[:6]
    return hashlib.sha256(f"{uuid.getnode():012x}".encode()).hexdigest()[:6]


def node_id(node: str, tag: str) -> str:
    """The device's Home Assistant id, unique per machine; ids allow [a-zA-Z0-9_-] only."""
    return "rpilink_" + re.sub(r"[^a-zA-Z0-9_-]", "_", node) + "_" + tag


def discovery_messages(
    node: str, *, prefix: str, discovery_prefix: str, tag: str
) -> list[tuple[str, bytes]]:
    """(topic, retained payload) for every entity of this node."""
    device_id = node_id(node, tag)
    base = f"{prefix}/{node}"
    device = {
        "identifiers": [device_id],
        "name": f"rpilink {node}",
        "manufacturer": "rpilinkd",
        "model": "GPIO bus link (pigpio)",
        "sw_version": __version__,
    }
    messages = []
    for object_id, (component, name, kind, template, extra) in ENTITIES.items():
        config = {
            "name": name,
            "unique_id": f"{device_id}_{object_id}",
            "object_id": f"{device_id}_{object_id}",
            "state_topic": f"{base}/{kind}",
            "value_template": template,
            "availability_topic": f"{base}/availability",
            "payload_available": "online",
            "payload_not_available": "offline",
            "device": device,
            "origin": ORIGIN,
            **extra,
        }
        topic = f"{discovery_prefix}/{component}/{device_id}/{object_id}/config"
        messages.append((topic, json.dumps(config, separators=(",", ":")).encode()))
    return messages
