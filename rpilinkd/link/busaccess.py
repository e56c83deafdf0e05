"""Bus access: roles (arbiter.py) and the turn-around of the data lines. Sans-IO.

Fed the peer's control lines (every change, in order), the backend's
confirmations and the time; it returns single-line writes to apply in order,
requests to claim or release the data lines, and events. It holds these rules
(docs/protocol.md §2.3), which keep the two Pis from ever driving the data
lines at once:

* The master drives the data lines only while its RW is low and the slave's
  RW has been seen low since its last grant.
* A slave asks with REQ. The master, at the end of a burst, releases the data
  lines and, **once the backend confirms**, raises RW (the grant).
* The slave answers a fresh grant (RW went low since its last turn): REQ low,
  RW high (the acknowledgement), claims the data lines and transmits. At the
  end of its turn it releases the data lines and, **once confirmed**, lowers RW.
* The master revokes a grant (RW low) only after it has seen the
  acknowledgement, and drives again only after the slave's RW fell.

Seeing the peer's presence signature (REQ and RW high from a slave, or REQ
from the master) while up means it is arbitrating again: release the data
lines and start over.
"""

from __future__ import annotations

import enum
import random
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from rpilinkd.link.arbiter import REQ, RW, Arbiter, Phase, Role
from rpilinkd.pins import ControlLine

Levels = Mapping[ControlLine, bool]


def coalesce(writes: Iterable[tuple[ControlLine, bool]]) -> list[dict[ControlLine, bool]]:
    """Ordered single-line writes as few ``set_controls`` calls as keep their order.

    A call drives its low lines before its high ones, so a run of lows followed by
    highs (the slave's REQ low, RW high) is one call and one pigpiod round trip; a
    low after a high, or a line written twice, starts a new call. Lines written in
    one call may reach the peer in one report: the protocol allows for that.
    """
    calls: list[dict[ControlLine, bool]] = []
    for line, level in writes:
        current = calls[-1] if calls else None
        if current is None or line in current or (not level and any(current.values())):
            calls.append({line: level})
        else:
            current[line] = level
    return calls


class Turn(enum.Enum):
    """Where the data lines are, seen from this side."""

    CLAIMING = "claiming"  # asked the backend to drive them
    OWN = "own"  # ours: transmit
    RELEASING = "releasing"  # asked the backend to let go
    LENT = "lent"  # master: released, grant up, waiting for the slave's turn to end
    IDLE = "idle"  # slave: not ours
    REQUESTING = "requesting"  # slave: REQ up, waiting for a fresh grant
    RETURNING = "returning"  # slave: released, RW low, waiting for the grant to fall


@dataclass(frozen=True)
class RoleDecided:
    role: Role


@dataclass(frozen=True)
class RoleConflict:
    message: str


@dataclass(frozen=True)
class BusLost:
    reason: str


BusEvent = RoleDecided | RoleConflict | BusLost


