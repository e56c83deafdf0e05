"""One check on this Pi: find the peer, run a round with it, and leave every pin safe.

Both Pis run the same program and neither knows which started first, so each
listens for a random while (longer while anything moves on its pins), and if
it heard no beacon it sends one and leads. The one that hears a beacon
follows. Both then follow :mod:`plan` from the beacon's timing. A round in
which nothing of the peer was seen is repeated until the time-out; one in which
either Pi ran late is run again at once (the vote at the end of a round).
"""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass

from rpilinkd.wiring.analysis import peer_seen
from rpilinkd.wiring.cable import Kind, mask
from rpilinkd.wiring.local import LocalPigpiod
from rpilinkd.wiring.model import Observations, Role
from rpilinkd.wiring.plan import (
    BEACON_S,
    PULLED_UP_SHARE,
    QUIET_SHARE,
    SLOT_SHARE,
    SYNC_RISE_S,
    Schedule,
    beacon_steps,
    vote_steps,
)
from rpilinkd.wiring.sync import BeaconMatcher
from rpilinkd.wiring.timeline import Timeline

#: how long a Pi listens, after the last change it saw, before it sends a beacon
LISTEN_S = (0.15, 0.45)
POLL_S = 0.002
REPORTS_LAG_S = 0.020  # pigpiod reports a change a millisecond or so after it happened
#: a step done later than this may land in the next slot: the round is run again
AGAIN_LATE_S = 0.030
MAX_ROUNDS = 3
START_LEAD_S = 0.005


@dataclass(frozen=True)
class Outcome:
    observations: Observations | None  # None: no round saw the peer
    rounds: int
    timeline: Timeline  # every level this Pi saw (for --trace)
    origin: float | None = None  # of the last round


@dataclass(frozen=True)
class Round:
    observations: Observations
    again: bool  # this Pi or the peer ran late: both run the round again


async def check(io: LocalPigpiod, *, timeout: float, rng: random.Random) -> Outcome:
    """Listen, lead or follow, and run rounds until one sees the peer in time (or
    ``timeout`` passes); the pins end safe whatever happens (an error, Ctrl-C)."""
    deadline = time.monotonic() + timeout
    rounds = 0
    try:
        await io.open()
        while True:
            found = await _find_peer(io, deadline, rng)
            if found is None:
                return Outcome(None, rounds, io.timeline)
            role, origin = found
            best: Observations | None = None
            for _ in range(MAX_ROUNDS):
                result = await _round(io, role, origin)
                if result is None:  # we led and nobody answered (this time)
                    break
                rounds += 1
                if not peer_seen(result.observations.quiet, result.observations.peer, io.mask):
                    break
                best = result.observations
                if not result.again:
                    break
                origin += Schedule(len(io.bus)).end  # both Pis know when the next one starts
            if best is not None:
                return Outcome(best, rounds, io.timeline, origin)
    finally:
        try:
            await io.make_safe()
        finally:
            await io.close()


async def _sleep_until(at: float) -> None:
    await asyncio.sleep(max(0.0, at - time.monotonic()))


async def _find_peer(
    io: LocalPigpiod, deadline: float, rng: random.Random
) -> tuple[Role, float] | None:
    """Listen; follow a beacon heard, or lead with one after a random silence."""
    matcher = BeaconMatcher()
    cursor = len(io.timeline)
    seen_low = ~io.timeline.levels[-1] & io.mask  # a pin that never reads low says nothing
    listen_until = time.monotonic() + rng.uniform(*LISTEN_S)
    while True:
        for t, level in io.timeline.since(cursor):
            seen_low |= ~level & io.mask
            origin = matcher.feed(t, bool(level & seen_low))
            if origin is not None:
                return Role.FOLLOWER, origin
            listen_until = max(listen_until, t + rng.uniform(*LISTEN_S))
        cursor = len(io.timeline)
        now = time.monotonic()
        if now >= deadline:
            return None
        if now >= listen_until and not matcher.high:
            return Role.LEADER, await _beacon(io)
        await asyncio.sleep(POLL_S)


async def _beacon(io: LocalPigpiod) -> float:
    """Send the beacon; the origin comes from when our own pins really rose the second time."""
    start = time.monotonic() + START_LEAD_S
    for step in beacon_steps(io.bus):
        await _sleep_until(start + step.at)
        await io.apply(step)
    await asyncio.sleep(REPORTS_LAG_S)
    drivable = mask(pin for pin in io.bus if pin.kind is not Kind.IN)
    between = start + (BEACON_S[0][1] + SYNC_RISE_S) / 2  # in the beacon's gap
    rise = io.timeline.first_rise(drivable, between)
    return (rise if rise is not None else start + SYNC_RISE_S) - SYNC_RISE_S


async def _round(io: LocalPigpiod, role: Role, origin: float) -> Round | None:
    """One round from the beacon on; None if this Pi led and nobody answered."""
    schedule = Schedule(len(io.bus))
    if role is Role.LEADER:
        await _sleep_until(origin + schedule.read_answer.end + REPORTS_LAG_S)
        if not io.timeline.rises(schedule.read_answer.shifted(origin)):
            return None
    late = 0.0  # by when pigpiod had done each step: an upper bound of its delay
    for step in schedule.steps(role, io.bus):
        await _sleep_until(origin + step.at)
        await io.apply(step)
        late = max(late, time.monotonic() - origin - step.at)
    vote = late > AGAIN_LATE_S
    if vote:
        for step in vote_steps(schedule, io.bus):
            await _sleep_until(origin + step.at)
            await io.apply(step)
    await _sleep_until(origin + schedule.end + REPORTS_LAG_S)
    voted = vote or bool(io.timeline.rises(schedule.read_vote.shifted(origin)))
    return Round(_observe(io, schedule, role, origin, late), again=voted)


def _observe(
    io: LocalPigpiod, schedule: Schedule, role: Role, origin: float, late: float
) -> Observations:
    timeline = io.timeline

    def read(walker: Role) -> list[int]:
        return [
            timeline.rises(schedule.rise_slot(walker, k).shifted(origin))
            | timeline.majority(schedule.read_slot(walker, k).shifted(origin), SLOT_SHARE)
            for k in range(len(io.bus))
        ]

    return Observations(
        role=role,
        quiet=timeline.majority(schedule.read_quiet.shifted(origin), QUIET_SHARE),
        pulled_up=timeline.majority(schedule.read_pull_up.shifted(origin), PULLED_UP_SHARE),
        own=tuple(read(role)),
        peer=tuple(read(role.other)),
        late_ms=round(late * 1000, 1),
    )
