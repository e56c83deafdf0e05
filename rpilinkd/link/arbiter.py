"""Arbitration: which Pi is master, decided on the control lines alone. Sans-IO.

Both Pis run the same code and see each other's four control outputs (STB,
FRM, REQ, RW) on their inputs, every change in order but late. Nobody drives
the data lines while arbitrating. The handshake (docs/protocol.md §2.2):

1. RESET: all outputs low for ``T_RESET_S``, so a peer that was linked to us,
   or arbitrating with an earlier us, sees us start over.
2. PRESENT: raise REQ, then RW. REQ and RW high together is the *presence
   signature*: it never occurs while a link is up (masters never raise REQ; a
   slave lowers REQ before it raises RW). Wait for the peer's.
3. EXCHANGE: a lock-step serial exchange, both ways at once: a 16-bit claim
   (priority in the top bits: forced master > auto > forced slave; a random
   nonce below), then a 16-bit echo of the peer's claim. A bit is sent by
   setting FRM, then toggling STB; it is read at each observed STB toggle
   (FRM in the same observation). A bit goes out only when as many of the
   peer's have been read, so neither side can run ahead by more than one
   toggle. The peer's RW falling means it restarted: back to RESET.
4. DONE: with all 32 bits each way, the peer's echo must equal our claim
   (else RESET: a glitch corrupted a bit). The higher claim is master; equal
   forced priorities are a role conflict (wait, retry); equal nonces redraw.
   Lower REQ; wait for the peer's REQ to fall (it has decided too).
5. SETTLE: all outputs low; once all the peer's are low, the roles hold.

Both sides decide from the same 32+32 bits, so they always agree: there is
never a moment with two masters.
"""

from __future__ import annotations

import enum
import random
from collections.abc import Mapping
from dataclasses import dataclass

from rpilinkd.phy.pins import ControlLine

STB, FRM, REQ, RW = ControlLine.STB, ControlLine.FRM, ControlLine.REQ, ControlLine.RW
Levels = Mapping[ControlLine, bool]

T_RESET_S = 0.03  # longer than a few report batches of the peer's pigpiod
T_STALL_S = 1.0  # no progress in a handshake phase: start over
T_CONFLICT_RETRY_S = 2.0
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


class Arbiter:
    """The arbitration half of the bus-access machine (busaccess.py drives it)."""

    def __init__(self, role_setting: str, rng: random.Random) -> None:
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
        self.counters = {"arbitrations": 0, "echo_failures": 0, "redraws": 0, "conflicts": 0}
        self._claim = 0
        self._received: list[bool] = []  # the peer's bits so far
        self._sent = 0
        self._peer_stb = False

    def set_output(self, line: ControlLine, level: bool) -> None:
        if self.outputs[line] != level:
            self.outputs[line] = level
            self.writes.append((line, level))

    def _all_low(self) -> None:
        for line in (STB, FRM, REQ, RW):
            self.set_output(line, False)

    def _enter(self, phase: Phase, now: float) -> None:
        self.phase, self.since = phase, now

    # -- driving it -----------------------------------------------------------------------

    def begin(self, now: float) -> None:
        """Start over: all lines low, then present after T_RESET_S."""
        self.decision = None
        self._all_low()
        self._enter(Phase.RESET, now)

    def deadline(self) -> float | None:
        if self.phase is Phase.RESET:
            return self.since + T_RESET_S
        if self.phase is Phase.CONFLICT:
            return self.since + T_CONFLICT_RETRY_S
        if self.phase in STALLABLE:
            return self.since + T_STALL_S
        return None

    def tick(self, now: float, peer: Levels) -> None:
        """Time passed (or the peer's lines changed): move on if we can."""
        if self.phase is Phase.RESET and now >= self.since + T_RESET_S:
            self.set_output(REQ, True)  # REQ first: never RW alone while presenting
            self.set_output(RW, True)
            self._enter(Phase.PRESENT, now)
        else:
            deadline = self.deadline()
            if self.phase is not Phase.PRESENT and deadline is not None and now >= deadline:
                self.begin(now)  # a conflict to retry, or a handshake that stalled
        self.observe(peer, now, changed=False)

    def observe(self, peer: Levels, now: float, *, changed: bool = True) -> None:
        if self.phase is Phase.PRESENT and peer[REQ] and peer[RW]:
            self._start_exchange(peer, now)
        elif self.phase is Phase.EXCHANGE:
            if not peer[RW]:
                self.begin(now)  # the peer started over
                return
            if changed and peer[STB] != self._peer_stb:
                self._peer_stb = peer[STB]
                self._received.append(peer[FRM])
                self.since = now
            self._present_next()
            if len(self._received) >= 2 * CLAIM_BITS and self._sent >= 2 * CLAIM_BITS:
                self._decide(now)
        elif self.phase is Phase.DONE and not peer[REQ]:
            self._all_low()
            self._enter(Phase.SETTLE, now)
        elif self.phase is Phase.SETTLE and not any(peer.values()):
            self._enter(Phase.DECIDED, now)

    # -- the exchange ---------------------------------------------------------------------

    def _start_exchange(self, peer: Levels, now: float) -> None:
        self.counters["arbitrations"] += 1
        self._claim = claim_word(self.role_setting, self.rng)
        self._received = []
        self._sent = 0
        self._peer_stb = peer[STB]
        self._enter(Phase.EXCHANGE, now)
        self._present_next()

    def _bit(self, index: int) -> bool:
        if index < CLAIM_BITS:
            return bool(self._claim >> (CLAIM_BITS - 1 - index) & 1)
        echo = index - CLAIM_BITS  # the peer's claim, bit by bit as it arrived
        return self._received[echo]

    def _present_next(self) -> None:
        if self._sent < 2 * CLAIM_BITS and self._sent <= len(self._received):
            self.set_output(FRM, self._bit(self._sent))
            self.set_output(STB, not self.outputs[STB])  # separate writes: FRM settles first
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
        self._enter(Phase.DONE, now)
