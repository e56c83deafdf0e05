"""What a frame of the session does when it arrives, the link up.

Its ACK settles our frames in flight; once in order, a DATA frame goes to
reassembly, a VERDICT settles one of our messages and an ANNOUNCE names a peer
endpoint. A whole message for a bound port is handed up (``MessageReceived``)
and waits for the application's accept or reject; any other is answered at
once. A message resent after a link drop that was already answered gets the
same answer again and is not handed up twice (delivery.py's verdict memory).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from rpilinkd.link.delivery import VerdictMemory
from rpilinkd.link.endpoints import Endpoints
from rpilinkd.link.events import EndpointsChanged, LinkEvent, MessageReceived
from rpilinkd.link.frames import ANNOUNCE_CREATE, SEQUENCED, Frame, Kind, parse_announce, sack_bits
from rpilinkd.link.messages import Assembled, Reassembler, verdict_number
from rpilinkd.link.sending import Sender
from rpilinkd.link.stats import LinkStats
from rpilinkd.link.transfer import Transfer


@dataclass(frozen=True, slots=True)
class Verdict:
    """What to tell the peer of its message ``message_id`` (sent to ``port``)."""

    message_id: int
    port: int
    code: str

    def frame(self) -> Frame:
        return Frame(
            Kind.VERDICT,
            port=self.port,
            message_id=self.message_id,
            payload=bytes([verdict_number(self.code)]),
        )


class Receiver:
    """The session's frames as they arrive, and the peer's messages awaiting a verdict."""

    def __init__(
        self,
        max_message: int,
        stats: LinkStats,
        events: deque[LinkEvent],
        endpoints: Endpoints,
        sender: Sender,
    ) -> None:
        self._max_message = max_message
        self.stats, self._events, self._endpoints = stats, events, endpoints
        self._sender = sender
        self.verdicts = VerdictMemory()  # of the current peer epoch's messages
        self.new_session()

    def new_session(self) -> None:
        """Sequence numbers start over: what was half assembled or unanswered is gone."""
        self._reassembler = Reassembler(self._max_message)
        self._awaiting: dict[int, int] = {}  # message id -> port, awaiting accept/reject

    def on_frame(self, frame: Frame, transfer: Transfer, now: float) -> None:
        """A frame of the current session (``transfer``'s), the link up."""
        transfer.last_rx = now
        sack = sack_bits(frame.payload) if frame.kind is Kind.ACK else 0
        for entry in transfer.acknowledge(frame.ack, sack, now):
            self._sender.acknowledged(entry.frame, now)
        if frame.kind not in SEQUENCED:
            return
        for item in transfer.accept(frame, now):
            if item.kind is Kind.DATA:
                verdict = self._take_data(item)
                if verdict is not None:
                    transfer.owe_answer(verdict.frame(), now)
            elif item.kind is Kind.VERDICT:
                self._sender.answered(item)
            elif item.kind is Kind.ANNOUNCE:
                op, name = parse_announce(item.payload)
                if self._endpoints.peer_announced(op == ANNOUNCE_CREATE, name, item.port):
                    self._events.append(EndpointsChanged(dict(self._endpoints.peer)))

    def _take_data(self, frame: Frame) -> Verdict | None:
        """An in-order DATA frame; returns the verdict to send at once, if any."""
        result = self._reassembler.feed(frame)
        answered = None if result is None else self.verdicts.get(result.message_id)
        if result is not None and answered is not None:  # resent after a drop: once only
            self.stats.duplicate_messages += 1
            return Verdict(result.message_id, result.port, answered)
        if isinstance(result, Assembled):
            self.stats.messages_received += 1
            self.stats.payload_received += len(result.data)
            self._awaiting[result.message_id] = result.port
            if not self._endpoints.is_bound(result.port):
                return self.give(result.message_id, "no_listener")
            self._events.append(
                MessageReceived(result.message_id, result.port, result.src_port, result.data)
            )
        elif result is not None:
            self._awaiting[result.message_id] = result.port
            return self.give(result.message_id, result.code)
        return None

    def give(self, message_id: int, code: str) -> Verdict | None:
        """The verdict on a message awaiting one, remembered; None if none awaits it."""
        port = self._awaiting.pop(message_id, None)
        if port is None:
            return None
        self.verdicts.remember(message_id, code)
        return Verdict(message_id, port, code)
