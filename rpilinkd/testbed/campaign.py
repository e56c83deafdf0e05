"""A fault campaign: traffic both ways while the cable, the daemons and pigpiod misbehave.

Two clients, one on each daemon, send numbered, checksummed messages to each
other (a few in flight at once) while faults strike in turn: glitches on data
and control lines, the whole cable cut, one control wire cut, pigpiod
restarted, a daemon killed and started again. After each fault ends the
campaign times the relink. At the end it checks what the product promises:

* every message acknowledged ``ok`` arrived exactly once, intact, in order
  (a message that failed may or may not have arrived; none arrived twice);
* no short on any wire (the emulator counts both ends driving a wire);
* pigpiod's wave pool back to zero once the link is idle;
* no internal error in either daemon.

Before a daemon is killed the traffic towards it pauses until its client has
read everything acknowledged: ``ok`` means the receiving daemon queued the
message for its client, and a killed daemon loses its queue (docs/api.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import random
import signal
import struct
import time
import zlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rpilinkd.client import Client
from rpilinkd.errors import RpilinkError
from rpilinkd.testbed.system import System, request

PORT = 7
HEADER = struct.Struct("<QI")  # sequence number, CRC-32 of the rest
IN_FLIGHT = 6
CABLE = [f"D{i}" for i in range(8)] + [
    f"{line}_{way}" for line in ("STB", "FRM", "REQ", "RW") for way in ("AB", "BA")
]
CONTROL_WIRES = [w for w in CABLE if not w.startswith("D")]


@dataclass
class Direction:
    """One way's bookkeeping: what was sent, answered and received."""

    name: str
    next_seq: int = 0
    acked: set[int] = field(default_factory=set)
    failed: dict[int, str] = field(default_factory=dict)
    received: list[int] = field(default_factory=list)
    corrupted: int = 0
    paused: bool = False

    def problems(self) -> dict[str, int]:
        seen = set(self.received)
        return {
            "lost": len(self.acked - seen),
            "duplicated": len(self.received) - len(seen),
            "reordered": sum(b <= a for a, b in itertools.pairwise(self.received)),
            "corrupted": self.corrupted,
        }


