"""Two daemons on the emulator, used through the CLI and the client library (issue 5)."""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rpilinkd.client import Client
from rpilinkd.errors import NoListenerError, PeerRestartedError, ShuttingDownError
from rpilinkd.testbed import System
from rpilinkd.testbed.processes import child_env
from tests.support.procs import REPO
from tests.support.traffic import collect, pump


def rpilink(
    system: System, board: str, *args: str, data: bytes | None = None
) -> subprocess.CompletedProcess[bytes]:
    socket = str(system.daemon(board).socket)
    return subprocess.run(
        [sys.executable, "-m", "rpilinkd.cli", "--socket", socket, *args],
        input=data,
        capture_output=True,
        env=child_env(),
        cwd=REPO,
        timeout=60,
        check=False,
    )


async def test_send_hello_through_the_cli(shared: System) -> None:
    async with Client(str(shared.daemon("b").socket)) as b:
        await b.bind(7)
        done = await asyncio.to_thread(rpilink, shared, "a", "send", "7", "hello")
        assert done.returncode == 0, done.stderr
        message = await b.receive(timeout=10)
    assert message.data == b"hello"
    assert message.port == 7


async def test_messages_both_ways_in_order(shared: System, full_run: bool) -> None:
    """500 each way (1,000 in all) under ``scripts/test --all``, 120 by default."""
    rng = random.Random(42)
    count = 500 if full_run else 120
    async with (
        Client(str(shared.daemon("a").socket)) as a,
        Client(str(shared.daemon("b").socket)) as b,
    ):
        await a.bind(11)
        await b.bind(12)
        sizes = (0, 1, 100, 255, 256, 257, 2000, 9000)  # around the frame payload, and more
        outgoing = {
            "a": [rng.randbytes(rng.choice(sizes)) for _ in range(count)],
            "b": [rng.randbytes(rng.randint(0, 3000)) for _ in range(count)],
        }

        got = await asyncio.gather(
            collect(b, count, 60),
            collect(a, count, 60),
            pump(a, 12, outgoing["a"]),
            pump(b, 11, outgoing["b"]),
        )
    # concurrent sends may overtake each other before the daemon: compare as multisets,
    # and check the order with a single sender below
    assert sorted(got[0]) == sorted(outgoing["a"])
    assert sorted(got[1]) == sorted(outgoing["b"])
    roles = {shared.daemon(x).status()["role"] for x in "ab"}
    assert roles == {"master", "slave"}
    assert shared.sim_request(op="stats")["stats"]["shorts_total"] == 0


async def test_one_sender_keeps_its_order(shared: System) -> None:
    async with (
        Client(str(shared.daemon("a").socket)) as a,
        Client(str(shared.daemon("b").socket)) as b,
    ):
        await b.bind(5)
        sends = [asyncio.create_task(a.send(5, str(i).encode())) for i in range(60)]
        await asyncio.gather(*sends)
        received = [int((await b.receive(timeout=30)).data) for _ in range(60)]
    assert received == list(range(60))  # 60: under the 64 sends a client may have waiting


async def test_errors_have_stable_codes(shared: System) -> None:
    async with Client(str(shared.daemon("a").socket)) as a:
        with pytest.raises(NoListenerError, match="port 9"):
            await a.send(9, b"nobody there")
    done = rpilink(shared, "a", "send", "9", "x")
    assert done.returncode == 1
    assert b"no_listener" in done.stderr


def test_status_cli(shared: System) -> None:
    done = rpilink(shared, "a", "status", "--json")
    assert done.returncode == 0
    assert b'"link": "up"' in done.stdout
    human = rpilink(shared, "b", "status")
    assert b"link up as" in human.stdout
    assert b"0 CRC errors" in human.stdout


def test_cat_pipes_both_ways(shared: System) -> None:
    listener = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "rpilinkd.cli",
            "--socket",
            str(shared.daemon("b").socket),
            "listen",
            "9",
            "--raw",
            "--count",
            "1",
        ],
        stdout=subprocess.PIPE,
        env=child_env(),
        cwd=REPO,
    )
    time.sleep(1.0)
    done = rpilink(shared, "a", "cat", "9", data=b"through the cable\n")
    out, _ = listener.communicate(timeout=30)
    assert done.returncode == 0, done.stderr
    assert out == b"through the cable\n"


async def test_a_send_in_flight_when_the_peer_dies_fails_once_it_restarts(system: System) -> None:
    """It waits for a relink (link.resume_s); the peer coming back as a new daemon (a new
    epoch) fails it with peer_restarted: that daemon never saw it."""
    a_daemon, b_daemon = system.daemon("a"), system.daemon("b")
    async with Client(str(a_daemon.socket)) as a:
        async with Client(str(b_daemon.socket)) as b:
            await b.bind(3)
        b_daemon.kill(signal.SIGKILL)
        pending = asyncio.create_task(a.send(3, b"in flight when the peer died"))
        a_daemon.wait_for("arbitrating", timeout=10)  # the keepalive noticed
        assert not pending.done()
        b_daemon.start()
        with pytest.raises(PeerRestartedError):
            await asyncio.wait_for(pending, 30)
        a_daemon.wait_for("up")
        async with Client(str(b_daemon.socket)) as b:
            await b.bind(3)
            await a.send(3, b"back again")
            assert (await b.receive(timeout=10)).data == b"back again"
    assert a_daemon.child is not None
    assert a_daemon.child.proc.poll() is None  # this daemon never restarted


