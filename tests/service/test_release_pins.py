"""``rpilinkd --release-pins`` (systemd's ExecStopPost): a killed daemon's pins made safe."""

from __future__ import annotations

import subprocess

import pigpio

from rpilinkd.pins import DEFAULT_PINS, ControlLine
from rpilinkd.testbed import free_port
from rpilinkd.testbed.processes import Child, child_env, python_module
from tests.support.procs import REPO


def release(pigpio_addr: str) -> subprocess.CompletedProcess[str]:
    command = python_module("rpilinkd", "--pigpio", pigpio_addr, "--release-pins")
    return subprocess.run(
        command, env=child_env(), capture_output=True, text=True, timeout=60, check=False
    )


def test_a_killed_daemons_pins_are_left_safe(sim: Child) -> None:
    port = sim.read_json_line()["a"]
    pi = pigpio.pi("127.0.0.1", port)
    try:
        outputs = [DEFAULT_PINS.out_pin(line) for line in ControlLine]
        for gpio in (*DEFAULT_PINS.data, *outputs):  # as a daemon killed mid-burst left them
            pi.write(gpio, 1)
        done = release(f"127.0.0.1:{port}")
        assert done.returncode == 0, done.stderr
        assert "bus pins released" in done.stderr
        assert all(pi.get_mode(gpio) == pigpio.INPUT for gpio in DEFAULT_PINS.data)
        assert all(pi.read(gpio) == 0 for gpio in outputs)
    finally:
        pi.stop()


def test_no_pigpiod_is_one_clear_line_and_a_failure() -> None:
    done = release(f"127.0.0.1:{free_port()}")
    assert done.returncode == 1
    assert "could not release the bus pins" in done.stderr
    assert "Traceback" not in done.stderr


def test_the_unit_releases_the_pins_after_every_stop() -> None:
    unit = (REPO / "systemd" / "rpilinkd.service").read_text()
    command = "/opt/rpilinkd/venv/bin/rpilinkd --config /etc/rpilink/rpilinkd.toml"
    assert f"ExecStart={command}\n" in unit
    assert f"ExecStopPost=-{command} --release-pins\n" in unit  # "-": never fails the stop
