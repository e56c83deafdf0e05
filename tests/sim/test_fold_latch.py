"""The emulator's latch arithmetic against the plain, one-event-at-a-time definition."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from rpilinkd.sim.board import fold_latch

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
