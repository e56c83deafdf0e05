"""A PIO emulator: RP1's (and the RP2040's) state machines, instruction by instruction.

Time is counted in ticks of the 200 MHz system clock (5 ns); a state machine
executes at the ticks of its clock divider. It reads its inputs through the
2-tick input synchroniser, from an :class:`Inputs` timeline; its outputs are
logged as ``(tick, values, dirs)`` whenever they change. The host side is the
FIFOs, which the caller fills and drains between two calls of :meth:`run`.

Modelled: every instruction but ``irq``, ``wait irq``, ``mov/out exec`` and
``mov status`` (they raise :class:`PioEmulationError`); side-set (optional and
pindirs too), delays, wrap, in/out/set/side-set bases, ``jmp pin``, FIFO depth
and joins, integer and fractional dividers. Not modelled: autopush/autopull
(refused: this project's programs push and pull explicitly), IRQ flags, several
SMs writing one pin, pad delays and skew, metastability. The instructions of a
stalled ``wait``, and polling loops on unchanged inputs, are skipped ahead to
the next input change: the result is the same, many times faster.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from rpilinkd.phy.pio.asm import Program
from rpilinkd.phy.pio.registers import FifoJoin, SmConfig, SmSettings
from rpilinkd.sim.pioinputs import Inputs, PioEmulationError

M32 = 0xFFFFFFFF
TICKS_PER_US = 200
SYNC_TICKS = 2  # the input synchroniser: two clk_sys flip-flops
RP1_FIFO_DEPTH = 8
RP2040_FIFO_DEPTH = 4


def _rotate_right(word: int, by: int) -> int:
    return ((word >> by) | (word << (32 - by))) & M32 if by else word


def _reverse(word: int) -> int:
    return int(f"{word:032b}"[::-1], 2)


@dataclass
class StateMachine:
    """One state machine with its registers, FIFOs and output log."""

    memory: list[int]
    settings: SmSettings
    pc: int
    fifo_depth: int = RP1_FIFO_DEPTH
    start_tick: int = 0
    x: int = 0
    y: int = 0
    isr: int = 0
    osr: int = 0
    isr_count: int = 0
    osr_count: int = 32  # empty
    values: int = 0  # this SM's output levels
    dirs: int = 0  # and directions
    cycle: int = 0
    tx: deque[int] = field(default_factory=deque)
    rx: deque[int] = field(default_factory=deque)
    changes: list[tuple[int, int, int]] = field(default_factory=list)  # (tick, values, dirs)
    dropped: int = 0  # words a ``push noblock`` lost to a full RX FIFO
    instructions: int = 0  # executed (skipped ones not counted)

    def __post_init__(self) -> None:
        s = self.settings
        if s.autopull or s.autopush:
            raise PioEmulationError("autopull/autopush are not modelled")
        self.div256 = (s.clkdiv_int << 8 | s.clkdiv_frac) or 1 << 24
        self.tx_depth = self.fifo_depth * (2 if s.join == FifoJoin.TX else 1)
        self.rx_depth = self.fifo_depth * (2 if s.join == FifoJoin.RX else 1)
        if s.join == FifoJoin.TX:
            self.rx_depth = 0
        elif s.join == FifoJoin.RX:
            self.tx_depth = 0
        self._seen: dict[tuple[int, ...], int] = {}
        self._decoded: dict[int, tuple[int, int | None]] = {}

    @classmethod
    def configured(
        cls, memory: list[int], pc: int, config: SmConfig, fifo_depth: int, start_tick: int
    ) -> StateMachine:
        settings = SmSettings.from_registers(config)
        return cls(memory, settings, pc, fifo_depth=fifo_depth, start_tick=start_tick)

    # -- time -------------------------------------------------------------------------

    def tick_of(self, cycle: int) -> int:
        return self.start_tick + (cycle * self.div256 >> 8)

    def first_cycle_at(self, tick: int) -> int:
        """The first cycle at or after ``tick``."""
        return max(self.cycle, -((self.start_tick - tick) * 256 // self.div256))

    @property
    def tick(self) -> int:
        return self.tick_of(self.cycle)

    # -- the host's side ------------------------------------------------------------

    def put(self, word: int) -> bool:
        """Write the TX FIFO; False when full."""
        if len(self.tx) >= self.tx_depth:
            return False
        self.tx.append(word & M32)
        return True

    def set_outputs(self, values: int, dirs: int, mask: int, tick: int) -> None:
        """``SM_SET_PINS``/``SM_SET_PINDIRS`` from the host."""
        self._output(
            (self.values & ~mask) | (values & mask), (self.dirs & ~mask) | (dirs & mask), tick
        )

    # -- running ----------------------------------------------------------------------

    def run(self, until: int, inputs: Inputs) -> None:
        """Execute every cycle before tick ``until``, reading ``inputs``."""
        self._inputs, self._until = inputs, until
        valid_from, valid_to, gpio = 1, 0, 0  # the input level, cached while it holds
        while True:
            tick = self.tick_of(self.cycle)
            if tick >= until:
                return
            read = tick - SYNC_TICKS
            if not valid_from <= read < valid_to:
                gpio = inputs.level(read)
                change = inputs.next_change(read)
                valid_from, valid_to = read, until if change is None else change
            if gpio != self._last_gpio:  # a loop seen before this is no model of what follows
                self._last_gpio = gpio
                self._seen.clear()
            used = self._step(gpio, tick)
            if used:
                self.cycle += used
                continue
            if self._waiting:  # a wait on inputs: nothing happens before they change
                change = inputs.next_change(tick - SYNC_TICKS)
                resume = until if change is None else min(until, change + SYNC_TICKS)
                self.cycle = max(self.cycle + 1, self.first_cycle_at(resume))
            else:  # a FIFO stall: only the host can end it, between two runs
                self.cycle = max(self.cycle + 1, self.first_cycle_at(until))
                return

    def _skip_loop(self) -> None:
        """Called at each taken backward jump: skip whole turns of a loop that repeats."""
        key = (self.pc, self.x, self.y, self.isr, self.osr, self.isr_count, self.osr_count)
        seen = self._seen.get(key)
        self._seen[key] = self.cycle
        if seen is None:
            return
        tick = self.tick_of(self.cycle)
        change = self._inputs.next_change(self._last_read)
        stop = self._until if change is None else min(self._until, change + SYNC_TICKS)
        period = self.cycle - seen
        turns = ((stop - tick) * 256 // (period * self.div256)) - 1
        if turns > 0:
            self.cycle += turns * period
            self._seen.clear()

    def _output(self, values: int, dirs: int, tick: int) -> None:
        if values != self.values or dirs != self.dirs:
            self.values, self.dirs = values & M32, dirs & M32
            if self.changes and self.changes[-1][0] == tick:  # side-set and a write: one cycle
                self.changes[-1] = (tick, self.values, self.dirs)
            else:
                self.changes.append((tick, self.values, self.dirs))
            self._seen.clear()

    def _write_pins(self, base: int, count: int, value: int, tick: int, *, dirs: bool) -> None:
        mask = ((1 << count) - 1) << base
        mask = (mask | mask >> 32) & M32
        value = ((value << base) | (value >> (32 - base))) & mask if base else value & mask
        if dirs:
            self._output(self.values, (self.dirs & ~mask) | value, tick)
        else:
            self._output((self.values & ~mask) | value, self.dirs, tick)

    def _source(self, source: int, gpio: int) -> int:
        if source == 0:
            return _rotate_right(gpio, self.settings.in_base)
        if source in (1, 2, 3, 6, 7):
            return (0, self.x, self.y, 0, 0, 0, self.isr, self.osr)[source]
        raise PioEmulationError(f"source {source} (status or reserved) is not modelled")

    def _decode(self, word: int) -> tuple[int, int | None]:
        """(delay, side-set value or None) of an instruction word."""
        side_set = self.settings.side_set
        field_ = word >> 8 & 31
        delay = field_ & ((1 << (5 - side_set.bits)) - 1)
        if side_set.count and (not side_set.optional or field_ >> 4 & 1):
            return delay, field_ >> (5 - side_set.bits) & ((1 << side_set.count) - 1)
        return delay, None

    def _step(self, gpio: int, tick: int) -> int:
        """Execute the instruction at pc; cycles used, or 0 when it stalls."""
        s = self.settings
        word = self.memory[self.pc]
        self.instructions += 1
        self._waiting = False
        self._last_read = tick - SYNC_TICKS
        decoded = self._decoded.get(word)
        if decoded is None:
            decoded = self._decoded[word] = self._decode(word)
        delay, side = decoded
        if side is not None:
            self._write_pins(s.sideset_base, s.side_set.count, side, tick, dirs=s.side_set.pindirs)
        op = word >> 13
        nxt = s.wrap_target if self.pc == s.wrap else (self.pc + 1) & 31
        if op == 0:  # jmp
            condition, address = word >> 5 & 7, word & 31
            if condition == 0:
                take = True
            elif condition in (1, 3):
                take = (self.x if condition == 1 else self.y) == 0
            elif condition == 2:
                take, self.x = self.x != 0, (self.x - 1) & M32
            elif condition == 4:
                take, self.y = self.y != 0, (self.y - 1) & M32
            elif condition == 5:
                take = self.x != self.y
            elif condition == 6:
                take = bool(gpio >> s.jmp_pin & 1)
            else:
                take = self.osr_count < s.pull_threshold
            backward = take and address <= self.pc
            self.pc = address if take else nxt
            if backward:
                self._skip_loop()
            return 1 + delay
        if op == 1:  # wait
            polarity, source, index = word >> 7 & 1, word >> 5 & 3, word & 31
            if source == 0:
                level = gpio >> index & 1
            elif source == 1:
                level = gpio >> ((s.in_base + index) & 31) & 1
            else:
                raise PioEmulationError("wait irq is not modelled")
            if level != polarity:
                self._waiting = True
                return 0
        elif op == 2:  # in
            count = word & 31 or 32
            value = self._source(word >> 5 & 7, gpio) & (M32 >> (32 - count))
            if count == 32:
                self.isr = value
            elif s.in_shift_right:
                self.isr = (self.isr >> count | value << (32 - count)) & M32
            else:
                self.isr = (self.isr << count | value) & M32
            self.isr_count = min(32, self.isr_count + count)
        elif op == 3:  # out
            destination, count = word >> 5 & 7, word & 31 or 32
            if s.out_shift_right:
                value = self.osr & (M32 >> (32 - count))
                self.osr = self.osr >> count if count < 32 else 0
            else:
                value = self.osr >> (32 - count)
                self.osr = self.osr << count & M32 if count < 32 else 0
            self.osr_count = min(32, self.osr_count + count)
            if destination == 0:
                self._write_pins(s.out_base, s.out_count, value, tick, dirs=False)
            elif destination == 4:
                self._write_pins(s.out_base, s.out_count, value, tick, dirs=True)
            elif destination in (1, 2):
                setattr(self, "x" if destination == 1 else "y", value)
            elif destination == 5:
                self.pc = value & 31
                return 1 + delay
            elif destination == 6:
                self.isr, self.isr_count = value, count
            elif destination == 7:
                raise PioEmulationError("out exec is not modelled")
        elif op == 4:  # push / pull
            if not self._push_pull(word):
                return 0
        elif op == 5:  # mov
            destination, operation = word >> 5 & 7, word >> 3 & 3
            value = self._source(word & 7, gpio)
            value = value ^ M32 if operation == 1 else _reverse(value) if operation == 2 else value
            if destination == 0:
                self._write_pins(s.out_base, s.out_count, value, tick, dirs=False)
            elif destination in (1, 2):
                setattr(self, "x" if destination == 1 else "y", value)
            elif destination == 5:
                self.pc = value & 31
                return 1 + delay
            elif destination == 6:
                self.isr, self.isr_count = value, 0
            elif destination == 7:
                self.osr, self.osr_count = value, 0
            else:
                raise PioEmulationError("mov exec is not modelled")
        elif op == 7:  # set
            destination, value = word >> 5 & 7, word & 31
            if destination == 0:
                self._write_pins(s.set_base, s.set_count, value, tick, dirs=False)
            elif destination == 4:
                self._write_pins(s.set_base, s.set_count, value, tick, dirs=True)
            elif destination in (1, 2):
                setattr(self, "x" if destination == 1 else "y", value)
        else:
            raise PioEmulationError("irq is not modelled")
        self.pc = nxt
        return 1 + delay

    def _push_pull(self, word: int) -> bool:
        """False when the instruction stalls."""
        s = self.settings
        conditional, block = word >> 6 & 1, word >> 5 & 1
        self._seen.clear()
        if word & 0x80:  # pull
            if conditional and self.osr_count < s.pull_threshold:
                return True
            if self.tx:
                self.osr, self.osr_count = self.tx.popleft(), 0
            elif block:
                return False
            else:
                self.osr, self.osr_count = self.x, 0
            return True
        if conditional and self.isr_count < s.push_threshold:
            return True
        if len(self.rx) >= self.rx_depth:
            if block:
                return False
            self.dropped += 1
        else:
            self.rx.append(self.isr)
        self.isr, self.isr_count = 0, 0
        return True

    # scratch state of run(): not part of the machine
    _waiting = False
    _last_read = 0
    _last_gpio = -1
    _inputs = Inputs()
    _until = 0


class PioBlock:
    """A PIO block's instruction memory and state machines (RP1: one block of four)."""

    def __init__(self, fifo_depth: int = RP1_FIFO_DEPTH, machines: int = 4) -> None:
        self.memory = [0] * 32
        self.used = [False] * 32
        self.fifo_depth = fifo_depth
        self.machines: list[StateMachine | None] = [None] * machines

    def add_program(self, program: Program) -> int:
        """Load at the highest free offset (or the program's origin); jumps relocated."""
        size = len(program)
        offsets = [program.origin] if program.origin is not None else range(32 - size, -1, -1)
        for offset in offsets:
            if offset + size <= 32 and not any(self.used[offset : offset + size]):
                for index, word in enumerate(program.instructions):
                    is_jmp = word >> 13 == 0
                    relocated = (word & ~31) | ((word + offset) & 31) if is_jmp else word
                    self.memory[offset + index] = relocated
                    self.used[offset + index] = True
                return offset
        raise PioEmulationError(f"no room for {program.name} ({size} instructions)")

    def remove_program(self, program: Program, offset: int) -> None:
        for index in range(offset, offset + len(program)):
            self.used[index] = False

    def start(self, sm: int, pc: int, config: SmConfig, tick: int) -> StateMachine:
        machine = StateMachine.configured(
            self.memory, pc, config, fifo_depth=self.fifo_depth, start_tick=tick
        )
        old = self.machines[sm]
        if old is not None:  # pins keep their levels and directions across a restart
            machine.values, machine.dirs = old.values, old.dirs
        self.machines[sm] = machine
        return machine
