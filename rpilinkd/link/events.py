"""What the connection tells the code around it (frozen, comparable, printable)."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass


class DownReason(enum.Enum):
    """Why the link went down; whether messages in flight survive it (resumption)."""

    TIMEOUT = "timeout"  # nothing from the peer for dead_after_ms
    BUS_LOST = "bus_lost"  # the bus re-arbitrates, or the backend (pigpiod) went away
    RETRIES_EXHAUSTED = "retries_exhausted"  # a frame was never acknowledged
    PEER_RESET = "peer_reset"  # the peer began a new link-up (same epoch)
    PEER_RESTARTED = "peer_restarted"  # the peer's daemon restarted (new epoch)
    VERSION_MISMATCH = "version_mismatch"
    STOPPED = "stopped"  # this side stopped the link

    @property
    def resumable(self) -> bool:
        """Messages in flight are resent after the relink (within link.resume_s)."""
        return self in (
            DownReason.TIMEOUT,
            DownReason.BUS_LOST,
            DownReason.RETRIES_EXHAUSTED,
            DownReason.PEER_RESET,
        )

    @property
    def fail_code(self) -> str:
        """The stable error code of messages that fail because of it."""
        if self is DownReason.PEER_RESTARTED:
            return "peer_restarted"
        return "delivery_failed" if self is DownReason.RETRIES_EXHAUSTED else "link_down"


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
    reason: DownReason
    detail: str = ""
    resuming: bool = False  # messages in flight wait for the relink (link.resume_s)


@dataclass(frozen=True, slots=True)
class PeerRefused:
    """The peer's HELLO could not be used; the link stays down until it changes."""

    problem: str


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
    LinkUp
    | LinkDown
    | PeerRestarted
    | PeerRefused
    | MessageReceived
    | MessageDelivered
    | DeliveryFailed
    | EndpointsChanged
)
