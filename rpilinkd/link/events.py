"""What the connection tells the code around it (frozen, comparable, printable)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class PeerInfo:
    node: str
    epoch: int
    version: int
    frame_payload: int
    window: int
    max_message: int


@dataclass(frozen=True, slots=True)
class LinkUp:
    peer: PeerInfo
    session: int


@dataclass(frozen=True, slots=True)
class LinkDown:
    reason: str  # timeout, bus_lost, retries_exhausted, bus_off, version_mismatch, stopped, ...
    detail: str = ""


@dataclass(frozen=True, slots=True)
class PeerRestarted:
    old_epoch: int
    new_epoch: int


@dataclass(frozen=True, slots=True)
class MessageReceived:
    """A whole message for a bound port; answer it with accept() or reject()."""

    message_id: int
    port: int
    src_port: int
    data: bytes


@dataclass(frozen=True, slots=True)
class MessageDelivered:
    """The peer daemon accepted the message."""

    message_id: int


@dataclass(frozen=True, slots=True)
class DeliveryFailed:
    """The message was not delivered (or not confirmed); ``code`` is a stable error code."""

    message_id: int
    port: int
    code: str
    reason: str


@dataclass(frozen=True, slots=True)
class EndpointsChanged:
    endpoints: Mapping[str, int]  # the peer's named ports


LinkEvent = (
    LinkUp | LinkDown | PeerRestarted | MessageReceived | MessageDelivered | DeliveryFailed
    | EndpointsChanged
)  # fmt: skip
