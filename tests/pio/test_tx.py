"""The TX program on the emulator: byte order, strobe timing at the configured rate,
FIFO underruns, idle lines."""

from __future__ import annotations

import itertools
import random

import pytest

from rpilinkd.phy.pio.programs import CLOCK_HZ, tx_timing
from rpilinkd.pins import DEFAULT_PINS, WIDE_PINS, PinMap
from rpilinkd.sim.pioemu import TICKS_PER_US
from tests.pio.harness import TxRun, build, data_at, edges, run_tx, timing

PINS = [DEFAULT_PINS, WIDE_PINS]
IDS = ["8-bit", "16-bit"]


def frames_of(rng: random.Random, sizes: tuple[int, ...]) -> list[bytes]:
    return [rng.randbytes(n) for n in sizes]


def latched(run: TxRun, pins: PinMap) -> bytes:
    """The unit on the data lines at each STB edge, as bytes (a receiver's view)."""
    out = bytearray()
    for tick, _ in edges(run.changes, pins.stb_out):
        out += data_at(run.changes, tick, pins).to_bytes(pins.width // 8, "little")
    return bytes(out)


@pytest.mark.parametrize("pins", PINS, ids=IDS)
def test_byte_order_and_idle_lines(pins: PinMap) -> None:
    frames = [bytes(range(1, 9)), bytes([0xFF, 0, 0x80, 1])]
    run = run_tx(frames, build(5, pins))
    assert latched(run, pins) == b"".join(frames)  # byte 0 first; D0-D7 the low byte
    assert run.changes[-1][1] == 0  # data, STB and FRM low between bursts
    frm = edges(run.changes, pins.frm_out)
    assert [level for _, level in frm] == [1, 0, 1, 0]


@pytest.mark.parametrize("pins", PINS, ids=IDS)
@pytest.mark.parametrize("sample_us", [1, 2, 5, 10])
def test_strobe_timing_meets_the_configured_rate(pins: PinMap, sample_us: int) -> None:
    bus = timing(sample_us, pins.width)
    tx = tx_timing(bus)
    tick = tx.clkdiv  # ticks per SM cycle: an integer divider, no jitter
    assert tx.clkdiv * 1e6 / CLOCK_HZ == pytest.approx(tx.cycle_us)
    frames = frames_of(random.Random(sample_us), (8, 16, 4))
    run = run_tx(frames, build(sample_us, pins))
    stb = edges(run.changes, pins.stb_out)
    frm = edges(run.changes, pins.frm_out)
    data_changes = [t for t, v in _data_changes(run, pins)]
    for edge_tick, level in stb:
        before = max(t for t in data_changes if t <= edge_tick)
        after = min((t for t in data_changes if t > edge_tick), default=None)
        if level:  # a rising edge: setup before it
            assert edge_tick - before == tx.setup * tick >= bus.setup_us * TICKS_PER_US
        else:  # a falling edge carries its unit in the same cycle
            assert edge_tick == before
        if after is not None and any(r < after < f for r, f in _frames(frm)):
            assert after - edge_tick >= bus.hold_us * TICKS_PER_US
    rises = [t for t, level in stb if level]
    pair = tx.pair_cycles * tick
    steady = [b - a for a, b in itertools.pairwise(rises)]
    assert min(steady) == pair  # back-to-back pairs: exactly the computed period
    assert pair <= (bus.pair_us + 2 * tx.cycle_us) * TICKS_PER_US  # close to the codec's rate
    for (rise, fall), (next_rise, _) in zip(_frames(frm), _frames(frm)[1:], strict=False):
        assert next_rise - fall >= bus.gap_us * TICKS_PER_US
        assert min(t for t in rises if t > rise) - rise >= bus.setup_us * TICKS_PER_US
        last_edge = max(t for t, _ in stb if t < fall)
        assert fall - last_edge >= bus.hold_us * TICKS_PER_US


def _data_changes(run: TxRun, pins: PinMap) -> list[tuple[int, int]]:
    out, last = [], 0
    for tick, values in run.changes:
        value = values & pins.data_mask
        if value != last:
            out.append((tick, value))
            last = value
    return out


def _frames(frm: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """(rise, fall) ticks of each frame."""
    return [(frm[i][0], frm[i + 1][0]) for i in range(0, len(frm) - 1, 2)]


@pytest.mark.parametrize("pins", PINS, ids=IDS)
@pytest.mark.parametrize("seed", range(6))
def test_fifo_underruns_neither_lose_nor_repeat_units(pins: PinMap, seed: int) -> None:
    rng = random.Random(seed)
    frames = frames_of(rng, tuple(4 * rng.randrange(1, 20) for _ in range(4)))
    run = run_tx(
        frames,
        build(rng.choice([1, 2, 5]), pins),
        fifo_depth=rng.choice([1, 2, 8]),
        stall_every=rng.randrange(1, 4),
        stall_us=rng.uniform(0.5, 40),
    )
    assert latched(run, pins) == b"".join(frames)
    stb = edges(run.changes, pins.stb_out)
    assert len(stb) == len(b"".join(frames)) // (pins.width // 8)  # one edge per unit
    # a stall only ever holds STB low (the FIFO runs dry at a rising edge's unit)
    highs = {b[0] - a[0] for a, b in itertools.pairwise(stb) if a[1] == 1}
    assert highs == {run.programs.timing.hold * run.programs.timing.clkdiv}


def test_a_single_word_frame() -> None:
    run = run_tx([b"\x01\x02\x03\x04"], build(1, DEFAULT_PINS))
    assert latched(run, DEFAULT_PINS) == b"\x01\x02\x03\x04"
    run = run_tx([b"\x01\x02\x03\x04"], build(1, WIDE_PINS))
    assert latched(run, WIDE_PINS) == b"\x01\x02\x03\x04"
