"""rpilink-sim as a program: the JSON line, signals, the summary, clear errors."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pigpio

from rpilinkd.testbed.processes import Child, child_env, python_module
from tests.support.procs import REPO


def test_json_line_then_sigterm_summary(tmp_path: Path) -> None:
    control = tmp_path / "sim.sock"
    child = Child(
        python_module("rpilinkd.sim", "--port-a", "0", "--port-b", "0", "--control", str(control)),
        stderr_path=tmp_path / "stderr",
    )
    try:
        ready = child.read_json_line()
        assert set(ready) >= {"a", "b", "control", "seed"}
        assert ready["control"] == str(control)
        pi = pigpio.pi("127.0.0.1", ready["a"], show_errors=False)
        pi.write(16, 1)
        pi.stop()
        child.signal(signal.SIGTERM)
        summary = child.read_json_line()["summary"]
        assert child.proc.wait(10) == 0
    finally:
        child.stop()
    assert summary["boards"]["a"]["commands"] >= 1
    assert "shorts: 0" in child.stderr_text()


def test_sigint_stops_cleanly(tmp_path: Path) -> None:
    child = Child(python_module("rpilinkd.sim", "--port-a", "0", "--port-b", "0"))
    try:
        child.read_json_line()
        child.signal(signal.SIGINT)
        assert "summary" in child.read_json_line()
        assert child.proc.wait(10) == 0
    finally:
        child.stop()


def test_a_client_still_connected_at_sigterm_is_closed_quietly(tmp_path: Path) -> None:
    """pigpiod going away with programs connected: their sockets close, no traceback."""
    child = Child(
        python_module("rpilinkd.sim", "--port-a", "0", "--port-b", "0"),
        stderr_path=tmp_path / "stderr",
    )
    try:
        ready = child.read_json_line()
        pi = pigpio.pi("127.0.0.1", ready["a"], show_errors=False)
        assert pi.connected
        child.signal(signal.SIGTERM)
        assert "summary" in child.read_json_line()
        assert child.proc.wait(10) == 0
        pi.stop()
    finally:
        child.stop()
    stderr = child.stderr_text()
    assert "Traceback" not in stderr, stderr
    assert "ERROR" not in stderr, stderr


def run_sim(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "rpilinkd.sim", *args],
        env=child_env(),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def test_bad_wiring_file_is_named(tmp_path: Path) -> None:
    wiring = tmp_path / "cable.toml"
    wiring.write_text("[[wire]]\na = 16\nb = 99\n")
    done = run_sim("--port-a", "0", "--port-b", "0", "--wiring", str(wiring))
    assert done.returncode == 2
    assert "cable.toml" in done.stderr
    assert "wire[0].b" in done.stderr


def test_bad_fault_is_named() -> None:
    done = run_sim("--port-a", "0", "--port-b", "0", "--fault", "stuck:wire=D0,value=7")
    assert done.returncode == 2
    assert "value must be 0 or 1" in done.stderr
    done = run_sim("--port-a", "0", "--port-b", "0", "--fault", "glitch:wire=D3,rate_hz=abc")
    assert done.returncode == 2
    assert "rate_hz must be a number, got 'abc'" in done.stderr
    assert "Traceback" not in done.stderr


def test_help_teaches() -> None:
    done = run_sim("--help")
    assert done.returncode == 0
    for word in ("--sample-us", "--fault", "pigs", "control socket", "examples"):
        assert word in done.stdout


def test_json_line_is_parseable_alone(tmp_path: Path) -> None:
    child = Child(python_module("rpilinkd.sim", "--port-a", "0", "--port-b", "0", "--seed", "11"))
    try:
        line = child.read_json_line()
        assert line["seed"] == 11
        json.dumps(line)
    finally:
        child.stop()
