"""A whole system for end-to-end tests: rpilink-sim and two rpilinkd daemons.

Every process is a child started here, on free loopback ports and sockets in a
temp dir, stopped by PID. ``System.daemon("a")`` gives a node's handle: its
socket, its log, and ways to kill and restart it.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgpack

from tests.support.procs import Child, python_module

NODES = {"a": "alpha", "b": "beta"}


def request(path: Path, op: str, timeout: float = 10.0, **fields: Any) -> dict[str, Any]:
    """One blocking request on a fresh connection (a raw client, for checks)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        sock.connect(str(path))
        sock.sendall(msgpack.packb({"op": op, "id": 1, **fields}, use_bin_type=True))
        unpacker = msgpack.Unpacker(raw=False)
        while True:
            data = sock.recv(1 << 16)
            if not data:
                raise ConnectionError("the daemon closed the connection")
            unpacker.feed(data)
            for obj in unpacker:
                if obj.get("id") in (1, None):  # None: the daemon refused the connection
                    return obj  # type: ignore[no-any-return]


@dataclass
class Daemon:
    board: str
    name: str
    workdir: Path
    pigpio_port: int
    extra_config: str = ""
    child: Child | None = None
    env: dict[str, str] = field(default_factory=dict)

    @property
    def socket(self) -> Path:
        return self.workdir / f"{self.name}.sock"

    @property
    def log(self) -> Path:
        return self.workdir / f"{self.name}.log"

    @property
    def config(self) -> Path:
        return self.workdir / f"{self.name}.toml"

    def start(self) -> None:
        self.config.write_text(self.extra_config)
        self.child = Child(
            python_module("rpilinkd", "--config", str(self.config), "--node", self.name,
                          "--pigpio", f"127.0.0.1:{self.pigpio_port}", "--socket", str(self.socket),
                          "--log-level", "debug"),
            stderr_path=self.log, env=self.env,
        )  # fmt: skip

    def status(self) -> dict[str, Any]:
        return request(self.socket, "status")

    def wait_for(self, link: str, timeout: float = 30.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        last: dict[str, Any] | str = "no answer"
        while time.monotonic() < deadline:
            try:
                last = self.status()
                if last.get("link") == link:
                    return last
            except OSError as exc:
                last = str(exc)
            time.sleep(0.05)
        raise AssertionError(f"{self.name}: link not {link} after {timeout} s ({last}); "
                             f"log:\n{self.log.read_text(errors='replace')[-3000:]}")  # fmt: skip

    def kill(self, signum: int = signal.SIGKILL) -> None:
        assert self.child is not None
        os.kill(self.child.pid, signum)
        self.child.proc.wait(10)
        self.child.stop()

    def stop(self) -> int:
        return self.child.stop() if self.child is not None else 0


class System:
    def __init__(
        self, workdir: Path, *, sample_us: int = 5, config: str = "",
        daemon_sample_us: int | None = None,  # what the daemons are told (default: the truth)
    ) -> None:  # fmt: skip
        self.workdir = workdir
        self.control = workdir / "sim.sock"
        self.sim = Child(
            python_module("rpilinkd.sim", "--port-a", "0", "--port-b", "0", "--sample-us",
                          str(sample_us), "--control", str(self.control)),
            stderr_path=workdir / "sim.log",
        )  # fmt: skip
        ports = self.sim.read_json_line()
        bus = f"[bus]\nsample_us = {daemon_sample_us or sample_us}\n"
        self.daemons = {
            board: Daemon(board, name, workdir, ports[board], bus + config)
            for board, name in NODES.items()
        }

    def start(self) -> System:
        for daemon in self.daemons.values():
            daemon.start()
        for daemon in self.daemons.values():
            daemon.wait_for("up")
        return self

    def daemon(self, board: str) -> Daemon:
        return self.daemons[board]

    def sim_request(self, **request: Any) -> dict[str, Any]:
        with socket.socket(socket.AF_UNIX) as sock:
            sock.settimeout(10)
            sock.connect(str(self.control))
            sock.sendall(json.dumps(request).encode() + b"\n")
            data = b""
            while not data.endswith(b"\n"):
                data += sock.recv(1 << 16)
        return json.loads(data)  # type: ignore[no-any-return]

    def stop(self) -> None:
        for daemon in self.daemons.values():
            daemon.stop()
        self.sim.stop()


async def wait_until(predicate: Any, timeout: float = 20.0, step: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(step)
