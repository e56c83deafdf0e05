"""The whole product: two rpilinkd processes on rpilink-sim, through the client library.

Every figure is taken at rpilink-sim's default report ceiling (400,000 level
changes a second per board, the best public measurement of pigpiod on a Pi:
joan2937/pigpio#35), so a bus that would outrun a real pigpiod is not flattered.
Per bus width and sample period: 64-byte round trips (send -> accepted) both
ways and their two legs (from the emulator's timeline), bulk goodput one way and
both ways at once, and the daemons' CPU seconds per MB moved (a Pi's core is
several times slower than this machine's).
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from pathlib import Path
from typing import Any

from rpilinkd.cli.commands import measure
from rpilinkd.client import Client
from rpilinkd.config import BusConfig
from rpilinkd.phy.codec import BusTiming
from rpilinkd.sim.alerts import DEFAULT_REPORT_RATE
from rpilinkd.sim.clock import PERIOD_S
from rpilinkd.testbed import System
from rpilinkd.testbed.legs import round_trip_legs

DESCRIPTION = "two daemons on the emulator at pigpiod's report ceiling: latency, goodput, CPU"
IN_FLIGHT = 16  # sends waiting at once, as `rpilink bench` does by default
BULK_SIZE = 8192
CASES = ((8, 5), (8, 1), (16, 1))  # (width, sample_us)


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def one_way(
    system: System, sender: str, port: int, count: int, size: int, parallel: int
) -> dict[str, Any]:
    """``rpilink bench``'s measurement from ``sender`` to a reader of ``port`` on the other."""
    receiver = "b" if sender == "a" else "a"
    async with (
        Client(str(system.daemon(sender).socket)) as tx,
        Client(str(system.daemon(receiver).socket)) as rx,
    ):
        await rx.bind(port)

        async def receive_all() -> None:
            for _ in range(count):
                await rx.receive(timeout=60)

        receiving = asyncio.create_task(receive_all())
        summary = await measure(tx, port, count=count, size=size, parallel=parallel)
        await receiving
    assert not summary["failed"], summary
    return summary


async def both_ways(system: System, count: int) -> float:
    """Goodput in kB/s with bulk transfers running both ways at once."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    await asyncio.gather(
        one_way(system, "a", 30, count, BULK_SIZE, IN_FLIGHT),
        one_way(system, "b", 31, count, BULK_SIZE, IN_FLIGHT),
    )
    return 2 * count * BULK_SIZE / (loop.time() - started) / 1e3


def case(width: int, sample_us: int, quick: bool) -> dict[str, float | int | str]:
    timing = BusTiming.from_config(BusConfig(sample_us=sample_us, width=width))
    name = f"w{width}_s{sample_us}"
    figures: dict[str, float | int | str] = {f"{name}_line_rate_kBps": timing.line_rate_bps / 1e3}
    count = max(20, int(timing.line_rate_bps * (2 if quick else 8) / BULK_SIZE))
    with (
        tempfile.TemporaryDirectory(prefix="rpilink-bench-") as workdir,
        System(Path(workdir), sample_us=sample_us, width=width, log_level="info") as system,
    ):
        pids = [d.child.pid for d in system.daemons.values() if d.child is not None]
        for sender in ("a", "b"):
            system.sim_request(op="timeline", record=True)
            idle = asyncio.run(one_way(system, sender, 20, 30 if quick else 200, 64, 1))
            timeline = system.sim_request(op="timeline", record=False)["timeline"]
            way = f"{name}_64B_{sender}_to_{'b' if sender == 'a' else 'a'}"
            figures[f"{way}_p50_ms"] = idle["latency_p50_ms"]
            figures[f"{way}_p99_ms"] = idle["latency_p99_ms"]
            figures.update(round_trip_legs(timeline, sender).summary(way, PERIOD_S * 1e3))
        cpu_before = sum(map(cpu_seconds, pids))
        bulk = asyncio.run(one_way(system, "a", 21, count, BULK_SIZE, IN_FLIGHT))
        cpu = sum(map(cpu_seconds, pids)) - cpu_before
        moved_mb = count * BULK_SIZE / 1e6
        figures[f"{name}_bulk_kBps"] = bulk["kB_per_s"]
        figures[f"{name}_bulk_pct_of_line_rate"] = round(
            100 * bulk["kB_per_s"] * 1e3 / timing.line_rate_bps, 1
        )
        figures[f"{name}_daemons_cpu_s_per_MB"] = round(cpu / moved_mb, 2)
        figures[f"{name}_both_ways_kBps"] = round(asyncio.run(both_ways(system, count // 2)))
        stats = [system.daemon(x).request("stats") for x in ("a", "b")]
        figures[f"{name}_damaged_frames"] = sum(s["crc_errors"] + s["bad_frames"] for s in stats)
        sim = system.sim_stats()
        figures[f"{name}_reports_lost"] = sum(b["reports_lost"] for b in sim["boards"].values())
    return figures


def run(quick: bool) -> dict[str, float | int | str]:
    figures: dict[str, float | int | str] = {}
    for width, sample_us in CASES:
        figures.update(case(width, sample_us, quick))
    figures["note"] = (
        f"report ceiling {DEFAULT_REPORT_RATE:,} changes/s per board (rpilink-sim's default, "
        f"a Pi 2B's measured pigpiod); {IN_FLIGHT} sends in flight, {BULK_SIZE} B messages; "
        "64 B round trips one at a time, idle link, each cut into its two legs (from the "
        "alert pass that reported the other side's hand-over to this side's own, in ms and "
        f"in {PERIOD_S * 1e3:g} ms pass periods; docs/speed.md); payload bytes over the raw "
        "line rate"
    )
    return figures
