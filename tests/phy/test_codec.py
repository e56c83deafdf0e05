"""The bus codec: frames -> pulses -> sampled reports -> the same frames."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from rpilinkd.config import BusConfig
from rpilinkd.phy.codec import BusTiming, Masks, encode, frame_cost, pulse_cost
from rpilinkd.phy.decoder import REPORT, ReportDecoder
from rpilinkd.phy.events import ControlsChanged, FrameReceived
from rpilinkd.pins import DEFAULT_PINS, WIDE_PINS, ControlLine, PinMap
from tests.phy.wire_model import reports_for

MASKS = Masks.from_pins(DEFAULT_PINS)


WIDE_MASKS = Masks.from_pins(WIDE_PINS)


def timing(
    sample_us: int = 5, setup: int = 1, hold: int | None = None, width: int = 8
) -> BusTiming:
    return BusTiming(sample_us, setup, hold or sample_us + 1, sample_us + 1, 0, width)


def roundtrip(
    frames: list[bytes],
    t: BusTiming,
    phase: float,
    pins: PinMap = DEFAULT_PINS,
    chunk: int = 4096,
    set_clear_gap_us: float = 0.02,
) -> list[bytes]:
    masks = Masks.from_pins(pins)
    pulses = encode(frames, masks, t)
    stream = reports_for(pulses, pins, t.sample_us, phase, set_clear_gap_us)
    decoder = ReportDecoder(masks)
    decoder.framing = True
    out: list[bytes] = []
    for start in range(0, len(stream), chunk):
        events = decoder.feed(stream[start : start + chunk]).events
        out += [e.data for e in events if isinstance(e, FrameReceived)]
    return out


frames_of_words = st.lists(
    st.binary(min_size=1, max_size=75).map(lambda b: b * 4), min_size=1, max_size=6
)  # frames are whole 32-bit words on the wire


def test_pulse_layout_of_one_frame() -> None:
    """A rising edge: data, then STB; a falling edge: data and STB in one pulse; the end."""
    pulses = encode([b"\x01\x80\x00\xff"], MASKS, timing())
    stb, frm, data = 1 << 24, 1 << 26, 0xFF << 16
    assert pulses.tolist() == [
        [(1 << 16) | frm, 0xFE << 16, 1],  # byte 0's data (and FRM), setup 1 µs
        [stb, 0, 6],  # STB rises: byte 0; hold 6 µs
        [1 << 23, (0x7F << 16) | stb, 6],  # byte 1's data, STB falls in the clear write
        [0, data, 1],  # byte 2 (0x00)
        [stb, 0, 6],
        [data, stb, 6],  # byte 3 (0xff)
        [0, data | stb | frm, 6],  # everything low, the gap
    ]
    assert pulses[:, 2].sum() == timing().frame_us(4)


def test_one_report_per_byte() -> None:
    frame = bytes(range(256))
    stream = reports_for(encode([frame], MASKS, timing()), DEFAULT_PINS, 5, 1.7)
    reports = len(stream) // REPORT.itemsize  # every edge, FRM's fall, and its rise unless a
    assert len(frame) + 1 <= reports <= len(frame) + 2  # sample caught it with the first edge


@given(
    frames=frames_of_words,
    phase=st.floats(min_value=0, max_value=9.999),
    sample_us=st.sampled_from([1, 2, 5, 10]),
    chunk=st.sampled_from([12, 13, 100, 4096]),
    wide=st.booleans(),
)
def test_default_timing_survives_any_sample_phase(
    frames: list[bytes], phase: float, sample_us: int, chunk: int, wide: bool
) -> None:
    pins, width = (WIDE_PINS, 16) if wide else (DEFAULT_PINS, 8)
    t = timing(sample_us, width=width)
    assert roundtrip(frames, t, phase % sample_us, pins=pins, chunk=chunk) == frames


@given(
    phase=st.floats(min_value=0, max_value=0.999),
    gap=st.floats(min_value=0.01, max_value=0.9),
    wide=st.booleans(),
)
def test_no_edge_latches_a_half_written_unit(phase: float, gap: float, wide: bool) -> None:
    """pigpio writes a pulse's set mask, then its clear mask: however far apart the two
    writes are (up to most of a sample), and wherever the samples fall, the edge a sample
    sees always comes with its whole unit (-s 1, the tightest timing)."""
    pins, width = (WIDE_PINS, 16) if wide else (DEFAULT_PINS, 8)
    frames = [bytes(range(256)), bytes(range(255, -1, -1)), b"\x00\xff" * 64]
    t = timing(1, width=width)
    assert roundtrip(frames, t, phase, pins=pins, set_clear_gap_us=gap) == frames


def test_a_rising_edge_in_the_data_pulse_would_latch_half_written_bytes() -> None:
    """Why rising edges get their own pulse: the same schedule with STB raised in the data
    pulse's set write latches the byte before its 0-bits are cleared."""
    frames = [bytes(range(256))]
    pulses = encode(frames, MASKS, timing(1))
    merged = pulses.copy()
    rises = np.flatnonzero((pulses[:, 0] == 1 << 24) & (pulses[:, 1] == 0))
    merged[rises - 1, 0] |= np.uint32(1 << 24)  # STB up with the data
    merged[rises - 1, 2] += merged[rises, 2]
    merged = np.delete(merged, rises, axis=0)
    stream = reports_for(merged, DEFAULT_PINS, 1, 0.5, set_clear_gap_us=0.6)
    decoder = ReportDecoder(MASKS)
    decoder.framing = True
    got = [e.data for e in decoder.feed(stream).events if isinstance(e, FrameReceived)]
    assert got != frames


