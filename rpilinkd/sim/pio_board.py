"""A simulated Raspberry Pi 5: its RP1 PIO block on the emulator, wired into rpilink-sim.

A :class:`PioBoard` is a :class:`Board` whose bus pins are driven by emulated
state machines instead of pigpio waves: on each ``advance`` it runs the TX
machine up to now and logs its pin changes (the sampler replays them onto the
wires like any board's); on each pass, ``observe`` gets the wire levels its
inputs saw and runs the RX machine over them. ``SimPioDevice`` and
``SimLines`` implement the pio backend's device interfaces on top of it, so
the very same backend code runs against it (``hardware=sim_hardware(sim, "a")``).

Order of events: the board queues RX words and control-line changes in the
order they happened on its inputs; ``SimPioDevice.read`` hands out words only
up to the next queued change and dispatches that change to the event loop when
the backend comes back for more, so frames and control changes reach the
backend in wire order. Not modelled: gpiod's debounce, the DMA's own latency
(words reach the host at the end of each ~1 ms emulator pass), pad delays.
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import numpy.typing as npt

from rpilinkd.phy.codec import U32
from rpilinkd.phy.pio.asm import Program
from rpilinkd.phy.pio.registers import SmConfig
from rpilinkd.pigpio_protocol import PUD_DOWN
from rpilinkd.pins import PinMap
from rpilinkd.sim.board import Board
from rpilinkd.sim.pioemu import TICKS_PER_US, PioBlock, StateMachine
from rpilinkd.sim.pioinputs import Inputs

DMA_DEPTH = 1 << 20  # the DMA keeps up: its own latency is not modelled
READ_WAIT_S = 0.05  # a read with nothing to return waits this long (the hardware: ~1 s)
Item = tuple[str, Any]  # ("words", list[int]) or ("levels", int)


def _tick(now_us: float) -> int:
    return round(now_us * TICKS_PER_US)


class PioBoard(Board):
    """A Pi 5 in the emulator: PIO-driven bus pins plus gpiod-driven GPIOs."""

    def __post_init__(self) -> None:
        super().__post_init__()
        self.lock = threading.RLock()
        self.arrived = threading.Condition(self.lock)
        self.block = PioBlock()
        self.enabled: set[int] = set()
        self.claimed: list[int] = []
        self.inputs = Inputs()
        self._seen_changes: dict[int, int] = {}  # sm -> SM output changes already logged
        self.gpio_mask = self.gpio_levels = 0  # gpiod outputs
        self.watched = 0  # inputs whose changes the host hears of (gpiod edge events)
        self.last_input = 0
        self.items: deque[Item] = deque()
        self.changed: Callable[[int], None] | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.levels_now: Callable[[], int] = lambda: self.last_input

    # -- the pins as the rest of the emulator sees them ---------------------------------------

    def advance(self, now_us: float) -> None:
        with self.lock:
            super().advance(now_us)  # pigpio-side writes, if any client makes some
            for sm in sorted(self.enabled):
                machine = self.machine(sm)
                if machine.settings.out_count:  # an output program: it reads no inputs
                    machine.run(_tick(now_us), Inputs())
                    self._log_machine(sm, machine)

    def _log_machine(self, sm: int, machine: StateMachine) -> None:
        start = self._seen_changes.get(sm, 0)
        for tick, values, dirs in machine.changes[start:]:
            self._compose({sm: (values, dirs)})
            self._log_now(tick / TICKS_PER_US)
        self._seen_changes[sm] = len(machine.changes)

    def _compose(self, at: Mapping[int, tuple[int, int]] | None = None) -> None:
        """The board's drive and latch words: every SM's pins (``at``: as of a change
        being logged) plus gpiod's outputs."""
        values = dirs = 0
        for sm in self.claimed:
            machine = self.block.machines[sm]
            if machine is not None:
                sm_values, sm_dirs = (at or {}).get(sm, (machine.values, machine.dirs))
                values |= sm_values & sm_dirs
                dirs |= sm_dirs
        self.drive = dirs | self.gpio_mask
        self.latch = values | (self.gpio_levels & self.gpio_mask)

    def machine(self, sm: int) -> StateMachine:
        machine = self.block.machines[sm]
        assert machine is not None, "configure the state machine first"
        return machine

    def now_changed(self, now_us: float) -> None:
        """Log the composed pins after a host-side change."""
        self._compose()
        self._log_now(now_us)

    # -- what the wires did to the inputs ------------------------------------------------------

    def observe(self, times: npt.NDArray[np.float64], levels: U32, t_end: float) -> None:
        """One sampler pass: run the RX machines over the inputs, note control changes."""
        with self.lock:
            for when, level in zip(times.tolist(), levels.tolist(), strict=True):
                self.inputs.add(_tick(when), level)
            for when, level in zip(times.tolist(), levels.tolist(), strict=True):
                if (level ^ self.last_input) & self.watched:
                    self._run_rx(_tick(when) + 1)
                    self.items.append(("levels", level))
                self.last_input = level
            self._run_rx(_tick(t_end))
            self.inputs.forget_before(_tick(t_end) - 1000)
            self.arrived.notify_all()

    def _run_rx(self, until: int) -> None:
        for sm in sorted(self.enabled):
            machine = self.machine(sm)
            if not machine.settings.out_count:  # an input program
                machine.rx_depth = DMA_DEPTH  # its DMA drains words as they come
                machine.run(until, self.inputs)
                if machine.rx:
                    self.items.append(("words", list(machine.rx)))
                    machine.rx.clear()


