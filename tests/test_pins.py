"""The pin map: defaults, masks, the crossed cable, and validation."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from rpilinkd.errors import ConfigError
from rpilinkd.pins import DEFAULT_PINS, HEADER_PIN, RESERVED_GPIOS, WIDE_PINS, ControlLine, PinMap

REPO = Path(__file__).resolve().parents[1]


def test_default_map_is_valid_and_avoids_reserved_pins() -> None:
    used = {gpio for _, gpio in DEFAULT_PINS.named_pins()}
    assert len(used) == 16
    assert not used & RESERVED_GPIOS
    assert all(gpio in HEADER_PIN for gpio in used)
    assert DEFAULT_PINS.data_shift == 16


def test_cable_is_straight_for_data_and_crossed_for_control() -> None:
    wires = DEFAULT_PINS.wires()
    assert (16, 16) in wires
    for line in ControlLine:
        out, inp = DEFAULT_PINS.out_pin(line), DEFAULT_PINS.in_pin(line)
        assert (out, inp) in wires
        assert (inp, out) in wires
    ends_a = [a for a, _ in wires]
    assert len(ends_a) == len(set(ends_a)) == 16


def test_masks() -> None:
    assert DEFAULT_PINS.data_mask == 0xFF << 16
    assert DEFAULT_PINS.control_out_mask & DEFAULT_PINS.control_in_mask == 0


def test_non_contiguous_data_has_no_shift() -> None:
    pins = PinMap(data=(16, 17, 18, 19, 20, 21, 22, 4))
    assert pins.data_shift is None


def test_reserved_pins_can_be_allowed() -> None:
    PinMap(stb_out=14, allow_reserved=True)
    with pytest.raises(ConfigError, match="reserved"):
        PinMap(stb_out=14)


def test_duplicate_names_both_keys() -> None:
    with pytest.raises(ConfigError, match=r"already used by pins\.data\[4\]"):
        PinMap(frm_in=20)


def test_wiring_pictures_match_the_pin_maps(tmp_path: Path) -> None:
    names = ("docs/wiring.svg", "docs/wiring-wide.svg")
    committed = [(REPO / name).read_text() for name in names]
    subprocess.run(
        [sys.executable, str(REPO / "scripts/make_wiring_svg.py")],
        check=True,
        capture_output=True,
        cwd=tmp_path,
    )
    for name, before in zip(names, committed, strict=True):
        assert (REPO / name).read_text() == before, f"regenerate {name}"


def test_wiring_tables_match_the_pin_maps() -> None:
    text = (REPO / "docs/wiring.md").read_text()
    default, wide = text.split("## The 16-bit bus", 1)
    for section, pins in ((default, DEFAULT_PINS), (wide, WIDE_PINS)):
        for key, gpio in pins.named_pins():
            assert f"| {gpio} | {HEADER_PIN[gpio]} |" in section, key
