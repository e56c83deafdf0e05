"""Arbitration: which Pi is master, decided on the control lines alone. Sans-IO.

Both Pis run the same code and see each other's four control outputs (STB,
FRM, REQ, RW) on their inputs, every change in order but late, and debounced
(the backend filters single-sample glitches). Nobody drives the data lines
while arbitrating. The handshake (docs/protocol.md §2.2):

1. RESET: all outputs low for ``T_RESET_S``, so a peer that was linked to us,
   or arbitrating with an earlier us, sees us start over.
2. PRESENT: raise REQ and RW, the *presence signature* (it never occurs while
   a link is up). While the peer shows no sign of life, presence is a beacon:
   high for ``T_BEACON_ON_S`` of every ``T_BEACON_PERIOD_S``, so a powered-off
   peer is not back-powered through its input pins for long. A side that sees
   the peer's presence presents at once, whatever its beacon's phase.
3. EXCHANGE, entered when both present: a lock-step serial exchange, both ways
   at once: a 16-bit claim (priority in the top bits: forced master > auto >
   forced slave; a random nonce below), then a 16-bit echo of the peer's
   claim. A bit is sent by setting FRM, then toggling STB; it is read at each
   observed STB toggle (FRM in the same observation). STB is low when the
   exchange begins (RESET and the beacon leave it low), so the first toggle is
   a rise even when it arrives in the same report as the presence itself. A
   bit goes out only when as many of the peer's have been read, and only
   ``toggle_gap_s`` after the previous toggle was applied (the backend says
   when: ``applied``, once its write is sent and ordered): two toggles closer
   than the peer's debounce would vanish together, and two bits with them (a
   backend whose writes may pile up, as in a busy pigpiod, spaces them itself).
4. DONE, with all 32 bits each way: the peer's echo must equal our claim (else
   RESET: a glitch corrupted a bit). The higher claim is master; equal forced
   priorities are a role conflict (wait, retry); equal claims redraw. Lower REQ
   and keep RW high: "my check passed".
5. SETTLE, once the peer was seen in DONE too (REQ low, RW high) and our own
   DONE has been on the wire for ``toggle_gap_s`` (so the peer sees it too):
   all outputs low; once all the peer's are low, the roles hold. A peer that
   failed its check goes to RESET, dropping REQ and RW in one write, which is
   never the DONE pattern: so both sides go up, or neither does.
"""

from __future__ import annotations

import enum
import random
from collections.abc import Mapping
from dataclasses import dataclass

from rpilinkd.pins import ControlLine

STB, FRM, REQ, RW = ControlLine.STB, ControlLine.FRM, ControlLine.REQ, ControlLine.RW
Levels = Mapping[ControlLine, bool]

T_RESET_S = 0.03  # longer than a few report batches of the peer's pigpiod
T_STALL_S = 0.25  # no progress in a handshake phase: start over (report latency is ~1-3 ms)
T_CONFLICT_RETRY_S = 2.0
T_BEACON_ON_S = 0.05  # presence high ...
T_BEACON_PERIOD_S = 0.5  # ... for this share of every period while the peer is silent
T_ALIVE_S = 1.0  # the peer counts as alive this long after any of its lines was high
T_TOGGLE_GAP_S = 0.001  # a level we show lasts at least this (well above any debounce)
CLAIM_BITS = 16
NONCE_BITS = 14
PRIORITY = {"master": 3, "auto": 1, "slave": 0}


class Role(enum.Enum):
    MASTER = "master"
    SLAVE = "slave"


class Phase(enum.Enum):
    RESET = "reset"
    PRESENT = "present"
    EXCHANGE = "exchange"
    DONE = "done"
    SETTLE = "settle"
    CONFLICT = "conflict"
    DECIDED = "decided"


STALLABLE = (Phase.EXCHANGE, Phase.DONE, Phase.SETTLE)


@dataclass(frozen=True)
class Decision:
    role: Role | None  # None: a conflict
    message: str = ""


def claim_word(role_setting: str, rng: random.Random) -> int:
    return PRIORITY[role_setting] << NONCE_BITS | rng.getrandbits(NONCE_BITS)


def presence(levels: Levels) -> bool:
    return bool(levels[REQ] and levels[RW])


