"""`rpilink wiring-check --json` on both boards of the emulator: each fault class, in a
wiring file of its own, is named on both boards, and nothing else is; no wire is ever
driven from both ends (the emulator counts shorts)."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pigpio
import pytest

from rpilinkd.exits import ExitCode
from rpilinkd.pins import WIDE_PINS, ControlLine
from rpilinkd.testbed import Child, System, python_module
from tests.wiring.support import cable_text, run_checks, wiring_of

#: a wiring file's extra text and the faulty wires, by the emulator's names, with verdicts
FAULTS: dict[str, tuple[str, dict[str, str]]] = {
    "cut": (cable_text(D3="cut = true"), {"D3": "cut"}),
    "stuck high": (cable_text(D5="stuck = 1"), {"D5": "stuck_high"}),
    "shorted": (
        cable_text(extra='[[short]]\nwires = ["D2", "D3"]\n'),
        {"D2": "shorted", "D3": "shorted"},
    ),
    "swapped": (
        cable_text(extra='[[swap]]\nwires = ["D0", "D1"]\n'),
        {"D0": "swapped", "D1": "swapped"},
    ),
    "straight": (
        cable_text(extra='[[swap]]\nwires = ["FRM_AB", "FRM_BA"]\n'),
        {"FRM_AB": "straight", "FRM_BA": "straight"},
    ),
    "two at once": (
        cable_text(D3="cut = true", extra='[[swap]]\nwires = ["STB_AB", "FRM_AB"]\n'),
        {"D3": "cut", "STB_AB": "swapped", "FRM_AB": "swapped"},
    ),
}


def launch(tmp_path: Path, text: str, *sim_args: str) -> System:
    path = tmp_path / "cable.toml"
    path.write_text(text)
    return System(tmp_path, sim_args=("--wiring", str(path), *sim_args)).launch(boards=())


def test_the_good_cable_is_all_ok_on_both_boards(tmp_path: Path) -> None:
    system = launch(tmp_path, cable_text())
    try:
        checks = run_checks(system, ("a", "b"))
        stats = system.sim_stats()
    finally:
        system.stop()
    for check in checks.values():
        assert check.code == ExitCode.OK, check.stderr
        assert check.report["ok"] is True
        assert {w["verdict"] for w in check.report["wires"]} == {"ok"}
        assert len(check.report["wires"]) == 16
    assert {c.report["role"] for c in checks.values()} == {"leader", "follower"}
    assert stats["shorts_total"] == 0


@pytest.mark.parametrize("fault", list(FAULTS))
def test_each_fault_is_named_on_both_boards_and_nothing_else(tmp_path: Path, fault: str) -> None:
    text, expected = FAULTS[fault]
    system = launch(tmp_path, text)
    order = ("b", "a") if list(FAULTS).index(fault) % 2 else ("a", "b")
    try:
        checks = run_checks(system, order)
        stats = system.sim_stats()
    finally:
        system.stop()
    wires = wiring_of(tmp_path / "cable.toml")
    for board, check in checks.items():
        assert check.code == ExitCode.FAILED, check.stderr
        assert check.faulty(wires) == expected, f"board {board}: {check.report}"
    assert stats["shorts_total"] == 0, stats["shorts_longest_ms"]


def test_the_wide_bus_names_a_stuck_low_wire(tmp_path: Path) -> None:
    """The stuck-low class, on the 16-bit bus (its own default map: WIDE_PINS)."""
    config = tmp_path / "wide.toml"
    config.write_text("[bus]\nwidth = 16\n")
    system = launch(tmp_path, cable_text(WIDE_PINS, REQ_BA="stuck = 0"))
    try:
        checks = run_checks(system, ("b", "a"), config=config)
        stats = system.sim_stats()
    finally:
        system.stop()
    wires = wiring_of(tmp_path / "cable.toml")
    for board, check in checks.items():
        assert check.code == ExitCode.FAILED, check.stderr
        assert check.report["width"] == 16
        assert len(check.report["wires"]) == 16 + 2 * len(ControlLine)
        assert check.faulty(wires) == {"REQ_BA": "stuck_low"}, f"board {board}: {check.report}"
    assert stats["shorts_total"] == 0


def test_a_peer_that_is_off_is_not_seen_and_the_pins_end_safe(tmp_path: Path) -> None:
    system = launch(tmp_path, cable_text(), "--power-off", "b")
    try:
        check = run_checks(system, ("a",), timeout_s=1.0)["a"]
        modes = pin_states(system.daemon("a").pigpio_port)
        stats = system.sim_stats()
    finally:
        system.stop()
    assert check.code == ExitCode.FAILED
    assert {w["verdict"] for w in check.report["wires"]} == {"peer_not_seen"}
    assert modes == SAFE
    assert stats["boards"]["b"]["port"] == 0
    assert stats["shorts_total"] == 0


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_an_interrupted_check_leaves_every_pin_safe(tmp_path: Path, signum: int) -> None:
    system = launch(tmp_path, cable_text())
    port = system.daemon("a").pigpio_port
    args = ["wiring-check", "--socket", str(tmp_path / "no.sock"), "--pigpio", f"127.0.0.1:{port}"]
    child = Child(python_module("rpilinkd.cli", *args), stderr_path=tmp_path / "check.log")
    try:
        wait_for_a_driven_pin(port)  # alone, it beacons: stop it in the middle
        child.signal(signum)
        code = child.proc.wait(20)
        modes = pin_states(port)
        stats = system.sim_stats()
    finally:
        child.stop()
        system.stop()
    assert code == ExitCode.INTERRUPTED, child.stderr_text()
    assert modes == SAFE
    assert stats["shorts_total"] == 0


#: (mode, level) per default bus GPIO: data lines and inputs are inputs, outputs are low
SAFE = dict.fromkeys((*range(16, 24), 25, 27, 6, 13), (pigpio.INPUT, 0)) | dict.fromkeys(
    (24, 26, 5, 12), (pigpio.OUTPUT, 0)
)


def pin_states(port: int) -> dict[int, tuple[int, int]]:
    pi = pigpio.pi("127.0.0.1", port, show_errors=False)
    try:
        return {g: (pi.get_mode(g), pi.read(g)) for g in SAFE}
    finally:
        pi.stop()


def wait_for_a_driven_pin(port: int, timeout: float = 15.0) -> None:
    pi = pigpio.pi("127.0.0.1", port, show_errors=False)
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(pi.get_mode(g) == pigpio.OUTPUT and pi.read(g) for g in range(16, 24)):
                return
            time.sleep(0.005)
        raise AssertionError("the check never drove a data line")
    finally:
        pi.stop()
