"""The pigpiod client: replies settle their commands; a lost connection fails them quietly."""

from __future__ import annotations

import asyncio
import gc

import pytest

from rpilinkd.errors import PhyUnavailableError
from rpilinkd.phy.pigpiod import PigpiodClient
from rpilinkd.pigpio_protocol import Cmd


async def test_unread_answers_of_a_lost_connection_leave_no_warning() -> None:
    """Batches sent without waiting (the bus's claims, a burst's tail) are failed when
    pigpiod goes away. Nobody may ever look at them, and asyncio must not log "exception
    was never retrieved" for each (no done callback per reply does that any more: one
    cost an event-loop turn per command)."""
    problems: list[dict[str, object]] = []
    asyncio.get_running_loop().set_exception_handler(lambda _, context: problems.append(context))

    async def pigpiod(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readexactly(16 * 3)  # three commands, then it dies without answering
        writer.close()

    server = await asyncio.start_server(pigpiod, "127.0.0.1", 0)
    try:
        client = PigpiodClient("127.0.0.1", server.sockets[0].getsockname()[1])
        await client.connect()
        futures = client.send_many(
            [(Cmd.BS1, 1, 0, b""), (Cmd.BC1, 1, 0, b""), (Cmd.WVHLT, 0, 0, b"")]
        )
        while not all(f.done() for f in futures):
            await asyncio.sleep(0.01)
        with pytest.raises(PhyUnavailableError, match="closed the connection"):
            client.send(Cmd.BS1, 1)
        del futures
        gc.collect()
        await asyncio.sleep(0)
        assert problems == []
        await client.close()
    finally:
        server.close()
        await server.wait_closed()
