"""The sampling model: levels shorter than a sample period may vanish (must-show 4)."""

from __future__ import annotations

import random
import time
from collections.abc import Callable

import pigpio
import pytest

from rpilinkd.pigpio_protocol import MODE_OUTPUT
from rpilinkd.sim import SimConfig, ThreadedSimulator
from rpilinkd.sim.core import Simulator

D0 = 16
PULSES = 200


def count_pulses_seen(sample_us: int, width_us: int, seed: int) -> int:
    """Send PULSES high pulses of ``width_us`` from a; count the rising edges b reports.

    The pulses repeat every 103 µs, which is no multiple of the sample period, so
    they fall at every phase of b's sampling grid.
    """
    with ThreadedSimulator(SimConfig(sample_us=sample_us, seed=seed)) as sim:
        a = pigpio.pi("127.0.0.1", sim.port("a"), show_errors=False)
        b = pigpio.pi("127.0.0.1", sim.port("b"), show_errors=False)
        try:
            a.write(D0, 0)
            rises: list[int] = []
            cb = b.callback(D0, pigpio.RISING_EDGE, lambda g, level, tick: rises.append(tick))
            time.sleep(0.02)
            pulses = []
            for _ in range(PULSES):
                pulses.append(pigpio.pulse(1 << D0, 0, width_us))
                pulses.append(pigpio.pulse(0, 1 << D0, 103 - width_us))
            a.wave_clear()
            a.wave_add_generic(pulses)
            a.wave_send_once(a.wave_create())
            while a.wave_tx_busy():
                time.sleep(0.005)
            time.sleep(0.05)  # the last report batch
            cb.cancel()
            return len(rises)
        finally:
            a.stop()
            b.stop()


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_pulse_shorter_than_a_sample_is_sometimes_missed(seed: int) -> None:
    seen = count_pulses_seen(sample_us=5, width_us=2, seed=seed)
    assert 0 < seen < PULSES  # about 2/5 of them are caught


@pytest.mark.parametrize(("sample_us", "seed"), [(5, 1), (5, 2), (1, 3), (10, 4)])
def test_a_pulse_held_two_periods_is_never_missed(sample_us: int, seed: int) -> None:
    assert count_pulses_seen(sample_us=sample_us, width_us=2 * sample_us, seed=seed) == PULSES


def test_a_pass_reports_to_the_receiver_of_a_burst_first() -> None:
    """Two Pis sample at once; the emulator samples one board after the other, so the
    board the other drove most (a burst's receiver, whose daemon waits for it) goes
    first and its reports are not held up by the sender's sampling."""
    sim = Simulator(SimConfig(seed=5))
    a, b = sim.boards["a"], sim.boards["b"]
    to_b, to_a = sim.base_wires[0], sim.base_wires[1]  # a drives the first, b the second
    order: list[str] = []

    def sink_of(name: str) -> Callable[[bytes], bool]:
        def sink(_: bytes) -> bool:
            order.append(name)
            return True

        return sink

    for board, listens in ((a, to_a.a), (b, to_b.b)):
        handle = board.open_handle(sink_of(board.name), None, 0)
        assert handle is not None
        board.handles[handle].bits, board.handles[handle].running = 1 << listens, True
    a.set_mode(to_b.a, MODE_OUTPUT, 10.0)
    b.set_mode(to_a.b, MODE_OUTPUT, 10.0)
    sim.sampler.run(100.0)
    for burst_sender, receiver in ((a, "b"), (b, "a")):
        order.clear()
        start = sim.sampler.last_us
        pin = to_b.a if burst_sender is a else to_a.b
        other = b if burst_sender is a else a
        for k in range(10):  # the burst: ten edges held 20 µs each
            burst_sender.write(pin, (k + 1) % 2, start + 10 + 20 * k)
        other.write(to_a.b if other is b else to_b.a, 1, start + 50)  # one edge back
        sim.sampler.run(start + 400)
        assert order == [receiver, burst_sender.name]


def reports_of(schedule: list[tuple[float, tuple[str, ...]]], seed: int) -> dict[str, bytes]:
    """Both boards toggle a wire each at random instants; each board's report stream,
    its alert passes at ``schedule`` (instant, boards whose pass it is)."""
    sim = Simulator(SimConfig(seed=seed))
    a, b = sim.boards["a"], sim.boards["b"]
    to_b, to_a = sim.base_wires[0], sim.base_wires[1]  # a drives the first, b the second
    streams = {"a": bytearray(), "b": bytearray()}

    def sink_of(stream: bytearray) -> Callable[[bytes], bool]:
        def sink(data: bytes) -> bool:
            stream.extend(data)
            return True

        return sink

    for board, listens in ((a, to_a.a), (b, to_b.b)):
        handle = board.open_handle(sink_of(streams[board.name]), 0, 0)
        assert handle is not None
        board.handles[handle].bits, board.handles[handle].running = 1 << listens, True
    a.set_mode(to_b.a, MODE_OUTPUT, 1.0)
    b.set_mode(to_a.b, MODE_OUTPUT, 1.0)
    rng = random.Random(seed)
    toggles = sorted((rng.uniform(2, schedule[-1][0]), rng.choice("ab")) for _ in range(300))
    level = {"a": 0, "b": 0}
    for at, boards in schedule:
        while toggles and toggles[0][0] <= at:
            when, name = toggles.pop(0)
            level[name] ^= 1
            board, pin = (a, to_b.a) if name == "a" else (b, to_a.b)
            board.write(pin, level[name], when)
        sim.sampler.run(at, boards)
    return {name: bytes(stream) for name, stream in streams.items()}


@pytest.mark.parametrize("seed", [1, 2])
def test_boards_passing_at_their_own_instants_report_the_same_samples(seed: int) -> None:
    """Each board's alert thread keeps its own phase (sim/clock.py, AlertPhases.FREE):
    its passes cut its samples into other batches, never into other samples."""
    period, passes = 950.0, 40
    both: tuple[str, ...] = ("a", "b")
    shared = [(period * k, both) for k in range(1, passes + 1)]
    free = sorted(
        [(period * k, ("a",)) for k in range(1, passes)]
        + [(period * k + 317.0 + 3.0 * k, ("b",)) for k in range(1, passes - 1)]
        + [(period * passes, both)]
    )
    one, other = reports_of(shared, seed), reports_of(free, seed)
    assert min(map(len, one.values())) > 12 * 50  # both heard plenty
    assert one == other
