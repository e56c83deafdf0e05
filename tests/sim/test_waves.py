"""Wave building, the CB/OOL pool and chains, against pigpio's rules."""

from __future__ import annotations

import itertools
import time

import numpy as np
import pigpio
import pytest
from hypothesis import given
from hypothesis import strategies as st

from rpilinkd.pigpio_protocol import WAVE_USABLE_CBS, Err
from rpilinkd.sim.waves import (
    ChainDelay,
    ChainLoop,
    Pulses,
    WaveBuilder,
    WavePool,
    merge,
    parse_chain,
)

D0 = 16


def pulses(*rows: tuple[int, int, int]) -> Pulses:
    array = np.array(rows, np.uint32).reshape(-1, 3)
    return Pulses(array[:, 0].copy(), array[:, 1].copy(), array[:, 2].copy())


def rows(p: Pulses | None) -> list[tuple[int, int, int]]:
    assert p is not None
    return list(zip(p.on.tolist(), p.off.tolist(), p.delay.tolist(), strict=True))


@given(
    st.lists(
        st.tuples(st.sampled_from([0, 1, 6, 0xFF0]), st.sampled_from([0, 2, 9]), st.integers(0, 3)),
        max_size=40,
    ),
    st.sampled_from([0.0, 0.02, 1.0, 2.5]),
)
def test_a_waves_writes_are_its_sets_then_clears_in_time_order(
    spec: list[tuple[int, int, int]], gap_us: float
) -> None:
    """Each pulse sets at its start and clears ``gap_us`` later; writes at one instant
    keep the pulses' order, sets before clears (the plain definition, sorted)."""
    wave = pulses(*spec)
    expected, start = [], 0
    for index, (on, off, delay) in enumerate(spec):
        if on:
            expected.append((float(start), 0, index, on, 0))
        if off:
            expected.append((start + gap_us, 1, index, 0, off))
        start += delay
    expected.sort(key=lambda write: write[:3])
    times, sets, clears = wave.writes(gap_us)
    got = list(zip(times.tolist(), sets.tolist(), clears.tolist(), strict=True))
    assert got == [(t, on, off) for t, _, _, on, off in expected]
    assert wave.writes(gap_us) is wave.writes(gap_us)  # worked out once


def test_merge_interleaves_by_time_and_ors_equal_times() -> None:
    existing = pulses((1, 0, 10), (0, 1, 10))  # at 0 and 10, length 20
    added = pulses((2, 0, 5), (0, 2, 10), (4, 0, 5))  # at 0, 5 and 15, length 20
    assert rows(merge(existing, added)) == [(3, 0, 5), (0, 2, 5), (0, 1, 5), (4, 0, 5)]


def test_merge_keeps_the_longer_tail() -> None:
    assert rows(merge(pulses((1, 0, 10)), pulses((2, 0, 30)))) == [(3, 0, 30)]
    assert rows(merge(pulses((1, 0, 40)), pulses((2, 0, 10)))) == [(3, 0, 40)]


def test_builder_rejects_12000_pulses() -> None:
    builder = WaveBuilder()
    assert builder.add(pulses(*[(1, 0, 1)] * 11_999)) == 11_999
    assert builder.add(pulses((0, 0, 0), *[(2, 0, 1)] * 2)) == Err.TOO_MANY_PULSES
    assert len(builder.pending) == 11_999  # unchanged by the failed add


def test_pool_reuses_an_exact_fit_and_frees_from_the_top() -> None:
    pool = WavePool()
    small, big = pulses((1, 0, 5)), pulses((1, 0, 5), (0, 1, 5))
    assert [pool.create(small), pool.create(big), pool.create(small)] == [0, 1, 2]
    assert pool.delete(0) == 0
    assert pool.cbs_in_use == 3 + 5 + 3  # wave 0 only flagged
    assert pool.create(small) == 0  # exact fit reuses id 0
    assert pool.delete(2) == 0
    assert pool.delete(1) == 0
    assert pool.ids_in_use == 1
    assert pool.cbs_in_use == 3
    assert pool.delete(1) == Err.BAD_WAVE_ID


