"""The PIO emulator itself: instruction semantics, time, FIFOs, loading, and a
differential check against rp2040-pio-emulator (PyPI) where that is installed."""

from __future__ import annotations

import importlib.util
import os
import random
from typing import Any

import pytest

from rpilinkd.phy.pio.asm import SideSet, assemble
from rpilinkd.phy.pio.framing import tx_words
from rpilinkd.phy.pio.registers import FifoJoin, SmSettings
from rpilinkd.pins import PinMap
from rpilinkd.sim.pioemu import PioBlock, StateMachine
from rpilinkd.sim.pioinputs import Inputs, PioEmulationError
from tests.pio.harness import build, crossed, run_rx, run_tx

HAVE_PIOEMU = importlib.util.find_spec("pioemu") is not None
#: data on GPIO 0-7, so rp2040-pio-emulator (which has no in_base) reads what we read
LOW_PINS = PinMap(
    data=tuple(range(8)), stb_out=8, stb_in=9, frm_out=10, frm_in=11,
    req_out=12, req_in=13, rw_out=16, rw_in=17, allow_reserved=True,
)  # fmt: skip


def machine(source: str, **settings: Any) -> StateMachine:
    program = assemble(source)
    block = PioBlock()
    offset = block.add_program(program)
    config = SmSettings.for_program(program, offset, **settings).registers()
    return block.start(0, offset, config, tick=0)


def test_registers_round_trip() -> None:
    rng = random.Random(1)
    for _ in range(200):
        settings = SmSettings(
            clkdiv_int=rng.randrange(1, 65536), clkdiv_frac=rng.randrange(256),
            wrap_target=rng.randrange(32), wrap=rng.randrange(32),
            side_set=SideSet(rng.randrange(0, 5), rng.random() < 0.5, rng.random() < 0.5),
            sideset_base=rng.randrange(32), set_base=rng.randrange(32),
            set_count=rng.randrange(6), out_base=rng.randrange(32), out_count=rng.randrange(33),
            in_base=rng.randrange(32), jmp_pin=rng.randrange(32),
            out_shift_right=rng.random() < 0.5, in_shift_right=rng.random() < 0.5,
            pull_threshold=rng.randrange(1, 33), push_threshold=rng.randrange(1, 33),
            join=rng.choice(list(FifoJoin)),
        )  # fmt: skip
        assert SmSettings.from_registers(settings.registers()) == settings


def test_register_layout_matches_the_rp2040s() -> None:
    config = SmSettings(
        clkdiv_int=25, side_set=SideSet(1), sideset_base=24, set_base=26, set_count=1,
        out_base=16, out_count=8, in_base=16, jmp_pin=27, wrap_target=3, wrap=9,
    ).registers()  # fmt: skip
    assert config.clkdiv == 25 << 16
    assert config.pinctrl == 1 << 29 | 1 << 26 | 8 << 20 | 16 << 15 | 24 << 10 | 26 << 5 | 16
    assert config.execctrl == 27 << 24 | 9 << 12 | 3 << 7
    assert config.shiftctrl == 1 << 19 | 1 << 18  # thresholds 32 are written as 0


def test_jmp_decrement_tests_before_decrementing() -> None:
    sm = machine("set x, 2\nloop: jmp x-- loop\nin x, 32\npush\nend: jmp end")
    sm.run(100, Inputs())
    assert list(sm.rx) == [0xFFFFFFFF]  # three turns: 2, 1, 0, then x wrapped


def test_delay_side_set_and_the_clock_divider() -> None:
    sm = machine(
        ".side_set 1\n.wrap_target\nnop side 1 [3]\nnop side 0 [1]\n.wrap",
        clkdiv_int=10, sideset_base=5,
    )  # fmt: skip
    sm.run(130, Inputs())
    assert [(t, v) for t, v, _ in sm.changes] == [(0, 32), (40, 0), (60, 32), (100, 0), (120, 32)]


def test_side_set_applies_while_stalled_and_delay_after() -> None:
    sm = machine(".side_set 1\npull block side 1 [5]\nnop side 0\nhalt: jmp halt side 0")
    sm.run(50, Inputs())
    assert [(t, v) for t, v, _ in sm.changes] == [(0, 1)]  # STB up, stalled on the empty FIFO
    sm.put(7)
    sm.run(100, Inputs())
    assert sm.changes[-1] == (56, 0, 0)  # pulled at 50, then 5 cycles of delay


def test_wait_pin_is_relative_and_reads_through_the_synchroniser() -> None:
    sm = machine("wait 1 pin 2\nin pins, 4\npush\nhalt: jmp halt", in_base=16, in_shift_right=False)
    inputs = Inputs()
    inputs.add(1000, 0b1101 << 16)
    sm.run(2000, inputs)
    assert list(sm.rx) == [0b1101]
    assert sm.instructions < 20  # the wait was skipped ahead, not executed 1,000 times


