"""The whole product: two rpilinkd processes on rpilink-sim, through the client library."""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
from pathlib import Path

from rpilinkd.client import Client
from tests.support.system import System

DESCRIPTION = "messages between two daemons on the emulator, as % of the raw line rate"
IN_FLIGHT = 16  # sends waiting at once, as `rpilink bench` does by default
PORT = 5


async def throughput(system: System, size: int, count: int) -> float:
    """Payload bytes per second from alpha to beta, with IN_FLIGHT sends outstanding."""
    async with (
        Client(str(system.daemon("a").socket)) as alpha,
        Client(str(system.daemon("b").socket)) as beta,
    ):
        await beta.bind(PORT)
        slots = asyncio.Semaphore(IN_FLIGHT)

        async def send_one() -> None:
            async with slots:
                await alpha.send(PORT, bytes(size))

        async def receive_all() -> None:
            for _ in range(count):
                await beta.receive(timeout=60)

        receiving = asyncio.create_task(receive_all())
        started = time.monotonic()
        await asyncio.gather(*(send_one() for _ in range(count)))
        elapsed = time.monotonic() - started
        await receiving
    return count * size / elapsed


async def latency(system: System, count: int) -> float:
    """Median time from send to acceptance of one small message on an idle link, ms."""
    async with (
        Client(str(system.daemon("a").socket)) as alpha,
        Client(str(system.daemon("b").socket)) as beta,
    ):
        await beta.bind(PORT + 1)
        times = []
        for _ in range(count):
            started = time.monotonic()
            await alpha.send(PORT + 1, b"ping")
            times.append(time.monotonic() - started)
            await beta.receive(timeout=10)
    return statistics.median(times) * 1e3


def run(quick: bool) -> dict[str, float | int | str]:
    figures: dict[str, float | int | str] = {}
    for sample_us in (5, 1):
        line_rate = 1e6 / (2 * sample_us)  # default timing: a byte every two samples
        with tempfile.TemporaryDirectory(prefix="rpilink-bench-") as workdir:
            system = System(Path(workdir), sample_us=sample_us).start()
            try:
                scale = 5 // sample_us  # a faster bus moves more in the same time
                for size, count in ((1024, 150 if quick else 600), (8192, 30 if quick else 120)):
                    rate = asyncio.run(throughput(system, size, count * scale))
                    name = f"s{sample_us}_{size // 1024}KiB"
                    figures[f"{name}_kBps"] = round(rate / 1e3, 1)
                    figures[f"{name}_pct_of_line_rate"] = round(100 * rate / line_rate, 1)
                ms = asyncio.run(latency(system, 20 if quick else 100))
                figures[f"s{sample_us}_idle_latency_p50_ms"] = round(ms, 1)
            finally:
                system.stop()
    figures["note"] = (f"{IN_FLIGHT} sends in flight; payload bytes over the raw line rate "
                       "(frame headers, CRCs, acks and bus turn-arounds are the difference)")
    return figures
