"""Run the real scripts/install against a staging root, with stand-ins for what would
change this machine or take long: apt-get, apt-cache, dpkg, dpkg-query, systemctl,
journalctl, and the virtualenv (``python3 -m venv``: a directory whose ``bin/python``
logs ``-m pip`` calls and runs this checkout's code for anything else). Every other
command (the installer's own Python, systemd-sysusers, gcc, install, sed) is real.

Each stand-in appends one line to ``calls.log``: its name and arguments.
"""

from __future__ import annotations

import hashlib
import os
import shlex
import stat
import subprocess
import sys
import tarfile
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.procs import REPO

INSTALL = REPO / "scripts" / "install"
DEPLOY = REPO / "scripts" / "deploy"
TEST_PLATFORMS = REPO / "scripts" / "test-platforms"

PI4_MODEL = "Raspberry Pi 4 Model B Rev 1.4\0"
PI4_CPUINFO = "processor\t: 0\nRevision\t: c03114\nModel\t\t: Raspberry Pi 4 Model B Rev 1.4\n"
OS_RELEASES = {
    "bookworm": 'PRETTY_NAME="Raspbian GNU/Linux 12 (bookworm)"\nID=raspbian\nID_LIKE=debian\n'
    'VERSION_ID="12"\nVERSION_CODENAME=bookworm\n',
    "trixie": 'PRETTY_NAME="Debian GNU/Linux 13 (trixie)"\nID=debian\nVERSION_ID="13"\n'
    "VERSION_CODENAME=trixie\n",
}
# What `apt-cache policy pigpiod` prints on Raspberry Pi OS Bookworm; plain Debian and
# Trixie print nothing at all for a package apt does not know.
PIGPIOD_POLICY = """pigpiod:
  Installed: (none)
  Candidate: 1.79-1+rpt1
  Version table:
     1.79-1+rpt1 500
        500 http://archive.raspberrypi.com/debian bookworm/main arm64 Packages
"""


def run(
    *args: str | Path, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(a) for a in args],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
        env={**os.environ, **(env or {})},
        cwd=cwd,
    )


def write_script(path: Path, body: str) -> None:
    path.write_text(f"#!/usr/bin/env bash\n{body}\n")
    path.chmod(path.stat().st_mode | stat.S_IEXEC)


def make_pigpio_tarball(directory: Path, version: int = 79) -> tuple[Path, str]:
    """A stand-in pigpio source tree: pigpiod.c that prints its version, as ``-v`` does."""
    tree = directory / f"pigpio-{version}"
    tree.mkdir(parents=True)
    (tree / "pigpio.h").write_text(f"#define PIGPIO_VERSION {version}\n")
    (tree / "pigpiod.c").write_text(
        '#include <stdio.h>\n#include "pigpio.h"\n'
        'int main(void) { printf("%d\\n", PIGPIO_VERSION); return 0; }\n'
    )
    (tree / "pigpio.c").write_text("int pigpio_stand_in;\n")
    (tree / "command.c").write_text("int command_stand_in;\n")
    tarball = directory / f"pigpio-{version}.tar.gz"
    with tarfile.open(tarball, "w:gz") as archive:
        archive.add(tree, arcname=tree.name)
    return tarball, hashlib.sha256(tarball.read_bytes()).hexdigest()


