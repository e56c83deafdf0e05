"""The link layer, sans-IO: frames, reliability, messages, roles and bus turn-around.

Nothing in this package does I/O or reads a clock: it is fed bytes, control
line levels and the time, and returns bytes, line levels, events and the next
deadline. It never imports asyncio, sockets, pigpio or numpy (a test checks).
"""

from rpilinkd.link.connection import PROTOCOL_VERSION, Connection
from rpilinkd.link.events import (
    DeliveryFailed,
    DownReason,
    EndpointsChanged,
    LinkDown,
    LinkEvent,
    LinkUp,
    MessageDelivered,
    MessageReceived,
    PeerInfo,
    PeerRefused,
    PeerRestarted,
)
from rpilinkd.link.frames import Frame, Kind
from rpilinkd.link.states import ErrorLevel, LinkState

__all__ = [
    "PROTOCOL_VERSION",
    "Connection",
    "DeliveryFailed",
    "DownReason",
    "EndpointsChanged",
    "ErrorLevel",
    "Frame",
    "Kind",
    "LinkDown",
    "LinkEvent",
    "LinkState",
    "LinkUp",
    "MessageDelivered",
    "MessageReceived",
    "PeerInfo",
    "PeerRefused",
    "PeerRestarted",
]
