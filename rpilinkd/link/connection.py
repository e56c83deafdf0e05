"""The connection: reliable, ordered, acknowledged messages over lossy frames. Sans-IO.

Feed it what the bus delivered (``receive_frame``) and the time; ask it what to
send (``frames_to_send``), when to wake it next (``get_timer``/``handle_timer``)
and what happened (``next_event``). It never sleeps, reads a clock or touches a
socket, so every property is testable with a fake clock (docs/protocol.md §4,
states.py for the state machine).
"""

from __future__ import annotations

import math
import random
from collections import deque
from dataclasses import replace

from rpilinkd.config import MESSAGE_HARD_CAP, LinkConfig
from rpilinkd.errors import CrcError, FrameError, LinkDownError, MessageTooLargeError
from rpilinkd.link.delivery import Outbox, Outgoing, VerdictMemory
from rpilinkd.link.endpoints import Endpoints
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
from rpilinkd.link.frames import (
    ANNOUNCE_CREATE,
    ANNOUNCE_DESTROY,
    OVERHEAD,
    SACK,
    SEQUENCED,
    Flag,
    Frame,
    Kind,
    announce_payload,
    parse_announce,
    sack_bits,
)
from rpilinkd.link.hello import Hello, truncate_name
from rpilinkd.link.messages import Assembled, Reassembler, fragments, verdict_code, verdict_number
from rpilinkd.link.states import ErrorLevel, LinkState
from rpilinkd.link.stats import LinkStats
from rpilinkd.link.window import ReceiveWindow, RttEstimator, SendWindow, seq_diff

