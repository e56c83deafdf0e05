"""Spotting a pigpiod that samples more slowly than bus.sample_us says."""

from __future__ import annotations

import logging
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from rpilinkd.config import BusConfig
from rpilinkd.phy.codec import BusTiming, Masks
from rpilinkd.phy.decoder import ReportDecoder
from rpilinkd.phy.sampling import GAPS_NEEDED, SamplePeriodCheck
from rpilinkd.pins import DEFAULT_PINS
from rpilinkd.testbed import System


def reports(ticks: list[int], flags: int = 0) -> bytes:
    words = np.zeros((len(ticks), 3), "<u4")
    words[:, 0] = flags << 16
    words[:, 1] = np.array(ticks, np.uint64) % (1 << 32)
    return words.tobytes()


def through_decoder(check: SamplePeriodCheck) -> Callable[[bytes], None]:
    """Raw report bytes into the check by way of the bus decoder, as PigpioPhy wires them."""
    decoder = ReportDecoder(Masks.from_pins(DEFAULT_PINS))

    def feed(chunk: bytes) -> None:
        ticks = decoder.feed(chunk).ticks
        if ticks is not None:
            check.feed(ticks)

    return feed


def frame_edges(
    timing: BusTiming, period: int, count: int, start: int, rng: np.random.Generator
) -> list[int]:
    """Report ticks as a pigpiod sampling every ``period`` µs sees a frame's strobe edges:
    edges alternate ``setup + hold`` and ``hold`` apart; each lands on the next sample;
    two in one sample cancel out (no change to report); ticks get a µs of jitter."""
    spacing = np.tile([timing.setup_us + timing.hold_us, timing.hold_us], count // 2)
    edges = rng.uniform(0, period) + np.cumsum(spacing)
    samples = np.ceil(edges / period).astype(np.int64)
    kept, counts = np.unique(samples, return_counts=True)
    ticks = kept[counts % 2 == 1] * period
    ticks = ticks + rng.integers(-1, 2, len(ticks)) * (period > 1)
    return [int(t) for t in start + ticks]


@pytest.mark.parametrize(
    ("config_us", "pigpiod_us", "warns"),
    [(1, 4, True), (2, 10, True), (5, 10, True), (5, 5, False), (1, 1, False), (5, 1, False)],
)
def test_only_a_slower_pigpiod_is_reported(
    config_us: int, pigpiod_us: int, warns: bool, caplog: pytest.LogCaptureFixture
) -> None:
    rng = np.random.default_rng(config_us * 100 + pigpiod_us)
    timing = BusTiming.from_config(BusConfig(sample_us=config_us))
    check = SamplePeriodCheck(timing, "127.0.0.1:8888")
    feed = through_decoder(check)
    start = (1 << 32) - 500  # the tick wraps inside the stream
    for _ in range(40):
        edges = frame_edges(timing, pigpiod_us, 40, start, rng)
        stream = reports(edges)
        for cut in range(0, len(stream), 100):  # any chunking, records split
            feed(stream[cut : cut + 100])
        start = edges[-1] + 5000  # a pause between frames: not a sample gap
    assert check.done == warns or check.done
    assert any("seems to sample" in r.getMessage() for r in caplog.records) == warns


def test_frames_that_arrive_empty_are_reported(caplog: pytest.LogCaptureFixture) -> None:
    """-s 5 under a bus timed for -s 1: a pair of edges every 5 µs cancels in every sample,
    so no edge is reported at all, and frames come as FRM up and down, nothing between."""
    check = SamplePeriodCheck(BusTiming.from_config(BusConfig(sample_us=1)), "here")
    check.frames(whole=3, empty=0)
    states = []
    for _ in range(8):
        check.frames(whole=0, empty=1)
        states.append(check.done)
    assert states == [False] * 7 + [True]  # only once the empty ones clearly dominate
    assert any("arrive empty" in r.getMessage() for r in caplog.records)


def test_handshakes_and_watchdog_reports_decide_nothing() -> None:
    check = SamplePeriodCheck(BusTiming.from_config(BusConfig(sample_us=1)), "here")
    feed = through_decoder(check)
    feed(reports(list(range(0, 10_000_000, 3000))))  # control lines only: ms apart
    feed(reports(list(range(5, 5 * 2 * GAPS_NEEDED, 5)), flags=0x20))  # watchdog
    assert not check.done


def test_a_daemon_told_the_wrong_period_says_so(tmp_path: Path) -> None:
    system = System(tmp_path, sample_us=5, daemon_sample_us=1)  # pigpiod -s 5, config says 1
    try:
        system.launch()
        log = system.daemon("b").log
        deadline = time.monotonic() + 30
        while "seems to sample" not in log.read_text() and time.monotonic() < deadline:
            time.sleep(0.2)
        line = next(x for x in log.read_text().splitlines() if "seems to sample" in x)
        assert "bus.sample_us = 1" in line
        assert logging.getLevelName(logging.WARNING) in line
    finally:
        system.stop()


def test_deciding_imports_nothing_on_the_way() -> None:
    """The check decides in the middle of a link's first messages: np.percentile there
    imported numpy.ma on first use, an 11 ms stall (a 64 B round trip of 17 ms instead of
    5 in every benchmark's first messages), and more on a Pi."""
    code = (
        "import sys, numpy as np\n"
        "from rpilinkd.config import BusConfig\n"
        "from rpilinkd.phy.codec import BusTiming\n"
        "from rpilinkd.phy.sampling import GAPS_NEEDED, SamplePeriodCheck\n"
        "check = SamplePeriodCheck(BusTiming.from_config(BusConfig()), 'here')\n"
        "before = set(sys.modules)\n"
        "check.feed(np.arange(0, 10 * (GAPS_NEEDED + 1), 10, dtype=np.uint32))\n"
        "assert check.done\n"
        "print(sorted(set(sys.modules) - before))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == "[]"
