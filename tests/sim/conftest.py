"""Fixtures: an emulator on a background thread and official pigpio clients on it."""

from __future__ import annotations

from collections.abc import Iterator

import pigpio
import pytest

from rpilinkd.sim import SimConfig, ThreadedSimulator


@pytest.fixture
def sim() -> Iterator[ThreadedSimulator]:
    with ThreadedSimulator(SimConfig(seed=1234)) as running:
        yield running


def connect(sim: ThreadedSimulator, board: str) -> pigpio.pi:
    pi = pigpio.pi("127.0.0.1", sim.port(board), show_errors=False)
    assert pi.connected, f"pigpio could not connect to board {board}"
    return pi


@pytest.fixture
def pi_a(sim: ThreadedSimulator) -> Iterator[pigpio.pi]:
    pi = connect(sim, "a")
    yield pi
    pi.stop()


@pytest.fixture
def pi_b(sim: ThreadedSimulator) -> Iterator[pigpio.pi]:
    pi = connect(sim, "b")
    yield pi
    pi.stop()
