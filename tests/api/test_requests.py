"""Malformed, mistyped and oversized requests: documented codes, clean disconnects.

In-process against a fake link (tests/api/conftest.py): what is checked is the
API server's parsing and answers, not the link.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from pathlib import Path

import msgpack
import pytest

from rpilinkd.api.server import ApiServer
from rpilinkd.client import Client
from rpilinkd.config import ApiConfig
from tests.api.conftest import FakeLink, Served
from tests.support.waiting import wait_until


def raw(path: Path) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(20)
    sock.connect(str(path))
    return sock


async def read_all(sock: socket.socket) -> list[dict[str, object]]:
    """Every answer until the daemon closes (read on a thread: the server runs here)."""

    def read() -> list[dict[str, object]]:
        unpacker = msgpack.Unpacker(raw=False)
        while chunk := sock.recv(65536):
            unpacker.feed(chunk)
        return list(unpacker)

    return await asyncio.to_thread(read)


async def answers(sock: socket.socket, count: int) -> list[dict[str, object]]:
    def read() -> list[dict[str, object]]:
        unpacker = msgpack.Unpacker(raw=False)
        got: list[dict[str, object]] = []
        while len(got) < count:
            unpacker.feed(sock.recv(65536))
            got += list(unpacker)
        return got

    return await asyncio.to_thread(read)


async def ping(path: Path) -> bool:
    async with Client(str(path)) as client:
        return bool((await client.request("ping"))["ok"])


async def test_garbage_gets_an_error_and_a_clean_disconnect(served: Served) -> None:
    with raw(served.path) as sock:
        sock.sendall(b"\xc1\xc1 this is not msgpack")
        (answer,) = await read_all(sock)  # then EOF
    assert answer["ok"] is False
    assert answer["code"] == "bad_request"
    assert answer["id"] is None
    assert await ping(served.path)


@pytest.mark.parametrize(
    ("sent", "code"),
    [
        ({"op": "send", "id": 5, "port": "seven", "data": b"x"}, "bad_request"),
        ({"op": "send", "id": 5, "port": 70000, "data": b"x"}, "bad_request"),
        ({"op": "send", "id": 5, "port": 7}, "bad_request"),
        ({"op": "send", "id": 5, "port": 7, "data": "text, not bytes"}, "bad_request"),
        ({"op": "bind", "id": 5, "name": "x" * 40}, "bad_request"),
        ({"op": "bind", "id": 5, "port": 7, "colour": "red"}, "bad_request"),
        ({"op": "hello", "id": 5, "client": "c" * 65}, "bad_request"),
        ({"op": "launch", "id": 5}, "unknown_op"),
        ({"op": "unbind", "id": 5, "port": 7}, "not_bound"),
        ({"op": "ping", "id": 2**64 - 1}, "ok"),  # ids are any non-negative integer
    ],
)
async def test_wrong_types_get_errors_and_the_connection_stays(
    served: Served, sent: object, code: str
) -> None:
    with raw(served.path) as sock:
        sock.sendall(msgpack.packb(sent, use_bin_type=True))
        sock.sendall(msgpack.packb({"op": "ping", "id": 99}))
        got = await answers(sock, 2)
    assert got[0].get("code", "ok") == code, got
    assert got[1] == {"id": 99, "ok": True}


@pytest.mark.parametrize(
    "sent",
    [
        [1, 2, 3],
        {"op": "ping", "id": -1},
        {"op": "ping", "id": "one"},
        {"op": "ping"},
        "ping",
        {"op": "ping", "id": 1, "keys": {str(i): i for i in range(6)}},
    ],
)
async def test_a_request_without_a_usable_id_gets_id_null_and_then_the_connection_closes(
    served: Served, sent: object
) -> None:
    """docs/api.md: id null means the daemon could not read the request; then it closes."""
    with raw(served.path) as sock:
        sock.sendall(msgpack.packb(sent, use_bin_type=True))
        got = await read_all(sock)  # then EOF
    assert [(a["id"], a["ok"]) for a in got] == [(None, False)]
    assert await ping(served.path)


async def test_oversized_request_is_refused_and_cut(served: Served) -> None:
    with raw(served.path) as sock:
        big = msgpack.packb({"op": "send", "id": 1, "port": 7, "data": bytes(3 * 1024 * 1024)})
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            await asyncio.to_thread(sock.sendall, big)  # we may be cut before the end
        got = await read_all(sock)
    assert got[0]["code"] == "too_large"
    assert await ping(served.path)


async def test_half_closed_client_still_gets_its_reply(served: Served) -> None:
    with raw(served.path) as sock:
        sock.sendall(msgpack.packb({"op": "status", "id": 3}))
        sock.shutdown(socket.SHUT_WR)
        (answer,) = await read_all(sock)
    assert answer["id"] == 3
    assert answer["link"] == "up"


async def test_500_concurrent_clients(tmp_path: Path) -> None:
    config = ApiConfig(socket=str(tmp_path / "api.sock"), max_clients=600)
    server = ApiServer(config, FakeLink(), node="fake", max_message=1 << 20)
    await server.start()
    try:

        async def one(index: int) -> str:
            async with Client(config.socket, name=f"c{index}") as client:
                await client.request("ping")
                return str((await client.status())["link"])

        assert await asyncio.gather(*(one(i) for i in range(500))) == ["up"] * 500
    finally:
        await server.close()


async def test_beyond_max_clients_is_a_clear_refusal(served: Served) -> None:
    path = str(served.path)
    clients = [Client(path) for _ in range(64)]  # the default max_clients
    await asyncio.gather(*(c.connect() for c in clients))
    try:
        with raw(served.path) as sock:
            (answer,) = await read_all(sock)
        assert answer["code"] == "too_many_clients"
    finally:
        await asyncio.gather(*(c.close() for c in clients))
    await wait_until(lambda: not served.server.sessions)  # their slots are free at once
    assert await ping(served.path)
