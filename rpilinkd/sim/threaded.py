"""The emulator on a background thread, for tests and tools written with blocking I/O.

The event loop runs on its own thread ("rpilink-sim"); every method here hops
onto it with ``run_coroutine_threadsafe`` and waits for the answer, so the
official (blocking) pigpio client can talk to the emulator from the caller's
thread.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self, TypeVar

if TYPE_CHECKING:
    from rpilinkd.sim.core import SimConfig, Simulator

T = TypeVar("T")
CALL_TIMEOUT_S = 30.0


class ThreadedSimulator:
    def __init__(self, config: SimConfig) -> None:
        self.config = config
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="rpilink-sim", daemon=True
        )
        self._sim: Simulator | None = None

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(CALL_TIMEOUT_S)

    def _call(self, func: Callable[[], T]) -> T:
        async def hop() -> T:
            return func()

        return self._run(hop())

    @property
    def sim(self) -> Simulator:
        if self._sim is None:
            raise RuntimeError("the emulator is not running")
        return self._sim

    def start(self) -> None:
        from rpilinkd.sim.core import Simulator  # noqa: PLC0415 - core imports this module

        self._thread.start()

        async def create() -> Simulator:
            sim = Simulator(self.config)
            await sim.start()
            return sim

        self._sim = self._run(create())

    def stop(self) -> None:
        if self._sim is not None:
            self._run(self._sim.stop())
            self._sim = None
        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(CALL_TIMEOUT_S)
        self._loop.close()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # -- the same surface as Simulator ---------------------------------------------------

    def port(self, board: str) -> int:
        return self._call(lambda: self.sim.port(board))

    def stats(self) -> dict[str, Any]:
        return self._call(self.sim.stats)

    def reset_stats(self) -> None:
        self._call(self.sim.reset_stats)

    def add_fault(self, spec: dict[str, Any] | str) -> dict[str, Any]:
        return self._call(lambda: self.sim.add_fault(spec))

    def remove_fault(self, fault_id: int) -> None:
        self._call(lambda: self.sim.remove_fault(fault_id))

    def clear_faults(self) -> None:
        self._call(self.sim.clear_faults)

    def restart_board(self, board: str, down_s: float = 0.2) -> None:
        self._run(self.sim.restart_board(board, down_s))

    def now_us(self) -> float:
        return self.sim.now_us()
