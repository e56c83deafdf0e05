"""scripts/install, scripts/deploy and scripts/test-platforms from the outside.

One real install (a real virtualenv and pip) into a staging root per session; every
other run uses the stand-ins of tests/install/standins.py, so this stays fast. The
installer's decisions are in tests/install/test_install.py.
"""

from __future__ import annotations

import os
import re
import shutil
import tomllib
from pathlib import Path

import pytest

from tests.install.standins import DEPLOY, INSTALL, TEST_PLATFORMS, Staging, run, write_script
from tests.support.procs import REPO


@pytest.mark.parametrize("script", [INSTALL, DEPLOY, TEST_PLATFORMS])
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
        ((INSTALL, "--pigpiod", "maybe"), "--pigpiod 'maybe'"),
        ((INSTALL, "--pigpio-source", "x.tar.gz"), "--pigpio-source needs --pigpio-sha256"),
        ((INSTALL, "--pigpio-sha256", "abc"), "--pigpio-sha256 'abc'"),
        ((DEPLOY, "onlyone"), "exactly two"),
        ((DEPLOY, "--timeout", "soon", "a", "b"), "--timeout 'soon'"),
        ((DEPLOY, "a", "a"), "both"),
        ((TEST_PLATFORMS, "jessie-i386"), "unknown platform 'jessie-i386'"),
        ((TEST_PLATFORMS, "--pigpio-sha256", "ab"), "together"),
    ],
)
def test_bad_arguments_are_named(args: tuple[str | Path, ...], named: str) -> None:
    done = run(*args)
    assert done.returncode == 2
    assert named in done.stderr


def test_dry_run_changes_nothing(tmp_path: Path) -> None:
    stage = Staging(tmp_path, os_release="trixie", pigpiod_packaged=False)
    done = run(INSTALL, "--dry-run", "--root", stage.root, "--node", "alpha", env=stage.env())
    assert done.returncode == 0, done.stderr
    assert not stage.root.exists()
    assert "systemd-sysusers" in done.stdout
    assert "nothing was changed" in done.stdout
    done = run(INSTALL, "--dry-run", "--node", "alpha", "--sample-us", "2", env=stage.env())
    assert done.returncode == 0, done.stderr  # the real thing, on a Pi with Trixie
    for expected in (
        "apt-get install",
        "python3-numpy",
        "/opt/rpilinkd/venv",
        "fetch https://github.com/joan2937/pigpio/archive/refs/tags/v79.tar.gz",
        '+name = "alpha"',
        "+sample_us = 2",  # the config edits, shown
        "ExecStart=/usr/local/bin/pigpiod -g -l -f -s 2",
        "systemctl enable --now rpilinkd.socket",
        "To undo:",
    ):
        assert expected in done.stdout
    assert stage.calls("apt-get") == []  # dry: shown, not run
    assert stage.calls("systemctl") == []


