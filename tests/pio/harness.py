"""Drive the bus programs on the PIO emulator: a TX run, a wire, an RX run, a pigpiod sampler.

Everything in 200 MHz ticks (5 ns). The wire crosses the sender's STB_OUT and
FRM_OUT onto the receiver's STB_IN and FRM_IN (same pin map on both boards);
the data lines run straight.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from rpilinkd.phy.codec import BusTiming, Masks, encode
from rpilinkd.phy.decoder import REPORT, ReportDecoder
from rpilinkd.phy.events import FrameReceived
from rpilinkd.phy.pio.framing import RxDecoder, tx_words
from rpilinkd.phy.pio.programs import BusPrograms, build_programs
from rpilinkd.pins import PinMap
from rpilinkd.sim.pioemu import TICKS_PER_US, PioBlock, StateMachine
from rpilinkd.sim.pioinputs import Inputs

Changes = list[tuple[int, int]]  # (tick, level word)


def timing(sample_us: int, width: int = 8, setup: int = 1, hold: int | None = None) -> BusTiming:
    hold = hold or sample_us + 1
    return BusTiming(sample_us, setup, hold, sample_us + 1, 0, width)


@dataclass
class TxRun:
    programs: BusPrograms
    sm: StateMachine
    offset: int
    fed: list[int]  # the tick each word went into the FIFO

    @property
    def changes(self) -> Changes:
        """The TX pins' levels (values of the pins it drives) at each change."""
        mask = self.programs.tx_pins_mask
        return [(tick, values & mask) for tick, values, _ in self.sm.changes]


def run_tx(
    frames: Sequence[bytes],
    programs: BusPrograms,
    *,
    step_us: float = 1.0,
    stall_every: int = 0,
    stall_us: float = 0.0,
    fifo_depth: int = 8,
) -> TxRun:
    """Feed a burst through the TX FIFO as fast as it takes words (a DMA), optionally
    holding back after every ``stall_every`` words for ``stall_us`` (an underrun)."""
    block = PioBlock(fifo_depth=fifo_depth)
    offset = block.add_program(programs.tx)
    sm = block.start(0, offset, programs.tx_settings(offset).registers(), tick=0)
    sm.set_outputs(0, programs.tx_pins_mask, programs.tx_pins_mask, 0)
    words = tx_words(frames, programs.width).tolist()
    inputs = Inputs()
    step = round(step_us * TICKS_PER_US)
    now, index, fed = 0, 0, []
    hold_until = 0
    while index < len(words) or sm.tx or not _idle(sm, offset):
        while index < len(words) and now >= hold_until and sm.put(words[index]):
            fed.append(now)
            index += 1
            if stall_every and index % stall_every == 0:
                hold_until = now + round(stall_us * TICKS_PER_US)
        now += step
        sm.run(now, inputs)
        if now > 10**10:
            raise AssertionError("the TX program never went idle")
    return TxRun(programs, sm, offset, fed)


def _idle(sm: StateMachine, offset: int) -> bool:
    """Stalled on the header's pull with nothing queued."""
    return sm.pc == offset and not sm.tx


def crossed(changes: Changes, pins: PinMap) -> Inputs:
    """What the receiving board's inputs read, from the sender's pin levels."""
    inputs = Inputs()
    for tick, values in changes:
        inputs.add(tick, received_word(values, pins))
    return inputs


def received_word(values: int, pins: PinMap) -> int:
    word = values & pins.data_mask
    word |= (values >> pins.stb_out & 1) << pins.stb_in
    return word | (values >> pins.frm_out & 1) << pins.frm_in


def pigpio_inputs(
    frames: Sequence[bytes], timing: BusTiming, pins: PinMap, set_clear_gap_us: float = 0.02
) -> Inputs:
    """The receiver's inputs while a pigpio board plays codec.encode()'s pulses: each
    pulse's set mask, then ``set_clear_gap_us`` later its clear mask."""
    pulses = encode(frames, Masks.from_pins(pins), timing)
    inputs, latch, t = Inputs(), 0, 1.0
    for on, off, delay in pulses.tolist():
        latch |= on
        inputs.add(round(t * TICKS_PER_US), received_word(latch, pins))
        latch &= ~off
        inputs.add(round((t + set_clear_gap_us) * TICKS_PER_US), received_word(latch, pins))
        t += delay
    return inputs


def run_rx(inputs: Inputs, programs: BusPrograms, until: int, chunk_us: float = 1.0) -> list[int]:
    """The RX program over ``inputs``; its FIFO drained every ``chunk_us`` (a DMA)."""
    block = PioBlock()
    offset = block.add_program(programs.rx)
    sm = block.start(1, offset, programs.rx_settings(offset).registers(), tick=0)
    words: list[int] = []
    step, now = round(chunk_us * TICKS_PER_US), 0
    while now < until:
        now = min(until, now + step)
        sm.run(now, inputs)
        words += sm.rx
        sm.rx.clear()
    assert sm.dropped == 0
    return words


def rx_frames(inputs: Inputs, programs: BusPrograms, until: int) -> list[bytes]:
    decoder = RxDecoder(programs.width)
    return decoder.feed(np.array(run_rx(inputs, programs, until), np.uint32)).frames


def sampled_reports(
    inputs: Inputs, pins: PinMap, sample_us: int, phase_us: float, end: int
) -> bytes:
    """pigpiod's reports of the receiver's inputs: one per sample whose STB/FRM changed."""
    ticks = np.array([0, *inputs.ticks], np.int64)
    levels = np.array([inputs.initial, *inputs.levels], np.uint32)
    at = phase_us + np.arange(0, end / TICKS_PER_US / sample_us + 1) * sample_us
    index = np.searchsorted(ticks, at * TICKS_PER_US, side="right") - 1
    level = levels[index]
    watched = np.uint32((1 << pins.stb_in) | (1 << pins.frm_in))
    previous = np.concatenate(([np.uint32(0)], level[:-1]))
    changed = np.flatnonzero((level ^ previous) & watched)
    records = np.zeros(len(changed), REPORT)
    records["level"] = level[changed]
    records["tick"] = at[changed].astype(np.uint32)
    return records.tobytes()


def decoded(reports: bytes, pins: PinMap) -> list[bytes]:
    decoder = ReportDecoder(Masks.from_pins(pins))
    decoder.framing = True
    return [e.data for e in decoder.feed(reports).events if isinstance(e, FrameReceived)]


def build(sample_us: int, pins: PinMap, **kw: int) -> BusPrograms:
    return build_programs(timing(sample_us, pins.width, **kw), pins)


def edges(changes: Changes, gpio: int) -> list[tuple[int, int]]:
    """(tick, new level) of each change of one pin."""
    out, last = [], 0
    for tick, values in changes:
        level = values >> gpio & 1
        if level != last:
            out.append((tick, level))
            last = level
    return out


def data_at(changes: Changes, tick: int, pins: PinMap) -> int:
    """The data lines' value in force at ``tick``."""
    value = 0
    for when, values in changes:
        if when > tick:
            break
        value = values
    return (value & pins.data_mask) >> pins.data[0]


def last_tick(inputs: Inputs) -> int:
    return (inputs.ticks[-1] if inputs.ticks else 0) + 50 * TICKS_PER_US
