"""The check's vocabulary across its modules: roles, observations, verdicts, findings."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from rpilinkd.wiring.cable import BusPin


class Role(enum.Enum):
    LEADER = "leader"  # sent the beacon; walks second
    FOLLOWER = "follower"  # heard the beacon; walks first

    @property
    def other(self) -> Role:
        return Role.FOLLOWER if self is Role.LEADER else Role.LEADER


@dataclass(frozen=True)
class Observations:
    """What one Pi read during one round, as level words (bit n: GPIO n).

    ``own[k]`` was read while this Pi drove its k-th bus pin, ``peer[k]`` while
    the other Pi drove its k-th bus pin (the same pin map, so the same order).
    """

    role: Role
    quiet: int  # nothing driven, pull-downs at both ends
    pulled_up: int  # nothing driven, pull-ups at both ends
    own: tuple[int, ...]
    peer: tuple[int, ...]
    late_ms: float = 0.0  # how late this Pi's own steps ran at worst


class Verdict(enum.Enum):
    OK = "ok"
    CUT = "cut"
    STUCK_HIGH = "stuck_high"
    STUCK_LOW = "stuck_low"
    SHORTED = "shorted"
    SWAPPED = "swapped"
    STRAIGHT = "straight"  # a crossed control pair wired straight (OUT to OUT, IN to IN)
    PEER_NOT_SEEN = "peer_not_seen"


@dataclass(frozen=True)
class End:
    """One end of a wire: a signal's pin on one Pi."""

    signal: str
    gpio: int
    pin: int | None  # on the 40-pin header

    @classmethod
    def of(cls, pin: BusPin) -> End:
        return cls(pin.name, pin.gpio, pin.header)


@dataclass(frozen=True)
class Finding:
    """The verdict on one wire, named by its end on this Pi."""

    wire: str
    verdict: Verdict
    here: End
    there: End  # where the wire belongs on the other Pi
    others: tuple[str, ...] = ()  # the wires it is shorted or swapped with (names here)
    lands_on: End | None = None  # where it really goes on the other Pi (swapped, straight)

    @property
    def ok(self) -> bool:
        return self.verdict is Verdict.OK


@dataclass(frozen=True)
class CheckResult:
    findings: tuple[Finding, ...]
    width: int  # data lines
    role: Role | None  # None: no round was run (the peer was never heard)
    pigpio: str  # the pigpiod it drove
    borrowed: bool  # the pins were lent by a running rpilinkd
    seconds: float
    warnings: tuple[str, ...] = ()
    rounds: int = 1  # rounds run with the peer (a late one is run again)

    @property
    def ok(self) -> bool:
        return all(f.ok for f in self.findings)

    @property
    def faults(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if not f.ok)
