"""pigpiod's commands, with the argument checks and error codes of pigpio v79.

Each handler takes the board, the machine (for the clock and wire levels),
the session that sent it and the request's ``p1, p2, ext``, and returns the
result that goes back in the reply's ``p3``. The order of the checks follows
``myDoCommand`` and the ``gpio*`` functions in pigpio.c (e.g. permission
before range for MODES, so MODES 40 is -41 but MODES 60 is -3).
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import NamedTuple, Protocol

from rpilinkd.pigpio_protocol import MODE_OUTPUT, PIGPIO_VERSION, Cmd, Err
from rpilinkd.sim.board import Board, GlitchFilter

MAX_GPIO = 53
MAX_USER_GPIO = 31
MAX_MODE = 7
MAX_WDOG_MS = 60_000
MAX_STEADY_US = 300_000
MAX_ACTIVE_US = 1_000_000
MAX_TRIGGER_US = 100
PWM_FREQUENCIES_S5 = (
    8000,
    4000,
    2000,
    1600,
    1000,
    800,
    500,
    400,
    320,
    250,
    200,
    160,
    100,
    80,
    50,
    40,
    20,
    10,
)


class Machine(Protocol):
    """What commands need from the emulator around the board."""

    def now_us(self) -> float: ...
    def read_levels(self, board: Board) -> int: ...


class Call(NamedTuple):
    """One request: the command and its arguments, for the board it reached (a tuple:
    one is made per command, some 50 per message, and a frozen dataclass costs more)."""

    machine: Machine
    board: Board
    cmd: int
    p1: int
    p2: int
    ext: bytes = b""


Handler = Callable[[Call], int]
Registrar = Callable[..., Callable[[Handler], Handler]]


def registrar(table: dict[int, Handler]) -> Registrar:
    """A decorator factory that files handlers in ``table`` under their command numbers."""

    def command(*numbers: int) -> Callable[[Handler], Handler]:
        def register(func: Handler) -> Handler:
            for number in numbers:
                table[number] = func
            return func

        return register

    return command


HANDLERS: dict[int, Handler] = {}  # pins, clock, notifications (waves: wave_commands.py)
command = registrar(HANDLERS)


def _permitted(board: Board, gpio: int) -> bool:
    """pigpio's myPermit: a GPIO beyond 53 passes here and fails its range check."""
    return gpio > MAX_GPIO or bool(board.permitted >> gpio & 1)


def u32(ext: bytes) -> int:
    return struct.unpack_from("<I", ext)[0] if len(ext) >= 4 else 0


# --- pins ---------------------------------------------------------------------


@command(Cmd.MODES)
def _modes(c: Call) -> int:
    gpio, mode = c.p1, c.p2
    if not _permitted(c.board, gpio):
        return Err.NOT_PERMITTED
    if gpio > MAX_GPIO:
        return Err.BAD_GPIO
    if mode > MAX_MODE:
        return Err.BAD_MODE
    c.board.set_mode(gpio, mode, c.machine.now_us())
    return 0


@command(Cmd.MODEG)
def _modeg(c: Call) -> int:
    gpio = c.p1
    return Err.BAD_GPIO if gpio > MAX_GPIO else c.board.modes[gpio]


@command(Cmd.PUD)
def _pud(c: Call) -> int:
    gpio, pud = c.p1, c.p2
    if not _permitted(c.board, gpio):
        return Err.NOT_PERMITTED
    if gpio > MAX_GPIO:
        return Err.BAD_GPIO
    if pud > 2:
        return Err.BAD_PUD
    c.board.set_pull(gpio, pud, c.machine.now_us())
    return 0


@command(Cmd.READ)
def _read(c: Call) -> int:
    gpio = c.p1
    if gpio > MAX_GPIO:
        return Err.BAD_GPIO
    if gpio <= MAX_USER_GPIO:
        return c.machine.read_levels(c.board) >> gpio & 1
    return c.board.latch2 >> (gpio - 32) & 1 if c.board.modes[gpio] == MODE_OUTPUT else 0


@command(Cmd.WRITE)
def _write(c: Call) -> int:
    gpio, level = c.p1, c.p2
    if not _permitted(c.board, gpio):
        return Err.NOT_PERMITTED
    if gpio > MAX_GPIO:
        return Err.BAD_GPIO
    if level > 1:
        return Err.BAD_LEVEL
    c.board.write(gpio, level, c.machine.now_us())
    return 0


@command(Cmd.BR1)
def _br1(c: Call) -> int:
    return c.machine.read_levels(c.board)


@command(Cmd.BR2)
def _br2(c: Call) -> int:
    outputs = sum(1 << (g - 32) for g in range(32, MAX_GPIO + 1) if c.board.modes[g] == MODE_OUTPUT)
    return c.board.latch2 & outputs


@command(Cmd.BS1, Cmd.BC1)
def _bank1(c: Call) -> int:
    bits = c.p1
    allowed = bits & c.board.permitted
    now = c.machine.now_us()
    if c.cmd == Cmd.BS1:
        c.board.set_bits(allowed, 0, now)
    else:
        c.board.set_bits(0, allowed, now)
    return 0 if allowed == bits else Err.SOME_PERMITTED


@command(Cmd.BS2, Cmd.BC2)
def _bank2(c: Call) -> int:
    bits = c.p1
    return 0 if bits == 0 else Err.SOME_PERMITTED  # no bank-2 GPIO is permitted on a 3B/4B


