"""Selective-repeat ARQ: the send and receive windows and the retransmission timer.

Why selective repeat: the bus is half-duplex and a turn-around costs
milliseconds of Python, so a window carries many frames per turn; with
go-back-N one lost frame would resend the whole window, with selective repeat
only what was lost (the receiver's SACK bitmap says which). Sequence numbers
are 16 bits; windows are at most 256, far below the 2^15 that modular
comparison allows.

The retransmission timeout follows RFC 6298 (SRTT, RTTVAR, Karn's rule: no
samples from retransmitted frames), clamped to the configured floor and
ceiling, and doubles for a frame at each of its timeouts.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass, field

from rpilinkd.link.frames import SACK, Frame

SEQ_MOD = 1 << 16
SACK_SPAN = SACK.size * 8  # sequence numbers after the cumulative ack one ACK can vouch for


def seq_add(seq: int, n: int) -> int:
    return (seq + n) % SEQ_MOD


def seq_diff(a: int, b: int) -> int:
    """How far ``a`` is ahead of ``b``, in (-2^15, 2^15]."""
    d = (a - b) % SEQ_MOD
    return d - SEQ_MOD if d > SEQ_MOD // 2 else d


@dataclass
class RttEstimator:
    initial: float
    floor: float
    ceiling: float
    srtt: float | None = None
    rttvar: float = 0.0

    @property
    def rto(self) -> float:
        if self.srtt is None:
            return self.initial
        return min(self.ceiling, max(self.floor, self.srtt + 4 * self.rttvar))

    def sample(self, rtt: float) -> None:
        if self.srtt is None:
            self.srtt, self.rttvar = rtt, rtt / 2
        else:
            self.rttvar = 0.75 * self.rttvar + 0.25 * abs(self.srtt - rtt)
            self.srtt = 0.875 * self.srtt + 0.125 * rtt


@dataclass
class InFlight:
    seq: int
    frame: Frame
    first_sent: float
    sent_at: float
    rto: float
    attempts: int = 1
    waited: float = 0.0  # while paused (sent_at = inf): what counted towards rto before


@dataclass
class SendWindow:
    """Frames sent and not yet acknowledged, oldest first."""

    size: int
    rtt: RttEstimator
    next_seq: int = 0
    frames: OrderedDict[int, InFlight] = field(default_factory=OrderedDict)
    # the earliest timeout, kept between changes: the driver asks after every event
    _earliest: float | None = field(default=None, init=False, repr=False)
    _stale: bool = field(default=False, init=False, repr=False)

    @property
    def room(self) -> int:
        return self.size - len(self.frames)

    def push(self, frame: Frame, now: float) -> InFlight:
        entry = InFlight(self.next_seq, frame, now, now, self.rtt.rto)
        self.frames[self.next_seq] = entry
        self.next_seq = seq_add(self.next_seq, 1)
        if not self._stale:
            deadline = now + entry.rto
            self._earliest = deadline if self._earliest is None else min(self._earliest, deadline)
        return entry

    def acknowledge(self, ack: int, sack: int, now: float) -> list[InFlight]:
        """Drop what the peer has (everything before ``ack``, and the SACKed seqs).
        The frames are in sequence order, so this looks only at what it drops (every
        frame carries an ``ack``: a pass over the whole window for each cost the
        receiving side more CPU the larger the window)."""
        done = []
        while self.frames:
            seq = next(iter(self.frames))
            if seq_diff(seq, ack) >= 0:
                break
            done.append(self._drop(seq, now))
        while sack:
            bit = sack & -sack  # the lowest one set: seq ack + its position + 1
            sack ^= bit
            seq = seq_add(ack, bit.bit_length())
            if seq in self.frames:
                done.append(self._drop(seq, now))
        return done

    def _drop(self, seq: int, now: float) -> InFlight:
        entry = self.frames.pop(seq)
        self._stale = True
        if entry.attempts == 1 and entry.sent_at <= now:  # Karn: unambiguous only
            self.rtt.sample(now - entry.sent_at)
        return entry

    def in_transit(self, seqs: list[int], now: float) -> None:
        """This side holds the bus again (these frames go out, or wait while it does):
        their timers pause until :meth:`on_wire`, keeping what they ran so far. (Not
        restarted: a side that sends a keepalive more often than a frame's timeout,
        doubled by earlier losses, would then never resend that frame.)"""
        for seq in seqs:
            entry = self.frames.get(seq)
            if entry is not None and entry.sent_at < math.inf:  # not paused already
                entry.waited, entry.sent_at = max(0.0, now - entry.sent_at), math.inf
        self._stale = True

    def on_wire(self, seqs: list[int], now: float) -> None:
        """These frames are out and the peer may answer from ``now``: their timers run
        on from then, since the peer cannot answer while we hold the bus (a long burst
        or turn is no late ACK)."""
        for seq in seqs:
            entry = self.frames.get(seq)
            if entry is not None and entry.sent_at == math.inf:
                entry.sent_at, entry.waited = now - entry.waited, 0.0
        self._stale = True

    def due(self, now: float) -> list[InFlight]:
        deadline = self.next_deadline()
        if deadline is None or deadline > now:
            return []
        return [e for e in self.frames.values() if e.sent_at + e.rto <= now]

    def retransmitted(self, entry: InFlight, now: float) -> None:
        entry.attempts += 1
        entry.sent_at = now
        entry.rto = min(self.rtt.ceiling, entry.rto * 2)
        self._stale = True

    def missing_below(self, ack: int, sack: int) -> list[InFlight]:
        """Frames the peer lacks although it holds later ones (holes in the SACK)."""
        if not sack:
            return []
        highest = sack.bit_length()  # the peer holds seq ack + highest
        lacking = []
        for entry in self.frames.values():
            ahead = seq_diff(entry.seq, ack)
            held = ahead > 0 and sack >> (ahead - 1) & 1
            if 0 <= ahead < highest and not held:
                lacking.append(entry)
        return lacking

    def next_deadline(self) -> float | None:
        if self._stale:
            timed = (e.sent_at + e.rto for e in self.frames.values() if e.sent_at < math.inf)
            self._earliest = min(timed, default=None)
            self._stale = False
        return self._earliest


@dataclass
class ReceiveWindow:
    """Frames that arrived out of order, held until the gap before them fills."""

    size: int
    expected: int = 0
    held: dict[int, Frame] = field(default_factory=dict)

    def accept(self, frame: Frame) -> tuple[list[Frame], bool]:
        """(frames now deliverable in order, whether this one was a duplicate)."""
        ahead = seq_diff(frame.seq, self.expected)
        if ahead < 0 or ahead >= self.size or frame.seq in self.held:
            return [], ahead < 0 or frame.seq in self.held
        self.held[frame.seq] = frame
        ready = []
        while self.expected in self.held:
            ready.append(self.held.pop(self.expected))
            self.expected = seq_add(self.expected, 1)
        return ready, False

    def sack(self) -> int:
        bits = 0
        for seq in self.held:
            ahead = seq_diff(seq, self.expected)
            if 0 < ahead <= SACK_SPAN:
                bits |= 1 << (ahead - 1)
        return bits