@dataclass
class Staging:
    """A staging root, a bin directory of stand-ins and the inputs detection reads."""

    base: Path
    board: tuple[str, str] = (PI4_MODEL, PI4_CPUINFO)
    os_release: str = "bookworm"
    arch: str = "arm64"
    pigpiod_packaged: bool = True
    extra_env: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.root = self.base / "root"
        self.bin = self.base / "bin"
        self.bin.mkdir(parents=True, exist_ok=True)
        self.calls_file = self.base / "calls.log"
        self.calls_file.touch()
        log = f'echo "$(basename "$0") $*" >> {shlex.quote(str(self.calls_file))}'
        python = shlex.quote(sys.executable)
        repo = shlex.quote(str(REPO))
        for name in ("apt-get", "journalctl", "systemctl"):
            write_script(self.bin / name, log)
        write_script(self.bin / "dpkg-query", f"{log}\nexit 1")  # nothing is installed yet
        write_script(
            self.bin / "apt-cache",
            f'{log}\n[ -z "${{FAKE_PIGPIOD_POLICY:-}}" ] || printf "%s" "$FAKE_PIGPIOD_POLICY"',
        )
        write_script(self.bin / "dpkg", f'{log}\n[ "$1" = -L ] && echo /usr/bin/pigpiod; exit 0')
        # python3 -m venv [--system-site-packages] DIR: a venv whose pip only logs and
        # whose python, rpilinkd and rpilink run this checkout with the test's Python.
        calls = shlex.quote(str(self.calls_file))
        write_script(
            self.bin / "python3",
            f"""
py={python} repo={repo}
if [ "${{1:-}}" = -m ] && [ "${{2:-}}" = venv ]; then
    {log}
    shift 2; site=false
    [ "$1" = --system-site-packages ] && {{ site=true; shift; }}
    mkdir -p "$1/bin"
    printf 'include-system-site-packages = %s\\n' "$site" > "$1/pyvenv.cfg"
    cat > "$1/bin/python" <<EOF
#!/usr/bin/env bash
[ "\\$1 \\$2" = "-m pip" ] && {{ echo "pip \\$*" >> {calls}; exit 0; }}
PYTHONPATH=$repo exec $py "\\$@"
EOF
    for entry in rpilinkd:rpilinkd.service rpilink:rpilinkd.cli; do
        printf '#!/bin/sh\\nPYTHONPATH=%s exec %s -m %s "$@"\\n' "$repo" "$py" "${{entry#*:}}" \\
            > "$1/bin/${{entry%%:*}}"
    done
    chmod +x "$1/bin/python" "$1/bin/rpilinkd" "$1/bin/rpilink"
    exit 0
fi
exec "$py" "$@"
""",
        )
        self.model_file = self.base / "model"
        self.cpuinfo = self.base / "cpuinfo"
        self.os_release_file = self.base / "os-release"

    def env(self) -> dict[str, str]:
        self.model_file.write_text(self.board[0])
        self.cpuinfo.write_text(self.board[1])
        self.os_release_file.write_text(OS_RELEASES.get(self.os_release, self.os_release))
        return {
            "PATH": f"{self.bin}{os.pathsep}{os.environ['PATH']}",
            "RPILINK_MODEL_FILE": str(self.model_file),
            "RPILINK_CPUINFO": str(self.cpuinfo),
            "RPILINK_DT_REVISION": str(self.base / "no-dt-revision"),
            "RPILINK_OS_RELEASE": str(self.os_release_file),
            "RPILINK_ARCH": self.arch,
            "FAKE_PIGPIOD_POLICY": PIGPIOD_POLICY if self.pigpiod_packaged else "",
            **self.extra_env,
        }

    def install(self, *args: str | Path) -> subprocess.CompletedProcess[str]:
        """scripts/install --root ROOT --apt ARGS..., with a fresh calls log."""
        self.calls_file.write_text("")
        return run(INSTALL, "--root", self.root, "--apt", *args, env=self.env())

    def calls(self, program: str) -> list[str]:
        return [
            line.split(" ", 1)[1] if " " in line else ""
            for line in self.calls_file.read_text().splitlines()
            if line.split(" ", 1)[0] == program
        ]

    def apt_installed(self) -> list[str]:
        """The packages of the apt-get install call (empty when none)."""
        installs = [c for c in self.calls("apt-get") if " install " in f" {c} "]
        return installs[-1].split("--no-install-recommends", 1)[1].split() if installs else []

    @property
    def config(self) -> Path:
        return self.root / "etc/rpilink/rpilinkd.toml"

    @property
    def dropin(self) -> Path:
        return self.root / "etc/systemd/system/pigpiod.service.d/rpilink.conf"