@pytest.fixture(scope="session")
def real_install(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The one real install of the session: a real virtualenv, pip and rpilinkd."""
    base = tmp_path_factory.mktemp("real")
    stage = Staging(base, arch="amd64")
    (stage.bin / "python3").unlink()  # the real python3 -m venv and pip
    done = run(
        INSTALL,
        "--root",
        stage.root,
        "--node",
        "alpha",
        "--sample-us",
        "2",
        "--pigpiod",
        "none",
        env=stage.env(),
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return stage.root


def test_a_real_install_into_a_staging_root(real_install: Path) -> None:
    root = real_install
    config = root / "etc/rpilink/rpilinkd.toml"
    assert 'name = "alpha"' in config.read_text()
    assert (root / "etc/systemd/system/rpilinkd.service").is_file()
    assert (root / "etc/systemd/system/rpilinkd.socket").is_file()
    assert not (root / "etc/systemd/system/pigpiod.service.d").exists()  # --pigpiod none
    assert (root / "usr/share/doc/rpilinkd/operations.md").is_file()
    assert (root / "usr/share/doc/rpilinkd/rpilinkd.toml.example").is_file()
    assert "rpilink:x:" in (root / "etc/passwd").read_text()
    assert (root / "usr/local/bin/rpilink").readlink() == Path("/opt/rpilinkd/venv/bin/rpilink")
    done = run(root / "opt/rpilinkd/venv/bin/rpilinkd", "--config", config, "--check-config")
    assert done.returncode == 0, done.stderr
    assert 'name = "alpha"' in done.stdout
    assert "sample_us = 2" in done.stdout


def copy_plain_tree(destination: Path) -> Path:
    """This source tree as an unpacked release would be: no .git, no venv."""
    shutil.copytree(
        REPO,
        destination,
        ignore=shutil.ignore_patterns(".git", ".venv", "__pycache__", ".*_cache", "*.egg-info"),
    )
    return destination


def test_deploy_ships_a_plain_directory_and_installs_on_both_hosts(tmp_path: Path) -> None:
    """ssh and sudo are stand-ins that run locally, each host into its own root."""
    tree = copy_plain_tree(tmp_path / "release")
    assert not (tree / ".git").exists()
    stage = Staging(tmp_path / "stage")
    calls = tmp_path / "ssh.log"
    write_script(
        stage.bin / "ssh",
        f'while [[ "$1" == -* ]]; do shift; done\n'
        f'echo "$*" >> {calls}\nhost="$1"; shift\n'
        f'export HOST_ROOT={tmp_path}/"$host"\nexec bash -c "$*"',
    )
    write_script(stage.bin / "sudo", 'exec "$@"')
    remote = tmp_path / "remote-src"
    done = run(
        tree / "scripts/deploy",
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
        env={**stage.env(), "GIT_CEILING_DIRECTORIES": str(tmp_path)},
    )
    assert done.returncode == 0, done.stderr
    assert "no .git" in done.stdout
    for host, node in (("pi@a", "alpha"), ("pi@b", "beta")):
        root = tmp_path / host
        assert f'name = "{node}"' in (root / "etc/rpilink/rpilinkd.toml").read_text()
        dropin = root / "etc/systemd/system/pigpiod.service.d/rpilink.conf"
        assert "-s 2\n" in dropin.read_text()
    hosts = [line.split()[0] for line in calls.read_text().splitlines()]
    assert hosts == ["pi@a", "pi@a", "pi@b", "pi@b"]
    assert (remote / "scripts/install").is_file()
    assert (remote / "rpilinkd/platform.py").is_file()
    assert not (remote / ".venv").exists()


def test_test_platforms_dry_run_shows_its_plan(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("test-platforms checks for root before a dry run shows anything useful")
    done = run(TEST_PLATFORMS, "--dry-run", "--cache", tmp_path / "cache", "trixie-arm64")
    assert done.returncode == 0, done.stderr
    for expected in (
        "debootstrap --variant=minbase --arch=arm64 trixie",
        "scripts/install --no-enable",
        "--sample-us 2",
        "rpilinkd --config /etc/rpilink/rpilinkd.toml --check-config",
        "-m pytest",
        "tests/phy/test_codec.py",
        "dry run: nothing was done",
    ):
        assert expected in done.stderr
    assert not (tmp_path / "cache").exists()


def test_test_platforms_refuses_a_cache_inside_the_tree() -> None:
    done = run(TEST_PLATFORMS, "--dry-run", "--cache", REPO / "cache")
    assert done.returncode == 2
    assert "inside the source tree" in done.stderr


def test_the_platform_roots_get_every_pytest_plugin_the_config_needs() -> None:
    """pyproject's pytest options (asyncio_mode, timeout) are errors without their plugins."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    dev = project["project"]["optional-dependencies"]["dev"]
    needed = {
        re.split(r"[<>=!~ ]", requirement)[0]
        for requirement in dev
        if requirement.startswith(("pytest-", "hypothesis")) and "xdist" not in requirement
    }
    tools = re.search(r"^TEST_TOOLS=\((.*)\)$", TEST_PLATFORMS.read_text(), re.M)
    assert tools is not None
    installed = {re.split(r"[<>=!~ ]", t.strip('"'))[0] for t in tools.group(1).split()}
    assert needed <= installed, f"scripts/test-platforms' TEST_TOOLS lacks {needed - installed}"
