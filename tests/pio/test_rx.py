"""The RX program on the emulator, and round trips: PIO TX -> PIO RX, a pigpio sender
(codec.encode, set and clear writes apart) -> PIO RX, PIO TX -> pigpiod's sampling and
decoder.py, for both bus widths."""

from __future__ import annotations

import random

import numpy as np
import pytest

from rpilinkd.phy.pio.framing import RxDecoder
from rpilinkd.pins import DEFAULT_PINS, WIDE_PINS, PinMap
from rpilinkd.sim.pioemu import TICKS_PER_US, PioBlock
from rpilinkd.sim.pioinputs import Inputs
from tests.pio.harness import (
    build,
    crossed,
    decoded,
    last_tick,
    pigpio_inputs,
    received_word,
    run_rx,
    run_tx,
    rx_frames,
    sampled_reports,
    timing,
)

PINS = [DEFAULT_PINS, WIDE_PINS]
IDS = ["8-bit", "16-bit"]


def burst(rng: random.Random, count: int = 5) -> list[bytes]:
    return [rng.randbytes(4 * rng.randrange(1, 40)) for _ in range(count)]


@pytest.mark.parametrize("pins", PINS, ids=IDS)
@pytest.mark.parametrize("sample_us", [1, 2, 5])
def test_pio_to_pio(pins: PinMap, sample_us: int) -> None:
    frames = burst(random.Random(sample_us))
    sent = run_tx(frames, build(sample_us, pins))
    inputs = crossed(sent.changes, pins)
    assert rx_frames(inputs, build(sample_us, pins), last_tick(inputs)) == frames


@pytest.mark.parametrize("pins", PINS, ids=IDS)
@pytest.mark.parametrize("sample_us", [1, 2, 5])
@pytest.mark.parametrize("set_clear_gap_us", [0.02, 0.4])
def test_pigpio_sender_to_pio(pins: PinMap, sample_us: int, set_clear_gap_us: float) -> None:
    """codec.encode()'s pulses replayed in time: a falling edge's unit is set a moment
    before STB falls (pigpio writes a pulse's set mask, then its clear mask)."""
    frames = burst(random.Random(sample_us * 7))
    inputs = pigpio_inputs(frames, timing(sample_us, pins.width), pins, set_clear_gap_us)
    assert rx_frames(inputs, build(sample_us, pins), last_tick(inputs)) == frames


@pytest.mark.parametrize("pins", PINS, ids=IDS)
@pytest.mark.parametrize("sample_us", [1, 2, 5])
def test_pio_to_pigpiod_sampling(pins: PinMap, sample_us: int) -> None:
    """The PIO transmitter at the configured rate, sampled like pigpiod at -s 1/2/5 with
    random phases, decoded by decoder.py's ReportDecoder."""
    rng = random.Random(sample_us * 13)
    frames = burst(rng)
    sent = run_tx(frames, build(sample_us, pins))
    inputs = crossed(sent.changes, pins)
    for _ in range(8):
        phase = rng.uniform(0, sample_us)
        reports = sampled_reports(inputs, pins, sample_us, phase, last_tick(inputs))
        assert decoded(reports, pins) == frames, phase


def skewed_sender(frames: list[bytes], pins: PinMap, rng: random.Random, hold_us: float) -> Inputs:
    """Every data bit changes on its own, at a random moment after the previous edge's
    hold and no later than its unit's STB edge (skew, set/clear writes apart, slow pads)."""
    changes: list[tuple[float, int, int]] = []  # (µs, gpio, level)
    t = 2.0
    unit_bytes = pins.width // 8
    for frame in frames:
        changes.append((t, pins.frm_in, 1))
        stb = 0
        for i in range(0, len(frame), unit_bytes):
            unit = int.from_bytes(frame[i : i + unit_bytes], "little")
            edge = t + rng.uniform(0.3, 3.0)
            for bit, gpio in enumerate(pins.data):
                changes.append((rng.uniform(t, edge), gpio, unit >> bit & 1))
            stb ^= 1
            changes.append((edge, pins.stb_in, stb))
            t = edge + hold_us
        changes.append((t, pins.frm_in, 0))
        t += hold_us
    inputs, level = Inputs(), 0
    for when, gpio, value in sorted(changes):
        level = (level & ~(1 << gpio)) | value << gpio
        inputs.add(round(when * TICKS_PER_US), level)
    return inputs