class SimPioDevice:
    """device.PioDevice on a :class:`PioBoard` (``now_us`` is the emulator's clock)."""

    def __init__(self, board: PioBoard, now_us: Callable[[], float]) -> None:
        self.board, self.now_us = board, now_us
        self._programs: list[tuple[Program, int]] = []
        self.closed = False

    def _at_now(self) -> float:
        now = self.now_us()
        self.board.advance(now)
        return now

    def claim_sm(self) -> int:
        with self.board.lock:
            free = [sm for sm in range(4) if sm not in self.board.claimed]
            self.board.claimed.append(free[0])
            return free[0]

    def add_program(self, program: Program) -> int:
        with self.board.lock:
            offset = self.board.block.add_program(program)
            self._programs.append((program, offset))
            return offset

    def remove_program(self, program: Program, offset: int) -> None:
        with self.board.lock:
            self.board.block.remove_program(program, offset)
            self._programs.remove((program, offset))

    def gpio_to_pio(self, gpio: int) -> None:
        self.board.set_pull(gpio, PUD_DOWN, self._at_now())

    def gpio_release(self, gpio: int) -> None:
        self.board.set_pull(gpio, PUD_DOWN, self._at_now())

    def sm_init(self, sm: int, pc: int, config: SmConfig) -> None:
        with self.board.lock:
            now = self._at_now()
            self.board.enabled.discard(sm)
            self.board.block.start(sm, pc, config, _tick(now))
            self.board._seen_changes[sm] = 0

    def sm_set_pins(self, sm: int, values: int, mask: int) -> None:
        with self.board.lock:
            now = self._at_now()
            machine = self.board.machine(sm)
            machine.set_outputs(values, machine.dirs, mask, _tick(now))
            self.board._seen_changes[sm] = len(machine.changes)
            self.board.now_changed(now)

    def sm_set_pindirs(self, sm: int, dirs: int, mask: int) -> None:
        with self.board.lock:
            now = self._at_now()
            machine = self.board.machine(sm)
            machine.set_outputs(machine.values, dirs, mask, _tick(now))
            self.board._seen_changes[sm] = len(machine.changes)
            self.board.now_changed(now)

    def sm_enable(self, sm: int, enabled: bool) -> None:
        with self.board.lock:
            now = self._at_now()
            if enabled and sm not in self.board.enabled:
                machine = self.board.machine(sm)
                machine.start_tick, machine.cycle = _tick(now), 0  # resumes from now
                self.board.enabled.add(sm)
            elif not enabled:
                self.board.enabled.discard(sm)

    def tx_level(self, sm: int) -> int:
        with self.board.lock:
            self._at_now()
            return len(self.board.machine(sm).tx)

    def write(self, sm: int, words: U32) -> None:
        # the DMA keeps the FIFO topped up: modelled as a FIFO as deep as the burst
        with self.board.lock:
            self._at_now()
            self.board.machine(sm).tx.extend(int(w) for w in words)

    def read(self, sm: int, count: int) -> U32:
        """Words up to the next control-line change (dispatching changes that come first)."""
        board = self.board
        with board.lock:
            if not board.items:
                board.arrived.wait(READ_WAIT_S)
            words: list[int] = []
            while board.items and len(words) < count:
                kind, value = board.items[0]
                if kind == "levels":
                    if words:
                        break  # the words before it go first
                    board.items.popleft()
                    self._dispatch(value)
                    continue
                take = value[: count - len(words)]
                words += take
                if len(take) == len(value):
                    board.items.popleft()
                else:
                    board.items[0] = ("words", value[len(take) :])
            return np.array(words, np.uint32)

    def _dispatch(self, level: int) -> None:
        changed, loop = self.board.changed, self.board.loop
        if changed is not None and loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(changed, level)

    def close(self) -> None:
        with self.board.lock:
            for sm in self.board.claimed:
                self.board.enabled.discard(sm)
            self.board.claimed.clear()
            for program, offset in list(self._programs):
                self.remove_program(program, offset)
            self.board.items.clear()
            self.closed = True


