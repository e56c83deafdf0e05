"""One session's frames: what goes out in a burst, and what an incoming frame settles.

It keeps the send and receive windows (window.py), the frames waiting for
room in the window, and the ACKs and verdicts owed to the peer. A burst puts
retransmissions first, then verdicts, then data and announcements, then an
ACK if one is owed and nothing else carries it. An ACK owed for verdicts alone
is held a little (``ACK_HOLD_S``) for our next burst to carry it: the verdict's
sender waits for nothing, and a request-reply client sends its next message
within that time, so a message costs two bursts, not three. Every link-up
starts a new one: sequence numbers start over with the session.
"""

from __future__ import annotations

from collections import deque
from dataclasses import replace

from rpilinkd.config import LinkConfig
from rpilinkd.link.events import DownReason
from rpilinkd.link.frames import SACK, Frame, Kind
from rpilinkd.link.states import ErrorLevel
from rpilinkd.link.stats import LinkStats
from rpilinkd.link.window import InFlight, ReceiveWindow, RttEstimator, SendWindow, seq_diff

ACK_DELAY_S = 0.1  # an owed ACK goes out with our next burst; only this late asks for the bus
# An ACK owed for verdicts alone waits this long for a burst of ours to ride on; far
# below the peer's retransmission floor (rto_min_ms, 10 ms by default)
ACK_HOLD_S = 0.002
TX_ERRORS_CAP = 256  # the counter saturates at bus-off, so a mended cable recovers


