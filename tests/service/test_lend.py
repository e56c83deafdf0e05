"""Lending the pins (the API's lend / take_back, for rpilink wiring-check)."""

from __future__ import annotations

import asyncio

from rpilinkd.client import Client
from rpilinkd.phy.pigpiod import PigpiodClient
from rpilinkd.pigpio_protocol import MODE_INPUT, Cmd
from rpilinkd.pins import DEFAULT_PINS, ControlLine
from rpilinkd.testbed import System


async def test_a_lend_pauses_the_link_leaves_the_pins_safe_and_messages_wait(
    system: System,
) -> None:
    alpha, beta = system.daemon("a"), system.daemon("b")
    async with Client(str(alpha.socket)) as a, Client(str(beta.socket)) as b:
        await b.bind(8)
        lent = await a.request("lend", seconds=20)
        assert lent["pigpio"] == f"127.0.0.1:{alpha.pigpio_port}"
        assert lent["pins"]["data"] == list(DEFAULT_PINS.data)
        await asyncio.to_thread(alpha.wait_for, "paused", 10)
        pigpiod = PigpiodClient("127.0.0.1", alpha.pigpio_port)  # the borrower
        await pigpiod.connect()
        try:
            modes = await pigpiod.batch([(Cmd.MODEG, g, 0, b"") for g in DEFAULT_PINS.data])
            levels = await pigpiod.command(Cmd.BR1)
        finally:
            await pigpiod.close()
        assert modes == [MODE_INPUT] * 8  # data lines released
        outputs = [DEFAULT_PINS.out_pin(line) for line in ControlLine]
        assert not any(levels >> g & 1 for g in outputs)  # control outputs low
        waiting = asyncio.create_task(a.send(8, b"sent while the pins were lent"))
        await asyncio.sleep(0.5)
        assert not waiting.done()
        await a.request("take_back")
        await asyncio.wait_for(waiting, 15)
        assert (await b.receive(timeout=10)).data == b"sent while the pins were lent"
        await asyncio.to_thread(alpha.wait_for, "up", 10)


async def test_a_lend_ends_when_its_time_is_up_or_its_borrower_goes(system: System) -> None:
    alpha = system.daemon("a")
    async with Client(str(alpha.socket)) as a:
        await a.request("lend", seconds=1)
        assert (await a.status())["reason"].startswith("paused")
        await asyncio.to_thread(alpha.wait_for, "up", 15)  # the lease ran out
        await a.request("lend", seconds=60)
        await asyncio.to_thread(alpha.wait_for, "paused", 10)
    await asyncio.to_thread(alpha.wait_for, "up", 15)  # the borrower went away
