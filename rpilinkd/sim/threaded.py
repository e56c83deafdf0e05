"""The emulator on a background thread, for tests and tools written with blocking I/O.

The event loop runs on its own thread ("rpilink-sim", rpilinkd.loopthread);
every method here hops onto it and waits for the answer, so the official
(blocking) pigpio client can talk to the emulator from the caller's thread::

    with ThreadedSimulator(SimConfig(sample_us=5)) as sim:
        pi = pigpio.pi("127.0.0.1", sim.port("a"))
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from types import TracebackType
from typing import Any, Self, TypeVar

from rpilinkd.loopthread import LoopThread
from rpilinkd.sim.core import SimConfig, Simulator

T = TypeVar("T")
CALL_TIMEOUT_S = 30.0


class ThreadedSimulator:
    def __init__(self, config: SimConfig | None = None) -> None:
        self.config = config or SimConfig()
        self._loop = LoopThread("rpilink-sim")
        self._sim: Simulator | None = None

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        return self._loop.run(coro, CALL_TIMEOUT_S)

    def _call(self, func: Callable[[], T]) -> T:
        return self._loop.call(func, CALL_TIMEOUT_S)

    @property
    def sim(self) -> Simulator:
        if self._sim is None:
            raise RuntimeError("the emulator is not running")
        return self._sim

    def start(self) -> None:
        self._loop.start()

        async def create() -> Simulator:
            sim = Simulator(self.config)
            await sim.start()
            return sim

        self._sim = self._run(create())

    def stop(self) -> None:
        if self._sim is not None:
            self._run(self._sim.stop())
            self._sim = None
        self._loop.stop(CALL_TIMEOUT_S)

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
