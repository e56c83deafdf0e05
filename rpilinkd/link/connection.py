"""The connection: reliable, ordered, acknowledged messages over lossy frames. Sans-IO.

Feed it what the bus delivered (``receive_frame``) and the time; ask it what to
send (``frames_to_send``), when to wake it next (``get_timer``/``handle_timer``)
and what happened (``next_event``). It never sleeps, reads a clock or touches a
socket, so every property is testable with a fake clock (docs/protocol.md §4,
states.py for the state machine).

It runs the state machine and composes the parts that do the work: the HELLO
exchange's state (handshake.py), one session's frames (transfer.py), and the
messages going out (sending.py) and coming in (receiving.py).
"""

from __future__ import annotations

import math
import random
from collections import deque

from rpilinkd.config import MESSAGE_HARD_CAP, LinkConfig
from rpilinkd.errors import CrcError, FrameError, LinkDownError, MessageTooLargeError
from rpilinkd.link.delivery import Outgoing
from rpilinkd.link.endpoints import Endpoints
from rpilinkd.link.events import (
    DownReason,
    EndpointsChanged,
    LinkDown,
    LinkEvent,
    LinkUp,
    PeerInfo,
    PeerRefused,
    PeerRestarted,
)
from rpilinkd.link.frames import (
    ANNOUNCE_CREATE,
    ANNOUNCE_DESTROY,
    OVERHEAD,
    Frame,
    Kind,
    announce_payload,
)
from rpilinkd.link.handshake import Handshake, peer_info
from rpilinkd.link.hello import Hello, truncate_name
from rpilinkd.link.receiving import Receiver
from rpilinkd.link.sending import VERDICT_TIMEOUT_S, Sender
from rpilinkd.link.states import LinkState
from rpilinkd.link.stats import LinkStats
from rpilinkd.link.transfer import ACK_DELAY_S, ACK_HOLD_S, TX_ERRORS_CAP, Transfer

__all__ = [
    "ACK_DELAY_S",
    "ACK_HOLD_S",
    "MAX_PORT",
    "PROTOCOL_VERSION",
    "TX_ERRORS_CAP",
    "VERDICT_TIMEOUT_S",
    "Connection",
]

PROTOCOL_VERSION = 2  # 2: bus v2 (a unit on every strobe edge), turns handed over
MAX_PORT = 0xFFFF


def _announcement(op: int, port: int, name: str) -> Frame:
    return Frame(Kind.ANNOUNCE, port=port, payload=announce_payload(op, name))


