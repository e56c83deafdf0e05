"""The schedule's safety and shape, hearing the beacon, and reading levels over time."""

from __future__ import annotations

import pytest

from rpilinkd.pins import DEFAULT_PINS, WIDE_PINS, PinMap
from rpilinkd.wiring.cable import Kind, bus_pins
from rpilinkd.wiring.model import Role
from rpilinkd.wiring.plan import (
    BEACON_S,
    DRIVE_S,
    MAX_DRIVE_S,
    SLOT_S,
    SYNC_RISE_S,
    Op,
    Schedule,
    Step,
    Window,
    beacon_steps,
)
from rpilinkd.wiring.sync import BeaconMatcher
from rpilinkd.wiring.timeline import Timeline


def drives(steps: list[Step]) -> list[tuple[str, float, float]]:
    """(pin, from, to) of every stretch a pin is driven."""
    since: dict[str, float] = {}
    out = []
    for step in steps:
        for pin in step.pins:
            if step.op is Op.DRIVE:
                assert pin.name not in since, f"{pin.name} driven twice over"
                since[pin.name] = step.at
            elif step.op is Op.RELEASE:
                out.append((pin.name, since.pop(pin.name), step.at))
    assert not since, f"never released: {since}"
    return out


@pytest.mark.parametrize("pins", [DEFAULT_PINS, WIDE_PINS], ids=["8-bit", "16-bit"])
def test_no_pin_is_driven_long_and_the_two_pis_never_drive_at_once(pins: PinMap) -> None:
    bus = bus_pins(pins)
    schedule = Schedule(len(bus))
    leader = drives(beacon_steps(bus) + schedule.steps(Role.LEADER, bus))
    follower = drives(schedule.steps(Role.FOLLOWER, bus))
    for _, start, end in leader + follower:
        assert 0 < end - start <= MAX_DRIVE_S + 1e-9
    for _, start, end in leader:
        for _, other_start, other_end in follower:
            assert end <= other_start or other_end <= start, "both Pis drive at once"
    last_drive = max(end for _, _, end in leader + follower)
    assert last_drive < schedule.pull_up.start < schedule.pull_up.end < schedule.end
    assert schedule.end <= 3.0  # a round of the wide bus takes a few seconds at most


@pytest.mark.parametrize("role", list(Role))
def test_each_walk_drives_every_bus_pin_once_in_its_own_slots(role: Role) -> None:
    bus = bus_pins(DEFAULT_PINS)
    schedule = Schedule(len(bus))
    walk = [d for d in drives(schedule.steps(role, bus)) if d[1] >= schedule.walk_start(role)]
    assert all(end - start == pytest.approx(DRIVE_S) for _, start, end in walk)
    assert [name for name, _, _ in walk] == [pin.name for pin in bus]
    for index, (_, start, _) in enumerate(walk):
        assert start == pytest.approx(schedule.slot(role, index))
        read = schedule.read_slot(role, index)
        assert start < read.start < read.end <= start + SLOT_S
    assert schedule.walk_start(Role.FOLLOWER) < schedule.walk_start(Role.LEADER)


def test_the_beacon_drives_no_control_input() -> None:
    bus = bus_pins(DEFAULT_PINS)
    driven = {pin for step in beacon_steps(bus) for pin in step.pins}
    assert driven == {pin for pin in bus if pin.kind is not Kind.IN}


def feed(matcher: BeaconMatcher, edges: list[tuple[float, bool]]) -> float | None:
    found = None
    for t, high in edges:
        found = matcher.feed(t, high) or found
    return found


def test_the_beacon_is_heard_and_gives_the_origin() -> None:
    (on1, off1), (on2, _) = BEACON_S
    t0 = 10.0
    edges = [(t0 + on1, True), (t0 + off1 + 0.004, False), (t0 + on2, True)]
    assert feed(BeaconMatcher(), edges) == pytest.approx(t0)
    assert on2 == SYNC_RISE_S


def test_a_walk_or_a_long_high_is_not_a_beacon() -> None:
    walk = []
    for k in range(16):  # 35 ms high, 15 ms low, with whole slots missing (cut wires)
        if k % 3:
            walk += [(k * SLOT_S, True), (k * SLOT_S + DRIVE_S, False)]
    assert feed(BeaconMatcher(), walk) is None
    assert feed(BeaconMatcher(), [(0.0, True), (0.5, False), (0.55, True)]) is None
    assert feed(BeaconMatcher(), [(0.0, True), (0.08, False), (0.30, True)]) is None


def test_the_timeline_reads_majorities_rises_and_levels() -> None:
    line = Timeline(0.0, 0b01)
    line.add(1.0, 0b11)
    line.add(1.0, 0b11)  # no change: no entry
    line.add(0.9, 0b10)  # a report a little out of order lands at the last time
    line.add(3.0, 0b00)
    assert len(line) == 4
    assert line.level_at(0.5) == 0b01
    assert line.level_at(2.0) == 0b10
    assert line.majority(Window(0.0, 2.0)) == 0  # each bit: 1 s of 2 is not more than half
    assert line.majority(Window(0.0, 2.0), 0.4) == 0b11
    assert line.majority(Window(1.5, 4.0)) == 0b10  # 1.5 s of 2.5
    assert line.rises(Window(0.5, 1.5)) == 0b10
    assert line.rises(Window(1.5, 4.0)) == 0
    assert line.first_rise(0b10, 0.0) == 1.0
    assert line.first_rise(0b01, 0.0) is None
    assert line.since(2) == [(1.0, 0b10), (3.0, 0)]