@command(Cmd.TICK)
def _tick(c: Call) -> int:
    return c.board.tick(c.machine.now_us())


@command(Cmd.HWVER)
def _hwver(c: Call) -> int:
    return c.board.hw_revision


@command(Cmd.PIGPV)
def _pigpv(c: Call) -> int:
    return PIGPIO_VERSION


@command(Cmd.TRIG)
def _trig(c: Call) -> int:
    gpio, micros = c.p1, c.p2
    if not _permitted(c.board, gpio):
        return Err.NOT_PERMITTED
    level = u32(c.ext)
    if gpio > MAX_USER_GPIO:
        return Err.BAD_USER_GPIO
    if level > 1:
        return Err.BAD_LEVEL
    if micros == 0 or micros > MAX_TRIGGER_US:
        return Err.BAD_PULSELEN
    now, bit = c.machine.now_us(), 1 << gpio
    c.board.set_bits(bit if level else 0, 0 if level else bit, now)
    c.board.write_later(now + micros, 0 if level else bit, bit if level else 0)
    return 0


@command(Cmd.PADS, Cmd.PADG)
def _pads(c: Call) -> int:
    pad, strength = c.p1, c.p2
    if pad > 2:
        return Err.BAD_PAD
    if c.cmd == Cmd.PADG:
        return c.board.pads[pad]
    if not 1 <= strength <= 16:
        return Err.BAD_STRENGTH
    c.board.pads[pad] = strength
    return 0


# --- PWM: recorded so clients see consistent answers; not played on the wires ------


def _pwm(board: Board, gpio: int) -> dict[str, int]:
    return board.pwm.setdefault(gpio, {"duty": 0, "range": 255, "frequency": 800, "on": 0})


@command(Cmd.PWM, Cmd.PRS, Cmd.PFS, Cmd.PRG, Cmd.PFG, Cmd.GDC)
def _pwm_cmds(c: Call) -> int:
    gpio, value = c.p1, c.p2
    if c.cmd in (Cmd.PWM, Cmd.PRS, Cmd.PFS) and not _permitted(c.board, gpio):
        return Err.NOT_PERMITTED
    if gpio > MAX_USER_GPIO:
        return Err.BAD_USER_GPIO
    state = _pwm(c.board, gpio)
    if c.cmd == Cmd.PWM:
        if value > state["range"]:
            return Err.BAD_DUTYCYCLE
        state["duty"], state["on"] = value, 1
        c.board.set_mode(gpio, MODE_OUTPUT, c.machine.now_us())
        return 0
    if c.cmd == Cmd.PRS:
        if not 25 <= value <= 40_000:
            return Err.BAD_DUTYRANGE
        state["range"] = value
        return value
    if c.cmd == Cmd.PFS:
        state["frequency"] = min(PWM_FREQUENCIES_S5, key=lambda f: abs(f - value))
        return state["frequency"]
    if c.cmd == Cmd.PRG:
        return state["range"]
    if c.cmd == Cmd.PFG:
        return state["frequency"]
    return state["duty"] if state["on"] else Err.NOT_PWM_GPIO


# --- watchdogs and filters ------------------------------------------------------------


@command(Cmd.WDOG)
def _wdog(c: Call) -> int:
    gpio, timeout_ms = c.p1, c.p2
    if gpio > MAX_USER_GPIO:
        return Err.BAD_USER_GPIO
    if timeout_ms > MAX_WDOG_MS:
        return Err.BAD_WDOG_TIMEOUT
    if timeout_ms:
        c.board.watchdogs[gpio] = timeout_ms * 1000
        c.board.wdog_since[gpio] = c.machine.now_us()
    else:
        c.board.watchdogs.pop(gpio, None)
    return 0


@command(Cmd.FG, Cmd.FN)
def _filters(c: Call) -> int:
    gpio, steady = c.p1, c.p2
    if gpio > MAX_USER_GPIO:
        return Err.BAD_USER_GPIO
    if steady > MAX_STEADY_US:
        return Err.BAD_FILTER
    if c.cmd == Cmd.FN:
        active = u32(c.ext)
        if active > MAX_ACTIVE_US:
            return Err.BAD_FILTER
        c.board.noise[gpio] = (steady, active)
    if steady:
        c.board.glitch[gpio] = GlitchFilter(steady)  # FN is modelled by its steady part
    else:
        c.board.glitch.pop(gpio, None)
        c.board.noise.pop(gpio, None)
    return 0


# --- notification handles (NOIB itself needs the socket: see server.py) ----------------


@command(Cmd.NB, Cmd.NP, Cmd.NC)
def _notify(c: Call) -> int:
    handle, bits = c.p1, c.p2
    slot = c.board.handles.get(handle)
    if slot is None:
        return Err.BAD_HANDLE
    if c.cmd == Cmd.NB:
        slot.bits, slot.running = bits, True
    elif c.cmd == Cmd.NP:
        slot.bits, slot.running = 0, False
    else:
        del c.board.handles[handle]
    return 0


@command(Cmd.NO)
def _no(c: Call) -> int:
    # on a Pi this is a pipe (/dev/pigpioN) nobody can read from here
    handle = c.board.open_handle(None, None, c.machine.now_us())
    return Err.NO_HANDLE if handle is None else handle
