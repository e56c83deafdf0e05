"""Recovery: what a real cable, a busy Pi and a powered-off peer do to the link.

Each test runs the emulator and real daemons (processes), and judges by what
the documented interfaces show: the socket API, the emulator's control socket
and its counters (shorts, waves), its VCD trace. No test asserts on a clock:
the figures (relink and link-up times) come from ``scripts/soak``.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from pathlib import Path

from rpilinkd.client import Client
from rpilinkd.config import Config
from rpilinkd.link.connection import PROTOCOL_VERSION, Connection
from rpilinkd.link.frames import Flag, Frame, Kind
from rpilinkd.link.hello import HELLO_FIXED
from rpilinkd.phy import create_backend
from rpilinkd.service.linkdriver import LinkDriver
from rpilinkd.testbed import System
from rpilinkd.testbed.campaign import CABLE, Campaign
from tests.support.vcd import high_fraction
from tests.support.waiting import wait_until


async def test_a_fault_campaign_keeps_every_promise(tmp_path: Path) -> None:
    with System(tmp_path) as system:
        result = await Campaign(system, seed=3, log=lambda _: None).run(quick=True)
    summary = result.summary()
    shown = json.dumps(
        summary | {"shorts": result.shorts, "waves_in_use": result.waves_in_use}, default=str
    )
    assert result.clean, shown
    assert summary["relinks"] == 5  # every fault ended in a relink
    assert sum(summary["acknowledged"].values()) > 50  # traffic flowed throughout
    assert summary["faults_injected"]["glitches"] > 100


async def test_a_two_second_cut_during_pipelined_sends_is_only_latency(tmp_path: Path) -> None:
    """16 sends in flight, the whole cable out for 2 s: every send answered ok, in order."""
    with System(tmp_path) as system:
        async with (
            Client(str(system.daemon("a").socket)) as a,
            Client(str(system.daemon("b").socket)) as b,
        ):
            await b.bind(5)
            messages = [i.to_bytes(4, "little") * 64 for i in range(160)]
            queue = asyncio.Queue[bytes]()
            for message in messages:
                queue.put_nowait(message)

            async def sender() -> None:
                while not queue.empty():
                    await a.send(5, queue.get_nowait())  # raises if any send fails

            senders = [asyncio.create_task(sender()) for _ in range(16)]
            await wait_until(lambda: queue.qsize() < 120)
            for wire in CABLE:
                assert system.sim_request(op="fault", kind="cut", wire=wire)["ok"]
            await asyncio.to_thread(system.daemon("a").wait_for, "arbitrating", 10)
            cut_at = time.monotonic()
            await wait_until(lambda: time.monotonic() - cut_at > 2.0 - 0.9, step=0.05)
            assert system.sim_request(op="clear-faults")["ok"]
            await asyncio.gather(*senders)
            received = [(await b.receive(timeout=30)).data for _ in messages]
            figures = await a.stats()
    assert sorted(received) == sorted(messages)  # every one, once
    assert figures["delivery_failures"] == 0
    assert figures["messages_resumed"] > 0  # the cut caught some in flight


async def test_a_lonely_pigpiod_restart_links_when_the_peer_comes(tmp_path: Path) -> None:
    """The peer Pi is off; this Pi's pigpiod restarts; the peer then boots: they link."""
    system = System(tmp_path).launch(boards=("a",))
    try:
        alpha = system.daemon("a")
        await asyncio.to_thread(alpha.wait_for, "arbitrating", 20)
        assert system.sim_request(op="restart", board="a", down_s=0.3)["ok"]
        await wait_until(lambda: alpha.request("stats")["backend_sessions"] >= 2)
        system.daemon("b").start()  # the peer powers up
        for daemon in system.daemons.values():
            await asyncio.to_thread(daemon.wait_for, "up", 15)
    finally:
        system.stop()