def test_pool_limits() -> None:
    pool = WavePool()
    for _ in range(250):
        assert pool.create(pulses((1, 0, 1))) >= 0
    assert pool.create(pulses((1, 0, 1), (0, 1, 1))) == Err.NO_WAVEFORM_ID
    pool.clear()
    assert pool.create(pulses(*[(1, 1, 1)] * (WAVE_USABLE_CBS // 2))) == Err.TOO_MANY_CBS


def test_chain_grammar() -> None:
    pool = WavePool()
    pool.create(pulses((1, 0, 5)))
    pool.create(pulses((0, 1, 5)))
    program = parse_chain(bytes([255, 0, 0, 1, 255, 1, 3, 0, 255, 2, 100, 0]), pool)
    assert program == (ChainLoop((0, 1), 3), ChainDelay(100))
    assert parse_chain(bytes([255, 0, 0, 255, 3]), pool) == (ChainLoop((0,), None),)
    assert parse_chain(bytes([255, 0, 0, 255, 3, 1]), pool) == Err.BAD_FOREVER
    assert parse_chain(bytes([255, 0, 255, 1, 2, 0]), pool) == Err.BAD_CHAIN_LOOP
    assert parse_chain(bytes([255, 0] * 11), pool) == Err.CHAIN_NESTING
    assert parse_chain(bytes([255, 0, 0, 255, 1, 2, 0] * 21), pool) == Err.CHAIN_COUNTER
    assert parse_chain(bytes([0] * 600), pool) == Err.CHAIN_TOO_BIG
    assert parse_chain(bytes([255, 2, 5]), pool) == Err.BAD_CHAIN_CMD


def test_chain_plays_loops_and_delays(pi_a: pigpio.pi, pi_b: pigpio.pi) -> None:
    pi_a.set_mode(D0, pigpio.OUTPUT)
    pi_a.write(D0, 0)
    rises: list[int] = []
    cb = pi_b.callback(D0, pigpio.RISING_EDGE, lambda g, level, tick: rises.append(tick))
    time.sleep(0.01)
    pi_a.wave_clear()
    pi_a.wave_add_generic([pigpio.pulse(1 << D0, 0, 20), pigpio.pulse(0, 1 << D0, 30)])
    wave = pi_a.wave_create()
    pi_a.wave_chain([255, 0, wave, 255, 2, 0xE8, 0x03, 255, 1, 4, 0])  # (wave, 1 ms) x 4
    while pi_a.wave_tx_busy():
        time.sleep(0.002)
    time.sleep(0.02)
    cb.cancel()
    assert len(rises) == 4
    gaps = [b - a for a, b in itertools.pairwise(rises)]
    assert all(abs(gap - 1050) <= 5 for gap in gaps)


@pytest.mark.parametrize("mode", [pigpio.WAVE_MODE_ONE_SHOT_SYNC, pigpio.WAVE_MODE_REPEAT_SYNC])
def test_sync_modes_follow_the_running_wave(pi_a: pigpio.pi, mode: int) -> None:
    pi_a.set_mode(D0, pigpio.OUTPUT)
    pi_a.wave_clear()
    pi_a.wave_add_generic([pigpio.pulse(1 << D0, 0, 20_000), pigpio.pulse(0, 1 << D0, 20_000)])
    first = pi_a.wave_create()
    pi_a.wave_add_generic([pigpio.pulse(1 << D0, 0, 10_000), pigpio.pulse(0, 1 << D0, 10_000)])
    second = pi_a.wave_create()
    pi_a.wave_send_repeat(first)
    pi_a.wave_send_using_mode(second, mode)
    assert pi_a.wave_tx_at() == first  # the repeating wave finishes its cycle first
    deadline = time.monotonic() + 5
    while pi_a.wave_tx_at() != second and time.monotonic() < deadline:
        time.sleep(0.002)
    assert pi_a.wave_tx_at() == second
    pi_a.wave_tx_stop()
