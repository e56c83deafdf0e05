"""pigpiod's glitch filter (FG) on the samples of a pass: a new level counts only once
it held ``steady_us``, and is stamped then (the noise filter, FN, by its steady part).

Array methods and ``np.count_nonzero`` rather than numpy's module functions and
``.any()``: they cost several µs less per call on the small arrays of a pass.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from rpilinkd.sim.board import GlitchFilter

U32 = npt.NDArray[np.uint32]
F64 = npt.NDArray[np.float64]


def filters_steady(filters: dict[int, GlitchFilter], level: U32) -> bool:
    """Whether every filtered bit holds its filter's level all pass, nothing pending (most
    passes): then no filter changes anything, and one check does for them all."""
    if any(state.value < 0 or state.candidate != state.value for state in filters.values()):
        return False
    held = sum(state.value << gpio for gpio, state in filters.items())
    bits = np.uint32(sum(1 << gpio for gpio in filters))
    return not np.count_nonzero((level ^ np.uint32(held)) & bits)


def glitch_filter(gpio: int, state: GlitchFilter, at: F64, level: U32, t_end: float) -> U32:
    """pigpio's glitch filter on one bit: a new level counts once steady for ``steady_us``."""
    bit = np.uint32(1 << gpio)
    raw = ((level >> np.uint32(gpio)) & np.uint32(1)).astype(np.int64)
    if state.value < 0:
        state.value = state.candidate = int(raw[0])
        state.since_us = float(at[0])
    if state.value == state.candidate and not np.count_nonzero(raw != state.value):
        return level  # steady all pass (most passes): nothing to filter
    start_value = state.value
    value, candidate, since = state.value, state.candidate, state.since_us
    accepted: list[tuple[float, int]] = []
    for j in (raw != np.concatenate(([candidate], raw[:-1]))).nonzero()[0].tolist():
        if candidate != value and at[j] >= since + state.steady_us:
            accepted.append((since + state.steady_us, candidate))
            value = candidate
        candidate, since = int(raw[j]), float(at[j])
    if candidate != value and t_end >= since + state.steady_us:
        accepted.append((since + state.steady_us, candidate))
        value = candidate
    filtered = np.full(len(level), start_value, np.uint32)
    for when, new in accepted:
        filtered[at.searchsorted(when, side="left") :] = new
    state.value, state.candidate, state.since_us = value, candidate, since
    return (level & ~bit) | (filtered << np.uint32(gpio))
