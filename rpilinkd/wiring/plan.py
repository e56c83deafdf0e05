"""The schedule both Pis follow, in seconds from a shared origin (the beacon's first rise).

::

    0.00-0.20  beacon     the leader drives its data lines and outputs: high 80 ms, low 40 ms,
                          high 80 ms (the follower syncs on the second rise)
    0.205-0.24 answer     the follower drives all its bus pins; a leader that sees nothing of
                          it stops here and listens again (so a lone Pi is never silent for long)
    0.25-0.33  quiet      nothing driven, pull-downs everywhere: a pin that reads high is stuck
    0.33-      walks      the follower, then the leader, drives one bus pin at a time
                          (a slot of 50 ms: high for 35 ms, read 5-45 ms into the slot)
    then       pull-ups   nothing driven, pull-ups everywhere (80 ms): a pin that reads
                          low is stuck low (a cut wire reads its own pull-up)
    then       vote       a Pi whose steps ran late (a busy host) drives all its pins 35 ms:
                          both then run the round again from the quiet phase on (3 at most)
    then       quiet      40 ms of nothing, so both Pis end with every pin an input

Safety: a pin is only ever an input with a pull-down (or, in the pull-up phase, a
pull-up) or an output driven **high**, never low, so two Pis running the check
never fight over a wire; whatever the other end is doing, no pin is driven for
longer than ``MAX_DRIVE_S`` at a time. Control inputs are driven only once the
peer is known to run the check too (the follower heard the beacon; the leader
saw the follower's answer).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from rpilinkd.wiring.cable import BusPin, Kind
from rpilinkd.wiring.model import Role

#: the beacon's two pulses (start, end)
BEACON_S = ((0.0, 0.080), (0.120, 0.200))
SYNC_RISE_S = BEACON_S[1][0]  # both Pis time the round from this edge
ANSWER_S = (0.205, 0.240)
READ_ANSWER = (0.190, 0.250)  # a pin that rises in here answers (a stuck one cannot)
QUIET_S = (0.250, 0.330)
WALK_START_S = 0.330
SLOT_S = 0.050
DRIVE_S = 0.035
#: A pin is lit in a slot when it rose in the slot (from 8 ms before it: each Pi maps
#: pigpiod's ticks to its own clock within a few ms), or was high for most of its middle
#: (lit by two slots in a row, it rises only once). So a step may run up to ~40 ms late
#: (a busy host) and still land in its own slot.
EARLY_S = 0.008
READ_S = (0.005, 0.045)
SLOT_SHARE = 0.6
PULL_UP_GAP_S = 0.015  # after the last slot, so its rise window ends before the pull-ups
PULL_UP_S = 0.080
READ_PULL_UP_S = (0.015, 0.075)
PULLED_UP_SHARE = 0.1  # a wire stuck low never reads high; a good one does once both pull up
QUIET_SHARE = 0.9  # a wire stuck high reads high all the time
VOTE_S = (0.020, 0.055)  # after the pull-ups
READ_VOTE_S = (0.010, 0.080)
TAIL_S = 0.040
#: no pin is ever driven longer than this at a stretch (plus the host's scheduling delay)
MAX_DRIVE_S = 0.080


class Op(enum.Enum):
    DRIVE = "drive"  # output, high
    RELEASE = "release"  # input (its pull stays)
    PULL_UP = "pull_up"  # every bus pin
    PULL_DOWN = "pull_down"


@dataclass(frozen=True)
class Window:
    start: float
    end: float

    def shifted(self, origin: float) -> Window:
        return Window(origin + self.start, origin + self.end)


@dataclass(frozen=True)
class Step:
    at: float
    op: Op
    pins: tuple[BusPin, ...] = ()  # empty for the pull changes: every bus pin


@dataclass(frozen=True)
class Schedule:
    """One round for ``pins`` bus pins a side (the same map on both Pis)."""

    pins: int

    def walk_start(self, walker: Role) -> float:
        first = walker is Role.FOLLOWER
        return WALK_START_S + (0 if first else self.pins * SLOT_S)

    def slot(self, walker: Role, index: int) -> float:
        return self.walk_start(walker) + index * SLOT_S

    def rise_slot(self, walker: Role, index: int) -> Window:
        start = self.slot(walker, index)
        return Window(start - EARLY_S, start + SLOT_S - EARLY_S)

    def read_slot(self, walker: Role, index: int) -> Window:
        start = self.slot(walker, index)
        return Window(start + READ_S[0], start + READ_S[1])

    @property
    def read_answer(self) -> Window:
        return Window(*READ_ANSWER)

    @property
    def read_quiet(self) -> Window:
        return Window(QUIET_S[0] + 0.015, QUIET_S[1] - 0.015)

    @property
    def pull_up(self) -> Window:
        start = WALK_START_S + 2 * self.pins * SLOT_S + PULL_UP_GAP_S
        return Window(start, start + PULL_UP_S)

    @property
    def read_pull_up(self) -> Window:
        start = self.pull_up.start
        return Window(start + READ_PULL_UP_S[0], start + READ_PULL_UP_S[1])

    @property
    def vote(self) -> Window:
        return Window(self.pull_up.end + VOTE_S[0], self.pull_up.end + VOTE_S[1])

    @property
    def read_vote(self) -> Window:
        return Window(self.pull_up.end + READ_VOTE_S[0], self.pull_up.end + READ_VOTE_S[1])

    @property
    def end(self) -> float:
        return self.read_vote.end + TAIL_S

    def steps(self, role: Role, bus: tuple[BusPin, ...]) -> list[Step]:
        """What ``role`` does after the beacon, in time order."""
        out = []
        if role is Role.FOLLOWER:
            out += [Step(ANSWER_S[0], Op.DRIVE, bus), Step(ANSWER_S[1], Op.RELEASE, bus)]
        for index, pin in enumerate(bus):
            start = self.slot(role, index)
            out += [Step(start, Op.DRIVE, (pin,)), Step(start + DRIVE_S, Op.RELEASE, (pin,))]
        out += [Step(self.pull_up.start, Op.PULL_UP), Step(self.pull_up.end, Op.PULL_DOWN)]
        return sorted(out, key=lambda step: step.at)


def vote_steps(schedule: Schedule, bus: tuple[BusPin, ...]) -> list[Step]:
    """Ask for the round again (the peer runs the check: every pin may be driven)."""
    return [Step(schedule.vote.start, Op.DRIVE, bus), Step(schedule.vote.end, Op.RELEASE, bus)]


def beacon_steps(bus: tuple[BusPin, ...]) -> list[Step]:
    """The leader's beacon: data lines and outputs only (the peer may not run the check yet)."""
    pins = tuple(pin for pin in bus if pin.kind is not Kind.IN)
    out = []
    for start, end in BEACON_S:
        out += [Step(start, Op.DRIVE, pins), Step(end, Op.RELEASE, pins)]
    return out
