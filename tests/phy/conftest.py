"""Backend pairs for the conformance suite: virtual, pigpio on the emulator, pio on two
simulated Pi 5s, a mixed pio/pigpio pair (the emulated ones on both bus widths), a real
pair."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator

import pytest

from rpilinkd.config import Config, config_from_mapping, replace_keys
from rpilinkd.phy import PhyBackend, create_backend
from rpilinkd.phy.virtual import VirtualBus
from rpilinkd.sim import SimConfig, Simulator
from rpilinkd.sim.pio_board import sim_hardware

REAL_A, REAL_B = os.environ.get("RPILINK_TEST_PIGPIO_A"), os.environ.get("RPILINK_TEST_PIGPIO_B")
KINDS = [
    "virtual",
    "pigpio-sim",
    "pigpio-sim-16",  # the 16-bit bus (bus.width = 16, the wide pin map)
    "pio-sim",
    "pio-sim-16",
    "pio-pigpio-sim",
    "pigpio-real",
]


def host_port(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    return host or "127.0.0.1", int(port)


@pytest.fixture(params=KINDS)
async def pair(request: pytest.FixtureRequest) -> AsyncIterator[tuple[PhyBackend, PhyBackend]]:
    """Two open backends joined by the cable (a and b)."""
    kind = request.param.removesuffix("-16")
    config = config_from_mapping({"bus": {"width": 16}}) if kind != request.param else Config()
    width = config.bus.width
    if kind == "virtual":
        bus = VirtualBus(seed=1)
        a = create_backend("virtual", config, bus=bus, end="a")
        b = create_backend("virtual", config, bus=bus, end="b")
        await a.open()
        await b.open()
        yield a, b
        await a.aclose()
        await b.aclose()
    elif kind == "pigpio-sim":
        async with Simulator(SimConfig(seed=3, width=width)) as sim:
            a = create_backend("pigpio", config, host="127.0.0.1", port=sim.port("a"))
            b = create_backend("pigpio", config, host="127.0.0.1", port=sim.port("b"))
            await a.open()
            await b.open()
            yield a, b
            await a.aclose()
            await b.aclose()
            assert sim.stats()["shorts_total"] == 0
    elif kind in ("pio-sim", "pio-pigpio-sim"):  # simulated Pi 5s (sim/pio_board.py)
        pio = ("a", "b") if kind == "pio-sim" else ("a",)
        async with Simulator(SimConfig(seed=3, pio_boards=pio, width=width)) as sim:
            a, b = (
                create_backend("pio", config, hardware=sim_hardware(sim, name))
                if name in pio
                else create_backend("pigpio", config, host="127.0.0.1", port=sim.port(name))
                for name in ("a", "b")
            )
            await a.open()
            await b.open()
            yield a, b
            await a.aclose()
            await b.aclose()
            assert sim.stats()["shorts_total"] == 0
    else:
        if not (REAL_A and REAL_B):
            pytest.skip("set RPILINK_TEST_PIGPIO_A and _B (host:port) to test two wired Pis")
        (ha, pa), (hb, pb) = host_port(REAL_A), host_port(REAL_B)
        a = create_backend("pigpio", replace_keys(config, {}), host=ha, port=pa)
        b = create_backend("pigpio", config, host=hb, port=pb)
        await a.open()
        await b.open()
        yield a, b
        await a.aclose()
        await b.aclose()
