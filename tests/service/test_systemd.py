"""systemd integration for real: sd_notify, socket activation, the units (must-show 3)."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from importlib.util import find_spec
from pathlib import Path

import pytest

from rpilinkd.testbed import request
from rpilinkd.testbed.processes import Child, child_env, python_module
from tests.support.procs import REPO

UNITS = REPO / "systemd"
SYSTEMD_ANALYZE = shutil.which("systemd-analyze")
SOCKET_ACTIVATE = shutil.which("systemd-socket-activate")


@pytest.mark.skipif(find_spec("systemd") is None, reason="systemd-python is not installed")
def test_ready_then_watchdog_through_notify_socket(tmp_path: Path, sim: Child) -> None:
    ports = sim.read_json_line()
    notify_path = tmp_path / "notify"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as notify:
        notify.bind(str(notify_path))
        notify.settimeout(30)
        daemon = Child(
            python_module(
                "rpilinkd",
                "--pigpio",
                f"127.0.0.1:{ports['a']}",
                "--node",
                "alpha",
                "--socket",
                str(tmp_path / "api.sock"),
            ),
            env={"NOTIFY_SOCKET": str(notify_path), "WATCHDOG_USEC": "1000000"},
            stderr_path=tmp_path / "daemon.log",
        )
        try:
            messages = [notify.recv(4096).decode() for _ in range(3)]
            daemon.signal(15)
            deadline = time.monotonic() + 20
            while "STOPPING=1" not in messages and time.monotonic() < deadline:
                messages.append(notify.recv(4096).decode())
            # an impatient supervisor: SIGTERM again and again while the daemon winds
            # down; once its loop was gone, one of them killed it (exit -15, seen under load)
            while daemon.proc.poll() is None and time.monotonic() < deadline:
                daemon.signal(15)
                time.sleep(0.001)
        finally:
            code = daemon.stop()
    assert messages[0].startswith("READY=1\nSTATUS=link ")
    assert "WATCHDOG=1" in messages[1:]
    assert "STOPPING=1" in messages
    assert code == 0


@pytest.mark.skipif(SOCKET_ACTIVATE is None, reason="systemd-socket-activate missing (systemd)")
def test_serves_on_the_socket_systemd_passes(tmp_path: Path, sim: Child) -> None:
    ports = sim.read_json_line()
    path = tmp_path / "activated.sock"
    assert SOCKET_ACTIVATE is not None
    argv = [
        SOCKET_ACTIVATE,
        "-l",
        str(path),
        "--fdname=rpilink",
        *python_module(
            "rpilinkd",
            "--pigpio",
            f"127.0.0.1:{ports['a']}",
            "--node",
            "alpha",
            "--socket",
            str(tmp_path / "not-used.sock"),
        ),
    ]
    activator = Child(argv, env={"PYTHONPATH": str(REPO)}, stderr_path=tmp_path / "daemon.log")
    try:
        deadline = time.monotonic() + 10
        while not path.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        reply = request(path, "hello", timeout=30)  # the first connection starts the daemon
        assert reply["ok"] is True
        assert reply["node"] == "alpha"
        assert not (tmp_path / "not-used.sock").exists()  # it used the passed socket
    finally:
        activator.stop()


@pytest.mark.skipif(SYSTEMD_ANALYZE is None, reason="systemd-analyze missing (systemd)")
def test_units_verify_cleanly(tmp_path: Path) -> None:
    for unit in ("rpilinkd.service", "rpilinkd.socket"):
        text = (UNITS / unit).read_text()
        # verify insists the ExecStart binary exists: stand in for the installed venv
        (tmp_path / unit).write_text(text.replace("/opt/rpilinkd/venv/bin/rpilinkd", "/bin/true"))
    done = subprocess.run(
        [SYSTEMD_ANALYZE, "verify", "rpilinkd.socket", "rpilinkd.service"],  # type: ignore[list-item]
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == ""
    assert done.stderr.strip() == ""  # typos are only warnings: any output fails


@pytest.mark.skipif(SYSTEMD_ANALYZE is None, reason="systemd-analyze missing (systemd)")
def test_service_is_hardened(tmp_path: Path) -> None:
    unit = tmp_path / "rpilinkd.service"
    unit.write_text((UNITS / "rpilinkd.service").read_text())
    done = subprocess.run(
        [SYSTEMD_ANALYZE, "security", "--offline=true", "--threshold=20", str(unit)],  # type: ignore[list-item]
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-2000:]
    score = float(done.stdout.split("Overall exposure level for rpilinkd.service:")[1].split()[0])
    assert score <= 2.0


@pytest.mark.skipif(shutil.which("systemd-sysusers") is None, reason="systemd-sysusers missing")
def test_sysusers_creates_the_user_and_group(tmp_path: Path) -> None:
    (tmp_path / "etc").mkdir()
    done = subprocess.run(
        ["systemd-sysusers", f"--root={tmp_path}", str(UNITS / "rpilink.sysusers.conf")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "rpilink:" in (tmp_path / "etc/passwd").read_text()
    assert "rpilink:" in (tmp_path / "etc/group").read_text()


def test_unit_and_daemon_agree_on_the_socket_name() -> None:
    from rpilinkd.service.systemd import SOCKET_NAME  # noqa: PLC0415

    assert f"FileDescriptorName={SOCKET_NAME}" in (UNITS / "rpilinkd.socket").read_text()
    assert "ListenStream=/run/rpilink.sock" in (UNITS / "rpilinkd.socket").read_text()
    assert "SocketMode=0660" in (UNITS / "rpilinkd.socket").read_text()
    assert "After=rpilinkd.socket pigpiod.service" in (UNITS / "rpilinkd.service").read_text()


def test_check_config_prints_the_effective_config(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text("[bus]\nsample_us = 2\n")
    done = subprocess.run(
        [*python_module("rpilinkd", "--config", str(config), "--check-config", "--node", "n1")],
        env=child_env({"PIGPIO_ADDR": "10.0.0.9", "PIGPIO_PORT": "9999"}),
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "sample_us = 2" in done.stdout
    assert 'host = "10.0.0.9"' in done.stdout
    assert "port = 9999" in done.stdout
    assert 'name = "n1"' in done.stdout


@pytest.mark.parametrize(
    ("toml", "key"),
    [
        ("[bus]\nsample_us = 3\n", "bus.sample_us"),
        ("[pins]\nstb_out = 14\n", "pins.stb_out"),
        ("[nope]\n", "nope"),
        ("[link]\nwindow = -1\n", "link.window"),
        ('[mqtt]\nenabled = true\npassword_file = "/nonexistent"\n', "mqtt.password_file"),
    ],
)
def test_bad_config_stops_start_up_naming_the_key(tmp_path: Path, toml: str, key: str) -> None:
    config = tmp_path / "bad.toml"
    config.write_text(toml)
    done = subprocess.run(
        python_module("rpilinkd", "--config", str(config)),
        env=child_env(),
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
    )
    assert done.returncode == 2
    assert f"'{key}'" in done.stderr
    assert "Traceback" not in done.stderr


def test_help_teaches() -> None:
    done = subprocess.run(
        python_module("rpilinkd", "--help"),
        env=child_env(),
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    for word in ("--check-config", "--pigpio", "PIGPIO_ADDR", "examples"):
        assert word in done.stdout
