"""The emulator's cost while the bus plays continuously (8 data lines, bus v2, rpilink-sim)."""

from __future__ import annotations

import asyncio
import os
import struct
import time
from typing import Any

from rpilinkd.config import BusConfig
from rpilinkd.phy.codec import BusTiming, Masks, encode, pack_wvag
from rpilinkd.pins import DEFAULT_PINS
from rpilinkd.sim import SimConfig, Simulator

DESCRIPTION = "rpilink-sim cost: real-time headroom and reports/s with a bus waveform playing"


class RawClient:
    """The 16-byte pigpio protocol, just enough for the benchmark."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def connect(cls, port: int) -> RawClient:
        return cls(*await asyncio.open_connection("127.0.0.1", port))

    async def cmd(self, cmd: int, p1: int = 0, p2: int = 0, ext: bytes = b"") -> int:
        self.writer.write(struct.pack("<IIII", cmd, p1, p2, len(ext)) + ext)
        reply = await self.reader.readexactly(16)
        return int(struct.unpack("<IIIi", reply)[3])


def bus_pulses(sample_us: int) -> tuple[bytes, float]:
    """Frames as the bus sends them (bus v2, the default timing): the WVAG extension and
    the strobe edges a second it makes."""
    timing = BusTiming.from_config(BusConfig(sample_us=sample_us))
    # three 1 KiB frames: the WVAG extension stays under pigpiod's 64 KiB
    frames = [bytes((i * 37 + j) & 0xFF for j in range(1024)) for i in range(3)]
    pulses = encode(frames, Masks.from_pins(DEFAULT_PINS), timing)
    edges = sum(len(f) for f in frames)  # one STB edge per byte on the 8-bit bus
    return pack_wvag(pulses), edges / (float(pulses[:, 2].sum()) * 1e-6)


async def measure(sample_us: int, seconds: float) -> dict[str, float]:
    async with Simulator(SimConfig(sample_us=sample_us, seed=7)) as sim:
        a = await RawClient.connect(sim.port("a"))
        b_cmd = await RawClient.connect(sim.port("b"))
        b_stream = await RawClient.connect(sim.port("b"))
        for gpio in (*DEFAULT_PINS.data, DEFAULT_PINS.stb_out):
            await a.cmd(0, gpio, 1)  # MODES output
        await a.cmd(0, DEFAULT_PINS.frm_out, 1)
        await a.cmd(27)  # WVCLR
        ext, edges_per_s = bus_pulses(sample_us)
        await a.cmd(28, ext=ext)  # WVAG
        wave = await a.cmd(49)  # WVCRE
        handle = await b_stream.cmd(99)  # NOIB
        await b_cmd.cmd(19, handle, 1 << DEFAULT_PINS.stb_in)  # NB on the strobe input
        received = 0

        async def drain() -> None:
            nonlocal received
            while True:
                chunk = await b_stream.reader.read(1 << 16)
                if not chunk:
                    return
                received += len(chunk)

        reader = asyncio.create_task(drain())
        await a.cmd(52, wave)  # WVTXR: repeat forever
        await asyncio.sleep(0.2)
        sim.reset_stats()
        received = 0
        cpu0, wall0 = time.process_time(), time.perf_counter()
        await asyncio.sleep(seconds)
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
        stats = sim.stats()
        await a.cmd(33)  # WVHLT
        reader.cancel()
        for client in (a, b_cmd, b_stream):
            client.writer.close()
    reports = received // 12
    edges_expected = wall * edges_per_s
    return {
        "cpu_load_pct": 100 * cpu / wall,
        "realtime_headroom_x": wall / cpu if cpu else float("inf"),
        "reports_per_s": reports / wall,
        "reports_vs_expected_pct": 100 * reports / edges_expected,
        "passes_per_s": stats["passes"] / wall,
    }


def run(quick: bool) -> dict[str, float | int | str]:
    seconds = 2.0 if quick else 5.0
    figures: dict[str, Any] = {}
    for sample_us in (5, 1):
        for key, value in asyncio.run(measure(sample_us, seconds)).items():
            figures[f"s{sample_us}_{key}"] = round(value, 2)
    figures["note"] = (
        "headroom_x > 1 keeps real time (one core); reports_vs_expected near 100 % means "
        "every strobe edge was sampled and sent"
    )
    figures["cpus"] = os.cpu_count() or 0
    return figures
