"""The emulator's alarm (sim/alarm.py): never early, rung at once, a thread where no timerfd."""

from __future__ import annotations

import asyncio
import sys
import time

import pytest

from rpilinkd.sim.alarm import ThreadAlarm, TimerFdAlarm, make_alarm
from rpilinkd.sim.clock import Clock


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
    clock = Clock(lambda: passes.append(time.monotonic()))
    running = asyncio.create_task(clock.run(prefer_timerfd=False))
    try:
        started = time.monotonic()
        await clock.delay(0.02)
        assert time.monotonic() - started >= 0.02
        await asyncio.sleep(0.05)
        assert isinstance(clock.alarm, ThreadAlarm)
        assert 5 <= len(passes) <= 100  # ~70 in 70 ms on the grid; fewer on a busy machine
    finally:
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)
