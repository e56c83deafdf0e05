"""Debian's pigs (pigpio-tools), a second real client of the emulator (must-show 2)."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from rpilinkd.sim import ThreadedSimulator

PIGS = shutil.which("pigs")
pytestmark = pytest.mark.skipif(PIGS is None, reason="pigs missing: apt-get install pigpio-tools")


def pigs(sim: ThreadedSimulator, *args: str, board: str = "a") -> str:
    assert PIGS is not None
    env = dict(os.environ, PIGPIO_ADDR="127.0.0.1", PIGPIO_PORT=str(sim.port(board)))
    done = subprocess.run(
        [PIGS, *args], env=env, capture_output=True, text=True, timeout=20, check=False
    )
    return f"{done.stdout}{done.stderr}".strip()


def test_pigs_session(sim: ThreadedSimulator) -> None:
    tick = int(pigs(sim, "t"))
    assert 0 <= tick < 1 << 32
    assert int(pigs(sim, "hwver")) == 0xA02082
    assert pigs(sim, "w", "16", "1") == ""
    assert pigs(sim, "r", "16", board="b") == "1"
    assert pigs(sim, "m", "17", "w") == ""
    assert pigs(sim, "bs1", "0x20000") == ""
    assert int(pigs(sim, "br1", board="b"), 16) >> 16 & 0b11 == 0b11
    assert pigs(sim, "wvclr") == ""
    assert pigs(sim, "wvag", "0x10000", "0", "100000", "0", "0x10000", "100000") == "2"
    assert pigs(sim, "wvcre") == "0"
    assert pigs(sim, "wvtx", "0") == "5"  # 2 pulses x (set/clear CB + delay CB) + start delay
    assert pigs(sim, "wvbsy") == "1"  # the wave lasts 200 ms
    assert pigs(sim, "wvdel", "0") == ""


def test_pigs_reports_errors_like_pigpiod(sim: ThreadedSimulator) -> None:
    assert "GPIO not 0-53" in pigs(sim, "w", "60", "1")
    assert "no permission" in pigs(sim, "w", "1", "1")
    assert "non existent wave id" in pigs(sim, "wvtx", "3")
