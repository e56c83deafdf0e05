"""A real mosquitto broker on a free loopback port, started and stopped by PID."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

from rpilinkd.testbed import Child, free_port

MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
MOSQUITTO_PASSWD = shutil.which("mosquitto_passwd") or "/usr/bin/mosquitto_passwd"


class Broker:
    def __init__(
        self, workdir: Path, *, users: dict[str, str] | None = None, port: int | None = None
    ) -> None:
        self.workdir = workdir
        self.port = port or free_port()
        self.users = users
        self.child: Child | None = None

    def _config(self) -> Path:
        lines = [
            f"listener {self.port} 127.0.0.1",
            "persistence false",
            "user root",
            f"log_dest file {self.workdir / 'mosquitto.log'}",
        ]
        if self.users is None:
            lines.append("allow_anonymous true")
        else:
            passwords = self.workdir / "passwords"
            passwords.unlink(missing_ok=True)
            for user, password in self.users.items():
                flag = ["-c"] if not passwords.exists() else []
                subprocess.run(
                    [MOSQUITTO_PASSWD, *flag, "-b", str(passwords), user, password],
                    check=True,
                    capture_output=True,
                )
            lines += ["allow_anonymous false", f"password_file {passwords}"]
        path = self.workdir / "mosquitto.conf"
        path.write_text("\n".join(lines) + "\n")
        return path

    def start(self) -> Broker:
        self.child = Child(
            [MOSQUITTO, "-c", str(self._config())], stderr_path=self.workdir / "mosquitto.stderr"
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"mosquitto did not listen on {self.port}: {self.child.stderr_text()}")

    def stop(self) -> None:
        if self.child is not None:
            self.child.stop()  # SIGTERM by PID, SIGKILL if it lingers
        self.child = None
