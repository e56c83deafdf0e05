"""Polling instead of sleeping: wait for a condition, with a generous bound."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable


async def wait_until(
    predicate: Callable[[], object], timeout: float = 20.0, step: float = 0.02
) -> None:
    """Return once ``predicate()`` is true; AssertionError if it never becomes true."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(step)
