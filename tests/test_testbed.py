"""The testbed never leaves a process behind: not on a failed start-up, not when killed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rpilinkd.testbed import System
from rpilinkd.testbed.processes import child_env
from tests.support.procs import REPO


def processes_mentioning(text: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if text in cmdline and int(entry.name) != os.getpid():
            found.append(int(entry.name))
    return found


def wait_gone(text: str, timeout: float = 10.0) -> list[int]:
    deadline = time.monotonic() + timeout
    while (left := processes_mentioning(text)) and time.monotonic() < deadline:
        time.sleep(0.05)
    return left


def test_a_start_up_that_fails_half_way_stops_what_it_started(tmp_path: Path) -> None:
    system = System(tmp_path, config="[link]\nwindow = 0\n")  # the daemons refuse to start
    with pytest.raises(AssertionError, match="link not up"):
        system.start(timeout=3)
    assert not wait_gone(str(tmp_path))


@pytest.mark.parametrize("signum", [signal.SIGKILL, signal.SIGTERM])
def test_a_harness_killed_mid_setup_leaves_no_process(tmp_path: Path, signum: int) -> None:
    """Even SIGKILL, which runs no cleanup: the children die with their parent."""
    script = (
        "import sys, time; from pathlib import Path; from rpilinkd.testbed import System\n"
        "system = System(Path(sys.argv[1])).launch()\n"
        "print('launched', flush=True); time.sleep(60)\n"
    )
    harness = subprocess.Popen(
        [sys.executable, "-c", script, str(tmp_path)],
        stdout=subprocess.PIPE,
        env=child_env(),
        cwd=REPO,
    )
    assert harness.stdout is not None
    assert harness.stdout.readline() == b"launched\n"
    assert len(processes_mentioning(str(tmp_path))) >= 4  # itself, the emulator, two daemons
    harness.send_signal(signum)
    harness.wait(10)
    harness.stdout.close()
    assert not wait_gone(str(tmp_path))