class Transfer:
    """The frames of one session, both ways."""

    def __init__(self, config: LinkConfig, stats: LinkStats) -> None:
        self.config, self.stats = config, stats
        rtt = RttEstimator(
            config.rto_initial_ms / 1e3,
            config.rto_min_ms / 1e3,
            config.rto_max_ms / 1e3,
        )
        self.window = SendWindow(config.window, rtt)
        self.rx = ReceiveWindow(config.window)
        self.queue: deque[Frame] = deque()  # data and announcements
        self.answers: deque[Frame] = deque()  # verdicts: they ride the peer's hand-over
        self.fast_resend: set[int] = set()
        self.ack_due: float | None = None  # an ACK is owed; it asks for the bus from then
        self.ack_held_until: float | None = None  # an ACK owed for verdicts alone waits
        self.answer_due: float | None = None  # verdicts wait; they ask for the bus from then
        self.last_rx = self.last_tx = 0.0
        self.in_turn: list[int] = []  # frames whose timers wait for this turn to be out

    def start(self, peer_window: int, now: float) -> None:
        """The link is up: the peer's window bounds ours, and both silences start now."""
        self.window.size = min(self.config.window, peer_window)
        self.last_rx = self.last_tx = now

    # -- what to send ---------------------------------------------------------------------

    def owe_answer(self, verdict: Frame, now: float) -> None:
        """Queue a verdict. Like an ACK it needs no request for the bus: the sender
        hands the bus over once its burst is out, unless it keeps sending a window's
        worth; only after ``ACK_DELAY_S`` does it ask."""
        if self.answer_due is None:
            self.answer_due = now + ACK_DELAY_S
        self.answers.append(verdict)

    def room(self) -> int:
        """New frames the window takes now; a sick cable (error-passive or worse) gets half."""
        if self.stats.error_level in (ErrorLevel.PASSIVE, ErrorLevel.BUS_OFF):
            return max(0, self.window.size // 2 - len(self.window.frames))
        return self.window.room

    @property
    def answerable(self) -> bool:
        return bool(self.answers) and self.room() > 0

    def needs_bus(self, now: float) -> bool:
        """Whether anything but answers (ACKs, verdicts) not yet ``ACK_DELAY_S`` old
        waits to be sent."""
        return bool(
            (self.queue and self.room() > 0)
            or self.fast_resend
            or (self.ack_due is not None and self.ack_due <= now)
            or (self.answerable and self.answer_due is not None and self.answer_due <= now)
            or now - self.last_tx >= self.config.keepalive_ms / 1e3
            or any(e.attempts < self.config.retries for e in self.window.due(now))
        )

    def ack_ready(self, now: float) -> bool:
        """Whether an owed ACK may go out now (one held for verdicts alone waits)."""
        if self.ack_due is None:
            return False
        held = self.ack_held_until is not None and now < self.ack_held_until
        return not held or bool(self.rx.held)  # a hole to report never waits

    def deadlines(self) -> list[float | None]:
        """Keepalive, dead peer, owed ACK (held or asking), owed verdicts, the next
        retransmission."""
        keepalive, dead = self.config.keepalive_ms / 1e3, self.config.dead_after_ms / 1e3
        return [
            self.last_tx + keepalive,
            self.last_rx + dead,
            self.ack_due,
            self.ack_held_until,  # set only while an ACK is owed
            self.answer_due if self.answerable else None,
            self.window.next_deadline(),
        ]

    def broken(self, now: float) -> tuple[DownReason, str] | None:
        """Why the link must go down now, if it must: the peer fell silent, or a frame
        went unacknowledged too often."""
        if now - self.last_rx >= self.config.dead_after_ms / 1e3:
            return (
                DownReason.TIMEOUT,
                f"nothing from the peer for {self.config.dead_after_ms:.0f} ms",
            )
        if any(e.attempts >= self.config.retries for e in self.window.due(now)):
            return DownReason.RETRIES_EXHAUSTED, (
                f"a frame was sent {self.config.retries} times unanswered"
            )
        return None

    def fill(self, out: list[bytes], now: float, limit: int, session: int) -> bool:
        """Add this burst's frames to ``out`` (which may hold a HELLO), ``limit`` in all;
        returns whether the peer owes a reply to them."""
        out.extend(self._retransmissions(now, limit - len(out), session))
        for _ in range(min(self.room(), limit - len(out))):
            queue = self.answers or self.queue
            if not queue:
                break
            entry = self.window.push(queue.popleft(), now)
            out.append(self._stamp(entry.frame, session, entry.seq))
        answer_expected = bool(out)  # hellos and sequenced frames: all answered
        keepalive_due = now - self.last_tx >= self.config.keepalive_ms / 1e3
        ack_owed = self.ack_ready(now)
        if (ack_owed and (not out or self.rx.held)) or (keepalive_due and not out):
            out.append(self._stamp(Frame(Kind.ACK, payload=SACK.pack(self.rx.sack())), session))
        if out:  # every frame carries the ACK
            self.ack_due = self.ack_held_until = None
            # we hold the bus again: the peer cannot answer any frame meanwhile, so no
            # timer runs until this turn is out (on_wire), earlier turns' frames included
            self.in_turn = list(self.window.frames)
            self.window.in_transit(self.in_turn, now)
        if not self.answers:
            self.answer_due = None
        return answer_expected

    def on_wire(self, now: float) -> None:
        """The bursts since the last call are out and the peer may answer from ``now``:
        their round trips (and retransmission timers) start then."""
        if self.in_turn:
            self.window.on_wire(self.in_turn, now)
            self.in_turn = []

    def _retransmissions(self, now: float, limit: int, session: int) -> list[bytes]:
        out = []
        due = {e.seq: e for e in self.window.due(now) if e.attempts < self.config.retries}
        for seq in list(self.fast_resend):
            if seq in self.window.frames:
                due.setdefault(seq, self.window.frames[seq])
        self.fast_resend.clear()
        for entry in sorted(due.values(), key=lambda e: seq_diff(e.seq, self.rx.expected))[:limit]:
            self.window.retransmitted(entry, now)
            self.stats.retransmissions += 1
            self.stats.tx_errors = min(TX_ERRORS_CAP, self.stats.tx_errors + 8)
            out.append(self._stamp(entry.frame, session, entry.seq))
        return out

    def _stamp(self, frame: Frame, session: int, seq: int = 0) -> bytes:
        return replace(frame, session=session, seq=seq, ack=self.rx.expected).to_bytes()

    # -- what arrived -----------------------------------------------------------------------

    def acknowledge(self, ack: int, sack: int, now: float) -> list[InFlight]:
        """Take the peer's ACK; returns the frames it acknowledges. Holes below what it
        holds are resent at once, at most once per round trip."""
        if seq_diff(ack, self.window.next_seq) > 0:
            return []  # acknowledges what we never sent: ignore
        done = self.window.acknowledge(ack, sack, now)
        for _ in done:
            self.stats.tx_errors = max(0, self.stats.tx_errors - 1)
        for entry in self.window.missing_below(ack, sack):
            srtt = self.window.rtt.srtt or 0.0
            if now - entry.sent_at >= srtt:  # at most one fast resend per round trip
                self.fast_resend.add(entry.seq)
        return done

    def accept(self, frame: Frame, now: float) -> list[Frame]:
        """Take a sequenced frame; returns those now in order. It is owed an ACK, held
        while it is owed for fresh verdicts alone."""
        ready, duplicate = self.rx.accept(frame)
        self.stats.duplicates += duplicate
        holdable = frame.kind is Kind.VERDICT and not duplicate
        if self.ack_due is None:
            self.ack_due = now + ACK_DELAY_S
            self.ack_held_until = now + ACK_HOLD_S if holdable else None
        elif not holdable:
            self.ack_held_until = None
        return ready
