"""The wave-id table the pigpio backend predicts against the emulator's pool (which
follows pigpio.c's gpioWaveCreatePad and gpioWaveDelete)."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from rpilinkd.phy.waves import WAVE_PAD_PERCENT, WaveTable
from rpilinkd.sim.waves import Pulses, WavePool

PAD = (WAVE_PAD_PERCENT, WAVE_PAD_PERCENT, 0)


def one_pulse() -> Pulses:
    return Pulses(np.array([1], np.uint32), np.array([0], np.uint32), np.array([5], np.uint32))


@given(st.lists(st.tuples(st.booleans(), st.integers(0, 3)), max_size=60))
def test_the_predicted_id_is_the_one_pigpiod_hands_out(steps: list[tuple[bool, int]]) -> None:
    """Any order of creating and deleting padded waves (at most two alive, as a burst
    keeps them): the table names every new wave before pigpiod does."""
    table, pool, alive = WaveTable(), WavePool(), list[int]()
    for create, pick in steps:
        if create and len(alive) < 2:
            predicted = table.next_id()
            table.take(predicted)
            assert pool.create(one_pulse(), PAD) == predicted
            alive.append(predicted)
        elif alive:
            wave_id = alive.pop(pick % len(alive))
            table.free(wave_id)
            assert pool.delete(wave_id) == 0
