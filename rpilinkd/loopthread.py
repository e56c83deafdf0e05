"""An event loop on a background thread, for blocking code that uses asyncio objects.

The blocking client (client/sync.py) and the threaded emulator
(sim/threaded.py) both run their asyncio objects here and hop onto the loop
for every call, so they are safe to use from any one thread.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


class LoopThread:
    def __init__(self, name: str) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name=name, daemon=True)

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def start(self) -> None:
        self._thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        """Run a coroutine on the loop and wait for its result here."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def call(self, func: Callable[[], T], timeout: float | None = None) -> T:
        """Call a plain function on the loop's thread (where its objects live)."""

        async def hop() -> T:
            return func()

        return self.run(hop(), timeout)

    def stop(self, timeout: float | None = None) -> None:
        """Stop the loop and close it (after the last call has returned)."""
        if self._thread.is_alive():
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(timeout)
        self.loop.close()
