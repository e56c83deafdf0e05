"""pigpiod's alert thread as a ceiling (sim/alerts.py): reports come late, then are lost."""

from __future__ import annotations

import numpy as np
import pytest

from rpilinkd.sim.alerts import DEFAULT_BUFFER_MS, F64, U32, AlertThread, ring_ms


def changes(start_us: float, count: int, spacing_us: float = 1.0) -> tuple[F64, U32, U32]:
    """``count`` changed samples from ``start_us`` on (each level word its index)."""
    at = start_us + np.arange(count, dtype=np.float64) * spacing_us
    return at, np.arange(count, dtype=np.uint32), np.ones(count, np.uint32)


def test_below_the_ceiling_every_change_is_reported_at_once() -> None:
    thread = AlertThread(rate=400_000, buffer_ms=120)
    thread.process(*changes(0, 0), now_us=0)
    out = thread.process(*changes(0, 300), now_us=1000)  # 300 changes in 1 ms: under 400
    assert len(out[0]) == 300
    assert thread.caught_up


def test_above_it_reports_come_late_in_order_then_are_lost_with_the_ring() -> None:
    thread = AlertThread(rate=100_000, buffer_ms=5)  # 100 reports a ms, a 5 ms ring
    thread.process(*changes(0, 0), now_us=0)
    fed = 2000
    reported = [thread.process(*changes(0, fed, 0.5), now_us=1000)[1]]  # 1 ms of a burst
    for now in range(2000, 20_000, 1000):  # the alert thread keeps waking, ~1 ms apart
        reported.append(thread.process(*changes(now, 0), now_us=now)[1])
    levels = np.concatenate(reported)
    assert len(levels) < fed  # some were never reported ...
    assert thread.lost == fed - len(levels)  # ... and each is counted, none lingers
    assert thread.caught_up
    assert (np.diff(levels.astype(np.int64)) > 0).all()  # what is reported keeps its order
    assert len(reported[0]) == 100  # one pass's worth: the rest came late
    assert levels[-1] == len(levels) - 1  # in time order until the ring moved past the rest


def test_a_pass_the_emulator_ran_late_brings_its_samples_late_but_loses_none() -> None:
    """The emulator starved by a loaded machine is not pigpiod starved: a pass 500 ms
    late (past the 120 ms ring) reports every change it holds."""
    thread = AlertThread(rate=400_000, buffer_ms=120)
    thread.process(*changes(0, 0), now_us=0)
    out = thread.process(*changes(1000, 100, 1000.0), now_us=500_000)
    assert len(out[0]) == 100
    assert thread.lost == 0


def test_a_stalled_alert_thread_loses_what_the_ring_overwrote() -> None:
    """A starved pigpiod (the ``stall`` action), unlike a late emulator (above): its
    samples wait, and those a whole ring old are lost. A guard for the test above: the
    exemption of late passes must not reach the stalls it models on purpose."""
    thread = AlertThread(rate=400_000, buffer_ms=120)
    thread.process(*changes(0, 0), now_us=0)
    thread.stalled_until_us = 300_000  # a busy Pi: no report for 300 ms
    for now in range(1000, 300_000, 1000):
        assert not len(thread.process(*changes(now - 1000, 1), now_us=now)[0])
    out = thread.process(*changes(299_000, 1), now_us=300_000)
    assert thread.lost == 180  # the changes at 0-179 ms: older than 300 ms less the ring
    assert len(out[0]) == 300 - thread.lost


def test_rate_zero_is_an_ideal_pigpiod() -> None:
    thread = AlertThread(rate=0)
    thread.process(*changes(0, 0), now_us=0)
    assert len(thread.process(*changes(0, 50_000, 0.01), now_us=1000)[0]) == 50_000


@pytest.mark.parametrize(
    ("sample_us", "ring"), [(1, 120), (2, 120), (4, 160), (5, 200), (8, 160), (10, 200)]
)
def test_the_ring_is_rounded_up_as_pigpiods(sample_us: int, ring: float) -> None:
    """-b 120 keeps 120 to 200 ms of samples, by -s (pigpio.c initAllocDMAMem)."""
    assert ring_ms(DEFAULT_BUFFER_MS, sample_us) == ring
    assert ring_ms(20, 1) == 20  # the ceiling test's small ring
