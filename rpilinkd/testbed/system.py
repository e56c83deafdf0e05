"""A whole system: rpilink-sim and two rpilinkd daemons, each a child process.

``with System(workdir) as system:`` starts the emulator (free loopback ports,
a control socket) and a daemon on each board, waits until the link is up,
and stops everything on the way out; a start-up that fails half-way stops
what had started before raising. ``system.daemon("a")`` is a node's handle:
its socket, log and config, and ways to kill and restart it.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import msgpack

from rpilinkd.testbed.processes import Child, python_module

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
                if isinstance(obj, dict) and obj.get("id") in (1, None):  # None: refused
                    return obj


@dataclass
class Daemon:
    board: str
    name: str
    workdir: Path
    pigpio_port: int
    config_text: str = ""
    env: dict[str, str] = field(default_factory=dict)
    child: Child | None = None
    node: str = ""  # the name it tells the peer (default: ``name``)
    log_level: str = "debug"  # the tests read the logs; a benchmark runs as users do

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
        """Start (or start again) the daemon; returns at once (see :meth:`wait_for`)."""
        if self.child is not None:
            self.child.stop()
        self.config.write_text(self.config_text)
        self.child = Child(
            python_module(
                "rpilinkd",
                "--config",
                str(self.config),
                "--node",
                self.node or self.name,
                "--pigpio",
                f"127.0.0.1:{self.pigpio_port}",
                "--socket",
                str(self.socket),
                "--log-level",
                self.log_level,
            ),
            stderr_path=self.log,
            env=self.env,
        )

    def request(self, op: str, **fields: Any) -> dict[str, Any]:
        return request(self.socket, op, **fields)

    def status(self) -> dict[str, Any]:
        return self.request("status")

    def answering(self) -> bool:
        try:
            self.status()
        except OSError:
            return False
        return True

    def wait_for(self, link: str, timeout: float = 30.0) -> dict[str, Any]:
        """Poll ``status`` until the link is in state ``link``; AssertionError with the log."""
        deadline = time.monotonic() + timeout
        last: dict[str, Any] | str = "no answer"
        while time.monotonic() < deadline:
            try:
                last = self.status()
                if last.get("link") == link:
                    return last
            except OSError as exc:
                last = str(exc)
            time.sleep(0.02)
        raise AssertionError(
            f"{self.name}: link not {link} after {timeout} s ({last}); "
            f"log:\n{self.log.read_text(errors='replace')[-3000:]}"
        )

    def kill(self, signum: int = signal.SIGKILL) -> None:
        assert self.child is not None
        os.kill(self.child.pid, signum)
        self.child.proc.wait(10)
        self.child.stop()

    def stop(self) -> int:
        return self.child.stop() if self.child is not None else 0


class System:
    def __init__(
        self,
        workdir: Path,
        *,
        sample_us: int = 5,
        config: str = "",
        daemon_sample_us: int | None = None,  # what the daemons are told (default: the truth)
        sim_args: tuple[str, ...] = (),
        node_names: dict[str, str] | None = None,  # e.g. both "raspberrypi"
        width: int = 8,  # the bus's data lines (16: the wide bus and its pin map)
        log_level: str = "debug",  # the daemons'
    ) -> None:
        self.workdir = workdir
        self.sample_us = sample_us
        self.control = workdir / "sim.sock"
        self.node_names = node_names or {}
        self.sim: Child | None = None
        bus = f"[bus]\nsample_us = {daemon_sample_us or sample_us}\nwidth = {width}\n"
        if width == 16:  # the emulator's cable must carry the wide map
            sim_args = (*sim_args, "--width", "16")
        self.sim_args = sim_args
        self.config_text = bus + config
        self.daemons: dict[str, Daemon] = {}
        self.log_level = log_level

    def launch(self, boards: tuple[str, ...] = ("a", "b")) -> System:
        """Start the emulator and the daemons of ``boards`` without waiting for the link
        (a board without a daemon is a Pi that is powered off, as far as the peer knows)."""
        try:
            self.sim = Child(
                python_module(
                    "rpilinkd.sim",
                    "--port-a",
                    "0",
                    "--port-b",
                    "0",
                    "--sample-us",
                    str(self.sample_us),
                    "--control",
                    str(self.control),
                    *self.sim_args,
                ),
                stderr_path=self.workdir / "sim.log",
            )
            ports = self.sim.read_json_line()
            self.daemons = {  # two boards: two serial numbers (telemetry tells them apart)
                board: Daemon(
                    board,
                    name,
                    self.workdir,
                    ports[board],
                    self.config_text,
                    env={"RPILINK_MACHINE_TAG": f"00000{board}"},
                    node=self.node_names.get(board, ""),
                    log_level=self.log_level,
                )
                for board, name in NODES.items()
            }
            for board in boards:
                self.daemons[board].start()
        except BaseException:
            self.stop()
            raise
        return self

    def start(self, timeout: float = 30.0) -> System:
        """Launch and wait until both daemons report the link up."""
        self.launch()
        try:
            for daemon in self.daemons.values():
                daemon.wait_for("up", timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def daemon(self, board: str) -> Daemon:
        return self.daemons[board]

    def sim_request(self, **request: Any) -> dict[str, Any]:
        """One request on the emulator's control socket (JSON lines)."""
        with socket.socket(socket.AF_UNIX) as sock:
            sock.settimeout(10)
            sock.connect(str(self.control))
            sock.sendall(json.dumps(request).encode() + b"\n")
            data = b""
            while not data.endswith(b"\n"):
                chunk = sock.recv(1 << 16)
                if not chunk:
                    raise ConnectionError("the emulator closed its control socket")
                data += chunk
        answer: dict[str, Any] = json.loads(data)
        return answer

    def sim_stats(self) -> dict[str, Any]:
        stats: dict[str, Any] = self.sim_request(op="stats")["stats"]
        return stats

    def stop(self) -> None:
        """Stop every process this system started (daemons first); safe to call twice."""
        for daemon in self.daemons.values():
            daemon.stop()
        if self.sim is not None:
            self.sim.stop()
