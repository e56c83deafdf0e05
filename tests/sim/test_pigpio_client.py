"""The official pigpio client, unmodified, against the emulator (issue 2, must-show 1)."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable

import pigpio
import pytest

from rpilinkd.sim import ThreadedSimulator

D0, STB_OUT, STB_IN = 16, 24, 25


def wait_for(predicate: object, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return True
        time.sleep(0.005)
    return False


def test_write_on_a_reads_on_b(pi_a: pigpio.pi, pi_b: pigpio.pi) -> None:
    pi_a.write(D0, 1)
    assert pi_b.read(D0) == 1
    pi_a.write(D0, 0)
    assert pi_b.read(D0) == 0
    assert pi_a.get_mode(D0) == pigpio.OUTPUT  # WRITE forces OUTPUT
    assert pi_b.get_mode(D0) == pigpio.INPUT


def test_control_lines_are_crossed(pi_a: pigpio.pi, pi_b: pigpio.pi) -> None:
    pi_a.write(STB_OUT, 1)
    assert pi_b.read(STB_IN) == 1
    assert pi_a.read(STB_IN) == 0  # b's strobe output is not driven


def test_bank_writes_keep_the_mode(pi_a: pigpio.pi, pi_b: pigpio.pi) -> None:
    pi_a.set_mode(D0, pigpio.OUTPUT)
    pi_a.set_bank_1(1 << D0)
    assert pi_b.read_bank_1() >> D0 & 1
    pi_a.clear_bank_1(1 << D0)
    assert not pi_b.read_bank_1() >> D0 & 1
    pi_a.set_mode(D0, pigpio.INPUT)
    pi_a.set_bank_1(1 << D0)  # the latch changes, the wire does not: the pin is an input
    assert pi_a.get_mode(D0) == pigpio.INPUT
    assert pi_b.read(D0) == 0


def test_callback_sees_edges_with_ticks(pi_a: pigpio.pi, pi_b: pigpio.pi) -> None:
    seen: list[tuple[int, int]] = []
    cb = pi_b.callback(D0, pigpio.EITHER_EDGE, lambda g, level, tick: seen.append((level, tick)))
    for level in (1, 0, 1, 0):
        pi_a.write(D0, level)
        time.sleep(0.01)
    assert wait_for(lambda: len(seen) >= 4)
    cb.cancel()
    assert [level for level, _ in seen] == [1, 0, 1, 0]
    gaps = [(b - a) & 0xFFFFFFFF for (_, a), (_, b) in itertools.pairwise(seen)]
    assert all(gap > 5_000 for gap in gaps)  # the writes were ~10 ms apart (ticks are µs)


def square_wave(gpio: int, count: int, width_us: int) -> list[pigpio.pulse]:
    return [
        pigpio.pulse(1 << gpio, 0, width_us) if i % 2 == 0 else pigpio.pulse(0, 1 << gpio, width_us)
        for i in range(count)
    ]


def test_waveform_arrives_with_true_intervals(pi_a: pigpio.pi, pi_b: pigpio.pi) -> None:
    ticks: list[int] = []
    done = threading.Event()

    def on_edge(gpio: int, level: int, tick: int) -> None:
        ticks.append(tick)
        if len(ticks) == 1000:
            done.set()

    pi_a.set_mode(D0, pigpio.OUTPUT)
    pi_a.write(D0, 0)
    time.sleep(0.01)
    cb = pi_b.callback(D0, pigpio.EITHER_EDGE, on_edge)
    pi_a.wave_clear()
    assert pi_a.wave_add_generic(square_wave(D0, 1000, 20)) == 1000
    wave = pi_a.wave_create()
    pi_a.wave_send_once(wave)
    assert done.wait(10), f"only {len(ticks)} of 1000 edges arrived"
    cb.cancel()
    intervals = [(b - a) & 0xFFFFFFFF for a, b in itertools.pairwise(ticks)]
    assert all(abs(interval - 20) <= 5 for interval in intervals)  # within one -s 5 period


def test_wave_tx_busy_lasts_the_wave_in_wall_clock_time(pi_a: pigpio.pi) -> None:
    pi_a.set_mode(D0, pigpio.OUTPUT)
    pi_a.wave_clear()
    pi_a.wave_add_generic(square_wave(D0, 2000, 100))  # 200 ms
    wave = pi_a.wave_create()
    started = time.monotonic()
    pi_a.wave_send_once(wave)
    assert pi_a.wave_tx_busy() == 1
    assert pi_a.wave_tx_at() == wave
    while pi_a.wave_tx_busy():
        time.sleep(0.002)
    assert time.monotonic() - started >= 0.2  # never shorter than the wave
    assert pi_a.wave_tx_at() == 9999  # NO_TX_WAVE


def test_repeat_and_halt(pi_a: pigpio.pi) -> None:
    pi_a.set_mode(D0, pigpio.OUTPUT)
    pi_a.wave_clear()
    pi_a.wave_add_generic(square_wave(D0, 2, 50))
    wave = pi_a.wave_create()
    pi_a.wave_send_repeat(wave)
    time.sleep(0.05)
    assert pi_a.wave_tx_busy() == 1
    pi_a.wave_tx_stop()
    assert pi_a.wave_tx_busy() == 0


def too_many_pulses(pi: pigpio.pi) -> None:
    for offset in range(3):  # three interleaved lists merge into > 12,000 pulses
        lead = [pigpio.pulse(0, 0, offset)] if offset else []
        pi.wave_add_generic(lead + square_wave(D0, 4000, 3))


def bad_wave_mode(pi: pigpio.pi) -> None:
    pi.wave_add_generic(square_wave(D0, 2, 10))
    pi.wave_send_using_mode(pi.wave_create(), 4)


def too_many_cbs(pi: pigpio.pi) -> None:
    for _ in range(2):  # two 10,000-pulse waves need 2 x ~20,000 CBs; the pool has 23,836
        pi.wave_add_generic(square_wave(D0, 5000, 2))
        pi.wave_add_generic([pigpio.pulse(0, 0, 1), *square_wave(D0 + 1, 5000, 2)])
        pi.wave_create()


@pytest.mark.parametrize(
    ("action", "code"),
    [
        (too_many_pulses, -36),
        (lambda pi: pi.wave_create(), -69),
        (lambda pi: pi.wave_send_once(7), -66),
        (bad_wave_mode, -33),
        (too_many_cbs, -67),
    ],
)
def test_over_limit_waves_give_pigpio_error_codes(
    pi_a: pigpio.pi, action: Callable[[pigpio.pi], None], code: int
) -> None:
    pi_a.wave_clear()
    with pytest.raises(pigpio.error) as info:
        action(pi_a)
    assert pigpio.error_text(code) in str(info.value)


def test_permissions(pi_a: pigpio.pi) -> None:
    with pytest.raises(pigpio.error, match="no permission"):
        pi_a.write(1, 1)  # GPIO 0-1 are outside pigpio's default update mask
    with pytest.raises(pigpio.error, match="GPIO not 0-53"):
        pi_a.set_mode(60, pigpio.OUTPUT)
    with pytest.raises(pigpio.error, match="one or more GPIO"):
        pi_a.set_bank_1(0b11 | 1 << D0)


def test_sim_stats_count_the_waves(sim: ThreadedSimulator, pi_a: pigpio.pi) -> None:
    pi_a.wave_clear()
    pi_a.wave_add_generic(square_wave(D0, 4, 10))
    pi_a.wave_send_once(pi_a.wave_create())
    assert sim.stats()["boards"]["a"]["waves_started"] == 1


def test_an_idle_emulator_skips_its_passes_but_never_a_watchdog(
    sim: ThreadedSimulator, pi_a: pigpio.pi
) -> None:
    """Passes that would find nothing are skipped (idle CPU), yet the watchdog's
    reports keep coming, never early (how late depends on the machine's load)."""
    timeouts: list[int] = []
    callback = pi_a.callback(
        D0,
        pigpio.EITHER_EDGE,
        lambda _g, level, tick: timeouts.append(tick) if level == pigpio.TIMEOUT else None,
    )
    pi_a.set_watchdog(D0, 50)
    sim.reset_stats()
    time.sleep(0.5)
    passes = sim.stats()["passes"]
    pi_a.set_watchdog(D0, 0)
    callback.cancel()
    assert passes < 200  # the grid has ~525 in 0.5 s
    gaps_ms = [(b - a) / 1000 for a, b in itertools.pairwise(timeouts)]
    assert len(gaps_ms) >= 4, gaps_ms  # they keep coming (~9 in 0.5 s; fewer if starved)
    assert all(gap >= 49 for gap in gaps_ms), gaps_ms  # and never early
