"""The bus codec: frames -> pulses -> sampled reports -> the same frames."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from rpilinkd.config import BusConfig
from rpilinkd.phy.codec import REPORT, BusTiming, Masks, ReportDecoder, encode, pulse_cost
from rpilinkd.phy.events import ControlsChanged, FrameReceived
from rpilinkd.pins import DEFAULT_PINS, ControlLine, PinMap
from tests.phy.wire_model import reports_for

MASKS = Masks.from_pins(DEFAULT_PINS)


def timing(sample_us: int = 5, setup: int | None = None, hold: int | None = None) -> BusTiming:
    return BusTiming(sample_us, setup or sample_us, hold or sample_us, sample_us)


def roundtrip(
    frames: list[bytes], t: BusTiming, phase: float, pins: PinMap = DEFAULT_PINS, chunk: int = 4096
) -> list[bytes]:
    masks = Masks.from_pins(pins)
    stream = reports_for(encode(frames, masks, t), pins, t.sample_us, phase)
    decoder = ReportDecoder(masks)
    decoder.framing = True
    out: list[bytes] = []
    for start in range(0, len(stream), chunk):
        events = decoder.feed(stream[start : start + chunk]).events
        out += [e.data for e in events if isinstance(e, FrameReceived)]
    return out


def test_pulse_layout_of_one_frame() -> None:
    pulses = encode([b"\x01\x80"], MASKS, timing())
    stb, frm = 1 << 24, 1 << 26
    assert len(pulses) == 5  # 2 bytes x (data, rise) + end
    assert pulses.tolist() == [
        [(1 << 16) | frm, (0xFE << 16) | stb, 5],
        [stb, 0, 5],
        [1 << 23, (0x7F << 16) | stb, 5],
        [stb, 0, 5],
        [0, stb | frm, 5],
    ]
    assert pulses[:, 2].sum() == timing().frame_us(2)


@given(
    frames=st.lists(st.binary(min_size=1, max_size=300), min_size=1, max_size=6),
    phase=st.floats(min_value=0, max_value=4.999),
    sample_us=st.sampled_from([1, 2, 5, 10]),
    chunk=st.sampled_from([12, 13, 100, 4096]),
)
def test_default_timing_survives_any_sample_phase(
    frames: list[bytes], phase: float, sample_us: int, chunk: int
) -> None:
    assert roundtrip(frames, timing(sample_us), phase % sample_us, chunk=chunk) == frames


def test_setup_below_the_sample_period_loses_bytes() -> None:
    frames = [bytes(range(200))] * 5
    got = roundtrip(frames, timing(5, setup=2), phase=1.3)
    assert got != frames
    assert all(len(f) < 200 for f in got)


def test_any_valid_pin_map() -> None:
    pins = PinMap(data=(4, 17, 18, 19, 20, 21, 22, 23), stb_out=8, stb_in=7)
    assert pins.data_shift is None
    frames = [bytes(range(256)), b"\x00\xff" * 10]
    assert roundtrip(frames, timing(), 2.5, pins=pins) == frames


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


def test_cost_fits_pigpio_budget() -> None:
    pulses = encode([bytes(range(256)) * 4], MASKS, timing())
    cbs, ools = pulse_cost(pulses)
    assert cbs <= 4 * 1024 + 3
    assert ools <= 3 * 1024 + 2


def test_timing_from_config_and_problems() -> None:
    t = BusTiming.from_config(BusConfig(sample_us=5))
    assert (t.setup_us, t.hold_us, t.gap_us, t.line_rate_bps) == (5, 5, 5, 100_000)
    assert BusTiming.from_config(BusConfig(sample_us=1)).line_rate_bps == 500_000
    assert BusTiming(5, 2, 5, 5).problems()
    assert not t.problems()


@pytest.mark.parametrize("split", [1, 5, 11, 12, 13])
def test_reports_split_anywhere(split: int) -> None:
    frames = [b"hello", b"world!"]
    assert roundtrip(frames, timing(), 0.5, chunk=split) == frames
