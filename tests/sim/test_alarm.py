"""The emulator's alarm (sim/alarm.py): never early, rung at once, a thread where no timerfd."""

from __future__ import annotations

import asyncio
import math
import statistics
import sys
import time

import numpy as np
import pytest

from rpilinkd.sim.alarm import ThreadAlarm, TimerFdAlarm, make_alarm
from rpilinkd.sim.clock import FREE_DRIFT, PERIOD_S, AlertPhases, Clock, Grid
from rpilinkd.sim.core import SimConfig, Simulator


@pytest.mark.parametrize("prefer_timerfd", [True, False])
async def test_an_alarm_wakes_at_the_instant_never_before(prefer_timerfd: bool) -> None:
    alarm = make_alarm(asyncio.get_running_loop(), prefer_timerfd=prefer_timerfd)
    try:
        if prefer_timerfd and sys.platform == "linux":
            assert isinstance(alarm, TimerFdAlarm)  # the precise one wherever there is one
        for _ in range(20):
            when = time.monotonic() + 0.0005
            await alarm.wait_until(when)
            assert time.monotonic() >= when
    finally:
        alarm.close()


@pytest.mark.parametrize("prefer_timerfd", [True, False])
async def test_ringing_ends_a_wait_at_once(prefer_timerfd: bool) -> None:
    alarm = make_alarm(asyncio.get_running_loop(), prefer_timerfd=prefer_timerfd)
    try:
        asyncio.get_running_loop().call_later(0.01, alarm.ring)
        started = time.monotonic()
        await asyncio.wait_for(alarm.wait_until(started + 60), timeout=5)
        assert time.monotonic() - started < 5
    finally:
        alarm.close()


async def test_the_clock_keeps_its_grid_and_delays_with_the_thread_alarm() -> None:
    """Where there is no timerfd (not Linux), the clock still runs on a thread."""
    passes: list[float] = []
    clock = Clock(lambda boards: passes.append(time.monotonic()))
    running = asyncio.create_task(clock.run(prefer_timerfd=False))
    try:
        started = time.monotonic()
        await clock.delay_until(started + 0.02)
        assert time.monotonic() - started >= 0.02
        await asyncio.sleep(0.05)
        assert isinstance(clock.alarm, ThreadAlarm)
        assert 5 <= len(passes) <= 100  # ~70 in 70 ms on the grid; fewer on a busy machine
    finally:
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)


async def test_a_batch_that_outlasts_a_grid_instant_does_not_postpone_its_pass() -> None:
    """pigpiod's alert thread keeps its phase whatever its socket threads do. A command
    that ends a run of skipped (quiet) passes, then a batch that keeps the emulator
    busy past the grid's next instant: that pass runs as soon as the batch is done, not
    a whole period later (it once did: a 64 B round trip then took a period more)."""
    period = 0.05
    passes: list[float] = []
    moving = False
    clock = Clock(
        lambda boards: passes.append(time.monotonic()),
        lambda: None if moving else time.monotonic() + 10,
        {"a": Grid(period)},
    )
    running = asyncio.create_task(clock.run())
    try:
        while not passes:
            await asyncio.sleep(0.001)
        grid = passes[0]  # the first pass runs at once and sets the phase
        await asyncio.sleep(0.3 * period)  # quiet: the clock skips passes
        moving = True
        clock.stir()  # a command: a catch-up pass now, then the grid's passes again
        count = len(passes)
        busy_until = grid + (1 + math.floor((time.monotonic() - grid) / period) + 0.2) * period
        time.sleep(busy_until - time.monotonic())  # the batch: past a grid instant
        while len(passes) == count:
            await asyncio.sleep(0.001)
        assert passes[count] - busy_until < 0.4 * period  # not at the instant after
    finally:
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)


async def test_each_board_passes_on_its_own_grid() -> None:
    """Two Pis' alert threads keep phases of their own (AlertPhases.FREE): b's passes
    come between a's, on a longer period, each sampling its own board."""
    passes: dict[str, list[float]] = {"a": [], "b": []}

    def run_pass(boards: tuple[str, ...]) -> None:
        for name in boards:
            passes[name].append(time.monotonic())

    clock = Clock(run_pass, grids={"a": Grid(0.01), "b": Grid(0.013, 0.005)})
    running = asyncio.create_task(clock.run())
    try:
        await asyncio.sleep(0.2)
    finally:
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)
    gaps = {name: statistics.median(np.diff(at)) for name, at in passes.items()}
    assert 0.0095 < gaps["a"] < 0.0115  # a late pass does not move the grid
    assert 0.0125 < gaps["b"] < 0.0145
    assert passes["b"][0] - passes["a"][0] > 0.003  # b's phase, not a's


def test_two_pis_pass_at_phases_of_their_own_by_default() -> None:
    grids = Simulator(SimConfig(seed=1)).clock.grids
    assert grids["a"] == Grid(PERIOD_S, 0.0)
    assert grids["b"].period_s == pytest.approx(PERIOD_S * (1 + FREE_DRIFT))
    assert 0 < grids["b"].offset_s < PERIOD_S  # a phase of the seed's choosing
    shared = Simulator(SimConfig(seed=1, alert_phases=AlertPhases.SHARED)).clock.grids
    assert shared["a"] == shared["b"] == Grid(PERIOD_S, 0.0)
