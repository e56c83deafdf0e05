"""A client that never reads, between two daemons: the others and the link go on.

(Request parsing is tested in-process: tests/api.)
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import msgpack
import pytest

from rpilinkd.client import Client
from rpilinkd.errors import QueueFullError
from rpilinkd.testbed import System, request


def raw(path: Path) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(20)
    sock.connect(str(path))
    return sock


def read_all(sock: socket.socket) -> list[dict[str, object]]:
    unpacker = msgpack.Unpacker(raw=False)
    while chunk := sock.recv(65536):
        unpacker.feed(chunk)
    return list(unpacker)


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


@pytest.fixture
def small_queues(tmp_path: Path) -> Iterator[System]:
    running = System(tmp_path, sample_us=1, config="[api]\nclient_queue = 16\n").start()
    try:
        yield running
    finally:
        running.stop()


async def test_a_client_that_never_reads_cannot_hurt_the_others(small_queues: System) -> None:
    system = small_queues
    a_path, b_path = system.daemon("a").socket, system.daemon("b").socket
    b_pid = system.daemon("b").child.pid  # type: ignore[union-attr]
    stuck = raw(b_path)  # binds port 21 and then never reads again
    stuck.sendall(msgpack.packb({"op": "bind", "id": 1, "port": 21}))
    stuck.recv(1024)
    try:
        before = rss_kib(b_pid)
        refused = 0
        async with Client(str(a_path)) as sender, Client(str(b_path)) as healthy:
            await healthy.bind(22)
            chunk = bytes(60_000)
            for _ in range(40):  # 2.4 MB at a reader that reads nothing
                try:
                    await sender.send(21, chunk)
                except QueueFullError:
                    refused += 1
            await sender.send(22, b"still flowing")  # another port, another client
            assert (await healthy.receive(timeout=20)).data == b"still flowing"
        growth_mib = (rss_kib(b_pid) - before) / 1024
    finally:
        stuck.close()
    assert refused > 0
    assert refused >= 40 - 16 - 8  # its queue holds 16 (a few more fill the socket buffers)
    assert growth_mib < 40  # bounded by the per-client queue
    assert request(b_path, "stats")["api"]["queue_full"] >= refused
