"""The API server under careless and hostile clients, in-process on a real socket."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import stat
import threading
import time
from pathlib import Path

import msgpack
import pytest

from rpilinkd.api.protocol import SCHEMA
from rpilinkd.api.server import HANDLERS, ApiServer
from rpilinkd.client import Client
from rpilinkd.config import ApiConfig, Config
from rpilinkd.events import Event, EventKind
from rpilinkd.link import Connection
from rpilinkd.phy.virtual import VirtualBus
from rpilinkd.service.linkdriver import LinkDriver
from rpilinkd.service.node import Node
from tests.api.conftest import FakeLink, Served
from tests.support.waiting import wait_until


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_every_op_has_exactly_one_handler() -> None:
    assert set(HANDLERS) == set(SCHEMA)
    assert len(set(HANDLERS.values())) == len(HANDLERS)  # no op falls through to another's


async def test_21000_events_to_a_client_that_keeps_up(served: Served) -> None:
    """Queued bytes are counted and uncounted with the same number: nothing leaks."""
    async with Client(str(served.path)) as client:
        await client.subscribe()
        received = 0

        async def read() -> None:
            nonlocal received
            async for _ in client.events():
                received += 1
                if received == 21_000:
                    return

        reader = asyncio.create_task(read())
        for index in range(21_000):
            served.server.publish_event(Event(EventKind.LINK_UP, {"peer": "beta", "n": index}))
            if index % 50 == 0:
                await asyncio.sleep(0)  # as the link does: events come from its turns
        await asyncio.wait_for(reader, 60)
        snapshot = served.server.snapshot()
    assert received == 21_000
    assert snapshot["events_dropped"] == 0
    assert snapshot["queue_full"] == 0
    assert snapshot["queued_bytes"] == 0


async def test_a_client_that_never_reads_its_replies_is_cut_and_its_slot_freed(
    tmp_path: Path,
) -> None:
    link = FakeLink(max_message=1024)
    config = ApiConfig(socket=str(tmp_path / "api.sock"), max_clients=1)
    server = ApiServer(config, link, node="fake", max_message=link.max_message)
    await server.start()
    try:
        baseline = open_fds()
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.connect(config.socket)
        sock.setblocking(False)
        pings = b"".join(msgpack.packb({"op": "ping", "id": i}) for i in range(1000))
        cut = False
        while not cut:  # write pings, never read a reply
            try:
                sock.send(pings)
            except BlockingIOError:
                await asyncio.sleep(0.01)
            except (BrokenPipeError, ConnectionResetError):
                cut = True
            cut = cut or server.counters["slow_clients_cut"] > 0
            await asyncio.sleep(0)
        await wait_until(lambda: not server.sessions)  # its slot ...
        async with Client(config.socket) as fresh:  # ... is free for the next client
            await fresh.request("ping")
        sock.close()
        await wait_until(lambda: open_fds() == baseline)  # and its descriptor is gone
        assert server.counters["slow_clients_cut"] == 1
    finally:
        await server.close()


def send_all(sock: socket.socket, payload: bytes) -> None:
    with contextlib.suppress(OSError):  # cut: the reader sees the end
        sock.sendall(payload)


def pipeline_read_late(path: Path, requests: list[dict[str, object]]) -> tuple[int, int]:
    """Write every request at once (from a thread) and start reading the replies only once
    they are all sent or after 1.5 s (a reader starved for a while); how many replies
    came, and their bytes."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.connect(str(path))
        sock.settimeout(30)
        payload = b"".join(msgpack.packb(r) for r in requests)
        writer = threading.Thread(target=send_all, args=(sock, payload), daemon=True)
        writer.start()
        writer.join(1.5)
        unpacker, answered, total = msgpack.Unpacker(raw=False), 0, 0
        while answered < len(requests):
            try:
                chunk = sock.recv(1 << 16)
            except ConnectionResetError:  # cut
                break
            if not chunk:
                break
            unpacker.feed(chunk)
            answered += sum(1 for _ in unpacker)
            total += len(chunk)
        writer.join(30)
    return answered, total


async def test_a_client_that_reads_late_is_paused_not_cut(served: Served) -> None:
    """Replies of a pipelining client pile up only to REPLY_PAUSE_BYTES: the server then
    answers no more until they are read (less than STALLED_S later). Before, it answered
    on and cut the client at its reply budget (2 MiB): a reader merely starved for a
    while on a loaded machine (tests/service/test_fairness.py's flood, with CPU hogs)."""
    requests: list[dict[str, object]] = [{"op": "status", "id": i} for i in range(100_000)]
    answered, total = await asyncio.to_thread(pipeline_read_late, served.path, requests)
    assert answered == len(requests)
    assert served.server.counters["slow_clients_cut"] == 0
    assert total > served.server.reply_budget  # more than the old code let pile up


