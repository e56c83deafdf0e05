"""Message traffic through the client library, shared by the end-to-end tests."""

from __future__ import annotations

import asyncio

from rpilinkd.client import Client


async def pump(sender: Client, port: int, items: list[bytes], in_flight: int = 16) -> None:
    """Send every item, ``in_flight`` at a time."""
    window = asyncio.Semaphore(in_flight)

    async def one(data: bytes) -> None:
        async with window:
            await sender.send(port, data)

    await asyncio.gather(*(one(d) for d in items))


async def collect(receiver: Client, count: int, timeout: float) -> list[bytes]:
    """The next ``count`` messages' data, in the order they came."""
    return [(await receiver.receive(timeout=timeout)).data for _ in range(count)]
