"""The connection's counters (a plain mutable record; snapshots are dicts)."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from rpilinkd.link.states import ErrorLevel


@dataclass
class LinkStats:
    frames_sent: int = 0
    frames_received: int = 0
    bytes_sent: int = 0  # frame bytes, headers and CRCs included
    bytes_received: int = 0
    retransmissions: int = 0
    crc_errors: int = 0
    bad_frames: int = 0  # malformed other than by CRC (length, kind, flags, payload)
    stale_frames: int = 0  # from another session, or while not up
    duplicates: int = 0
    duplicate_messages: int = 0  # whole messages sent again after a drop, answered again
    messages_resumed: int = 0  # sent again after a drop (resumption)
    bad_hellos: int = 0  # a peer's HELLO with a value out of range: refused
    messages_sent: int = 0
    messages_received: int = 0
    messages_delivered: int = 0  # accepted by the peer daemon
    delivery_failures: int = 0
    payload_sent: int = 0  # message bytes
    payload_received: int = 0
    link_ups: int = 0
    peer_restarts: int = 0
    tx_errors: int = 0  # CAN-style: +8 per timeout, -1 per acknowledged frame

    @property
    def error_level(self) -> ErrorLevel:
        return ErrorLevel.of(self.tx_errors)

    def snapshot(self) -> dict[str, int | str]:
        return {**asdict(self), "error_level": self.error_level.value}
