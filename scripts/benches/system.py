"""The whole product: two rpilinkd processes on rpilink-sim, through the client library."""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path
from typing import Any

from rpilinkd.cli.commands import measure
from rpilinkd.client import Client
from rpilinkd.config import BusConfig
from rpilinkd.phy.codec import BusTiming
from rpilinkd.testbed import System

DESCRIPTION = "messages between two daemons on the emulator, as % of the raw line rate"
IN_FLIGHT = 16  # sends waiting at once, as `rpilink bench` does by default
PORT = 5


async def measured(
    system: System, port: int, *, size: int, count: int, parallel: int
) -> dict[str, Any]:
    """``rpilink bench``'s measurement from alpha to a reader of ``port`` on beta."""
    async with (
        Client(str(system.daemon("a").socket)) as alpha,
        Client(str(system.daemon("b").socket)) as beta,
    ):
        await beta.bind(port)

        async def receive_all() -> None:
            for _ in range(count):
                await beta.receive(timeout=60)

        receiving = asyncio.create_task(receive_all())
        summary = await measure(alpha, port, count=count, size=size, parallel=parallel)
        await receiving
    assert not summary["failed"], summary
    return summary


def run(quick: bool) -> dict[str, float | int | str]:
    figures: dict[str, float | int | str] = {}
    for sample_us in (5, 1):
        line_rate = BusTiming.from_config(BusConfig(sample_us=sample_us)).line_rate_bps
        with tempfile.TemporaryDirectory(prefix="rpilink-bench-") as workdir:
            system = System(Path(workdir), sample_us=sample_us).start()
            try:
                scale = 5 // sample_us  # a faster bus moves more in the same time
                for size, count in ((1024, 150 if quick else 600), (8192, 30 if quick else 120)):
                    summary = asyncio.run(
                        measured(system, PORT, size=size, count=count * scale, parallel=IN_FLIGHT)
                    )
                    name = f"s{sample_us}_{size // 1024}KiB"
                    figures[f"{name}_kBps"] = summary["kB_per_s"]
                    figures[f"{name}_pct_of_line_rate"] = round(
                        100 * summary["kB_per_s"] * 1e3 / line_rate, 1
                    )
                idle = asyncio.run(
                    measured(system, PORT + 1, size=4, count=20 if quick else 100, parallel=1)
                )
                figures[f"s{sample_us}_idle_latency_p50_ms"] = idle["latency_p50_ms"]
            finally:
                system.stop()
    figures["note"] = (
        f"{IN_FLIGHT} sends in flight; payload bytes over the raw line rate "
        "(frame headers, CRCs, acks and bus turn-arounds are the difference)"
    )
    return figures
