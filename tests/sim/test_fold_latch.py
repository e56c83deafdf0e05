"""The emulator's latch and pass arithmetic against the plain definitions."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from rpilinkd.sim.board import fold_latch
from rpilinkd.sim.sampler import _merged

WORDS = st.integers(0, 2**32 - 1)


@given(WORDS, st.lists(st.tuples(WORDS, WORDS), max_size=80))
def test_the_scan_matches_applying_each_write_in_turn(
    latch0: int, events: list[tuple[int, int]]
) -> None:
    on = np.array([e[0] for e in events], np.uint32)
    off = np.array([e[1] for e in events], np.uint32)
    expected, latch = [], latch0
    for set_mask, clear_mask in events:
        latch = (latch | set_mask) & ~clear_mask & 0xFFFFFFFF
        expected.append(latch)
    assert fold_latch(latch0, on, off).tolist() == expected


TIMES = st.lists(st.floats(0, 1e4, allow_nan=False).map(lambda t: round(t, 2)), max_size=60)


@given(st.floats(0, 1e4, allow_nan=False), TIMES, TIMES)
def test_a_pass_merges_two_logs_instants_as_np_unique_does(
    t0: float, a: list[float], b: list[float]
) -> None:
    """The pass's instants: every time once, in order (each board logs in time order)."""
    first, second = np.array(sorted(a)), np.array(sorted(b))
    expected = np.unique(np.concatenate(([t0], first, second)))
    assert _merged(t0, first, second).tolist() == expected.tolist()
