"""Home Assistant MQTT discovery: one device per node, a few useful entities. Pure.

Each entity's config goes retained to
``<discovery_prefix>/<component>/rpilink_<node>/<object>/config`` and points
at the node's availability topic, so Home Assistant greys them out when the
daemon is gone (its Last Will).
"""

from __future__ import annotations

import json
import re
from typing import Any

from rpilinkd import __version__

ORIGIN = {"name": "rpilinkd", "sw": __version__, "url": "https://github.com/rpilinkd/rpilinkd"}

#: object id -> (component, name, topic kind, value template, extra fields)
ENTITIES: dict[str, tuple[str, str, str, str, dict[str, Any]]] = {
    "link": ("binary_sensor", "Link", "state",
             "{{ 'ON' if value_json.link == 'up' else 'OFF' }}",
             {"device_class": "connectivity", "payload_on": "ON", "payload_off": "OFF"}),
    "link_state": ("sensor", "Link state", "state", "{{ value_json.link }}", {}),
    "role": ("sensor", "Role", "state", "{{ value_json.role or 'none' }}", {}),
    "peer": ("sensor", "Peer", "state", "{{ value_json.peer or 'none' }}", {}),
    "tx_throughput": ("sensor", "Send throughput", "stats", "{{ value_json.tx_Bps }}",
                      {"unit_of_measurement": "B/s", "state_class": "measurement",
                       "device_class": "data_rate"}),
    "rx_throughput": ("sensor", "Receive throughput", "stats", "{{ value_json.rx_Bps }}",
                      {"unit_of_measurement": "B/s", "state_class": "measurement",
                       "device_class": "data_rate"}),
    "latency": ("sensor", "Latency p50", "stats", "{{ value_json.latency_p50_ms }}",
                {"unit_of_measurement": "ms", "state_class": "measurement"}),
    "retransmissions": ("sensor", "Retransmissions", "stats", "{{ value_json.retransmissions }}",
                        {"state_class": "total_increasing"}),
    "crc_errors": ("sensor", "CRC errors", "stats", "{{ value_json.crc_errors }}",
                   {"state_class": "total_increasing"}),
    "delivery_failures": ("sensor", "Delivery failures", "stats",
                          "{{ value_json.delivery_failures }}",
                          {"state_class": "total_increasing"}),
    "error_level": ("sensor", "Cable health", "stats", "{{ value_json.error_level }}", {}),
}  # fmt: skip


def node_id(node: str) -> str:
    """Home Assistant ids allow [a-zA-Z0-9_-] only."""
    return "rpilink_" + re.sub(r"[^a-zA-Z0-9_-]", "_", node)


def discovery_messages(
    node: str, *, prefix: str, discovery_prefix: str
) -> list[tuple[str, bytes]]:
    """(topic, retained payload) for every entity of this node."""
    device_id = node_id(node)
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
