"""Messages going out, from ``send`` to the peer's verdict, and every way they end.

A message is delivered when the peer daemon answers ``ok``; it fails when the
peer refuses it, never answers within ``VERDICT_TIMEOUT_S`` of its last
fragment's ACK, or restarts, or when the link stays down longer than
``link.resume_s`` (delivery.py keeps the messages across drops).
"""

from __future__ import annotations

from collections import deque

from rpilinkd.link.delivery import Outbox, Outgoing
from rpilinkd.link.events import DeliveryFailed, DownReason, LinkEvent, MessageDelivered
from rpilinkd.link.frames import Frame, Kind
from rpilinkd.link.messages import fragments, verdict_code
from rpilinkd.link.stats import LinkStats

VERDICT_TIMEOUT_S = 30.0  # a peer that never answers a whole message: fail it


def why(reason: DownReason) -> str:
    """The reason a message failed because the link went down."""
    if reason is DownReason.PEER_RESTARTED:
        return "the peer restarted"
    if reason is DownReason.RETRIES_EXHAUSTED:
        return "the peer stopped acknowledging"
    return f"link went down ({reason.value})"


class Sender:
    """Our messages not yet answered, and the events that end them."""

    def __init__(self, stats: LinkStats, events: deque[LinkEvent]) -> None:
        self.stats, self._events = stats, events
        self.outbox = Outbox()  # survives link drops (resumption)
        self._next_message_id = 1  # never reset: ids stay unique across link-ups
        self.drop = DownReason.STOPPED  # why the link last went down

    def add(self, outgoing: Outgoing) -> int:
        """A new message; returns its id."""
        message_id = self._next_message_id
        self._next_message_id = self._next_message_id % 0xFFFFFFFF + 1
        self.outbox.add(message_id, outgoing)
        self.stats.messages_sent += 1
        self.stats.payload_sent += len(outgoing.data)
        return message_id

    @staticmethod
    def fragments(message_id: int, outgoing: Outgoing, payload: int) -> list[Frame]:
        """The DATA frames to (re)send a message in; none of them acknowledged yet."""
        frames = list(
            fragments(message_id, outgoing.port, outgoing.src_port, outgoing.data, payload)
        )
        outgoing.unacked = len(frames)
        return frames

    def resumed(self, payload: int) -> list[Frame]:
        """The link is up with the same peer: the frames of what the drop interrupted."""
        frames = []
        for message_id, outgoing in self.outbox.resumed():
            self.stats.messages_resumed += 1
            frames += self.fragments(message_id, outgoing, payload)
        return frames

    def acknowledged(self, frame: Frame, now: float) -> None:
        """The peer has this frame; once a message's last fragment is in, its verdict is due."""
        outgoing = self.outbox.get(frame.message_id)
        if frame.kind is Kind.DATA and outgoing is not None:
            outgoing.unacked -= 1
            if outgoing.unacked == 0:
                outgoing.verdict_by = now + VERDICT_TIMEOUT_S

    def answered(self, verdict: Frame) -> None:
        """The peer daemon's VERDICT on one of our messages."""
        code = verdict_code(verdict.payload[0]) if verdict.payload else "remote_error"
        if self.outbox.get(verdict.message_id) is None:
            return
        if code == "ok":
            self.outbox.pop(verdict.message_id)
            self.stats.messages_delivered += 1
            self._events.append(MessageDelivered(verdict.message_id))
        else:
            self.fail(verdict.message_id, code, "refused by the peer daemon")

    def fail(self, message_id: int, code: str, reason: str) -> None:
        outgoing = self.outbox.pop(message_id)
        if outgoing is None:
            return
        self.stats.delivery_failures += 1
        self._events.append(DeliveryFailed(message_id, outgoing.port, code, reason))

    def fail_unanswered(self, now: float) -> None:
        """Fail the messages whose verdict is overdue."""
        for message_id, outgoing in list(self.outbox.messages.items()):
            if outgoing.verdict_by is not None and now >= outgoing.verdict_by:
                self.fail(message_id, "delivery_failed", "the peer never answered")

    def dropped(self, reason: DownReason, now: float, resume_s: float) -> None:
        """The link went down: keep for ``resume_s`` what can be resumed, fail the rest."""
        self.drop = reason
        for message_id in self.outbox.dropped(now, resume_s):
            self.fail(message_id, reason.fail_code, why(reason))

    def fail_expired(self, now: float) -> None:
        """Fail the messages whose outage outlasted ``link.resume_s``."""
        for message_id in self.outbox.expired(now):
            self.fail(
                message_id,
                self.drop.fail_code,
                f"{why(self.drop)} for longer than link.resume_s",
            )

    def peer_restarted(self) -> None:
        """The new peer will never answer what the old one did not: fail it all."""
        self.drop = DownReason.PEER_RESTARTED
        for message_id in list(self.outbox.messages):
            self.fail(message_id, "peer_restarted", "the peer restarted")
        self.outbox.resume_until = None
