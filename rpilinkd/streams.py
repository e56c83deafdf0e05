"""asyncio stream plumbing shared by the socket clients (the API client, the pigpiod client)."""

from __future__ import annotations

import asyncio
import contextlib


async def close_stream(
    writer: asyncio.StreamWriter | None, reader: asyncio.Task[None] | None
) -> None:
    """Close a connection's writer and stop the task reading it; either may be None."""
    if writer is not None:
        with contextlib.suppress(ConnectionError, RuntimeError):  # already gone, or loop closing
            writer.close()
    if reader is not None:
        reader.cancel()
        await asyncio.gather(reader, return_exceptions=True)