def test_hold_below_the_sample_period_loses_bytes() -> None:
    frames = [bytes(range(200))] * 5
    got = roundtrip(frames, timing(5, hold=2), phase=1.3)
    assert got != frames


def test_any_valid_pin_map() -> None:
    pins = PinMap(data=(4, 17, 18, 19, 20, 21, 22, 23), stb_out=8, stb_in=7)
    assert pins.data_shift is None
    frames = [bytes(range(256)), b"\x00\xff" * 10]
    assert roundtrip(frames, timing(), 2.5, pins=pins) == frames
    wide = PinMap(
        data=(*range(4, 12), *range(16, 24)),
        stb_out=24,
        stb_in=25,
        frm_out=26,
        frm_in=27,
        req_out=12,
        req_in=13,
        rw_out=14,
        rw_in=15,
        allow_reserved=True,
    )
    assert roundtrip(frames, timing(width=16), 2.5, pins=wide) == frames


def test_control_changes_during_arbitration() -> None:
    decoder = ReportDecoder(MASKS)
    records = np.zeros(3, dtype=REPORT)
    records["level"] = [1 << 6, (1 << 6) | (1 << 25), 1 << 16]  # REQ in, STB in, data only
    events = decoder.feed(records.tobytes()).events
    assert all(isinstance(event, ControlsChanged) for event in events)
    assert len(events) == 3
    assert events[1] == ControlsChanged(
        {
            ControlLine.STB: True,
            ControlLine.FRM: False,
            ControlLine.REQ: True,
            ControlLine.RW: False,
        }
    )


def test_watchdog_reports_are_not_edges() -> None:
    decoder = ReportDecoder(MASKS)
    records = np.zeros(1, dtype=REPORT)
    records["flags"], records["level"] = 0x20 | 6, 1 << 6
    assert decoder.feed(records.tobytes()).events == []


@pytest.mark.parametrize(("masks", "width"), [(MASKS, 8), (WIDE_MASKS, 16)])
def test_cost_is_within_what_the_wave_planner_assumes(masks: Masks, width: int) -> None:
    frame = bytes(range(256)) * 4
    pulses = encode([frame], masks, timing(width=width))
    cbs, ools = pulse_cost(pulses)
    most_pulses, most_cbs, most_ools = frame_cost(len(frame), width)
    assert len(pulses) == most_pulses
    assert cbs - 1 <= most_cbs  # the wave's start CB is pigpio's, apart
    assert ools <= most_ools


def test_timing_from_config_and_problems() -> None:
    t = BusTiming.from_config(BusConfig(sample_us=5))
    assert (t.setup_us, t.hold_us, t.gap_us) == (1, 6, 6)
    assert t.line_rate_bps == pytest.approx(2e6 / 13)  # 154 kB/s: two bytes per 13 µs
    fast = BusTiming.from_config(BusConfig(sample_us=1))
    assert (fast.hold_us, fast.line_rate_bps) == (2, 400_000)  # at pigpiod's report ceiling
    wide = BusTiming.from_config(BusConfig(sample_us=1, width=16))
    assert wide.line_rate_bps == 800_000
    assert wide.edges_per_second == fast.edges_per_second == 400_000
    assert BusTiming(5, 1, 5, 6).problems()
    assert BusTiming(5, 1, 6, 5).problems()
    assert not t.problems()


@pytest.mark.parametrize("split", [1, 5, 11, 12, 13])
def test_reports_split_anywhere(split: int) -> None:
    frames = [b"hello, w", b"orld!!!!"]
    assert roundtrip(frames, timing(), 0.5, chunk=split) == frames
