"""A minimal sampler for codec tests: pulses in, the receiver's reports out.

Independent of the emulator on purpose: it applies pulses to a latch (each
pulse's set mask, then ``set_clear_gap_us`` later its clear mask, as pigpio's
DMA does), crosses STB/FRM to the receiver's inputs, samples at
``phase + k * sample_us`` and emits one report per sample whose watched bits
changed.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from rpilinkd.phy.decoder import REPORT
from rpilinkd.pins import PinMap


def reports_for(
    pulses: npt.NDArray[np.uint32],
    pins: PinMap,
    sample_us: int,
    phase: float,
    set_clear_gap_us: float = 0.02,
) -> bytes:
    latch = 0
    times, words = [0.0], [0]
    t = 0.0

    def received() -> int:
        word = latch & pins.data_mask
        word |= (latch >> pins.stb_out & 1) << pins.stb_in
        return word | (latch >> pins.frm_out & 1) << pins.frm_in

    for on, off, delay in pulses.tolist():
        latch |= int(on)
        times.append(t)
        words.append(received())
        latch &= ~int(off)
        times.append(t + set_clear_gap_us)
        words.append(received())
        t += int(delay)
    at = phase + np.arange(0, int((t + sample_us) // sample_us) + 2) * sample_us
    index = np.searchsorted(np.array(times), at, side="right") - 1
    level = np.array(words, np.uint32)[index]
    watched = np.uint32((1 << pins.stb_in) | (1 << pins.frm_in))
    previous = np.concatenate(([np.uint32(0)], level[:-1]))
    changed = np.flatnonzero((level ^ previous) & watched)
    records = np.zeros(len(changed), REPORT)
    records["level"] = level[changed]
    records["tick"] = at[changed].astype(np.uint32)
    return records.tobytes()
