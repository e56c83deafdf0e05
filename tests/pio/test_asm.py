"""The PIO assembler: encodings, directives, errors, and Adafruit's pioasm as a cross-check."""

from __future__ import annotations

import importlib.util

import pytest

from rpilinkd.phy.codec import BusTiming
from rpilinkd.phy.pio.asm import AssemblyError, SideSet, assemble
from rpilinkd.phy.pio.programs import build_programs
from rpilinkd.pins import DEFAULT_PINS, WIDE_PINS

# each checked by hand against the RP2040 datasheet's encoding tables (section 3.4)
ENCODINGS = {
    "nop": 0xA042,  # mov y, y
    "pull block": 0x80A0,
    "push block": 0x8020,
    "push noblock": 0x8000,
    "pull noblock": 0x8080,
    "pull ifempty block": 0x80E0,
    "push iffull noblock": 0x8040,
    "out x, 32": 0x6020,
    "in pins, 8": 0x4008,
    "in null, 9": 0x4069,
    "mov isr, ~null": 0xA0CB,
    "mov osr, pins": 0xA0E0,
    "mov x, ::y": 0xA032,
    "mov pins, null": 0xA003,
    "wait 1 gpio 25": 0x2099,
    "wait 0 pin 3": 0x2023,
    "set pins, 1": 0xE001,
    "set pindirs, 3": 0xE083,
    "jmp x!=y 5": 0x00A5,
    "jmp x != y, 5": 0x00A5,
    "jmp pin 3": 0x00C3,
    "jmp !osre 7": 0x00E7,
    "jmp y-- 2": 0x0082,
    "irq wait 0 rel": 0xC030,
    "irq clear 3": 0xC043,
    "out pc, 5": 0x60A5,
    "out pindirs, 4": 0x6084,
}

HAVE_ADAFRUIT = importlib.util.find_spec("adafruit_pioasm") is not None


@pytest.mark.parametrize(("text", "word"), ENCODINGS.items())
def test_single_instructions(text: str, word: int) -> None:
    assert assemble(text).instructions == (word,)


def test_side_set_delay_labels_and_wrap() -> None:
    program = assemble(
        """
        .program demo
        .side_set 1 opt
        start:
            pull block              ; 0x80a0
        .wrap_target
        loop:
            out pins, 8      [3]    // 0x6308
            nop          side 1 [3]
            jmp loop     side 0
        .wrap
        """
    )
    assert program.name == "demo"
    assert program.instructions == (0x80A0, 0x6308, 0xBB42, 0x1001)
    assert program.side_set == SideSet(1, optional=True)
    assert (program.wrap_target, program.wrap) == (1, 3)
    assert program.labels == {"start": 0, "loop": 1}


def test_mandatory_side_set() -> None:
    program = assemble(".side_set 1\n out pins, 8 side 0 [7]\n nop side 1 [15]")
    assert program.instructions == (0x6708, 0xBF42)
    with pytest.raises(AssemblyError, match=r"line 2: .*side value"):
        assemble(".side_set 1\n nop")


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("nop [32]", "delay 32 exceeds 31"),
        (".side_set 2\n nop side 0 [8]", "delay 8 exceeds 7"),
        (".side_set 1\n nop side 2", "does not fit"),
        ("nop side 1", "without .side_set"),
        ("jmp nowhere", "cannot assemble"),
        ("frobnicate x", "cannot assemble"),
        ("in pins, 33", "cannot assemble"),
        ("a:\na:\nnop", "defined twice"),
        (".define X 1\nnop", "unsupported directive"),
        ("nop\n" * 33, "PIO holds 32"),
        ("; nothing", "no instructions"),
    ],
)
def test_errors_name_the_problem(source: str, message: str) -> None:
    with pytest.raises(AssemblyError, match=message):
        assemble(source)


def test_the_bus_programs_fit_together() -> None:
    for pins in (DEFAULT_PINS, WIDE_PINS):
        programs = build_programs(BusTiming(5, 1, 6, 6), pins)
        assert len(programs.tx) == 10
        assert len(programs.rx) == 17
        assert len(programs.tx) + len(programs.rx) <= 32  # both stay loaded


@pytest.mark.skipif(not HAVE_ADAFRUIT, reason="adafruit-circuitpython-pioasm not installed")
@pytest.mark.parametrize("sample_us", [1, 2, 5, 10])
@pytest.mark.parametrize("pins", [DEFAULT_PINS, WIDE_PINS], ids=["8-bit", "16-bit"])
def test_same_words_as_adafruit_pioasm(sample_us: int, pins: object) -> None:
    import adafruit_pioasm  # noqa: PLC0415 - optional, a dev tool

    from rpilinkd.phy.pio.programs import RX_SOURCE, TX_SOURCE, tx_timing  # noqa: PLC0415

    assert isinstance(pins, type(DEFAULT_PINS))
    timing = BusTiming(sample_us, 1, sample_us + 1, sample_us + 1, 0, pins.width)
    programs = build_programs(timing, pins)
    a, b, c, d = tx_timing(timing).delays
    tx = TX_SOURCE.format(width=pins.width, a=a, b=b, c=c, d=d)
    rx = RX_SOURCE.format(frm=pins.frm_in, stb=(pins.stb_in - pins.data[0]) % 32, width=pins.width,
                          markers=7)  # fmt: skip
    for source, ours in ((tx, programs.tx), (rx, programs.rx)):
        theirs = adafruit_pioasm.Program(source)
        assert tuple(theirs.assembled) == ours.instructions
        assert theirs.pio_kwargs.get("wrap", len(ours) - 1) == ours.wrap
        assert theirs.pio_kwargs.get("wrap_target", 0) == ours.wrap_target


@pytest.mark.skipif(not HAVE_ADAFRUIT, reason="adafruit-circuitpython-pioasm not installed")
def test_single_instructions_as_adafruit_pioasm() -> None:
    import adafruit_pioasm  # noqa: PLC0415

    for text, word in ENCODINGS.items():
        if " != " not in text:  # Adafruit's parser wants x!=y without spaces
            assert adafruit_pioasm.Program(text).assembled[0] == word, text