async def test_a_request_left_incomplete_ends_the_connection(served: Served) -> None:
    """A half-sent request may not hold a slot forever; an idle listener may stay."""
    idle = await asyncio.open_unix_connection(str(served.path))
    reader, writer = await asyncio.open_unix_connection(str(served.path))
    writer.write(msgpack.packb({"op": "ping", "id": 1})[:-2])  # stalled mid-request
    data = await asyncio.wait_for(reader.read(), 10)  # the answer, then EOF
    (answer,) = _unpack(data)
    assert answer["id"] is None
    assert "api.idle_s" in str(answer["message"])
    assert not idle[0].at_eof()  # the idle listener is still served
    idle[1].write(msgpack.packb({"op": "ping", "id": 2}))
    assert b"\x02" in await asyncio.wait_for(idle[0].read(100), 5)
    for w in (writer, idle[1]):
        w.close()


def _unpack(data: bytes) -> list[dict[str, object]]:
    unpacker = msgpack.Unpacker(raw=False)
    unpacker.feed(data)
    return list(unpacker)


async def test_a_flood_is_answered_in_turns_and_others_are_not_starved(served: Served) -> None:
    reader, writer = await asyncio.open_unix_connection(str(served.path), limit=1 << 24)
    flood = b"".join(msgpack.packb({"op": "ping", "id": i}) for i in range(1, 20_001))
    writer.write(flood)
    lags: list[float] = []

    async def canary() -> None:  # what the link driver's timers experience
        loop = asyncio.get_running_loop()
        while True:
            due = loop.time() + 0.005
            await asyncio.sleep(0.005)
            lags.append(loop.time() - due)

    watching = asyncio.create_task(canary())
    flood_answered = 0

    async def drain() -> None:
        nonlocal flood_answered
        unpacker = msgpack.Unpacker(raw=False)
        while flood_answered < 20_000:
            unpacker.feed(await reader.read(1 << 16))
            flood_answered += sum(1 for _ in unpacker)

    draining = asyncio.create_task(drain())
    async with Client(str(served.path)) as other:
        await other.request("ping")  # answered while the flood is still being answered
        answered_before_us = flood_answered
    await asyncio.wait_for(draining, 60)
    watching.cancel()
    writer.close()
    assert answered_before_us < 20_000
    assert max(lags) < 0.25  # a 20,000-request chunk never holds the loop for long


async def test_the_socket_is_never_more_open_than_its_mode(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Bound under the mode's umask: not even briefly 0777 (a umask of 0 notwithstanding)."""
    seen: list[int] = []
    real_chmod = os.chmod

    def spy(path: str | Path, mode: int) -> None:
        seen.append(stat.S_IMODE(os.stat(path).st_mode))  # as it was, just before chmod
        real_chmod(path, mode)

    monkeypatch.setattr(os, "chmod", spy)
    old = os.umask(0)
    try:
        config = ApiConfig(socket=str(tmp_path / "api.sock"), socket_mode=0o660)
        server = ApiServer(config, FakeLink(), node="fake", max_message=1024)
        await server.start()
        await server.close()
    finally:
        os.umask(old)
    assert seen
    assert seen[0] & ~0o660 == 0


async def test_stats_are_computed_at_most_once_per_interval() -> None:
    """A flood of stats requests costs one computation per 0.1 s, not one each."""
    config = Config()
    connection = Connection(config.link, node="n", epoch=1)
    driver = LinkDriver(VirtualBus().end("a"), connection, role="auto", turn_ms=20, retry_s=1)
    node = Node(driver, node="n", backend="none", line_rate_bps=1.0, sample_us=5)
    calls = 0
    real = node._compute_stats

    def counting() -> dict[str, object]:
        nonlocal calls
        calls += 1
        return real()

    node._compute_stats = counting  # type: ignore[method-assign]
    started = time.monotonic()
    while time.monotonic() - started < 0.25:
        node.stats()
    assert 2 <= calls <= 4


async def test_a_request_on_a_connection_the_daemon_closed_fails_at_once(
    served: Served,
) -> None:
    """Not after the client's 60 s timeout: no reply can come on a closed connection."""
    client = Client(str(served.path))
    await client.connect()
    for session in list(served.server.sessions):
        session.abort("is being tested")
    await wait_until(lambda: client.closed)
    with pytest.raises(ConnectionError):
        await asyncio.wait_for(client.request("ping"), 5)
    await client.close()