@pytest.mark.parametrize("pins", PINS, ids=IDS)
@pytest.mark.parametrize("seed", range(8))
def test_never_latches_a_half_changed_bus(pins: PinMap, seed: int) -> None:
    rng = random.Random(seed)
    frames = burst(rng, 3)
    inputs = skewed_sender(frames, pins, rng, hold_us=0.3)
    assert rx_frames(inputs, build(1, pins), last_tick(inputs)) == frames


def test_negative_control_data_changing_after_the_edge_is_caught() -> None:
    """Data that moves within the RX's latency after an edge (hold far too short) is
    latched wrong: the tests above would notice a receiver that samples too late."""
    rng = random.Random(3)
    frames = burst(rng, 3)
    inputs = skewed_sender(frames, DEFAULT_PINS, rng, hold_us=0.0)
    assert rx_frames(inputs, build(1, DEFAULT_PINS), last_tick(inputs)) != frames


def test_a_restart_mid_frame_waits_for_the_next_frame() -> None:
    pins = DEFAULT_PINS
    frames = [bytes(range(16)), bytes(range(100, 108))]
    sent = run_tx(frames, build(1, pins))
    inputs = crossed(sent.changes, pins)
    programs = build(1, pins)
    block = PioBlock()
    offset = block.add_program(programs.rx)
    middle = sent.changes[10][0]  # inside the first frame
    sm = block.start(0, offset, programs.rx_settings(offset).registers(), tick=middle)
    sm.run(last_tick(inputs), inputs)
    assert RxDecoder(8).feed(np.array(sm.rx, np.uint32)).frames == frames[1:]


def test_an_undrained_fifo_damages_frames_then_recovers() -> None:
    """No flow control: if the host stops draining, units are lost (the frame fails its
    CRC upstream) but the edge count stays in step, and later frames arrive intact."""
    pins = DEFAULT_PINS
    frames = [bytes(range(64)), bytes(range(64, 72))]
    programs = build(1, pins)
    inputs = crossed(run_tx(frames, programs).changes, pins)
    block = PioBlock()
    offset = block.add_program(programs.rx)
    sm = block.start(0, offset, programs.rx_settings(offset).registers(), tick=0)
    first_end = inputs.ticks[next(i for i, v in enumerate(inputs.levels) if v == 0)]
    sm.run(first_end - 100, inputs)  # nobody drains during the first frame
    assert sm.dropped == 64 - 16
    decoder = RxDecoder(8)
    got = decoder.feed(np.array(sm.rx, np.uint32)).frames
    sm.rx.clear()
    words = run_rx_from(sm, inputs)
    got += decoder.feed(np.array(words, np.uint32)).frames
    assert got == [bytes(range(16)), frames[1]]


def run_rx_from(sm: object, inputs: Inputs) -> list[int]:
    from rpilinkd.sim.pioemu import StateMachine  # noqa: PLC0415

    assert isinstance(sm, StateMachine)
    words: list[int] = []
    now, end = sm.tick, last_tick(inputs)
    while now < end:
        now += TICKS_PER_US
        sm.run(now, inputs)
        words += sm.rx
        sm.rx.clear()
    return words


def test_empty_frames_are_counted_not_delivered() -> None:
    pins = DEFAULT_PINS
    inputs = Inputs()
    inputs.add(200, received_word(1 << pins.frm_out, pins))
    inputs.add(1200, 0)
    words = run_rx(inputs, build(1, pins), 3000)
    decoded_words = RxDecoder(8).feed(np.array(words, np.uint32))
    assert decoded_words.frames == []
    assert decoded_words.empty_frames == 1
