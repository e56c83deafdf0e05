"""Child processes that cannot outlive their parent, stopped by PID.

Children run this source tree's code (``PYTHONPATH`` = the directory that
holds the ``rpilinkd`` package) with the parent's interpreter. Each child is
the leader of its own process group (Ctrl-C in a terminal reaches only the
parent, which then stops them in order) and is told by the kernel to exit
when the parent dies (``PR_SET_PDEATHSIG``), so even a SIGKILLed test run
leaves nothing behind.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

import rpilinkd

SOURCE_ROOT = Path(rpilinkd.__file__).resolve().parents[1]
PR_SET_PDEATHSIG = 1


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def child_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(SOURCE_ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    for inherited in ("NOTIFY_SOCKET", "LISTEN_FDS", "LISTEN_PID", "WATCHDOG_USEC"):
        env.pop(inherited, None)
    if extra:
        env.update(extra)
    return env


def python_module(module: str, *args: str) -> list[str]:
    return [sys.executable, "-m", module, *args]


def _die_with_parent() -> None:  # runs in the child, between fork and exec
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):  # not Linux: the parent's stop() still works
        pass


class Child:
    """A child process whose stdout is read line by line and whose stderr goes to a file."""

    def __init__(
        self,
        argv: Sequence[str],
        *,
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
        stderr_path: Path | None = None,
    ) -> None:
        self.argv = list(argv)
        self.stderr_path = stderr_path
        # appended: a restarted daemon keeps its earlier life in the same log
        self._stderr: IO[bytes] | None = open(stderr_path, "ab") if stderr_path else None  # noqa: SIM115
        try:
            self.proc = subprocess.Popen(
                self.argv,
                stdout=subprocess.PIPE,
                stderr=self._stderr if self._stderr is not None else subprocess.DEVNULL,
                env=child_env(env),
                cwd=cwd or SOURCE_ROOT,
                start_new_session=True,
                preexec_fn=_die_with_parent,  # noqa: PLW1509 - only prctl, no locks
            )
        except BaseException:
            if self._stderr is not None:
                self._stderr.close()
            raise

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def running(self) -> bool:
        return self.proc.poll() is None

    def read_json_line(self, timeout: float = 20.0) -> dict[str, Any]:
        """Wait for the first stdout line that parses as a JSON object."""
        assert self.proc.stdout is not None
        deadline = time.monotonic() + timeout
        os.set_blocking(self.proc.stdout.fileno(), False)
        buffer = b""
        while time.monotonic() < deadline:
            chunk = self.proc.stdout.read()
            if chunk:
                buffer += chunk
                while b"\n" in buffer:
                    line, buffer = buffer.split(b"\n", 1)
                    try:
                        value = json.loads(line)
                    except ValueError:
                        continue
                    if isinstance(value, dict):
                        os.set_blocking(self.proc.stdout.fileno(), True)
                        return value
            elif self.proc.poll() is not None:
                break
            time.sleep(0.02)
        raise RuntimeError(f"{self.argv[:4]} gave no JSON line; stderr: {self.stderr_text()}")

    def stderr_text(self, tail: int = 4000) -> str:
        if self.stderr_path and self.stderr_path.exists():
            return self.stderr_path.read_text(errors="replace")[-tail:]
        return "(not captured)"

    def signal(self, signum: int) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signum)

    def stop(self, timeout: float = 10.0) -> int:
        """SIGTERM by PID, then SIGKILL (the whole process group) if it does not exit."""
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout)
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        return self.proc.returncode
