"""Start the project's programs as child processes and stop them by PID.

Children run this checkout's code (``PYTHONPATH`` = the repository) with the
test's interpreter, on loopback ports or temp-dir sockets only.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def child_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    env.pop("NOTIFY_SOCKET", None)
    env.pop("LISTEN_FDS", None)
    env.pop("LISTEN_PID", None)
    if extra:
        env.update(extra)
    return env


class Child:
    """A child process whose stdout is read line by line."""

    def __init__(
        self,
        argv: Sequence[str],
        *,
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
        stderr_path: Path | None = None,
    ) -> None:
        self.argv = list(argv)
        self._stderr = open(stderr_path, "wb") if stderr_path else subprocess.DEVNULL  # noqa: SIM115
        self.stderr_path = stderr_path
        self.proc = subprocess.Popen(
            self.argv,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            env=child_env(env),
            cwd=cwd or REPO,
            start_new_session=True,
        )

    @property
    def pid(self) -> int:
        return self.proc.pid

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

    def stderr_text(self) -> str:
        if self.stderr_path and self.stderr_path.exists():
            return self.stderr_path.read_text(errors="replace")[-4000:]
        return "(not captured)"

    def signal(self, signum: int) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signum)

    def stop(self, timeout: float = 10.0) -> int:
        """SIGTERM by PID, then SIGKILL if it does not exit in time."""
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout)
        if self._stderr is not subprocess.DEVNULL:
            self._stderr.close()  # type: ignore[union-attr]
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        return self.proc.returncode


def python_module(module: str, *args: str) -> list[str]:
    return [sys.executable, "-m", module, *args]
