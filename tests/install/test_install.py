"""scripts/install's decisions, run for real against a staging root with stand-ins.

Which pigpiod (the OS's package or a checked source build), the Pi 5 refusal, Debian's
Python packages on ARM, and a re-run applying new flags to the live config and to
pigpiod's drop-in while keeping the user's own edits. tests/install/standins.py says
what is real and what stands in.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.install.standins import Staging, make_pigpio_tarball, run
from tests.support.procs import REPO

SYSTEMD_ANALYZE = shutil.which("systemd-analyze")
needs_gcc = pytest.mark.skipif(shutil.which("gcc") is None, reason="gcc builds a stand-in pigpiod")


@pytest.fixture(scope="module")
def pigpio_tarball(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    return make_pigpio_tarball(tmp_path_factory.mktemp("pigpio"))


def gid_of(root: Path, group: str) -> int:
    for line in (root / "etc/group").read_text().splitlines():
        name, _, gid, *_ = line.split(":")
        if name == group:
            return int(gid)
    raise AssertionError(f"no group {group} in {root}/etc/group")


def test_bookworm_uses_the_distro_pigpiod_with_our_drop_in(tmp_path: Path) -> None:
    stage = Staging(tmp_path, os_release="bookworm", arch="arm64", pigpiod_packaged=True)
    done = stage.install("--node", "alpha")
    assert done.returncode == 0, done.stderr
    assert "Raspberry Pi 4 Model B Rev 1.4 (revision c03114, BCM2711): pigpio can drive it" in (
        done.stdout
    )
    assert "package pigpiod 1.79-1+rpt1" in done.stdout
    assert "pigpiod" in stage.apt_installed()
    assert "gcc" not in stage.apt_installed()  # no source build, no compiler on ARM
    dropin = stage.dropin.read_text()
    assert "ExecStart=\nExecStart=/usr/bin/pigpiod -g -l -f -s 5\n" in dropin  # from dpkg -L
    assert "Type=simple" in dropin  # -g: systemd sees pigpiod exit if it cannot start
    assert not (stage.root / "etc/systemd/system/pigpiod.service").exists()  # the package's unit
    assert not (stage.root / "usr/local/bin/pigpiod").exists()


@needs_gcc
def test_trixie_builds_pigpiod_from_a_checked_source(
    tmp_path: Path, pigpio_tarball: tuple[Path, str]
) -> None:
    tarball, sha256 = pigpio_tarball
    stage = Staging(tmp_path, os_release="trixie", arch="arm64", pigpiod_packaged=False)
    args = ("--pigpio-source", str(tarball), "--pigpio-sha256", sha256)
    done = stage.install(*args)
    assert done.returncode == 0, done.stderr
    assert "apt has no pigpiod package here" in done.stdout
    assert f"sha256 verified: {sha256}" in done.stdout
    assert {"gcc", "libc6-dev"} <= set(stage.apt_installed())
    assert "pigpiod" not in stage.apt_installed()
    assert "curl" not in stage.apt_installed()  # a local tarball needs no download
    pigpiod = stage.root / "usr/local/bin/pigpiod"
    assert run(pigpiod, "-v").stdout.strip() == "79"  # the stand-in built from the tarball
    unit = stage.root / "etc/systemd/system/pigpiod.service"
    assert unit.read_text() == (REPO / "systemd/pigpiod.service").read_text()
    assert "ExecStart=/usr/local/bin/pigpiod -g -l -f -s 5\n" in stage.dropin.read_text()
    record = (stage.root / "usr/local/share/rpilink/pigpiod-build.txt").read_text()
    assert f"sha256={sha256}\n" in record
    assert "version=79\n" in record
    assert "systemctl disable --now pigpiod; rm -f /usr/local/bin/pigpiod" in done.stdout  # undo

    again = stage.install(*args)  # the same source: not built twice
    assert again.returncode == 0, again.stderr
    assert "already built from this source" in again.stdout


def test_a_source_with_the_wrong_checksum_is_not_built(
    tmp_path: Path, pigpio_tarball: tuple[Path, str]
) -> None:
    tarball, sha256 = pigpio_tarball
    stage = Staging(tmp_path, os_release="trixie", pigpiod_packaged=False)
    wrong = "0" * 64
    done = stage.install("--pigpio-source", str(tarball), "--pigpio-sha256", wrong)
    assert done.returncode == 1
    assert f"has sha256 {sha256}, not {wrong}: refusing to build it" in done.stderr
    assert not (stage.root / "usr/local/bin/pigpiod").exists()


def test_pigpiod_package_mode_is_refused_where_apt_has_none(tmp_path: Path) -> None:
    stage = Staging(tmp_path, os_release="trixie", pigpiod_packaged=False)
    done = stage.install("--pigpiod", "package")
    assert done.returncode == 3
    assert "apt has no pigpiod package on Debian GNU/Linux 13 (trixie)" in done.stderr
    assert "--pigpiod source" in done.stderr


@pytest.mark.parametrize(
    ("model", "cpuinfo", "named"),
    [
        (
            "Raspberry Pi 5 Model B Rev 1.0\0",
            "Revision\t: d04170\n",
            "Raspberry Pi 5 Model B Rev 1.0 (revision d04170, BCM2712)",
        ),
        ("", "Revision\t: d04190\n", "Raspberry Pi 500 (revision d04190, BCM2712)"),
        (
            "Raspberry Pi Compute Module 5 Rev 1.0\0",
            "",
            "Raspberry Pi Compute Module 5 Rev 1.0 (BCM2712)",
        ),
    ],
)
def test_the_pi_5_family_is_refused_with_one_message(
    tmp_path: Path, model: str, cpuinfo: str, named: str
) -> None:
    stage = Staging(tmp_path, board=(model, cpuinfo))
    done = stage.install("--node", "alpha")
    assert done.returncode == 3
    message = "\n".join(line for line in done.stderr.strip().splitlines() if "==>" not in line)
    assert message.startswith(f"install: rpilinkd does not support the {named} yet:")
    assert "RP1 chip, which pigpio cannot drive" in message
    assert "Use a Pi 4, 400, 3, 2, Zero 2 W or Zero" in message  # what the user can do
    assert message.endswith("Nothing was changed.")
    assert message.count("install:") == 1  # one message
    assert not stage.root.exists()
    assert stage.calls("apt-get") == []


@pytest.mark.parametrize("arch", ["armhf", "arm64"])
def test_arm_takes_numpy_msgpack_and_systemd_from_debian(tmp_path: Path, arch: str) -> None:
    stage = Staging(tmp_path, arch=arch)
    done = stage.install()
    assert done.returncode == 0, done.stderr
    packages = stage.apt_installed()
    assert {"python3-numpy", "python3-msgpack", "python3-systemd", "python3-venv"} <= set(packages)
    assert not {"python3-dev", "gcc", "libsystemd-dev"} & set(packages)  # nothing to compile
    venv = stage.calls("python3")
    assert venv == [f"-m venv --system-site-packages {stage.root}/opt/rpilinkd/venv"]
    assert (
        "include-system-site-packages = true"
        in (stage.root / "opt/rpilinkd/venv/pyvenv.cfg").read_text()
    )
    (pip,) = stage.calls("pip")
    assert "--only-binary numpy,msgpack,systemd-python" in pip  # fail rather than compile
    assert pip.endswith(f"{REPO}[systemd]")


def test_other_architectures_take_wheels_from_pypi(tmp_path: Path) -> None:
    stage = Staging(tmp_path, arch="amd64", board=("", ""))  # a PC: a note, not a refusal
    done = stage.install()
    assert done.returncode == 0, done.stderr
    assert "not a Raspberry Pi" in done.stdout
    assert {"python3-dev", "gcc", "libsystemd-dev", "pkg-config"} <= set(stage.apt_installed())
    assert "python3-numpy" not in stage.apt_installed()
    assert stage.calls("python3") == [f"-m venv {stage.root}/opt/rpilinkd/venv"]
    (pip,) = stage.calls("pip")
    assert "--only-binary" not in pip


def test_a_rerun_applies_new_flags_and_keeps_the_users_edits(tmp_path: Path) -> None:
    stage = Staging(tmp_path)
    first = stage.install("--node", "alpha")
    assert first.returncode == 0, first.stderr
    assert "-s 5\n" in stage.dropin.read_text()
    text = stage.config.read_text()
    assert 'name = "alpha"\n' in text
    # The user's own edits: a comment after the value, MQTT turned on, a note of their own.
    text = text.replace('name = "alpha"', 'name = "alpha"  # the shed Pi')
    text = text.replace("#enabled = false\n# broker host", "enabled = true\n# broker host")
    text = text.replace("[bus]\n", "[bus]\n# my cable is 20 cm\n")
    stage.config.write_text(text)

    done = stage.install("--node", "beta", "--sample-us", "2", "--role", "master")
    assert done.returncode == 0, done.stderr
    new = stage.config.read_text()
    assert 'name = "beta"  # the shed Pi\n' in new  # the value changed, the comment stayed
    assert 'role = "master"\n' in new
    assert "[bus]\n# my cable is 20 cm\n" in new
    assert "\nsample_us = 2\n" in new
    assert "[mqtt]\n# publish status and statistics over MQTT\nenabled = true\n" in new
    assert (
        new.replace('"beta"', '"alpha"')
        .replace("sample_us = 2", "#sample_us = 5")
        .replace('role = "master"', '#role = "auto"')
        == text
    )  # nothing else changed
    for line in (
        '-name = "alpha"  # the shed Pi',
        '+name = "beta"  # the shed Pi',
        "-#sample_us = 5",
        "+sample_us = 2",
    ):
        assert f"\n{line}\n" in done.stdout  # the diff is shown
    assert "ExecStart=/usr/bin/pigpiod -g -l -f -s 2\n" in stage.dropin.read_text()
    assert "-ExecStart=/usr/bin/pigpiod -g -l -f -s 5" in done.stdout  # the drop-in's diff

    same = stage.install("--node", "beta")  # nothing new: nothing changes
    assert same.returncode == 0, same.stderr
    assert "rpilinkd.toml: unchanged" in same.stdout
    assert "rpilink.conf: unchanged" in same.stdout


def test_the_config_is_0640_root_rpilink(tmp_path: Path) -> None:
    stage = Staging(tmp_path)
    stage.root.joinpath("etc/rpilink").mkdir(parents=True)
    stage.config.write_text('[node]\nname = "old"\n')  # an old install's 0644 file
    stage.config.chmod(0o644)
    done = stage.install("--sample-us", "4")
    assert done.returncode == 0, done.stderr
    assert stage.config.read_text() == '[node]\nname = "old"\n\n[bus]\nsample_us = 4\n'
    info = stage.config.stat()
    assert oct(info.st_mode & 0o777) == "0o640"
    if os.geteuid() == 0:
        assert (info.st_uid, info.st_gid) == (0, gid_of(stage.root, "rpilink"))


def test_a_bad_live_config_stops_the_install_naming_the_key(tmp_path: Path) -> None:
    stage = Staging(tmp_path)
    stage.root.joinpath("etc/rpilink").mkdir(parents=True)
    stage.config.write_text("[bus]\nsample_us = 3\n")
    done = stage.install()
    assert done.returncode == 1
    assert "bus.sample_us" in done.stderr
    assert "is not valid" in done.stderr


def test_enabling_restarts_pigpiod_checks_it_then_starts_rpilinkd(tmp_path: Path) -> None:
    stage = Staging(tmp_path)
    done = stage.install("--enable")
    assert done.returncode == 0, done.stderr
    assert stage.calls("systemctl") == [
        "daemon-reload",
        "enable pigpiod.service",
        "restart pigpiod.service",
        "is-active --quiet pigpiod.service",
        "enable --now rpilinkd.socket",
        "enable rpilinkd.service",
        "restart rpilinkd.service",
    ]


@pytest.mark.skipif(SYSTEMD_ANALYZE is None, reason="systemd-analyze missing (systemd)")
@needs_gcc
def test_the_source_unit_and_drop_in_verify_cleanly(
    tmp_path: Path, pigpio_tarball: tuple[Path, str]
) -> None:
    tarball, sha256 = pigpio_tarball
    stage = Staging(tmp_path, os_release="trixie", pigpiod_packaged=False)
    done = stage.install("--pigpio-source", str(tarball), "--pigpio-sha256", sha256)
    assert done.returncode == 0, done.stderr
    units = tmp_path / "units"
    shutil.copytree(stage.root / "etc/systemd/system", units)
    pigpiod = str(stage.root / "usr/local/bin/pigpiod")
    for path in (units / "pigpiod.service", units / "pigpiod.service.d/rpilink.conf"):
        path.write_text(path.read_text().replace("/usr/local/bin/pigpiod", pigpiod))
    verified = subprocess.run(
        [SYSTEMD_ANALYZE, "verify", "pigpiod.service"],  # type: ignore[list-item]
        capture_output=True,
        text=True,
        check=False,
        cwd=units,
        env={**os.environ, "SYSTEMD_UNIT_PATH": f"{units}:"},
    )
    assert verified.returncode == 0, verified.stderr
    assert verified.stderr.strip() == ""  # it reads the drop-in too: a typo there would show