async def test_a_powered_off_peer_is_not_back_powered(tmp_path: Path) -> None:
    """With nobody on board b, a's REQ and RW (the presence beacon) are high ~10 % of the
    time (docs/wiring.md), its other outputs and the data lines never."""
    trace = tmp_path / "bus.vcd"
    system = System(tmp_path, sim_args=("--vcd", str(trace))).launch(boards=("a",))
    try:
        await asyncio.to_thread(system.daemon("a").wait_for, "arbitrating", 20)
        await asyncio.sleep(3.0)  # six beacon periods
    finally:
        system.stop()
    stamps = [float(line[1:]) for line in trace.read_text().splitlines() if line[:1] == "#"]
    end_us = max(stamps) / 100  # the trace counts 10 ns
    start_us = end_us - 2.5e6
    for wire in ("REQ_AB", "RW_AB"):
        assert 0.05 <= high_fraction(trace, wire, start_us, end_us) <= 0.15
    for wire in ("STB_AB", "FRM_AB", "D0", "D7"):
        assert high_fraction(trace, wire, start_us, end_us) == 0.0


def hostile_hello(epoch: int, **fields: object) -> bytes:
    values: dict[str, object] = {
        "frame_payload": 256,
        "window": 64,
        "max_message": 1 << 20,
        "node": "mallory",
    }
    values.update(fields)
    name = str(values["node"]).encode()
    payload = (
        HELLO_FIXED.pack(
            PROTOCOL_VERSION,
            0,
            epoch,
            0,
            1234,
            values["frame_payload"],
            values["window"],
            values["max_message"],
        )
        + bytes([len(name)])
        + name
    )
    return Frame(Kind.HELLO, Flag.NONE, 0, payload=payload).to_bytes()


class HostileConnection(Connection):
    """A peer that runs the real bus protocol but says ``hello`` in its HELLOs."""

    def __init__(self, hello: bytes) -> None:
        super().__init__(Config().link, node="mallory", epoch=7)
        self.hello = hello

    def _hello_frame(self) -> bytes:
        return self.hello


#: each range edge a HELLO can break, and what the refusal must name
HOSTILE_HELLOS: list[tuple[dict[str, object], str]] = [
    ({"frame_payload": 12}, "frame payload 12"),
    ({"frame_payload": 1028}, "frame payload 1028"),
    ({"frame_payload": 18}, "frame payload 18 is not a multiple of 4"),
    ({"window": 0}, "window 0"),
    ({"window": 257}, "window 257"),
    ({"max_message": 0}, "max message 0"),
    ({"max_message": (16 << 20) + 1}, "max message"),
    ({"node": ""}, "node name length 0"),
    ({"node": "x" * 65}, "node name length 65"),
]


async def say_hostile_hello(system: System, fields: dict[str, object], named: str) -> None:
    """Run a peer on board b's pigpiod whose HELLO carries ``fields`` until a's log
    refuses it, naming ``named``."""
    log = system.daemon("a").log
    seen = len(log.read_text())
    refusal = re.compile(f"hello is refused: .*{re.escape(named)}")
    phy = create_backend("pigpio", Config(), host="127.0.0.1", port=system.daemon("b").pigpio_port)
    peer = LinkDriver(
        phy,
        HostileConnection(hostile_hello(7, **fields)),
        role="auto",
        turn_ms=20,
        retry_s=0.5,
        on_event=lambda event, now: None,
    )
    running = asyncio.create_task(peer.run())
    try:
        await wait_until(lambda: refusal.search(log.read_text()[seen:]), timeout=30)
    finally:
        peer.stop()
        await running


async def test_hostile_hello_values_are_refused_and_the_daemon_keeps_trying(
    tmp_path: Path,
) -> None:
    """A peer whose HELLO says something out of range is refused, named in the log; the
    daemon stays up, keeps trying, and links once a sensible peer comes. One daemon
    meets every hostile peer in turn: each refusal must leave it ready for the next."""
    system = System(tmp_path).launch(boards=("a",))
    try:
        alpha = system.daemon("a")
        await asyncio.to_thread(alpha.wait_for, "arbitrating", 20)
        for fields, named in HOSTILE_HELLOS:
            await say_hostile_hello(system, fields, named)
            assert alpha.status()["link"] != "up", named
        assert alpha.request("stats")["bad_hellos"] >= len(HOSTILE_HELLOS)
        system.daemon("b").start()  # a sensible peer
        await asyncio.to_thread(alpha.wait_for, "up", 20)
        assert alpha.child is not None
        assert alpha.child.running  # it never went down
    finally:
        system.stop()