async def test_sigterm_fails_pending_sends_with_shutting_down(system: System) -> None:
    a_daemon, b_daemon = system.daemon("a"), system.daemon("b")
    async with Client(str(b_daemon.socket)) as b:
        await b.bind(4)
        assert b_daemon.child is not None
        assert a_daemon.child is not None
        os.kill(b_daemon.child.pid, signal.SIGSTOP)  # the peer hears but never answers
        try:
            async with Client(str(a_daemon.socket)) as a:
                pending = asyncio.create_task(a.send(4, b"never answered"))
                await asyncio.sleep(0.2)  # well inside the keepalive: the link is still up
                assert not pending.done()
                stopping_at = time.monotonic()
                os.kill(a_daemon.child.pid, signal.SIGTERM)
                with pytest.raises(ShuttingDownError):
                    await asyncio.wait_for(pending, 5)
            assert a_daemon.child.proc.wait(10) == 0
            assert time.monotonic() - stopping_at < 5  # nothing hangs
        finally:
            os.kill(b_daemon.child.pid, signal.SIGCONT)


CABLE = [f"D{i}" for i in range(8)] + [
    f"{line}_{way}" for line in ("STB", "FRM", "REQ", "RW") for way in ("AB", "BA")
]


async def test_a_cut_and_mended_cable_and_a_restarted_pigpiod_renegotiate(system: System) -> None:
    a_daemon, b_daemon = system.daemon("a"), system.daemon("b")
    async with Client(str(a_daemon.socket)) as a, Client(str(b_daemon.socket)) as b:
        await b.bind(6)
        for wire in CABLE:  # unplug the whole cable
            assert system.sim_request(op="fault", kind="cut", wire=wire)["ok"]
        await asyncio.to_thread(a_daemon.wait_for, "arbitrating", 5)
        await asyncio.to_thread(b_daemon.wait_for, "arbitrating", 5)
        during = asyncio.create_task(a.send(6, b"sent while the cable was out"))
        await asyncio.sleep(0.3)
        assert not during.done()  # it waits for the relink (link.resume_s)
        assert system.sim_request(op="clear-faults")["ok"]  # plug it back in
        await asyncio.wait_for(during, 15)  # answered ok once the peer had it
        assert (await b.receive(timeout=10)).data == b"sent while the cable was out"
        for daemon in (a_daemon, b_daemon):
            await asyncio.to_thread(daemon.wait_for, "up", 15)
        await a.send(6, b"mended")
        assert (await b.receive(timeout=10)).data == b"mended"
        assert system.sim_request(op="restart", board="a", down_s=0.3)["ok"]  # pigpiod restarts
        await asyncio.to_thread(a_daemon.wait_for, "up", 20)
        await a.send(6, b"pigpiod is back")
        assert (await b.receive(timeout=10)).data == b"pigpiod is back"
        assert (await a.status())["link_ups"] == 3  # first, after the cable, after pigpiod
    for daemon in (a_daemon, b_daemon):
        assert daemon.child is not None
        assert daemon.child.proc.poll() is None  # neither daemon restarted


async def test_bench_reports_what_it_sent(shared: System) -> None:
    async with Client(str(shared.daemon("b").socket)) as b:
        await b.bind(9)
        done = await asyncio.to_thread(
            rpilink, shared, "a", "bench", "9", "--count", "20", "--size", "100", "--json"
        )
        for _ in range(20):
            await b.receive(timeout=10)
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert (summary["messages"], summary["failed"], summary["bytes_per_message"]) == (20, {}, 100)
    assert summary["latency_p50_ms"] > 0


async def test_the_16_bit_bus_carries_messages_both_ways(tmp_path: Path) -> None:
    """bus.width = 16 on both daemons and the emulator's wide cable (issue 15)."""
    rng = random.Random(16)
    with System(tmp_path, sample_us=1, width=16) as system:
        async with (
            Client(str(system.daemon("a").socket)) as a,
            Client(str(system.daemon("b").socket)) as b,
        ):
            await a.bind(5)
            await b.bind(5)
            for sender, receiver in ((a, b), (b, a)):
                sent = [rng.randbytes(rng.randint(0, 3000)) for _ in range(20)]
                for data in sent:
                    await sender.send(5, data)
                assert [(await receiver.receive(timeout=10)).data for _ in sent] == sent
        assert system.sim_stats()["shorts_total"] == 0
        assert system.daemon("a").status()["line_rate_Bps"] == 800_000