PROTOCOL_VERSION = 2  # 2: bus v2 (a unit on every strobe edge), turns handed over
ACK_DELAY_S = 0.1  # an owed ACK goes out with our next burst; only this late asks for the bus
VERDICT_TIMEOUT_S = 30.0  # a peer that never answers a whole message: fail it
MAX_PORT = 0xFFFF
TX_ERRORS_CAP = 256  # the counter saturates at bus-off, so a mended cable recovers


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
        self._rng = rng or random.Random()
        self.state = LinkState.DOWN
        self.peer: PeerInfo | None = None
        self.session = 0
        self.leader = False
        self.stats = LinkStats()
        self.endpoints = Endpoints()
        self._events: deque[LinkEvent] = deque()
        self._peer_epoch: int | None = None  # the last epoch we saw, across link-ups
        self._offer: Hello | None = None  # the leader's hello a follower is answering
        self._hello_seen = False
        self._nonce = 0
        self._peer_nonce: int | None = None
        self._hello_due: float | None = None
        self._timers_run = -math.inf  # when handle_timer last ran
        self._next_message_id = 1  # never reset: ids stay unique across link-ups
        self.outbox = Outbox()  # survives link drops (resumption)
        self._verdicts = VerdictMemory()  # of the current peer epoch's messages
        self._drop = DownReason.STOPPED  # why the link last went down
        self.answer_expected = False  # the last frames_to_send owes the peer a reply
        self._in_burst: list[int] = []  # sequence numbers of the last frames_to_send
        self._reset_session()

    # -- life cycle (driven by the bus-access machine) --------------------------------

    def start(self, now: float, *, leader: bool) -> None:
        """Roles are decided: begin the HELLO exchange (the leader picks the session)."""
        if self.state is not LinkState.DOWN:
            return
        self.leader = leader
        self.state = LinkState.ARBITRATING
        self._reset_session()
        self._new_session(now)

    def _new_session(self, now: float) -> None:
        """The leader picks a session id unlike the last; a follower waits for it."""
        last = self.session
        choices = [s for s in range(1, 256) if s != last]
        self.session = self._rng.choice(choices) if self.leader else 0
        self._nonce = self._rng.getrandbits(32)
        self._peer_nonce = None
        self._hello_due = now
        self._hello_seen = False
        self._offer = None

    def stop(self, reason: DownReason, now: float) -> None:
        """The bus is lost (or this side stops): down, resuming if the reason allows."""
        if self.state is not LinkState.DOWN:
            self._down(reason, now)

    def _reset_session(self) -> None:
        rtt = RttEstimator(
            self.config.rto_initial_ms / 1e3,
            self.config.rto_min_ms / 1e3,
            self.config.rto_max_ms / 1e3,
        )
        self._window = SendWindow(self.config.window, rtt)
        self._rx = ReceiveWindow(self.config.window)
        self._reassembler = Reassembler(self.config.max_message)
        self._queue: deque[Frame] = deque()  # data and announcements
        self._answers: deque[Frame] = deque()  # verdicts: they ride the peer's hand-over
        self._incoming: dict[int, int] = {}  # message id -> port, awaiting accept/reject
        self._fast_resend: set[int] = set()
        self._ack_due: float | None = None  # an ACK is owed; it asks for the bus from then
        self._answer_due: float | None = None  # verdicts wait; they ask for the bus from then
        self._hello_due = None
        self._last_rx = self._last_tx = 0.0

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
            self._drop = reason
            resume_s = self.config.resume_s if reason.resumable else 0.0
            for message_id in self.outbox.dropped(now, resume_s):
                self._fail(message_id, reason.fail_code, self._why(reason))
        resuming = self.outbox.accepting_while_down(now)
        if not resuming and self.endpoints.clear_peer():
            self._events.append(EndpointsChanged({}))
        self.state = next_state
        self._reset_session()
        self._events.append(LinkDown(reason, detail, resuming))

    @staticmethod
    def _why(reason: DownReason) -> str:
        if reason is DownReason.PEER_RESTARTED:
            return "the peer restarted"
        if reason is DownReason.RETRIES_EXHAUSTED:
            return "the peer stopped acknowledging"
        return f"link went down ({reason.value})"

    # -- applications ----------------------------------------------------------------------

    def bind(self, port: int, name: str | None = None) -> None:
        self.endpoints.bind(port, name)
        if name and self.state is LinkState.UP:
            self._queue.append(
                Frame(Kind.ANNOUNCE, port=port, payload=announce_payload(ANNOUNCE_CREATE, name))
            )

    def unbind(self, port: int) -> None:
        name = self.endpoints.unbind(port)
        if name and self.state is LinkState.UP:
            self._queue.append(
                Frame(Kind.ANNOUNCE, port=port, payload=announce_payload(ANNOUNCE_DESTROY, name))
            )

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
        message_id = self._next_message_id
        self._next_message_id = self._next_message_id % 0xFFFFFFFF + 1
        outgoing = Outgoing(port, src_port, data)
        self.outbox.add(message_id, outgoing)
        if up:  # else it goes out when the link is back (resumption)
            self._queue_message(message_id, outgoing)
        self.stats.messages_sent += 1
        self.stats.payload_sent += len(data)
        return message_id

    def _queue_message(self, message_id: int, outgoing: Outgoing) -> None:
        frames = list(
            fragments(
                message_id, outgoing.port, outgoing.src_port, outgoing.data, self._send_payload
            )
        )
        outgoing.unacked = len(frames)
        self._queue.extend(frames)

    @property
    def _send_payload(self) -> int:
        peer_payload = self.peer.frame_payload if self.peer else self.frame_payload
        return min(self.frame_payload, peer_payload)

    def accept(self, message_id: int, now: float) -> None:
        """The message was handed to its endpoint: tell the sender."""
        self.reject(message_id, "ok", now)

    def reject(self, message_id: int, code: str, now: float) -> None:
        """The message could not be taken (``code`` e.g. ``queue_full``): tell the sender."""
        port = self._incoming.pop(message_id, None)
        if port is None:
            return
        self._verdicts.remember(message_id, code)
        self._answer(message_id, port, code, now)

    def _answer(self, message_id: int, port: int, code: str, now: float) -> None:
        """Queue a verdict. Like an ACK it needs no request for the bus: the sender
        hands the bus over once its burst is out, unless it keeps sending a window's
        worth; only after ``ACK_DELAY_S`` does it ask."""
        if self.state is LinkState.UP:
            if self._answer_due is None:
                self._answer_due = now + ACK_DELAY_S
            self._answers.append(
                Frame(
                    Kind.VERDICT,
                    port=port,
                    message_id=message_id,
                    payload=bytes([verdict_number(code)]),
                )
            )

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
            hello = self._hello_due if self.state is LinkState.ARBITRATING else None
            return min(
                (t for t in (resume, hello) if t is not None and t > self._timers_run),
                default=None,
            )
        keepalive, dead = self.config.keepalive_ms / 1e3, self.config.dead_after_ms / 1e3
        candidates = [
            self._last_tx + keepalive,
            self._last_rx + dead,
            self._ack_due,
            self._answer_due if self._answerable else None,
            self._window.next_deadline(),
            self._hello_due,
            self.outbox.next_deadline(up=True),
        ]
        return min((t for t in candidates if t is not None and t > self._timers_run), default=None)

    def handle_timer(self, now: float) -> None:
        self._timers_run = now
        if self.state is not LinkState.UP:
            for message_id in self.outbox.expired(now):  # the outage outlasted resume_s
                self._fail(
                    message_id,
                    self._drop.fail_code,
                    f"{self._why(self._drop)} for longer than link.resume_s",
                )
            if not self.outbox.accepting_while_down(now):
                self.outbox.resume_until = None
                if self.endpoints.clear_peer():
                    self._events.append(EndpointsChanged({}))
            return
        if now - self._last_rx >= self.config.dead_after_ms / 1e3:
            self._down(
                DownReason.TIMEOUT,
                now,
                f"nothing from the peer for {self.config.dead_after_ms:.0f} ms",
            )
            return
        if any(e.attempts >= self.config.retries for e in self._window.due(now)):
            self._down(
                DownReason.RETRIES_EXHAUSTED,
                now,
                f"a frame was sent {self.config.retries} times unanswered",
            )
            return
        for message_id, outgoing in list(self.outbox.messages.items()):
            if outgoing.verdict_by is not None and now >= outgoing.verdict_by:
                self._fail(message_id, "delivery_failed", "the peer never answered")

    def wants_to_send(self, now: float) -> bool:
        """Whether ``frames_to_send`` would give something now (an owed ACK or verdict
        included)."""
        return self._answerable or self._ack_due is not None or self.needs_bus(now)

    @property
    def _answerable(self) -> bool:
        return bool(self._answers) and self._room() > 0

    def needs_bus(self, now: float) -> bool:
        """Whether to ask the peer for the bus: anything but answers (ACKs, verdicts)
        not yet ``ACK_DELAY_S`` old (the peer hands the bus over after every burst it
        wants answered)."""
        if self.state is LinkState.ARBITRATING:
            return self._hello_due is not None and self._hello_due <= now
        if self.state is not LinkState.UP:
            return False
        return bool(
            (self._queue and self._room() > 0)
            or self._fast_resend
            or (self._ack_due is not None and self._ack_due <= now)
            or (self._answerable and self._answer_due is not None and self._answer_due <= now)
            or (self._hello_due is not None and self._hello_due <= now)
            or now - self._last_tx >= self.config.keepalive_ms / 1e3
            or any(e.attempts < self.config.retries for e in self._window.due(now))
        )

    # -- the wire: sending -----------------------------------------------------------------------

    def frames_to_send(self, now: float, max_frames: int | None = None) -> list[bytes]:
        """What to put on the wire now; ``answer_expected`` says whether the peer owes
        a reply to them (the bus hands itself over after such a burst). Call
        :meth:`frames_on_wire` once they are out."""
        out: list[bytes] = []
        self.frames_on_wire(now)  # the caller forgot: the last burst is surely out
        self.answer_expected = False
        if self.state is LinkState.ARBITRATING:
            if self._hello_due is not None and self._hello_due <= now:
                out.append(self._hello_frame())
                self.answer_expected = True
                self._hello_due = now + self.config.rto_initial_ms / 1e3
        elif self.state is LinkState.UP:
            limit = max_frames if max_frames is not None else 1 << 30
            if self._hello_due is not None and self._hello_due <= now:
                out.append(self._hello_frame())  # our SEEN hello went missing: say it again
                self._hello_due = None
            out += self._retransmissions(now, limit - len(out))
            for _ in range(min(self._room(), limit - len(out))):
                queue = self._answers or self._queue
                if not queue:
                    break
                entry = self._window.push(queue.popleft(), now)
                self._in_burst.append(entry.seq)
                out.append(self._stamp(entry.frame, seq=entry.seq))
            self.answer_expected = bool(out)  # hellos and sequenced frames: all answered
            self._window.in_transit(self._in_burst)
            keepalive_due = now - self._last_tx >= self.config.keepalive_ms / 1e3
            ack_owed = self._ack_due is not None
            if (ack_owed and (not out or self._rx.held)) or (keepalive_due and not out):
                out.append(self._stamp(Frame(Kind.ACK, payload=SACK.pack(self._rx.sack()))))
            if out:
                self._ack_due = None
            if not self._answers:
                self._answer_due = None
        if out:
            self._last_tx = now
            self.stats.frames_sent += len(out)
            self.stats.bytes_sent += sum(map(len, out))
        return out

    def frames_on_wire(self, now: float) -> None:
        """The frames of the last ``frames_to_send`` are out: their round trips (and
        retransmission timers) start now."""
        if self._in_burst:
            self._window.on_wire(self._in_burst, now)
            self._in_burst = []

    def _room(self) -> int:
        """New frames the window takes now; a sick cable (error-passive or worse) gets half."""
        if self.stats.error_level in (ErrorLevel.PASSIVE, ErrorLevel.BUS_OFF):
            return max(0, self._window.size // 2 - len(self._window.frames))
        return self._window.room

    def _retransmissions(self, now: float, limit: int) -> list[bytes]:
        out = []
        due = {e.seq: e for e in self._window.due(now) if e.attempts < self.config.retries}
        for seq in list(self._fast_resend):
            if seq in self._window.frames:
                due.setdefault(seq, self._window.frames[seq])
        self._fast_resend.clear()
        for entry in sorted(due.values(), key=lambda e: seq_diff(e.seq, self._rx.expected))[:limit]:
            self._window.retransmitted(entry, now)
            self._in_burst.append(entry.seq)
            self.stats.retransmissions += 1
            self.stats.tx_errors = min(TX_ERRORS_CAP, self.stats.tx_errors + 8)
            out.append(self._stamp(entry.frame, seq=entry.seq))
        return out

    def _stamp(self, frame: Frame, seq: int = 0) -> bytes:
        return replace(frame, session=self.session, seq=seq, ack=self._rx.expected).to_bytes()

    def _hello_frame(self) -> bytes:
        hello = Hello(
            PROTOCOL_VERSION,
            self.epoch,
            self._peer_epoch or 0,
            self._nonce,
            self.frame_payload,
            self.config.window,
            self.config.max_message,
            self.node,
        )
        flags = Flag.HELLO_SEEN if self._hello_seen else Flag.NONE
        return Frame(Kind.HELLO, flags, self.session, payload=hello.to_bytes()).to_bytes()

    # -- the wire: receiving ----------------------------------------------------------------------

    def receive_frame(self, data: bytes, now: float) -> None:
        """Take one frame from the bus; bad bytes are counted, never raised."""
        self.stats.frames_received += 1
        self.stats.bytes_received += len(data)
        try:
            frame = Frame.from_bytes(data)
            if frame.kind is Kind.HELLO:
                self._on_hello(frame, Hello.from_bytes(frame.payload), now)
                return
            offered = self._offer is not None and frame.session == self.session
            if self.state is LinkState.ARBITRATING and offered and self._offer is not None:
                self._up(self._offer, now)  # the leader is already sending: it saw our hello
            if self.state is not LinkState.UP or frame.session != self.session:
                self.stats.stale_frames += 1
                return
            self._on_frame(frame, now)
        except CrcError:
            self.stats.crc_errors += 1
        except FrameError:
            self.stats.bad_frames += 1

    def _on_frame(self, frame: Frame, now: float) -> None:
        self._last_rx = now
        sack = sack_bits(frame.payload) if frame.kind is Kind.ACK else 0
        self._on_ack(frame.ack, sack, now)
        if frame.kind not in SEQUENCED:
            return
        ready, duplicate = self._rx.accept(frame)
        self.stats.duplicates += duplicate
        if self._ack_due is None:
            self._ack_due = now + ACK_DELAY_S
        for item in ready:
            self._dispatch(item, now)

    def _on_ack(self, ack: int, sack: int, now: float) -> None:
        if seq_diff(ack, self._window.next_seq) > 0:
            return  # acknowledges what we never sent: ignore
        for entry in self._window.acknowledge(ack, sack, now):
            self.stats.tx_errors = max(0, self.stats.tx_errors - 1)
            outgoing = self.outbox.get(entry.frame.message_id)
            if entry.frame.kind is Kind.DATA and outgoing is not None:
                outgoing.unacked -= 1
                if outgoing.unacked == 0:
                    outgoing.verdict_by = now + VERDICT_TIMEOUT_S
        for entry in self._window.missing_below(ack, sack):
            srtt = self._window.rtt.srtt or 0.0
            if now - entry.sent_at >= srtt:  # at most one fast resend per round trip
                self._fast_resend.add(entry.seq)

    def _dispatch(self, frame: Frame, now: float) -> None:
        if frame.kind is Kind.DATA:
            result = self._reassembler.feed(frame)
            answered = None if result is None else self._verdicts.get(result.message_id)
            if result is not None and answered is not None:  # resent after a drop: once only
                self.stats.duplicate_messages += 1
                self._answer(result.message_id, result.port, answered, now)
            elif isinstance(result, Assembled):
                self.stats.messages_received += 1
                self.stats.payload_received += len(result.data)
                if self.endpoints.is_bound(result.port):
                    self._incoming[result.message_id] = result.port
                    self._events.append(
                        MessageReceived(
                            result.message_id, result.port, result.src_port, result.data
                        )
                    )
                else:
                    self._incoming[result.message_id] = result.port
                    self.reject(result.message_id, "no_listener", now)
            elif result is not None:
                self._incoming[result.message_id] = result.port
                self.reject(result.message_id, result.code, now)
        elif frame.kind is Kind.VERDICT:
            code = verdict_code(frame.payload[0]) if frame.payload else "remote_error"
            if self.outbox.get(frame.message_id) is None:
                return
            if code == "ok":
                self.outbox.pop(frame.message_id)
                self.stats.messages_delivered += 1
                self._events.append(MessageDelivered(frame.message_id))
            else:
                self._fail(frame.message_id, code, "refused by the peer daemon")
        elif frame.kind is Kind.ANNOUNCE:
            op, name = parse_announce(frame.payload)
            if self.endpoints.peer_announced(op == ANNOUNCE_CREATE, name, frame.port):
                self._events.append(EndpointsChanged(dict(self.endpoints.peer)))

    def _fail(self, message_id: int, code: str, reason: str) -> None:
        outgoing = self.outbox.pop(message_id)
        if outgoing is None:
            return
        self.stats.delivery_failures += 1
        self._events.append(DeliveryFailed(message_id, outgoing.port, code, reason))

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
        restarted = self._peer_epoch is not None and hello.epoch != self._peer_epoch
        if self.state is LinkState.UP:
            same_attempt = hello.nonce == self._peer_nonce
            if same_attempt and not restarted:
                self._hello_due = now  # a repeat or a late copy: answer, change nothing
                return
            reason = DownReason.PEER_RESTARTED if restarted else DownReason.PEER_RESET
            self._down(reason, now, next_state=LinkState.ARBITRATING)
            self._new_session(now)
            if self.leader:
                self._note_restart(restarted, hello.epoch, now)
                return  # the follower will answer the leader's new session
        self._note_restart(restarted, hello.epoch, now)
        if self.leader:
            if frame.session == self.session and frame.flags & Flag.HELLO_SEEN:
                self._hello_seen = True
                self._peer_nonce = hello.nonce
                self._up(hello, now)
                self._hello_due = now  # one SEEN hello brings the follower up
            else:
                self._hello_due = min(self._hello_due or now, now)
        elif frame.session:
            if frame.session != self.session:
                self.session = frame.session
            self._hello_seen = True
            self._offer = hello
            self._peer_nonce = hello.nonce
            if frame.flags & Flag.HELLO_SEEN:
                self._up(hello, now)
            else:
                self._hello_due = now

    def _note_restart(self, restarted: bool, epoch: int, now: float) -> None:
        """A HELLO names the peer's epoch: a new one fails what the old peer never answered."""
        if restarted:
            self.stats.peer_restarts += 1
            self._events.append(PeerRestarted(self._peer_epoch or 0, epoch))
            self._drop = DownReason.PEER_RESTARTED
            for message_id in list(self.outbox.messages):
                self._fail(message_id, "peer_restarted", "the peer restarted")
            self.outbox.resume_until = None
            self._verdicts.forget()
            if self.endpoints.clear_peer():
                self._events.append(EndpointsChanged({}))
        self._peer_epoch = epoch

    def _up(self, hello: Hello, now: float) -> None:
        session = self.session
        self._reset_session()
        self.session = session
        self._offer = None
        self.state = LinkState.UP
        self.peer = PeerInfo(
            hello.node,
            hello.epoch,
            hello.version,
            hello.frame_payload,
            hello.window,
            hello.max_message,
        )
        self._window.size = min(self.config.window, hello.window)
        self._last_rx = self._last_tx = now
        self.stats.link_ups += 1
        self._events.append(LinkUp(self.peer, self.session))
        for port, name in self.endpoints.named():
            self._queue.append(
                Frame(Kind.ANNOUNCE, port=port, payload=announce_payload(ANNOUNCE_CREATE, name))
            )
        for message_id, outgoing in self.outbox.resumed():  # what the drop interrupted
            self.stats.messages_resumed += 1
            self._queue_message(message_id, outgoing)