def test_fifo_depth_and_join() -> None:
    for join, depth in ((FifoJoin.NONE, 8), (FifoJoin.RX, 16)):
        sm = machine("loop: in x, 32\npush noblock\njmp loop", join=join)
        sm.run(200, Inputs())
        assert len(sm.rx) == depth
        assert sm.dropped > 0


def test_programs_are_relocated() -> None:
    block = PioBlock()
    first = block.add_program(assemble("a: jmp a\nnop"))
    second = block.add_program(assemble("b: jmp b\nnop"))
    assert (first, second) == (30, 28)
    assert block.memory[28] == 28  # a jump to itself, relocated
    assert block.memory[30] == 30
    with pytest.raises(PioEmulationError, match="no room"):
        block.add_program(assemble("nop\n" * 29))


def test_unmodelled_instructions_say_so() -> None:
    sm = machine("irq 0")
    with pytest.raises(PioEmulationError, match="irq"):
        sm.run(10, Inputs())
    with pytest.raises(PioEmulationError, match="autopull"):
        machine("nop", autopull=True)


def test_polling_loops_are_skipped_not_run() -> None:
    """The RX program waits for an edge that comes after a whole millisecond."""
    programs = build(5, LOW_PINS)
    block = PioBlock()
    offset = block.add_program(programs.rx)
    sm = block.start(0, offset, programs.rx_settings(offset).registers(), tick=0)
    inputs = Inputs()
    inputs.add(100, 1 << LOW_PINS.frm_in)
    inputs.add(200_000, 1 << LOW_PINS.frm_in | 1 << LOW_PINS.stb_in | 0x5A)
    inputs.add(400_000, 0)
    sm.run(500_000, inputs)
    assert list(sm.rx) == [0x5A] + [0xFFFFFFFF] * 8
    assert sm.instructions < 500


# -- differential: rp2040-pio-emulator -------------------------------------------------


def _their_trace(
    words: list[int],
    settings: SmSettings,
    cycles: int,
    fifo: list[int],
    inputs: Inputs | None = None,
) -> tuple[list[int], list[int]]:
    from collections import deque  # noqa: PLC0415

    from pioemu import State, emulate  # noqa: PLC0415

    state = State(pin_directions=0xFFFFFFFF if inputs is None else 0,
                  transmit_fifo=deque(fifo))  # fmt: skip
    source = None if inputs is None else (lambda clock: inputs.level(clock - 2))
    changes, last, received = [], 0, []
    for _before, after in emulate(
        words, stop_when=lambda _op, s: s.clock >= cycles, initial_state=state,
        input_source=source, shift_osr_right=settings.out_shift_right,
        shift_isr_right=settings.in_shift_right, out_base=settings.out_base,
        out_count=settings.out_count, set_base=settings.set_base,
        set_count=settings.set_count, side_set_base=settings.sideset_base,
        side_set_count=settings.side_set.count, jmp_pin=settings.jmp_pin,
        wrap_target=settings.wrap_target, wrap_top=settings.wrap,
    ):  # fmt: skip
        if after.pin_values != last:
            changes.append(after.pin_values)
            last = after.pin_values
        while after.receive_fifo:
            received.append(after.receive_fifo.popleft())
    return changes, received


@pytest.mark.skipif(not HAVE_PIOEMU, reason="rp2040-pio-emulator not installed")
def test_tx_program_as_rp2040_pio_emulator_runs_it() -> None:
    programs = build(1, LOW_PINS)
    frames = [os.urandom(n) for n in (4, 12, 8)]
    ours = run_tx(frames, programs, fifo_depth=64)
    settings = programs.tx_settings(0)
    theirs, _ = _their_trace(list(programs.tx.instructions), settings,
                             ours.sm.cycle, tx_words(frames, 8).tolist())  # fmt: skip
    mask = programs.tx_pins_mask
    values = [v for _, v in ours.changes]
    ours_changes = [v for i, v in enumerate(values) if i == 0 or v != values[i - 1]][1:]
    assert [v & mask for v in theirs] == ours_changes


@pytest.mark.skipif(not HAVE_PIOEMU, reason="rp2040-pio-emulator not installed")
def test_rx_program_as_rp2040_pio_emulator_runs_it() -> None:
    programs = build(1, LOW_PINS)
    frames = [os.urandom(n) for n in (4, 8)]
    sent = run_tx(frames, build(1, LOW_PINS), fifo_depth=64)
    inputs = crossed(sent.changes, LOW_PINS)
    end = inputs.ticks[-1] + 400
    settings = programs.rx_settings(0)
    _, theirs = _their_trace(list(programs.rx.instructions), settings, end, [],
                             inputs)  # fmt: skip
    assert theirs == run_rx(inputs, programs, end)
    assert len(theirs) == 12 + 2 * 8
