"""Two daemons, one on a simulated Pi 5 (pio) and one on a pigpio board, in one
rpilink-sim: random messages both ways arrive intact and in order (issue 16)."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from rpilinkd.client import Client
from rpilinkd.config import config_from_mapping
from rpilinkd.events import LinkStatus
from rpilinkd.service.daemon import Daemon, build
from rpilinkd.sim import SimConfig, Simulator
from rpilinkd.sim.pio_board import sim_hardware
from tests.support.traffic import collect, pump
from tests.support.waiting import wait_until


@pytest.fixture
async def daemons(tmp_path: Path) -> AsyncIterator[tuple[Daemon, Daemon]]:
    async with Simulator(SimConfig(seed=5, sample_us=10, pio_boards=("a",))) as sim:
        # the emulated RX runs at ~10k units/s of CPU: small bursts keep it near real time
        config = {
            name: config_from_mapping({
                "api": {"socket": str(tmp_path / f"{name}.sock")},
                "bus": {"sample_us": 10},
                "link": {"window": 4},
                "node": {"name": f"pi-{name}"},
            })
            for name in "ab"
        }  # fmt: skip
        a = build(config["a"], backend="pio", hardware=sim_hardware(sim, "a"))
        b = build(config["b"], backend="pigpio", host="127.0.0.1", port=sim.port("b"))
        for daemon in (a, b):
            await daemon.api.start()
        tasks = [asyncio.create_task(d.driver.run()) for d in (a, b)]
        try:
            await wait_until(lambda: a.node.link_state == b.node.link_state is LinkStatus.UP, 30)
            yield a, b
        finally:
            for daemon in (a, b):
                daemon.node.shutdown()
                await daemon.api.close()
                daemon.driver.stop()
            await asyncio.wait_for(asyncio.gather(*tasks), 20)
        assert sim.stats()["shorts_total"] == 0


async def test_random_messages_both_ways(daemons: tuple[Daemon, Daemon], full_run: bool) -> None:
    """500 each way (1,000 in all) under ``scripts/test --all``, 100 by default."""
    a, b = daemons
    rng = random.Random(16)
    count = 500 if full_run else 100
    outgoing = {name: [rng.randbytes(rng.randint(0, 300)) for _ in range(count)] for name in "ab"}
    async with (
        Client(a.config.api.socket) as client_a,
        Client(b.config.api.socket) as client_b,
    ):
        await client_a.bind(11)
        await client_b.bind(12)

        got_b, got_a, _, _ = await asyncio.gather(
            collect(client_b, count, 120),
            collect(client_a, count, 120),
            pump(client_a, 12, outgoing["a"]),
            pump(client_b, 11, outgoing["b"]),
        )
    assert got_b == outgoing["a"]  # pio -> pigpio
    assert got_a == outgoing["b"]  # pigpio -> pio