class Arbiter:
    """The arbitration half of the bus-access machine (busaccess.py drives it)."""

    def __init__(
        self, role_setting: str, rng: random.Random, toggle_gap_s: float = T_TOGGLE_GAP_S
    ) -> None:
        if role_setting not in PRIORITY:
            raise ValueError(f"role must be auto, master or slave, not {role_setting!r}")
        self.role_setting = role_setting
        self.rng = rng
        self.phase = Phase.RESET
        self.since = 0.0
        self.writes: list[tuple[ControlLine, bool]] = []
        self.outputs = dict.fromkeys(ControlLine, False)
        self.decision: Decision | None = None
        self.conflict: Decision | None = None  # set on entering CONFLICT, taken by the owner
        self.counters = {
            "arbitrations": 0,
            "echo_failures": 0,
            "redraws": 0,
            "conflicts": 0,
            "stalls": 0,
        }
        self.alive_at: float | None = None  # when the peer last had a line high
        self.stalled_in: Phase | None = None  # the phase of the last stall, for status
        self._claim = 0
        self._received: list[bool] = []  # the peer's bits so far
        self._sent = 0
        self._peer_stb = False
        self._beacon_on = False
        self.toggle_gap_s = toggle_gap_s
        self._shown_at: float | None = 0.0  # when our last STB toggle / DONE hit the wire
        self._peer_done = False  # the peer was seen in DONE

    def set_output(self, line: ControlLine, level: bool) -> None:
        if self.outputs[line] != level:
            self.outputs[line] = level
            self.writes.append((line, level))

    def _all_low(self) -> None:
        for line in (STB, FRM, REQ, RW):
            self.set_output(line, False)

    def _present(self, on: bool, now: float) -> None:
        self._beacon_on = on
        self.since = now
        self.set_output(REQ, on)
        self.set_output(RW, on)

    def _enter(self, phase: Phase, now: float) -> None:
        self.phase, self.since = phase, now

    def applied(self, now: float) -> None:
        """The writes taken so far are sent, in order (on the wire or about to be)."""
        if self._shown_at is None:
            self._shown_at = now

    def _shown_for(self, now: float) -> bool:
        """Whether our last toggle (or DONE) has been on the wire long enough."""
        return self._shown_at is not None and now >= self._shown_at + self.toggle_gap_s

    def _show(self) -> None:
        self._shown_at = None  # until the backend has applied it

    def peer_seen(self, now: float) -> bool:
        """Whether any of the peer's lines was high within ``T_ALIVE_S``."""
        return self.alive_at is not None and now - self.alive_at < T_ALIVE_S

    @property
    def conflict_message(self) -> str:
        return self.decision.message if self.decision is not None else ""

    @property
    def bits_read(self) -> int:
        return len(self._received)

    # -- driving it -----------------------------------------------------------------------

    def begin(self, now: float) -> None:
        """Start over: all lines low, then present after T_RESET_S."""
        self.decision = None
        self._all_low()
        self._enter(Phase.RESET, now)

    def deadline(self) -> float | None:
        if self.phase is Phase.RESET:
            return self.since + T_RESET_S
        if self.phase is Phase.PRESENT:
            if not self._beacon_on:
                return self.since + T_BEACON_PERIOD_S
            end = self.since + T_BEACON_ON_S
            return max(end, self.alive_at + T_ALIVE_S) if self.alive_at is not None else end
        if self.phase is Phase.CONFLICT:
            return self.since + T_CONFLICT_RETRY_S
        if self.phase in STALLABLE:
            stall = self.since + T_STALL_S
            shown = self._shown_at
            waiting = (self.phase is Phase.EXCHANGE and self._bit_ready) or (
                self.phase is Phase.DONE and self._peer_done
            )
            return min(stall, shown + self.toggle_gap_s) if waiting and shown is not None else stall
        return None

    @property
    def _bit_ready(self) -> bool:
        return self._sent < 2 * CLAIM_BITS and self._sent <= len(self._received)

    def tick(self, now: float, peer: Levels) -> None:
        """Time passed: move on if a deadline is due, then look at the peer's lines."""
        deadline = self.deadline()
        if deadline is not None and now >= deadline:
            if self.phase is Phase.RESET:
                self._enter(Phase.PRESENT, now)
                self._present(True, now)
            elif self.phase is Phase.PRESENT:
                # beacon: off when the peer has shown no sign of life for a while, else on
                self._present(not self._beacon_on or self.peer_seen(now), now)
            elif self.phase is Phase.CONFLICT or now >= self.since + T_STALL_S:
                if self.phase in STALLABLE:
                    self.counters["stalls"] += 1
                    self.stalled_in = self.phase
                self.begin(now)  # a conflict to retry, or a handshake that stalled
        self.observe(peer, now)

    def observe(self, peer: Levels, now: float) -> None:
        """The peer's lines as now seen (one observation): take every step it allows."""
        if any(peer.values()):
            self.alive_at = now
        while True:
            phase = self.phase
            self._step(peer, now)
            if self.phase is phase:
                return

    def _step(self, peer: Levels, now: float) -> None:
        if self.phase is Phase.PRESENT and presence(peer):
            self._present(True, now)  # at once, if the beacon was off
            self._start_exchange(now)
        elif self.phase is Phase.EXCHANGE:
            if peer[STB] != self._peer_stb:  # read the bit before anything else in this
                self._peer_stb = peer[STB]  # observation: it may be the peer's last
                self._received.append(peer[FRM])
                self.since = now
            self._present_next(now)
            if len(self._received) >= 2 * CLAIM_BITS and self._sent >= 2 * CLAIM_BITS:
                self._decide(now)
            elif not peer[RW]:
                self.begin(now)  # the peer started over
        elif self.phase is Phase.DONE:
            if peer[RW] and not peer[REQ]:
                self._peer_done = True  # the peer decided too
            elif not peer[RW] and not self._peer_done:
                self.begin(now)  # the peer's check failed (or it started over)
                return
            if self._peer_done and self._shown_for(now):
                self._all_low()
                self._enter(Phase.SETTLE, now)
        elif self.phase is Phase.SETTLE:
            if presence(peer):
                self.begin(now)  # the peer is arbitrating again
            elif not any(peer.values()):
                self.stalled_in = None
                self._enter(Phase.DECIDED, now)

    # -- the exchange ---------------------------------------------------------------------

    def _start_exchange(self, now: float) -> None:
        self.counters["arbitrations"] += 1
        self._claim = claim_word(self.role_setting, self.rng)
        self._received = []
        self._sent = 0
        self._peer_stb = False  # the peer's STB is low when it presents
        self._peer_done = False
        self._shown_at = now - self.toggle_gap_s  # no toggle of ours to protect yet
        self._enter(Phase.EXCHANGE, now)

    def _bit(self, index: int) -> bool:
        if index < CLAIM_BITS:
            return bool(self._claim >> (CLAIM_BITS - 1 - index) & 1)
        echo = index - CLAIM_BITS  # the peer's claim, bit by bit as it arrived
        return self._received[echo]

    def _present_next(self, now: float) -> None:
        if self._bit_ready and self._shown_for(now):
            self.set_output(FRM, self._bit(self._sent))
            self.set_output(STB, not self.outputs[STB])  # after FRM, never before it
            self._show()
            self._sent += 1

    @staticmethod
    def _word(bits: list[bool]) -> int:
        return sum(1 << (len(bits) - 1 - i) for i, bit in enumerate(bits) if bit)

    def _decide(self, now: float) -> None:
        peer_claim = self._word(self._received[:CLAIM_BITS])
        echo = self._word(self._received[CLAIM_BITS : 2 * CLAIM_BITS])
        if echo != self._claim:
            self.counters["echo_failures"] += 1
            self.begin(now)
            return
        mine, theirs = self._claim >> NONCE_BITS, peer_claim >> NONCE_BITS
        if mine == theirs and self.role_setting != "auto":
            self.counters["conflicts"] += 1
            self.decision = self.conflict = Decision(
                None,
                f"both nodes are configured as {self.role_setting}; "
                "set node.role = auto (or the opposite) on one of them",
            )
            self._all_low()
            self._enter(Phase.CONFLICT, now)
            return
        if self._claim == peer_claim:
            self.counters["redraws"] += 1
            self.begin(now)
            return
        role = Role.MASTER if self._claim > peer_claim else Role.SLAVE
        self.decision = Decision(role)
        self.set_output(REQ, False)
        self._show()
        self._enter(Phase.DONE, now)
