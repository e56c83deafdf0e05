"""Hostile and careless clients: the daemon answers clearly and keeps serving (must-show 4)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Iterator
from pathlib import Path

import msgpack
import pytest

from rpilinkd.client import Client
from rpilinkd.errors import QueueFullError
from rpilinkd.testbed import System, request


@pytest.fixture
def roomy(tmp_path: Path) -> Iterator[System]:
    running = System(tmp_path, config="[api]\nmax_clients = 600\n").start()
    try:
        yield running
    finally:
        running.stop()


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


def test_garbage_gets_an_error_and_a_clean_disconnect(system: System) -> None:
    path = system.daemon("a").socket
    with raw(path) as sock:
        sock.sendall(b"\xc1\xc1 this is not msgpack")
        (answer,) = read_all(sock)  # then EOF
    assert answer["ok"] is False
    assert answer["code"] == "bad_request"
    assert answer["id"] is None
    assert request(path, "ping")["ok"] is True


@pytest.mark.parametrize(
    ("sent", "code"),
    [
        ({"op": "send", "id": 5, "port": "seven", "data": b"x"}, "bad_request"),
        ({"op": "send", "id": 5, "port": 70000, "data": b"x"}, "bad_request"),
        ({"op": "send", "id": 5, "port": 7}, "bad_request"),
        ({"op": "send", "id": 5, "port": 7, "data": "text, not bytes"}, "bad_request"),
        ({"op": "bind", "id": 5, "name": "x" * 40}, "bad_request"),
        ({"op": "bind", "id": 5, "port": 7, "colour": "red"}, "bad_request"),
        ({"op": "launch", "id": 5}, "unknown_op"),
        ({"op": "unbind", "id": 5, "port": 7}, "not_bound"),
        ({"op": "ping", "id": 2**64 - 1}, "ok"),  # ids are any non-negative integer
    ],
)
def test_wrong_types_get_errors_and_the_connection_stays(
    system: System, sent: object, code: str
) -> None:
    with raw(system.daemon("a").socket) as sock:
        sock.sendall(msgpack.packb(sent, use_bin_type=True))
        sock.sendall(msgpack.packb({"op": "ping", "id": 99}))
        unpacker = msgpack.Unpacker(raw=False)
        answers: list[dict[str, object]] = []
        while len(answers) < 2:
            unpacker.feed(sock.recv(65536))
            answers += list(unpacker)
    assert answers[0].get("code", "ok") == code, answers
    assert answers[1] == {"id": 99, "ok": True}


@pytest.mark.parametrize(
    "sent",
    [[1, 2, 3], {"op": "ping", "id": -1}, {"op": "ping", "id": "one"}, {"op": "ping"}, "ping",
     {"op": "ping", "id": 1, "keys": {str(i): i for i in range(6)}}],
)  # fmt: skip
def test_a_request_without_a_usable_id_gets_id_null_and_then_the_connection_closes(
    system: System, sent: object
) -> None:
    """docs/api.md: id null means the daemon could not read the request; then it closes."""
    with raw(system.daemon("a").socket) as sock:
        sock.sendall(msgpack.packb(sent, use_bin_type=True))
        answers = read_all(sock)  # then EOF
    assert [(a["id"], a["ok"]) for a in answers] == [(None, False)]
    assert request(system.daemon("a").socket, "ping")["ok"] is True


def test_oversized_request_is_refused_and_cut(system: System) -> None:
    with raw(system.daemon("a").socket) as sock:
        big = msgpack.packb({"op": "send", "id": 1, "port": 7, "data": bytes(3 * 1024 * 1024)})
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            sock.sendall(big)  # the daemon may cut us before we finish writing
        answers = read_all(sock)
    assert answers[0]["code"] == "too_large"
    assert request(system.daemon("a").socket, "ping")["ok"] is True


def test_half_closed_client_still_gets_its_reply(system: System) -> None:
    with raw(system.daemon("a").socket) as sock:
        sock.sendall(msgpack.packb({"op": "status", "id": 3}))
        sock.shutdown(socket.SHUT_WR)
        (answer,) = read_all(sock)
    assert answer["id"] == 3
    assert answer["link"] == "up"


async def test_500_concurrent_clients(roomy: System) -> None:
    path = str(roomy.daemon("a").socket)

    async def one(index: int) -> str:
        async with Client(path, name=f"c{index}") as client:
            await client.request("ping")
            return str((await client.status())["link"])

    links = await asyncio.gather(*(one(i) for i in range(500)))
    assert links == ["up"] * 500
    assert request(roomy.daemon("a").socket, "ping")["ok"] is True


async def test_beyond_max_clients_is_a_clear_refusal(system: System) -> None:
    path = str(system.daemon("a").socket)
    clients = [Client(path) for _ in range(64)]  # the default max_clients
    await asyncio.gather(*(c.connect() for c in clients))
    try:
        with raw(Path(path)) as sock:
            (answer,) = read_all(sock)
        assert answer["code"] == "too_many_clients"
    finally:
        await asyncio.gather(*(c.close() for c in clients))
    for _ in range(100):  # the daemon notices the 64 closed connections soon after
        if request(Path(path), "ping")["ok"]:
            break
        await asyncio.sleep(0.05)
    else:
        raise AssertionError("the daemon did not serve again after the clients left")


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
