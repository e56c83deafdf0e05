"""scripts/install and scripts/deploy, run for real into a staging root."""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

import pytest

from tests.support.procs import REPO

INSTALL = REPO / "scripts" / "install"
DEPLOY = REPO / "scripts" / "deploy"


def run(*args: str | Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(a) for a in args],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
        env={**os.environ, **(env or {})},
    )


@pytest.mark.parametrize("script", [INSTALL, DEPLOY])
def test_help_teaches(script: Path) -> None:
    done = run(script, "--help")
    assert done.returncode == 0
    assert "--dry-run" in done.stdout
    assert "Example" in done.stdout


@pytest.mark.parametrize(
    ("args", "named"),
    [
        ((INSTALL, "--node", "a b"), "--node 'a b'"),
        ((INSTALL, "--role", "boss"), "--role 'boss'"),
        ((INSTALL, "--sample-us", "3"), "--sample-us '3'"),
        ((INSTALL, "--frob"), "'--frob'"),
        ((INSTALL, "--prefix"), "--prefix needs a value"),
        ((DEPLOY, "onlyone"), "exactly two"),
        ((DEPLOY, "--timeout", "soon", "a", "b"), "--timeout 'soon'"),
        ((DEPLOY, "a", "a"), "both"),
    ],
)
def test_bad_arguments_are_named(args: tuple[str | Path, ...], named: str) -> None:
    done = run(*args)
    assert done.returncode == 2
    assert named in done.stderr


def test_dry_run_changes_nothing(tmp_path: Path) -> None:
    root = tmp_path / "root"
    done = run(INSTALL, "--dry-run", "--root", root, "--node", "alpha")
    assert done.returncode == 0, done.stderr
    assert not root.exists()
    assert "systemd-sysusers" in done.stdout
    assert "nothing was changed" in done.stdout
    done = run(INSTALL, "--dry-run", "--node", "alpha")  # the real thing, on a Pi
    assert done.returncode == 0, done.stderr
    for expected in (
        "apt-get install",
        "pigpiod",
        "/opt/rpilinkd/venv",
        "systemctl enable --now rpilinkd.socket rpilinkd.service",
    ):
        assert expected in done.stdout


def check_staged(root: Path, node: str) -> None:
    config = root / "etc/rpilink/rpilinkd.toml"
    assert f'name = "{node}"' in config.read_text()
    assert "sample_us = 2" in config.read_text()
    dropin = root / "etc/systemd/system/pigpiod.service.d/rpilink.conf"
    assert "pigpiod -l -s 2" in dropin.read_text()
    assert (root / "etc/systemd/system/rpilinkd.service").is_file()
    assert (root / "etc/systemd/system/rpilinkd.socket").is_file()
    assert (root / "usr/share/doc/rpilinkd/operations.md").is_file()
    assert "rpilink:x:" in (root / "etc/passwd").read_text()
    rpilinkd = root / "opt/rpilinkd/venv/bin/rpilinkd"
    done = run(rpilinkd, "--config", config, "--check-config")
    assert done.returncode == 0, done.stderr
    assert f'name = "{node}"' in done.stdout


def test_install_into_a_staging_root(tmp_path: Path) -> None:
    root = tmp_path / "root"
    done = run(INSTALL, "--root", root, "--node", "alpha", "--sample-us", "2")
    assert done.returncode == 0, done.stderr
    check_staged(root, "alpha")
    done = run(INSTALL, "--root", root, "--node", "beta", "--sample-us", "2")  # an upgrade
    assert done.returncode == 0, done.stderr
    check_staged(root, "alpha")  # the operator's config is kept...
    assert 'name = "beta"' in (root / "etc/rpilink/rpilinkd.toml.new").read_text()  # ...beside


def fake_command(bin_dir: Path, name: str, body: str) -> None:
    path = bin_dir / name
    path.write_text(f"#!/usr/bin/env bash\n{body}\n")
    path.chmod(path.stat().st_mode | stat.S_IEXEC)


def test_deploy_ships_and_installs_on_both_hosts(tmp_path: Path) -> None:
    """ssh and sudo are stand-ins that run locally, each host into its own root."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    calls = tmp_path / "ssh.log"
    fake_command(
        bin_dir,
        "ssh",
        f'while [[ "$1" == -* ]]; do shift; done\n'
        f'echo "$*" >> {calls}\nhost="$1"; shift\n'
        f'export HOST_ROOT={tmp_path}/"$host"\nexec bash -c "$*"',
    )
    fake_command(bin_dir, "sudo", 'exec "$@"')
    remote = tmp_path / "src"
    done = run(
        DEPLOY,
        "--remote-dir",
        remote,
        "--no-wait",
        "--sample-us",
        "2",
        "--node-a",
        "alpha",
        "--node-b",
        "beta",
        "--install-args",
        "--root $HOST_ROOT",
        "pi@a",
        "pi@b",
        env={"PATH": f"{bin_dir}:{os.environ['PATH']}"},
    )
    assert done.returncode == 0, done.stderr
    check_staged(tmp_path / "pi@a", "alpha")
    check_staged(tmp_path / "pi@b", "beta")
    hosts = [line.split()[0] for line in calls.read_text().splitlines()]
    assert hosts == ["pi@a", "pi@a", "pi@b", "pi@b"]
    assert (remote / "scripts/install").is_file()
