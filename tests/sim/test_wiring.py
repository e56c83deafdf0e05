"""Wiring files: the format, swaps, and errors that name the wire."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

import pigpio
import pytest

from rpilinkd.errors import SimError
from rpilinkd.sim import SimConfig, Simulator, ThreadedSimulator
from rpilinkd.sim.wires import default_wires, effective, load_wiring, parse_wiring

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


def cable_file(tmp_path: Path, extra: str) -> Path:
    """The default cable, spelled out, with ``extra`` tables after it."""
    text = "\n".join(
        f'[[wire]]\nname = "{w.name}"\na = {w.a}\nb = {w.b}\n' for w in default_wires()
    )
    path = tmp_path / "cable.toml"
    path.write_text(text + "\n" + extra)
    return path


def test_a_short_joins_wires_into_one_net(tmp_path: Path) -> None:
    path = cable_file(tmp_path, '[[short]]\nwires = ["D2", "D3"]\n')
    assert {w.name: w.net for w in load_wiring(path)}["D3"] == "D2+D3"
    with ThreadedSimulator(SimConfig(wiring=path)) as sim:
        a = pigpio.pi("127.0.0.1", sim.port("a"), show_errors=False)
        b = pigpio.pi("127.0.0.1", sim.port("b"), show_errors=False)
        try:
            for gpio in (18, 19):
                a.set_pull_up_down(gpio, pigpio.PUD_DOWN)
                b.set_pull_up_down(gpio, pigpio.PUD_DOWN)
            assert (a.read(19), b.read(18), b.read(19)) == (0, 0, 0)
            a.write(18, 1)  # D2 high at board a: every end of the net reads it
            assert (a.read(19), b.read(18), b.read(19)) == (1, 1, 1)
            assert b.read(17) == 0  # D1 is not in the net
            assert sim.stats()["shorts_total"] == 0  # one driver: no fight
            a.write(19, 0)  # D3 low at the same board: two ends fight
            time.sleep(0.06)
            b.set_mode(18, pigpio.INPUT)
            a.set_mode(19, pigpio.INPUT)
            time.sleep(0.01)
            stats = sim.stats()
        finally:
            a.stop()
            b.stop()
    assert stats["shorts"] == {"D2+D3": 1}
    assert 50 <= stats["shorts_longest_ms"]["D2+D3"] < 1000


def test_a_stuck_wire_sticks_its_whole_net_and_a_cut_one_leaves_it(tmp_path: Path) -> None:
    wires = parse_wiring(
        {
            "wire": [{"name": n, "a": g, "b": g} for n, g in (("x", 16), ("y", 17), ("z", 18))],
            "short": [{"wires": ["x", "y", "z"]}],
        }
    )
    stuck = [replace(w, stuck=1) if w.name == "x" else w for w in wires]
    assert {w.name: w.stuck for w in effective(stuck)} == {"x": 1, "y": 1, "z": 1}
    cut = [replace(w, cut=True) if w.name == "x" else w for w in wires]
    assert {w.name: w.net for w in effective(cut)} == {"x": "", "y": "x+y+z", "z": "x+y+z"}


def test_a_crossed_pair_wired_straight_joins_two_outputs(tmp_path: Path) -> None:
    path = cable_file(tmp_path, '[[swap]]\nwires = ["STB_AB", "STB_BA"]\n')
    assert {w.name: (w.a, w.b) for w in load_wiring(path)}["STB_AB"] == (24, 24)
    with ThreadedSimulator(SimConfig(wiring=path)) as sim:
        a = pigpio.pi("127.0.0.1", sim.port("a"), show_errors=False)
        b = pigpio.pi("127.0.0.1", sim.port("b"), show_errors=False)
        try:
            a.write(24, 1)  # STB_OUT on both boards
            b.write(24, 0)
            time.sleep(0.03)
            b.write(24, 1)
            time.sleep(0.01)
            stats = sim.stats()
        finally:
            a.stop()
            b.stop()
    assert stats["shorts"] == {"STB_AB": 1}
    assert 20 <= stats["shorts_longest_ms"]["STB_AB"] < 500


def test_a_powered_off_board_floats_and_does_not_answer() -> None:
    with ThreadedSimulator(SimConfig(off=("b",))) as sim:
        assert sim.port("b") == 0
        a = pigpio.pi("127.0.0.1", sim.port("a"), show_errors=False)
        try:
            a.set_pull_up_down(16, pigpio.PUD_UP)
            assert a.read(16) == 1  # nothing at the far end pulls it down
            a.set_pull_up_down(16, pigpio.PUD_DOWN)
            assert a.read(16) == 0
        finally:
            a.stop()
        with pytest.raises(SimError, match="powered off"):
            sim.restart_board("b")
    with pytest.raises(SimError, match="cannot power off board 'c'"):
        Simulator(SimConfig(off=("c",)))


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"short": [{"wires": ["D0"]}]}, r"short\[0\]\.wires must name two or more"),
        ({"short": [{"wires": ["D0", "D0"]}]}, r"short\[0\]\.wires must name two or more"),
        ({"short": [{"wires": ["D0", "D9"]}]}, r"short\[0\]: no wire named 'D9'"),
        ({"short": [{"wires": ["D0", "D1"], "colour": 1}]}, r"short\[0\]: unknown key"),
        (
            {"short": [{"wires": ["D0", "D1"]}, {"wires": ["D1", "D2"]}]},
            r"short\[1\]: wire 'D1' is already in the short 'D0\+D1'",
        ),
    ],
)
def test_short_errors_name_the_entry(data: dict[str, object], message: str) -> None:
    wires = [{"name": w.name, "a": w.a, "b": w.b} for w in default_wires()]
    with pytest.raises(SimError, match=message):
        parse_wiring({"wire": wires, **data})