class SimLines:
    """device.ControlLines on a :class:`PioBoard`."""

    def __init__(self, board: PioBoard, pins: PinMap, now_us: Callable[[], float]) -> None:
        self.board, self.pins, self.now_us = board, pins, now_us
        self.outputs = 1 << pins.req_out | 1 << pins.rw_out
        self.handshake = 1 << pins.req_in | 1 << pins.rw_in
        self.strobes = 1 << pins.stb_in | 1 << pins.frm_in
        now = now_us()
        with board.lock:
            for line in (
                pins.req_in,
                pins.rw_in,
                pins.stb_in,
                pins.frm_in,
                pins.req_out,
                pins.rw_out,
            ):
                board.set_pull(line, PUD_DOWN, now)
            board.gpio_levels &= ~self.outputs
            board.gpio_mask |= self.outputs
            board.watched = self.handshake | self.strobes
            board.now_changed(now)

    def start(self, changed: Callable[[int], None]) -> None:
        with self.board.lock:
            self.board.changed, self.board.loop = changed, asyncio.get_running_loop()
            self.board.last_input = self.read()

    def read(self) -> int:
        return self.board.levels_now() & (self.handshake | self.strobes)

    def set_outputs(self, levels: Mapping[int, bool]) -> None:
        if not levels:
            return
        with self.board.lock:
            now = self.now_us()
            self.board.advance(now)
            for gpio, up in levels.items():
                bit = 1 << gpio
                self.board.gpio_levels = (
                    self.board.gpio_levels | bit if up else self.board.gpio_levels & ~bit
                )
            self.board.now_changed(now)

    def watch_strobes(self, enabled: bool) -> None:
        with self.board.lock:
            self.board.watched = self.handshake | (self.strobes if enabled else 0)

    def debounce(self, gpios: tuple[int, ...], period_us: int) -> None:
        return  # not modelled: the emulated wires do not bounce

    def close(self) -> None:
        self.set_outputs({self.pins.req_out: False, self.pins.rw_out: False})
        with self.board.lock:
            self.board.changed = self.board.loop = None
            self.board.gpio_mask &= ~self.outputs
            self.board.watched = 0


def sim_hardware(sim: Any, name: str) -> Callable[[PinMap, int], tuple[SimPioDevice, SimLines]]:
    """The ``hardware=`` option of the pio backend for board ``name`` of a Simulator."""
    board = sim.boards[name]
    if not isinstance(board, PioBoard):
        raise TypeError(f"board {name!r} is not a simulated Pi 5 (SimConfig.pio_boards)")

    def open_board(pins: PinMap, debounce_us: int) -> tuple[SimPioDevice, SimLines]:
        board.levels_now = lambda: sim.read_levels(board)
        return SimPioDevice(board, sim.now_us), SimLines(board, pins, sim.now_us)

    return open_board