class Connection:
    def __init__(
        self,
        config: LinkConfig,
        *,
        node: str,
        epoch: int,
        max_frame: int | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.config, self.node, self.epoch = config, truncate_name(node), epoch
        payload = config.frame_payload
        if max_frame is not None:
            payload = min(payload, max_frame - OVERHEAD)
        self.frame_payload = payload - payload % 4
        self.state = LinkState.DOWN
        self.peer: PeerInfo | None = None
        self.stats = LinkStats()
        self.endpoints = Endpoints()
        self._events: deque[LinkEvent] = deque()
        self._handshake = Handshake(rng or random.Random())
        self._sender = Sender(self.stats, self._events)
        self.outbox = self._sender.outbox  # survives link drops (resumption)
        self._receiver = Receiver(
            config.max_message, self.stats, self._events, self.endpoints, self._sender
        )
        self._timers_run = -math.inf  # when handle_timer last ran
        self.answer_expected = False  # the last frames_to_send owes the peer a reply
        self._reset_session()

    @property
    def session(self) -> int:
        return self._handshake.session

    @property
    def leader(self) -> bool:
        return self._handshake.leader

    # -- life cycle (driven by the bus-access machine) --------------------------------

    def start(self, now: float, *, leader: bool) -> None:
        """Roles are decided: begin the HELLO exchange (the leader picks the session)."""
        if self.state is not LinkState.DOWN:
            return
        self._handshake.leader = leader
        self.state = LinkState.ARBITRATING
        self._reset_session()
        self._handshake.new_attempt(now)

    def stop(self, reason: DownReason, now: float) -> None:
        """The bus is lost (or this side stops): down, resuming if the reason allows."""
        if self.state is not LinkState.DOWN:
            self._down(reason, now)

    def _reset_session(self) -> None:
        """A new session's frames; the HELLO exchange keeps its own state (the handshake)."""
        self._transfer = Transfer(self.config, self.stats)
        self._receiver.new_session()

    def _down(
        self,
        reason: DownReason,
        now: float,
        detail: str = "",
        next_state: LinkState = LinkState.DOWN,
    ) -> None:
        """Leave UP or ARBITRATING. Leaving UP for a resumable reason keeps the messages
        in flight for ``resume_s``; anything else fails them now."""
        if self.state is LinkState.UP or not reason.resumable:
            resume_s = self.config.resume_s if reason.resumable else 0.0
            self._sender.dropped(reason, now, resume_s)
        resuming = self.outbox.accepting_while_down(now)
        if not resuming and self.endpoints.clear_peer():
            self._events.append(EndpointsChanged({}))
        self.state = next_state
        self._reset_session()
        self._events.append(LinkDown(reason, detail, resuming))

    # -- applications ----------------------------------------------------------------------

    def bind(self, port: int, name: str | None = None) -> None:
        self.endpoints.bind(port, name)
        if name and self.state is LinkState.UP:
            self._transfer.queue.append(_announcement(ANNOUNCE_CREATE, port, name))

    def unbind(self, port: int) -> None:
        name = self.endpoints.unbind(port)
        if name and self.state is LinkState.UP:
            self._transfer.queue.append(_announcement(ANNOUNCE_DESTROY, port, name))

    @property
    def max_message(self) -> int:
        peer_max = self.peer.max_message if self.peer else MESSAGE_HARD_CAP
        return min(self.config.max_message, peer_max)

    def send(self, port: int, data: bytes, now: float, *, src_port: int = 0) -> int:
        """Queue a message for the peer's ``port``; its id comes back in the events.

        Raises:
            LinkDownError: the link is not up.
            MessageTooLargeError: ``data`` exceeds ``max_message``.
            ValueError: a port outside 0-65535.
        """
        if not (0 <= port <= MAX_PORT and 0 <= src_port <= MAX_PORT):
            raise ValueError(f"ports are 0-{MAX_PORT}, got {port} and {src_port}")
        up = self.state is LinkState.UP
        if not up and not self.outbox.accepting_while_down(now):
            raise LinkDownError(f"the link is {self.state.value}")
        if len(data) > self.max_message:
            raise MessageTooLargeError(
                f"message of {len(data)} bytes exceeds the maximum of {self.max_message}"
            )
        outgoing = Outgoing(port, src_port, data)
        message_id = self._sender.add(outgoing)
        if up:  # else it goes out when the link is back (resumption)
            self._queue_message(message_id, outgoing)
        return message_id

    def _queue_message(self, message_id: int, outgoing: Outgoing) -> None:
        self._transfer.queue.extend(
            self._sender.fragments(message_id, outgoing, self._send_payload)
        )

    @property
    def _send_payload(self) -> int:
        peer_payload = self.peer.frame_payload if self.peer else self.frame_payload
        return min(self.frame_payload, peer_payload)

    def accept(self, message_id: int, now: float) -> None:
        """The message was handed to its endpoint: tell the sender."""
        self.reject(message_id, "ok", now)

    def reject(self, message_id: int, code: str, now: float) -> None:
        """The message could not be taken (``code`` e.g. ``queue_full``): tell the sender."""
        verdict = self._receiver.give(message_id, code)
        if verdict is not None and self.state is LinkState.UP:
            self._transfer.owe_answer(verdict.frame(), now)

    # -- events and timers ---------------------------------------------------------------------

    def next_event(self) -> LinkEvent | None:
        return self._events.popleft() if self._events else None

    def get_timer(self) -> float | None:
        """The next deadline :meth:`handle_timer` has not yet run for. One it ran for
        that is still standing (a keepalive or retransmission due while the peer holds
        the bus) waits for the bus, not the clock: it is left out, or the caller would
        wake without end until the bus comes."""
        if self.state is not LinkState.UP:
            resume = self.outbox.next_deadline(up=False)
            hello = self._handshake.hello_due if self.state is LinkState.ARBITRATING else None
            candidates = [resume, hello]
        else:
            candidates = [
                *self._transfer.deadlines(),
                self._handshake.hello_due,
                self.outbox.next_deadline(up=True),
            ]
        return min((t for t in candidates if t is not None and t > self._timers_run), default=None)

    def handle_timer(self, now: float) -> None:
        self._timers_run = now
        if self.state is not LinkState.UP:
            self._sender.fail_expired(now)  # the outage outlasted resume_s
            if not self.outbox.accepting_while_down(now):
                self.outbox.resume_until = None
                if self.endpoints.clear_peer():
                    self._events.append(EndpointsChanged({}))
            return
        broken = self._transfer.broken(now)
        if broken is not None:
            reason, detail = broken
            self._down(reason, now, detail)
            return
        self._sender.fail_unanswered(now)

    def wants_to_send(self, now: float) -> bool:
        """Whether ``frames_to_send`` would give something now (an owed ACK or verdict
        included, but not an ACK held for a burst to carry it)."""
        transfer = self._transfer
        return transfer.answerable or transfer.ack_ready(now) or self.needs_bus(now)

    def needs_bus(self, now: float) -> bool:
        """Whether to ask the peer for the bus: anything but answers (ACKs, verdicts)
        not yet ``ACK_DELAY_S`` old (the peer hands the bus over after every burst it
        wants answered)."""
        if self.state is LinkState.ARBITRATING:
            return self._handshake.hello_owed(now)
        if self.state is not LinkState.UP:
            return False
        return self._handshake.hello_owed(now) or self._transfer.needs_bus(now)

    # -- the wire ------------------------------------------------------------------------------

    def frames_to_send(self, now: float, max_frames: int | None = None) -> list[bytes]:
        """What to put on the wire now; ``answer_expected`` says whether the peer owes
        a reply to them (the bus hands itself over after such a burst). Call
        :meth:`frames_on_wire` once the peer can answer them: when this side's turn
        on the bus ends, after its last burst."""
        out: list[bytes] = []
        self.answer_expected = False
        handshake = self._handshake
        if self.state is LinkState.ARBITRATING:
            if handshake.hello_owed(now):
                out.append(self._hello_frame())
                self.answer_expected = True
                handshake.hello_due = now + self.config.rto_initial_ms / 1e3
        elif self.state is LinkState.UP:
            limit = max_frames if max_frames is not None else 1 << 30
            if handshake.hello_owed(now):
                out.append(self._hello_frame())  # our SEEN hello went missing: say it again
                handshake.hello_due = None
            self.answer_expected = self._transfer.fill(out, now, limit, self.session)
        if out:
            self._transfer.last_tx = now
            self.stats.frames_sent += len(out)
            self.stats.bytes_sent += sum(map(len, out))
        return out

    def frames_on_wire(self, now: float) -> None:
        """The frames given since the last call are out and the peer may answer them
        from ``now`` on: their round trips (and retransmission timers) start then. The
        peer cannot answer while this side holds the bus, however many bursts it sends
        in its turn: timers run from the turn's end, or a long turn times out frames
        that are safely across (3-12 % of the frames of 1 KiB messages sent 16 at a
        time were resent for nothing before)."""
        self._transfer.on_wire(now)

    def _hello_frame(self) -> bytes:
        handshake = self._handshake
        hello = Hello(
            PROTOCOL_VERSION,
            self.epoch,
            handshake.peer_epoch or 0,
            handshake.nonce,
            self.frame_payload,
            self.config.window,
            self.config.max_message,
            self.node,
        )
        return handshake.hello_frame(hello)

    def receive_frame(self, data: bytes, now: float) -> None:
        """Take one frame from the bus; bad bytes are counted, never raised."""
        self.stats.frames_received += 1
        self.stats.bytes_received += len(data)
        try:
            frame = Frame.from_bytes(data)
            if frame.kind is Kind.HELLO:
                self._on_hello(frame, Hello.from_bytes(frame.payload), now)
                return
            offer = self._handshake.offer
            if (
                self.state is LinkState.ARBITRATING
                and offer is not None
                and frame.session == self.session
            ):
                self._up(offer, now)  # the leader is already sending: it saw our hello
            if self.state is not LinkState.UP or frame.session != self.session:
                self.stats.stale_frames += 1
                return
            self._receiver.on_frame(frame, self._transfer, now)
        except CrcError:
            self.stats.crc_errors += 1
        except FrameError:
            self.stats.bad_frames += 1

    # -- the HELLO exchange -------------------------------------------------------------------

    def _on_hello(self, frame: Frame, hello: Hello, now: float) -> None:
        if self.state is LinkState.DOWN:
            return
        if hello.version != PROTOCOL_VERSION:
            self._down(
                DownReason.VERSION_MISMATCH,
                now,
                f"the peer speaks protocol {hello.version}, we speak {PROTOCOL_VERSION}",
            )
            return
        problem = hello.problem()
        if problem is not None:  # never use it; the peer's next attempt may be better
            self.stats.bad_hellos += 1
            self._events.append(PeerRefused(f"{hello.node!r}: {problem}"))
            return
        step = self._handshake.take(frame, hello, now, up=self.state is LinkState.UP)
        if step.leave_up is not None:
            self._down(step.leave_up, now, next_state=LinkState.ARBITRATING)
        if step.restarted_from is not None:
            self._peer_restarted(step.restarted_from, hello.epoch)
        if step.up:
            self._up(hello, now)

    def _peer_restarted(self, old_epoch: int, epoch: int) -> None:
        """A new epoch: fail what the old peer never answered, forget what it said."""
        self.stats.peer_restarts += 1
        self._events.append(PeerRestarted(old_epoch, epoch))
        self._sender.peer_restarted()
        self._receiver.verdicts.forget()
        if self.endpoints.clear_peer():
            self._events.append(EndpointsChanged({}))

    def _up(self, hello: Hello, now: float) -> None:
        self._reset_session()
        self._handshake.came_up(now)
        self.state = LinkState.UP
        self.peer = peer_info(hello)
        self._transfer.start(hello.window, now)
        self.stats.link_ups += 1
        self._events.append(LinkUp(self.peer, self.session))
        for port, name in self.endpoints.named():
            self._transfer.queue.append(_announcement(ANNOUNCE_CREATE, port, name))
        self._transfer.queue.extend(self._sender.resumed(self._send_payload))