class BusAccess:
    def __init__(self, *, role: str, rng: random.Random, turn_ms: float = 20.0, now: float) -> None:
        self.arbiter = Arbiter(role, rng)
        self.turn_s = turn_ms / 1e3
        self.peer: dict[ControlLine, bool] = dict.fromkeys(ControlLine, False)
        self.role: Role | None = None
        self.turn = Turn.IDLE
        self._events: deque[BusEvent] = deque()
        self._request: bool | None = None  # for the backend: claim (True) / release (False)
        self._driving = False  # confirmed by the backend
        self._claiming = False  # a claim asked for and not yet confirmed
        self._reset_when_released = False
        self._want = self._bursting = False
        self._since = self._now = now  # when the current turn began; the latest time seen
        self._grant_fell = True  # slave: the master's RW was low since our last turn
        self._acked = False  # master: the slave acknowledged the current grant
        self.counters = {"turns_granted": 0, "turns_taken": 0, "restarts": 0}
        self._restart(now)

    # -- what the driver reads --------------------------------------------------------

    def writes(self) -> list[tuple[ControlLine, bool]]:
        """Single-line writes to apply, in this order (drains)."""
        out, self.arbiter.writes = self.arbiter.writes, []
        return out

    def writes_applied(self, now: float) -> None:
        """The writes taken with :meth:`writes` are on the wire (the backend confirmed)."""
        self.arbiter.applied(now)

    def data_request(self) -> bool | None:
        """True: claim the data lines; False: release them; None: leave them (drains)."""
        request, self._request = self._request, None
        if request is not None:
            self._claiming = request
        return request

    @property
    def writes_pending(self) -> bool:
        return bool(self.arbiter.writes)

    @property
    def has_request(self) -> bool:
        return self._request is not None

    @property
    def may_transmit(self) -> bool:
        return self.turn is Turn.OWN and self._driving and not self._turn_over()

    @property
    def state(self) -> str:
        return self.arbiter.phase.value if self.role is None else f"up:{self.turn.value}"

    @property
    def debounce_strobes(self) -> bool:
        """Whether STB and FRM should be debounced like REQ and RW: while their toggles
        carry the arbitration exchange. From DONE on they carry data, at full speed."""
        carrying_data = (Phase.DONE, Phase.SETTLE, Phase.DECIDED)
        return self.role is None and self.arbiter.phase not in carrying_data

    def next_event(self) -> BusEvent | None:
        return self._events.popleft() if self._events else None

    def get_timer(self) -> float | None:
        """The next instant something may change without any input; never in the past."""
        if self.role is None:
            return self.arbiter.deadline()
        turn_end = self._since + self.turn_s
        if turn_end <= self._now:
            return None  # already past: the next burst_done or line change acts on it
        if self.turn is Turn.OWN or (self.turn is Turn.LENT and self._acked and self._want):
            return turn_end
        return None

    # -- what the driver feeds -------------------------------------------------------------

    def peer_lines(self, levels: Levels, now: float) -> None:
        self.peer.update(levels)
        if self.role is None:
            self.arbiter.observe(self.peer, now)
            self._after_arbitration(now)
        else:
            self._turn_around(now)

    def handle_timer(self, now: float) -> None:
        if self.role is None:
            self.arbiter.tick(now, self.peer)
            self._after_arbitration(now)
        else:
            self._turn_around(now)

    def data_claimed(self, now: float) -> None:
        self._driving, self._claiming = True, False
        if self.turn is Turn.CLAIMING and self.role is not None:
            self.turn, self._since = Turn.OWN, now
        else:  # we no longer want them (restart while claiming): let go again
            self._request = False
        self._turn_around(now)

    def data_released(self, now: float) -> None:
        self._driving, self._claiming = False, False
        if self._reset_when_released:  # now that our drivers are off, the lines may fall
            self._reset_when_released = False
            self.arbiter.begin(now)
        elif self.turn is Turn.RELEASING and self.role is not None:
            if self.role is Role.MASTER:
                self._set(RW, True)  # the grant, only now that our drivers are off
                self.turn, self._acked, self._since = Turn.LENT, False, now
                self.counters["turns_granted"] += 1
            else:
                self._set(RW, False)  # our turn is over, only now that our drivers are off
                self.turn, self._grant_fell = Turn.RETURNING, not self.peer[RW]
        self._turn_around(now)

    def want_bus(self, want: bool, now: float) -> None:
        self._want = want
        self._turn_around(now)

    def burst_started(self, now: float) -> None:
        self._bursting = True

    def burst_done(self, now: float) -> None:
        self._bursting = False
        self._turn_around(now)

    def restart(self, now: float) -> None:
        """Start over (the connection lost its peer, or the backend reconnected)."""
        self.counters["restarts"] += 1
        self._restart(now)

    # -- internals --------------------------------------------------------------------------

    def _set(self, line: ControlLine, level: bool) -> None:
        self.arbiter.set_output(line, level)  # the arbiter owns the outputs

    def _restart(self, now: float) -> None:
        self.role = None
        self.turn = Turn.IDLE
        self._bursting = False
        self._request = False  # never arbitrate while driving: release first
        if self._driving or self._claiming:
            # keep our outputs (a slave's RW high) until the drivers are off, or the
            # master could take the data lines while ours still drive them
            self._reset_when_released = True
        else:
            self.arbiter.begin(now)

    def _after_arbitration(self, now: float) -> None:
        arbiter = self.arbiter
        if arbiter.conflict is not None:
            self._events.append(RoleConflict(arbiter.conflict.message))
            arbiter.conflict = None
        if arbiter.phase is not Phase.DECIDED or arbiter.decision is None:
            return
        self.role = arbiter.decision.role
        assert self.role is not None
        self._events.append(RoleDecided(self.role))
        self._since = now
        if self.role is Role.MASTER:
            self.turn = Turn.CLAIMING  # the slave's lines are all low: its RW too
            self._request = True
        else:
            self.turn, self._grant_fell = Turn.IDLE, True
        self._turn_around(now)

    def _turn_over(self) -> bool:
        return False if self.role is None else self._turn_ending

    @property
    def _turn_ending(self) -> bool:
        """Whether the turn we hold should end after the current burst."""
        if self.turn is not Turn.OWN:
            return False
        if self.role is Role.MASTER:
            return self.peer[REQ] and (not self._want or self._held_long)
        return not self._want or self._held_long or not self.peer[RW]

    @property
    def _held_long(self) -> bool:
        return self._now - self._since >= self.turn_s

    def _turn_around(self, now: float) -> None:
        self._now = now
        if self.role is None:
            return
        peer = self.peer
        if (self.role is Role.MASTER and peer[REQ] and peer[RW]) or (
            self.role is Role.SLAVE and peer[REQ]
        ):
            self._events.append(BusLost("the peer is arbitrating again"))
            self._restart(now)
            return
        if self.turn is Turn.OWN and self._turn_ending and not self._bursting:
            self.turn, self._request = Turn.RELEASING, False
        if self.role is Role.MASTER:
            self._master(now)
        else:
            self._slave(now)

    def _master(self, now: float) -> None:
        peer = self.peer
        if self.turn is Turn.LENT:
            if peer[RW]:
                self._acked = True
            if self._acked and self._want and now - self._since >= self.turn_s:
                self._set(RW, False)  # revoke: only after the acknowledgement
            if self._acked and not peer[RW]:  # the slave let go
                self._set(RW, False)
                self.turn, self._request = Turn.CLAIMING, True

    def _slave(self, now: float) -> None:
        peer = self.peer
        if not peer[RW]:
            self._grant_fell = True
        if self.turn is Turn.RETURNING and self._grant_fell:
            self.turn = Turn.IDLE
        if self.turn is Turn.IDLE and self._want:
            self._set(REQ, True)
            self.turn = Turn.REQUESTING
        if self.turn is Turn.REQUESTING and peer[RW] and self._grant_fell:
            self._set(REQ, False)  # REQ falls before RW rises: never the presence signature
            self._set(RW, True)
            self._grant_fell = False
            self.turn, self._request, self._since = Turn.CLAIMING, True, now
            self.counters["turns_taken"] += 1
