"""The emulator: two boards, the cable, the sampling loop and the servers.

Use it from asyncio (``async with Simulator(SimConfig()) as sim``), from
blocking code (``with ThreadedSimulator(SimConfig()) as sim``), or as the
``rpilink-sim`` program.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import random
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import numpy as np

from rpilinkd.errors import SimError
from rpilinkd.pigpio_protocol import COMMAND_NAMES, PUD_OFF, Err
from rpilinkd.pins import DEFAULT_PINS, WIDE_PINS
from rpilinkd.sim.alerts import DEFAULT_BUFFER_MS, DEFAULT_REPORT_RATE, AlertThread, ring_ms
from rpilinkd.sim.board import Board
from rpilinkd.sim.clock import AlertPhases, Clock, board_grids
from rpilinkd.sim.commands import HANDLERS, Call
from rpilinkd.sim.control import ControlServer
from rpilinkd.sim.faults import Fault, Faults, parse_spec
from rpilinkd.sim.pio_board import PioBoard
from rpilinkd.sim.sampler import Sampler
from rpilinkd.sim.server import BoardServer
from rpilinkd.sim.timeline import Timeline
from rpilinkd.sim.transmitter import DEFAULT_SET_CLEAR_GAP_US
from rpilinkd.sim.vcd import VcdWriter
from rpilinkd.sim.wave_commands import WAVE_HANDLERS
from rpilinkd.sim.wires import Crossing, Side, Wire, default_wires, load_wiring, resolve

_LOGGER = logging.getLogger(__name__)
BOARDS = ("a", "b")
SWITCH_INTERVAL_S = 0.0002
SAMPLE_PERIODS_US = (1, 2, 4, 5, 8, 10)
ALL_HANDLERS = {**HANDLERS, **WAVE_HANDLERS}  # every pigpiod command the emulator answers


@dataclass(frozen=True)
class SimConfig:
    sample_us: int = 5
    sample_us_a: int | None = None
    sample_us_b: int | None = None
    seed: int | None = None
    wiring: Path | None = None
    host: str = "127.0.0.1"
    port_a: int = 0
    port_b: int = 0
    vcd: Path | None = None
    control: Path | None = None
    faults: tuple[str, ...] = ()
    report_rate: float = DEFAULT_REPORT_RATE  # changes/s a board's pigpiod can report (0: any)
    buffer_ms: float = DEFAULT_BUFFER_MS  # its sample ring (pigpiod -b)
    set_clear_gap_us: float = DEFAULT_SET_CLEAR_GAP_US  # a pulse's set write, then its clear
    width: int = 8  # the default cable: the 8-bit bus's pin map, or the 16-bit one
    off: tuple[str, ...] = ()  # boards powered off: pins float, pigpiod does not answer
    pio_boards: tuple[str, ...] = ()  # simulated Pi 5s (sim/pio_board.py), for the pio backend
    alert_phases: AlertPhases = AlertPhases.FREE  # the two alert threads' passes (sim/clock.py)

    def sample_for(self, board: str) -> int:
        override = self.sample_us_a if board == "a" else self.sample_us_b
        period = override or self.sample_us
        if period not in SAMPLE_PERIODS_US:
            raise SimError(f"sample period {period} µs: pigpiod allows {SAMPLE_PERIODS_US}")
        return period


class Simulator:
    """Two virtual Pis wired together, each answering pigpiod's socket protocol."""

    def __init__(self, config: SimConfig | None = None) -> None:
        self.config = config or SimConfig()
        self.seed = self.config.seed if self.config.seed is not None else random.randrange(1 << 32)
        rng = random.Random(self.seed)
        kinds = {name: PioBoard if name in self.config.pio_boards else Board for name in BOARDS}
        self.boards = {
            name: kinds[name](name, self.config.sample_for(name), random.Random(rng.random()))
            for name in BOARDS
        }
        for board in self.boards.values():
            ring = ring_ms(self.config.buffer_ms, board.sample_us)
            board.alerts = AlertThread(self.config.report_rate, ring)
            board.tx.set_clear_gap_us = self.config.set_clear_gap_us
        for name in self.config.off:
            if name not in self.boards:
                raise SimError(f"cannot power off board {name!r}; boards: {', '.join(BOARDS)}")
            self.boards[name].pulls = [PUD_OFF] * len(self.boards[name].pulls)  # unpowered pins
        pins = WIDE_PINS if self.config.width == 16 else DEFAULT_PINS
        self.base_wires = (
            load_wiring(self.config.wiring) if self.config.wiring else default_wires(pins)
        )
        names = [w.name for w in self.base_wires]
        self.faults = Faults(random.Random(rng.random()), names, list(BOARDS))
        for spec in self.config.faults:
            self.faults.add(parse_spec(spec))
        self._t0_ns = time.monotonic_ns()
        self._acting_at: float | None = None  # see act_at
        self._vcd = VcdWriter(self.config.vcd, names) if self.config.vcd else None
        self.timeline = Timeline()  # recorded on request (the control socket's op)
        self.sampler = Sampler(
            self.boards,
            self.wires,
            faults=self.faults,
            rng=random.Random(rng.random()),
            start_us=0.0,
            vcd=self._vcd,
            timeline=self.timeline,
        )
        ports = {"a": self.config.port_a, "b": self.config.port_b}
        self.servers = {
            name: BoardServer(self, board, self.config.host, ports[name])
            for name, board in self.boards.items()
        }
        self._loop_task: asyncio.Task[None] | None = None
        grids = board_grids(self.config.alert_phases, random.Random(rng.random()))
        self.clock = Clock(self._pass, self._quiet_until, grids)
        self._control: ControlServer | None = None
        self.started_at = 0.0
        self.pass_seconds = 0.0
        self._command_counts: collections.Counter[int] = collections.Counter()

    # -- the machine commands run on -------------------------------------------------

    def now_us(self) -> float:
        """The instant commands act at: now, or where a delay left its session."""
        return self.wall_us() if self._acting_at is None else self._acting_at

    def wall_us(self) -> float:
        return self.us_of(time.monotonic_ns())

    def us_of(self, monotonic_ns: int) -> float:
        """A time.monotonic_ns instant on the emulator's clock."""
        return (monotonic_ns - self._t0_ns) / 1000.0

    def act_at(self, board: Board, at_us: float | None) -> float:
        """Commands act at ``at_us`` from now on (see Session.serve), or at now
        (``None``: the session waits for its socket or a delay). Never before what
        a pass has sampled or the board's pins were brought up to, nor after now.
        Returns the instant they act at."""
        wall = self.wall_us()
        if at_us is None:
            self._acting_at = None
            return wall
        floor = max(self.sampler.last_us, board.advanced_us)
        self._acting_at = min(max(at_us, floor), wall)
        return self._acting_at

    async def delay_until(self, at_us: float) -> None:
        """Wait until the emulator's instant ``at_us``: exactly then, not some µs after
        (a pass due in between would sample past it, and what follows would act late)."""
        await self.clock.delay_until((self._t0_ns / 1000.0 + at_us) / 1e6)

    def wires(self) -> list[Wire]:
        return self.faults.apply_to_wires(self.base_wires)

    def read_levels(self, board: Board) -> int:
        """GPIO 0-31 of ``board`` as they read now."""
        now = self.now_us()
        for b in self.boards.values():
            b.advance(now)
        other = self.boards["b" if board.name == "a" else "a"]

        def side(b: Board) -> Side:
            return Side(np.array([b.drive], np.uint32), np.array([b.latch], np.uint32), b.pulls)

        links = [(w.a, w.b, w) if board.name == "a" else (w.b, w.a, w) for w in self.wires()]
        return int(resolve(Crossing.build(links), side(board), side(other))[0])

    def _quiet_until(self) -> float | None:
        """Till when (time.monotonic) passes would find nothing unless a command or a
        fault comes; None if the next one may find something."""
        if self.faults.active:
            return None
        now = self.now_us()
        if any(b.tx.busy(now) or b.timed_writes for b in self.boards.values()):
            return None
        until_us = self.sampler.quiet_until(now)
        return None if until_us is None else (self._t0_ns / 1000.0 + until_us) / 1e6

    def execute(self, board: Board, cmd: int, p1: int, p2: int, ext: bytes) -> int:
        self.clock.stir()
        handler = ALL_HANDLERS.get(cmd)
        board.stats["commands"] += 1
        self._command_counts[cmd] += 1
        if handler is None:
            return Err.UNKNOWN_COMMAND
        return handler(Call(self, board, cmd, p1, p2, ext))

    # -- life cycle --------------------------------------------------------------------

    async def start(self) -> None:
        # Where there is no timerfd the clock wakes in a thread that then needs the GIL,
        # by default let in only after 5 ms: pigpiod's threads never wait like that.
        sys.setswitchinterval(SWITCH_INTERVAL_S)
        for name, server in self.servers.items():
            if name not in self.config.off:  # a Pi that is off does not answer at all
                await server.start()
        if self.config.control is not None:
            self._control = ControlServer(self, self.config.control)
            await self._control.start()
        self.started_at = time.monotonic()
        self._loop_task = asyncio.create_task(self.clock.run(), name="rpilink-sim passes")

    def _pass(self, boards: tuple[str, ...]) -> None:
        began = time.perf_counter()
        # up to the instant commands act at (a catch-up pass runs as one acts), yet
        # past every change either board has logged: a pass's window holds them all
        until = max(self.now_us(), *(board.advanced_us for board in self.boards.values()))
        try:
            self.sampler.run(until, boards)
        except Exception:  # an emulator bug must not freeze both boards silently
            _LOGGER.exception("sampling pass failed")
        self.pass_seconds += time.perf_counter() - began

    async def stop(self) -> None:
        if self._loop_task is not None:
            self._loop_task.cancel()
            await asyncio.gather(self._loop_task, return_exceptions=True)
            self._loop_task = None
        if self._control is not None:
            await self._control.stop()
            self._control = None
        for server in self.servers.values():
            await server.stop()
        if self._vcd is not None:
            self.sampler.run(self.now_us())
            self._vcd.close()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    # -- what tests and the control socket use ----------------------------------------------

    def port(self, board: str) -> int:
        """The board's pigpiod port (0 for a board that is powered off)."""
        return 0 if board in self.config.off else self.servers[board].port

    async def restart_board(self, board: str, down_s: float = 0.2) -> None:
        """pigpiod on ``board`` restarts: every socket closes, waves and handles vanish."""
        if board not in self.boards:
            raise SimError(f"no board {board!r}; boards: {', '.join(BOARDS)}")
        if board in self.config.off:
            raise SimError(f"board {board} is powered off (--power-off); it has no pigpiod")
        server = self.servers[board]
        await server.stop()
        self.boards[board].restart_daemon(self.now_us())
        self.clock.stir()
        self.boards[board].stats["restarts"] = self.boards[board].stats.get("restarts", 0) + 1
        await asyncio.sleep(down_s)
        await server.start()
        _LOGGER.info("board %s: pigpiod restarted (down %.2f s)", board, down_s)

    def stall_alerts(self, board: str, ms: float) -> None:
        """Starve ``board``'s pigpiod alert thread for ``ms`` (a busy Pi): no report
        meanwhile; then the backlog comes at once, less what the ring lost."""
        if board not in self.boards:
            raise SimError(f"no board {board!r}; boards: {', '.join(BOARDS)}")
        alerts = self.boards[board].alerts
        alerts.stalled_until_us = max(alerts.stalled_until_us, self.now_us() + ms * 1000)
        self.clock.stir()

    def add_fault(self, spec: dict[str, Any] | str) -> dict[str, Any]:
        self.clock.stir()
        fault = self.faults.add(parse_spec(spec) if isinstance(spec, str) else dict(spec))
        _LOGGER.info("fault added: %s", fault.describe())
        return fault.describe()

    def active_faults(self) -> list[Fault]:
        return list(self.faults.active.values())

    def remove_fault(self, fault_id: int) -> None:
        self.faults.remove(fault_id)

    def clear_faults(self) -> None:
        self.faults.clear()

    def commands(self) -> dict[str, int]:
        """How often each command ran, by name."""
        return {COMMAND_NAMES.get(c, str(c)): n for c, n in self._command_counts.items()}

    def stats(self) -> dict[str, Any]:
        uptime = time.monotonic() - self.started_at if self.started_at else 0.0
        boards = {}
        for name, board in self.boards.items():
            boards[name] = {
                "port": self.port(name),
                "sample_us": board.sample_us,
                "connections": len(self.servers[name].sessions),
                "waves_started": board.tx.waves_started,
                "wave_ids_in_use": board.pool.ids_in_use,
                "wave_cbs_in_use": board.pool.cbs_in_use,
                "wave_ools_in_use": board.pool.ools_in_use,
                "notify_handles": len(board.handles),
                **board.stats,
            }
        return {
            "uptime_s": round(uptime, 3),
            "seed": self.seed,
            "boards": boards,
            "shorts": dict(self.sampler.short_counts),
            "shorts_total": sum(self.sampler.short_counts.values()),
            "shorts_longest_ms": {
                name: round(us / 1000, 3) for name, us in self.sampler.short_longest_us.items()
            },
            "faults": [f.describe() for f in self.faults.active.values()],
            "faults_injected": dict(self.faults.injected),
            "passes": self.sampler.passes,
            "pass_load": round(self.pass_seconds / uptime, 4) if uptime else 0.0,
            "commands": self.commands(),
        }

    def reset_stats(self) -> None:
        self.sampler.short_counts.clear()
        self.sampler.short_longest_us.clear()
        for key in self.faults.injected:
            self.faults.injected[key] = 0
        for board in self.boards.values():
            board.tx.waves_started = 0
            for key in board.stats:
                board.stats[key] = 0
        self._command_counts.clear()
        self.sampler.passes = 0
        self.pass_seconds = 0.0
        self.started_at = time.monotonic()
