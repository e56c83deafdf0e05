"""What the daemon tells its clients and dashboards: typed events and the link's status.

The service produces these; the API (``event`` pushes, docs/api.md) and MQTT
telemetry (``<prefix>/<node>/event``, docs/mqtt.md) consume them. The kinds
and fields are part of both documented interfaces.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


class LinkStatus(enum.Enum):
    """The link as ``status`` reports it."""

    DOWN = "down"  # the bus backend (pigpiod) is not reachable
    ARBITRATING = "arbitrating"  # deciding roles, exchanging HELLOs, or no peer yet
    UP = "up"
    CONFLICT = "conflict"  # both Pis forced to the same role
    PAUSED = "paused"  # a program borrowed the pins (rpilink wiring-check)


class EventKind(enum.Enum):
    LINK_UP = "link_up"
    LINK_DOWN = "link_down"
    PEER_RESTARTED = "peer_restarted"
    ROLE_DECIDED = "role_decided"
    ROLE_CONFLICT = "role_conflict"
    BUS_LOST = "bus_lost"
    DELIVERY_FAILED = "delivery_failed"
    ENDPOINTS = "endpoints"
    WIRE_ERRORS = "wire_errors"
    ERROR_LEVEL = "error_level"

    @property
    def about_the_link(self) -> bool:
        """A change of the link's state: never dropped from a bounded queue."""
        return self in LINK_EVENTS


LINK_EVENTS = frozenset(
    {
        EventKind.LINK_UP,
        EventKind.LINK_DOWN,
        EventKind.PEER_RESTARTED,
        EventKind.ROLE_DECIDED,
        EventKind.ROLE_CONFLICT,
        EventKind.BUS_LOST,
    }
)


@dataclass(frozen=True)
class Event:
    kind: EventKind
    fields: Mapping[str, Any] = field(default_factory=dict)

    def payload(self) -> dict[str, Any]:
        """As the interfaces carry it: ``{"event": kind, **fields}``."""
        return {"event": self.kind.value, **self.fields}
