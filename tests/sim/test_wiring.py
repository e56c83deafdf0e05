"""Wiring files: the format, swaps, and errors that name the wire."""

from __future__ import annotations

from pathlib import Path

import pigpio
import pytest

from rpilinkd.errors import SimError
from rpilinkd.sim import SimConfig, ThreadedSimulator
from rpilinkd.sim.wires import default_wires, load_wiring, parse_wiring

REPO = Path(__file__).resolve().parents[2]


def test_default_cable_matches_the_pin_map() -> None:
    wires = {w.name: (w.a, w.b) for w in default_wires()}
    assert wires["D0"] == (16, 16)
    assert wires["STB_AB"] == (24, 25)
    assert wires["STB_BA"] == (25, 24)
    assert len(wires) == 16


def test_shipped_example_wiring_loads() -> None:
    wires = load_wiring(REPO / "etc/rpilink/sim-wiring.toml")
    assert len(wires) == 16


def test_swapped_wires_cross_data(tmp_path: Path) -> None:
    text = (
        "\n".join(f'[[wire]]\nname = "{w.name}"\na = {w.a}\nb = {w.b}\n' for w in default_wires())
        + '\n[[swap]]\nwires = ["D0", "D1"]\n'
    )
    path = tmp_path / "swapped.toml"
    path.write_text(text)
    with ThreadedSimulator(SimConfig(wiring=path)) as sim:
        a = pigpio.pi("127.0.0.1", sim.port("a"), show_errors=False)
        b = pigpio.pi("127.0.0.1", sim.port("b"), show_errors=False)
        try:
            a.write(16, 1)
            a.write(17, 0)
            assert (b.read(16), b.read(17)) == (0, 1)
        finally:
            a.stop()
            b.stop()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"wire": [{"a": 16, "b": 40}]}, r"wire\[0\]\.b"),
        ({"wire": [{"a": 16, "b": 16, "stuck": 2}]}, r"wire\[0\]\.stuck"),
        ({"wire": [{"a": 16, "b": 16, "colour": "red"}]}, "unknown key"),
        ({"wire": [{"a": 16, "b": 16}, {"a": 16, "b": 17}]}, "GPIO 16 on board a is on two wires"),
        ({"wires": []}, "unknown table"),
        (
            {"wire": [{"a": 16, "b": 16, "name": "x"}], "swap": [{"wires": ["x", "y"]}]},
            "no wire named 'y'",
        ),
    ],
)
def test_wiring_errors_name_the_wire(data: dict[str, object], message: str) -> None:
    with pytest.raises(SimError, match=message):
        parse_wiring(data)
