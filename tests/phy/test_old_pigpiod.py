"""A pigpiod too old for rpilinkd: one clear error, logged once, retried; never a crash."""

from __future__ import annotations

import asyncio

import pytest

from rpilinkd.config import Config
from rpilinkd.errors import PhyError
from rpilinkd.link import Connection
from rpilinkd.phy.pigpio import PigpioPhy
from rpilinkd.service.linkdriver import LinkDriver
from rpilinkd.sim import SimConfig, Simulator


@pytest.fixture
def old_pigpiod(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("rpilinkd.sim.commands.PIGPIO_VERSION", 71)  # Raspbian Buster's


@pytest.mark.usefixtures("old_pigpiod")
async def test_open_names_the_version_and_what_to_do() -> None:
    async with Simulator(SimConfig(seed=1)) as sim:
        phy = PigpioPhy.from_config(Config(), host="127.0.0.1", port=sim.port("a"))
        with pytest.raises(PhyError, match=r"version 71; rpilinkd needs 76 or later"):
            await phy.open()
        assert not phy.is_open


@pytest.mark.usefixtures("old_pigpiod")
async def test_the_driver_logs_it_once_and_keeps_trying(caplog: pytest.LogCaptureFixture) -> None:
    async with Simulator(SimConfig(seed=1)) as sim:
        config = Config()
        phy = PigpioPhy.from_config(config, host="127.0.0.1", port=sim.port("a"))
        connection = Connection(config.link, node="a", epoch=1)
        driver = LinkDriver(
            phy, connection, role="auto", turn_ms=20, retry_s=0.05, on_event=lambda event, now: None
        )
        task = asyncio.create_task(driver.run())
        await asyncio.sleep(0.5)  # about ten attempts
        assert not task.done()  # still trying, not crashed
        driver.stop()
        await asyncio.wait_for(task, 5)
    refusals = [r for r in caplog.records if "bus backend refused" in r.getMessage()]
    assert len(refusals) == 1
    assert "version 71" in refusals[0].getMessage()
