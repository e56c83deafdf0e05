"""The bus: codec throughput and frame goodput through the emulator (issue 4)."""

from __future__ import annotations

import asyncio
import os
import time

import numpy as np

from rpilinkd.config import BusConfig
from rpilinkd.phy import FrameReceived
from rpilinkd.phy.codec import BusTiming, Encoder, Masks, encode
from rpilinkd.phy.decoder import ReportDecoder
from rpilinkd.phy.pigpio import PigpioPhy
from rpilinkd.phy.pigpiod import READ_CHUNK
from rpilinkd.pins import DEFAULT_PINS
from rpilinkd.testbed import Child, python_module

DESCRIPTION = "bus codec MB/s and frame goodput through rpilink-sim in % of the line rate"


def ideal_reports(pulses: np.ndarray, sample_us: int) -> bytes:
    """Reports as a receiver would see them: one per strobe edge (sampled at the edge)."""
    pins = DEFAULT_PINS
    latch = np.zeros(len(pulses), np.uint32)
    state = 0
    for i, (on, off, _) in enumerate(pulses.tolist()):
        state = (state | on) & ~off
        latch[i] = state
    received = latch & np.uint32(pins.data_mask)
    received |= ((latch >> np.uint32(pins.stb_out)) & np.uint32(1)) << np.uint32(pins.stb_in)
    received |= ((latch >> np.uint32(pins.frm_out)) & np.uint32(1)) << np.uint32(pins.frm_in)
    records = np.zeros((len(received), 3), np.uint32)
    records[:, 2] = received
    return records.tobytes()


def codec_figures(frame_size: int, seconds: float) -> tuple[float, float]:
    masks = Masks.from_pins(DEFAULT_PINS)
    timing = BusTiming.from_config(BusConfig(sample_us=5))
    frames = [os.urandom(frame_size) for _ in range(max(1, 512 * 1024 // frame_size))]
    payload = sum(map(len, frames))
    stream = ideal_reports(encode(frames, masks, timing), 5)
    rates = []
    encoder = Encoder(masks, timing)
    for work in (lambda: encoder.encode(frames), lambda: decode(masks, stream)):
        work()  # warm up: the first large allocations fault their pages in
        best, started = float("inf"), time.perf_counter()
        while time.perf_counter() - started < seconds:  # best run: the machine is shared
            began = time.perf_counter()
            work()
            best = min(best, time.perf_counter() - began)
        rates.append(payload / best / 1e6)
    return rates[0], rates[1]


def decode(masks: Masks, stream: bytes) -> None:
    """Decode in the chunks the pigpio backend reads from its socket."""
    decoder = ReportDecoder(masks)
    decoder.framing = True
    view = memoryview(stream)
    for start in range(0, len(stream), READ_CHUNK):
        decoder.feed(bytes(view[start : start + READ_CHUNK]))


def start_sim(sample_us: int) -> tuple[Child, dict[str, int]]:
    """The emulator in its own process, so that it does not share this one's GIL."""
    sim = Child(
        python_module(
            "rpilinkd.sim", "--port-a", "0", "--port-b", "0", "--sample-us", str(sample_us)
        )
    )
    return sim, sim.read_json_line()


async def goodput(sample_us: int, megabytes: float, frame_size: int = 1024) -> float:
    """Frame bytes per second from a to b, in % of the raw line rate (one direction)."""
    proc, ports = start_sim(sample_us)
    try:
        timing = BusTiming.from_config(BusConfig(sample_us=sample_us))
        a = PigpioPhy(
            host="127.0.0.1",
            port=ports["a"],
            pins=DEFAULT_PINS,
            timing=timing,
            max_frame=frame_size,
        )
        b = PigpioPhy(
            host="127.0.0.1",
            port=ports["b"],
            pins=DEFAULT_PINS,
            timing=timing,
            max_frame=frame_size,
        )
        await a.open()
        await b.open()
        b.set_framing(True)
        count = int(megabytes * 1e6 / frame_size)
        frames = [os.urandom(frame_size) for _ in range(count)]
        received = 0
        done = asyncio.Event()

        async def listen() -> None:
            nonlocal received
            async for event in b.events():
                if isinstance(event, FrameReceived):
                    received += 1
                    if received == count:
                        done.set()

        listener = asyncio.create_task(listen())
        await a.drive_data(True)
        started = time.perf_counter()
        await a.send_frames(frames)
        await asyncio.wait_for(done.wait(), 10)
        elapsed = time.perf_counter() - started
        listener.cancel()
        await a.aclose()
        await b.aclose()
        return 100 * count * frame_size / elapsed / timing.line_rate_bps
    finally:
        proc.stop()


def run(quick: bool) -> dict[str, float | int | str]:
    seconds = 0.5 if quick else 2.0
    figures: dict[str, float | int | str] = {}
    for size in (276, 1024):
        encode_rate, decode_rate = codec_figures(size, seconds)
        figures[f"codec_encode_{size}B_frames_MBps"] = round(encode_rate, 1)
        figures[f"codec_decode_{size}B_frames_MBps"] = round(decode_rate, 1)
    for sample_us, megabytes in ((5, 0.5 if quick else 2.0), (1, 1.0 if quick else 5.0)):
        figures[f"goodput_s{sample_us}_pct"] = round(asyncio.run(goodput(sample_us, megabytes)), 1)
        line_rate = BusTiming.from_config(BusConfig(sample_us=sample_us)).line_rate_bps
        figures[f"line_rate_s{sample_us}_Bps"] = int(line_rate)
    figures["note"] = (
        "goodput: 1 KiB frames a->b through rpilink-sim in its own process; frame bytes/s "
        "over the raw line rate, waves and Python turn-arounds included"
    )
    return figures