@dataclass
class Result:
    relinks: list[tuple[str, float]] = field(default_factory=list)  # (fault, seconds)
    directions: dict[str, Direction] = field(default_factory=dict)
    shorts: dict[str, int] = field(default_factory=dict)
    waves_in_use: dict[str, int] = field(default_factory=dict)
    internal_errors: int = 0
    faults_injected: dict[str, int] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        problems = {name: d.problems() for name, d in self.directions.items()}
        times = sorted(t for _, t in self.relinks)
        return {
            "sent": {n: d.next_seq for n, d in self.directions.items()},
            "acknowledged": {n: len(d.acked) for n, d in self.directions.items()},
            "failed": {n: len(d.failed) for n, d in self.directions.items()},
            "failure_codes": sorted(
                {c for d in self.directions.values() for c in d.failed.values()}
            ),
            "problems": problems,
            "shorts": self.shorts,
            "waves_in_use_when_idle": self.waves_in_use,
            "internal_errors": self.internal_errors,
            "relinks": len(times),
            "relink_s": {"min": times[0], "median": times[len(times) // 2], "max": times[-1]}
            if times
            else {},
            "relink_by_fault": [(fault, round(t, 3)) for fault, t in self.relinks],
            "faults_injected": self.faults_injected,
        }

    @property
    def clean(self) -> bool:
        summary = self.summary()
        bad = sum(v for p in summary["problems"].values() for v in p.values())
        return (
            bad == 0
            and not any(self.shorts.values())
            and not any(self.waves_in_use.values())
            and self.internal_errors == 0
        )


def make_message(seq: int, rng: random.Random) -> bytes:
    body = rng.randbytes(rng.choice((8, 64, 300, 1500, 4000)))
    return HEADER.pack(seq, zlib.crc32(body)) + body


class Campaign:
    def __init__(self, system: System, *, seed: int = 1, log: Callable[[str], None] = print):
        self.system = system
        self.rng = random.Random(seed)
        self.log = log
        self.result = Result()
        self.ways = {"ab": Direction("ab"), "ba": Direction("ba")}
        self.result.directions = self.ways
        self._stop = asyncio.Event()

    # -- traffic -------------------------------------------------------------------------

    async def _connect(self, board: str, *, bind: bool) -> Client:
        while True:
            client = Client(str(self.system.daemon(board).socket))
            try:
                await client.connect()
                if bind:
                    await client.bind(PORT)
            except (OSError, RpilinkError):
                await client.close()
                await asyncio.sleep(0.1)  # the daemon is restarting
            else:
                return client

    async def _send_loop(self, way: Direction, board: str) -> None:
        client = await self._connect(board, bind=False)
        rng = random.Random(self.rng.random())
        pending: set[asyncio.Task[None]] = set()
        try:
            while not self._stop.is_set():
                if client.closed:  # its daemon was killed: wait for the new one
                    await asyncio.gather(*pending, return_exceptions=True)
                    pending.clear()
                    await client.close()
                    client = await self._connect(board, bind=False)
                if way.paused or len(pending) >= IN_FLIGHT:
                    await asyncio.sleep(0.005)
                    pending = {t for t in pending if not t.done()}
                    continue
                seq, way.next_seq = way.next_seq, way.next_seq + 1
                pending.add(asyncio.create_task(self._send_one(client, way, seq, rng)))
        finally:
            await asyncio.gather(*pending, return_exceptions=True)
            await client.close()

    async def _send_one(self, client: Client, way: Direction, seq: int, rng: random.Random) -> None:
        try:
            await client.send(PORT, make_message(seq, rng))
        except RpilinkError as exc:
            way.failed[seq] = exc.code
            await asyncio.sleep(0.05)  # holds its slot a moment: no storm of instant failures
        except ConnectionError:
            way.failed[seq] = "connection_lost"
        else:
            way.acked.add(seq)

    async def _receive_loop(self, way: Direction, board: str) -> None:
        client = await self._connect(board, bind=True)
        try:
            while not self._stop.is_set():
                try:
                    message = await client.receive(timeout=0.5)
                except TimeoutError:
                    continue
                except ConnectionError:
                    await client.close()
                    client = await self._connect(board, bind=True)
                    continue
                seq, crc = HEADER.unpack_from(message.data)
                if zlib.crc32(message.data[HEADER.size :]) != crc:
                    way.corrupted += 1
                way.received.append(seq)
        finally:
            await client.close()

    # -- faults ----------------------------------------------------------------------------

    def _sim(self, **request: Any) -> dict[str, Any]:
        answer = self.system.sim_request(**request)
        if not answer.get("ok"):
            raise RuntimeError(f"emulator refused {request}: {answer}")
        return answer

    async def _relinked(self, fault: str, since: float, timeout: float = 30.0) -> None:
        daemons = list(self.system.daemons.values())
        deadline = since + timeout
        while time.monotonic() < deadline:
            states = await asyncio.gather(
                *(asyncio.to_thread(_link_state, d.socket) for d in daemons)
            )
            if all(state == "up" for state in states):
                took = time.monotonic() - since
                self.result.relinks.append((fault, took))
                self.log(f"  {fault}: relinked {took:.2f} s after it ended")
                return
            await asyncio.sleep(0.02)
        raise AssertionError(f"no relink within {timeout} s after {fault}")

    async def _glitches(self, hold_s: float) -> None:
        ids = [
            self._sim(op="fault", kind="glitch", wire=wire, rate_hz=300, width_us=2)
            for wire in (*CONTROL_WIRES, "D0", "D3", "D7")
        ]
        await asyncio.sleep(hold_s)
        for answer in ids:
            self._sim(op="remove-fault", id=answer["fault"]["id"])
        await self._relinked("glitches", time.monotonic())

    async def _cut(self, wires: list[str], hold_s: float, name: str) -> None:
        ids = [self._sim(op="fault", kind="cut", wire=wire)["fault"]["id"] for wire in wires]
        await asyncio.sleep(hold_s)
        for fault_id in ids:
            self._sim(op="remove-fault", id=fault_id)
        await self._relinked(name, time.monotonic())

    async def _restart_pigpiod(self, board: str) -> None:
        await asyncio.to_thread(self._sim, op="restart", board=board, down_s=0.3)
        await self._relinked(f"pigpiod {board} restarted", time.monotonic())

    async def _kill_daemon(self, board: str) -> None:
        towards = self.ways["ab" if board == "b" else "ba"]
        towards.paused = True
        await self._drained(towards)
        daemon = self.system.daemon(board)
        daemon.kill(signal.SIGKILL)
        await asyncio.sleep(0.5)
        daemon.start()
        while not await asyncio.to_thread(daemon.answering):
            await asyncio.sleep(0.02)
        towards.paused = False
        await self._relinked(f"daemon {board} killed", time.monotonic())

    async def _drained(self, way: Direction, timeout: float = 20.0) -> None:
        """Until every acknowledged message of ``way`` has been read by its client."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not way.acked - set(way.received) and not self._in_flight(way):
                return
            await asyncio.sleep(0.02)

    @staticmethod
    def _in_flight(way: Direction) -> int:
        return way.next_seq - len(way.acked) - len(way.failed)

    # -- the whole run -----------------------------------------------------------------------

    def faults(self, *, quick: bool) -> list[tuple[str, Callable[[], Awaitable[None]]]]:
        hold = 1.0 if quick else 3.0
        plan: list[tuple[str, Callable[[], Awaitable[None]]]] = [
            ("glitches on data and control lines", lambda: self._glitches(hold)),
            ("the whole cable cut for 2 s", lambda: self._cut(CABLE, 2.0, "cable cut")),
            ("RW_AB cut", lambda: self._cut(["RW_AB"], 1.5, "RW_AB cut")),
            ("pigpiod a restarted", lambda: self._restart_pigpiod("a")),
            ("daemon b killed and started again", lambda: self._kill_daemon("b")),
        ]
        if not quick:
            plan += [
                ("REQ_BA cut", lambda: self._cut(["REQ_BA"], 1.5, "REQ_BA cut")),
                ("pigpiod b restarted", lambda: self._restart_pigpiod("b")),
                ("daemon a killed and started again", lambda: self._kill_daemon("a")),
            ]
        return plan

    async def run(self, *, duration_s: float = 0.0, quick: bool = True) -> Result:
        """One round of every fault (more rounds until ``duration_s`` has passed)."""
        loops = [
            self._send_loop(self.ways["ab"], "a"),
            self._send_loop(self.ways["ba"], "b"),
            self._receive_loop(self.ways["ab"], "b"),
            self._receive_loop(self.ways["ba"], "a"),
        ]
        tasks = [asyncio.create_task(loop) for loop in loops]
        started = time.monotonic()
        try:
            await asyncio.sleep(0.5)  # traffic first
            while True:
                for name, strike in self.faults(quick=quick):
                    self.log(f"fault: {name}")
                    await strike()
                    await asyncio.sleep(0.3 if quick else 1.0)  # traffic between faults
                if time.monotonic() - started >= duration_s:
                    break
            for way in self.ways.values():
                way.paused = True
            for way in self.ways.values():
                await self._drained(way)
        finally:
            self._stop.set()
            await asyncio.gather(*tasks, return_exceptions=True)
        await self._collect()
        return self.result

    async def _collect(self) -> None:
        deadline = time.monotonic() + 10
        while True:  # the pool empties once the last burst's deletions are through
            stats = self.system.sim_stats()
            waves = {name: b["wave_ids_in_use"] for name, b in stats["boards"].items()}
            if not any(waves.values()) or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.05)
        self.result.waves_in_use = waves
        self.result.shorts = dict(stats["shorts"])
        self.result.faults_injected = dict(stats["faults_injected"])
        for daemon in self.system.daemons.values():
            figures = await asyncio.to_thread(daemon.request, "stats")
            self.result.internal_errors += int(figures.get("internal_errors", 0))


def _link_state(path: Path) -> str | None:
    with contextlib.suppress(OSError):
        return str(request(path, "status", timeout=2.0).get("link"))
    return None
