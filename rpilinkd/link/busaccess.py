"""Bus access: roles (arbiter.py) and the turn-around of the data lines. Sans-IO.

Fed the peer's control lines (every change, in order), the backend's
confirmations and the time; it returns single-line writes to apply in order,
requests to claim or release the data lines, and events. It holds these rules
(docs/protocol.md §2.3), which keep the two Pis from ever driving the data
lines at once:

* The master drives the data lines only while its RW is low and the slave's
  RW has been seen low since its last grant.
* The master hands the bus over by releasing the data lines and, **once the
  backend confirms**, raising RW (the grant).
* The slave answers every fresh grant (RW went low since its last turn): REQ
  low, RW high (the acknowledgement). It drives the data lines only while it
  has something to send (claimed after the acknowledgement, released after the
  burst), and hands the bus back by releasing them and, **once confirmed**,
  lowering RW.
* The master revokes a grant (RW low) only after it has seen the
  acknowledgement, and drives again only after the slave's RW fell.

"Once confirmed" means ordered after on the wire: a backend that applies one
queue of commands in order (one pigpiod socket) may take the release and the
write that follows it in one round trip.

When turns end (docs/protocol.md §2.4): a holder with nothing to send keeps
the bus at rest, so a run of messages the same way never waits for a
turn-around; after a burst the peer must answer (sequenced frames, a hello)
and with nothing more to send, it hands the bus over at once, so the answer
does not wait for a request. When the slave asks (REQ), the master gives the
bus up after the current burst once it has nothing more to send or has held
the bus for ``turn_ms``; when the master revokes (it does so only when it has
something to send), the slave gives it back after its current burst.

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

from rpilinkd.link.arbiter import FRM, REQ, RW, Arbiter, Phase, Role
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
    HOLDING = "holding"  # slave: the turn is ours (RW up), the data lines let go till we send
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
    def __init__(
        self,
        *,
        role: str,
        rng: random.Random,
        turn_ms: float = 20.0,
        now: float,
        frame_line_in_step: bool = False,
    ) -> None:
        """``frame_line_in_step``: the peer's FRM in :meth:`peer_lines` is its level at
        the instant RW changed (the backend samples all lines at once)."""
        self.arbiter = Arbiter(role, rng)
        self.frame_line_in_step = frame_line_in_step
        self.turn_s = turn_ms / 1e3
        self.peer: dict[ControlLine, bool] = dict.fromkeys(ControlLine, False)
        self.role: Role | None = None
        self.turn = Turn.IDLE
        self._events: deque[BusEvent] = deque()
        self._request: bool | None = None  # for the backend: claim (True) / release (False)
        self._driving = False  # confirmed by the backend
        self._claiming = False  # a claim asked for and not yet confirmed
        self._reset_when_released = False
        self._want = self._ask = self._bursting = False
        self._hand_over = False  # the last burst wants an answer: give the bus after it
        self._hold_until = 0.0  # ... but not before this: a local reply may ride the turn
        self._since = self._now = now  # when the current turn began; the latest time seen
        self._grant_fell = True  # slave: the master's RW was low since our last turn
        self._acked = False  # master: the slave acknowledged the current grant
        self.counters = {"turns_granted": 0, "turns_taken": 0, "restarts": 0, "collisions": 0}
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
        holding = self._hand_over and self.turn in (Turn.OWN, Turn.HOLDING)
        if holding and self._hold_until > self._now:
            return self._hold_until
        turn_end = self._since + self.turn_s
        if turn_end <= self._now:
            return None  # already past: the next burst_done or line change acts on it
        return turn_end if self.turn is Turn.OWN else None

    # -- what the driver feeds -------------------------------------------------------------

    def peer_lines(self, levels: Levels, now: float) -> None:
        self.peer.update(levels)
        if self.role is None:
            self.arbiter.observe(self.peer, now)
            self._after_arbitration(now)
        else:
            self._turn_around(now)

    def frame_seen(self, now: float) -> None:
        """The peer put a frame on the data lines. If we hold them too, it believes the
        bus is its own (a cut or lying control wire): let go at once and start over."""
        ours = self._driving or self._claiming or self.turn in (Turn.OWN, Turn.CLAIMING)
        if self.role is not None and ours:
            self.counters["collisions"] += 1
            self._events.append(
                BusLost("the peer sent a frame while we held the data lines: a cut control wire?")
            )
            self._restart(now)

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

    def want_bus(self, want: bool, now: float, *, ask: bool | None = None) -> None:
        """``want``: there is something to send while we hold the bus; ``ask``: it is
        worth asking the peer for the bus (default: ``want``). An acknowledgement is
        wanted but not asked for: the peer hands the bus over when it awaits one."""
        self._want = want
        self._ask = want if ask is None else ask
        self._turn_around(now)

    def hold_turn(self, until: float, now: float) -> None:
        """After a burst the peer must answer, keep the bus (or the turn) until
        ``until`` before handing it over: a local client that answers what was just
        delivered at once then answers in this turn, not after a request and a grant
        (docs/protocol.md §2.4). ``until`` <= ``now`` ends the hold."""
        self._hold_until = until
        self._turn_around(now)

    def _hand_over_due(self, now: float) -> bool:
        """The last burst wants an answer and no reply hold runs (or it has ended)."""
        return self._hand_over and now >= self._hold_until

    def burst_started(self, now: float) -> None:
        self._bursting = True

    def burst_done(self, now: float, *, answer_expected: bool = False) -> None:
        """The burst is on the wire; ``answer_expected``: it carried frames the peer
        must answer, so hand the bus over unless there is more to send."""
        self._bursting = False
        self._hand_over = self._hand_over or answer_expected
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
        self._bursting = self._hand_over = False
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
        if self._hand_over_due(self._now) and not self._want:
            return True
        if self.role is Role.SLAVE:
            # revoked: stop driving after this burst. A master that misread RW (a cut
            # wire reads low) may already drive; the shorter our turn, the less harm
            return not self.peer[RW]
        return self.peer[REQ] and (not self._want or self._held_long)

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
            self.turn, self._request, self._hand_over = Turn.RELEASING, False, False
        if self.role is Role.MASTER:
            self._master(now)
        else:
            self._slave(now)

    def _master(self, now: float) -> None:
        peer = self.peer
        if self.turn is Turn.LENT:
            if peer[RW]:
                self._acked = True
            if self._acked and self._ask:
                self._set(RW, False)  # revoke: only after the acknowledgement
            # the slave let go: its RW fell after its last frame ended (FRM low). RW low
            # in mid-frame is a cut or lying wire, never a release: keep off the lines
            in_frame = self.frame_line_in_step and peer[FRM]
            if self._acked and not peer[RW] and not in_frame:
                self._set(RW, False)
                self.turn, self._request = Turn.CLAIMING, True

    def _slave(self, now: float) -> None:
        peer = self.peer
        if not peer[RW]:
            self._grant_fell = True
        if self.turn is Turn.OWN and not (self._want or self._bursting):
            # resting: keep the turn but drive nothing, so a master that misreads RW
            # (a cut wire reads low) never finds us on the data lines
            self.turn, self._request = Turn.HOLDING, False
        if self.turn is Turn.HOLDING and not peer[RW]:  # revoked: nothing to let go
            self._set(RW, False)
            self.turn = Turn.RETURNING
        if self.turn is Turn.HOLDING and self._hand_over_due(now) and not self._want:
            self._set(RW, False)  # no reply came: the answer is the master's
            self.turn, self._hand_over = Turn.RETURNING, False
        if self.turn is Turn.HOLDING and self._want:
            self.turn, self._request, self._since = Turn.CLAIMING, True, now
        if self.turn is Turn.RETURNING and self._grant_fell:
            self.turn = Turn.IDLE
        if self.turn is Turn.IDLE and self._ask:
            self._set(REQ, True)
            self.turn = Turn.REQUESTING
        if self.turn in (Turn.IDLE, Turn.REQUESTING) and peer[RW] and self._grant_fell:
            self._set(REQ, False)  # REQ falls before RW rises: never the presence signature
            self._set(RW, True)  # every fresh grant is acknowledged, asked for or not
            self._grant_fell = False
            self.counters["turns_taken"] += 1
            self._since = now
            if self._want:
                self.turn, self._request = Turn.CLAIMING, True
            else:
                self.turn = Turn.HOLDING
