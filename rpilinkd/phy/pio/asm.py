"""A small PIO assembler: pioasm source text to 16-bit instruction words.

The RP2040 instruction set (PIO version 0), which RP1's PIO shares. Enough of
pioasm's syntax for this project's programs and most others: ``.program``,
``.side_set N [opt] [pindirs]``, ``.wrap_target``, ``.wrap``, ``.origin``, labels
(``public`` accepted), ``side`` values, ``[delay]``, ``;`` and ``//`` comments, and
every instruction. Not supported: ``.define``, expressions, several programs in
one text, ``.lang_opt``. Own code so the daemon assembles its programs on the Pi
at open time (its timing is in the delays) with nothing but the standard library;
tests cross-check it against Adafruit's pioasm when that is installed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from rpilinkd.errors import PhyError

INSTRUCTION_SLOTS = 32
_OPCODES = {"jmp": 0, "wait": 1, "in": 2, "out": 3, "push": 4, "pull": 4, "mov": 5, "irq": 6}
_OPCODES["set"] = 7
_JMP_CONDITIONS = {"": 0, "!x": 1, "x--": 2, "!y": 3, "y--": 4, "x!=y": 5, "pin": 6, "!osre": 7}
_WAIT_SOURCES = {"gpio": 0, "pin": 1, "irq": 2}
_IN_SOURCES = {"pins": 0, "x": 1, "y": 2, "null": 3, "isr": 6, "osr": 7}
_OUT_DESTINATIONS = {"pins": 0, "x": 1, "y": 2, "null": 3, "pindirs": 4, "pc": 5, "isr": 6}
_OUT_DESTINATIONS["exec"] = 7
_MOV_DESTINATIONS = {"pins": 0, "x": 1, "y": 2, "exec": 4, "pc": 5, "isr": 6, "osr": 7}
_MOV_SOURCES = {"pins": 0, "x": 1, "y": 2, "null": 3, "status": 5, "isr": 6, "osr": 7}
_SET_DESTINATIONS = {"pins": 0, "x": 1, "y": 2, "pindirs": 4}
_DELAY = re.compile(r"\[\s*([^\]]+?)\s*\]\s*$")
_SIDE = re.compile(r"\bside\s+(\S+)\s*$")
_LABEL = re.compile(r"^(?:public\s+)?([A-Za-z_]\w*)\s*:\s*(.*)$")


class AssemblyError(PhyError):
    """The source text is not a valid PIO program (the message names the line)."""


@dataclass(frozen=True)
class SideSet:
    """The program's ``.side_set``: pins driven by every instruction's side field."""

    count: int = 0  # side-set pins, not counting the enable bit
    optional: bool = False
    pindirs: bool = False

    @property
    def bits(self) -> int:
        """Bits of the delay/side-set field it takes (the enable bit included)."""
        return self.count + self.optional

    @property
    def max_delay(self) -> int:
        return (1 << (5 - self.bits)) - 1


@dataclass(frozen=True)
class Program:
    """An assembled program, with what the state machine's config needs from it."""

    name: str
    instructions: tuple[int, ...]
    wrap_target: int = 0
    wrap: int = 0
    side_set: SideSet = field(default_factory=SideSet)
    origin: int | None = None
    labels: Mapping[str, int] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.instructions)


def assemble(source: str) -> Program:
    """Assemble one program; raises :class:`AssemblyError` naming the faulty line."""
    name, side_set, origin = "program", SideSet(), None
    wrap_target: int | None = None
    wrap: int | None = None
    labels: dict[str, int] = {}
    pending: list[tuple[int, str]] = []  # (line number, instruction text)
    for number, raw in enumerate(source.splitlines(), 1):
        line = raw.split(";", 1)[0].split("//", 1)[0].strip()
        if not line:
            continue
        if line.startswith("."):
            parts = line.split()
            directive, args = parts[0].lower(), parts[1:]
            if directive == ".program":
                name = args[0] if args else name
            elif directive == ".side_set":
                side_set = _side_set(args, number)
            elif directive == ".wrap_target":
                wrap_target = len(pending)
            elif directive == ".wrap":
                wrap = len(pending) - 1
            elif directive == ".origin":
                origin = _number(args[0] if args else "", number)
            else:
                raise AssemblyError(f"line {number}: unsupported directive {directive}")
            continue
        match = _LABEL.match(line)
        if match:
            label, line = match.groups()
            if label in labels:
                raise AssemblyError(f"line {number}: label {label!r} defined twice")
            labels[label] = len(pending)
            if not line:
                continue
        pending.append((number, line))
    if not pending:
        raise AssemblyError("the program has no instructions")
    if len(pending) > INSTRUCTION_SLOTS:
        raise AssemblyError(f"{len(pending)} instructions: PIO holds {INSTRUCTION_SLOTS}")
    words = tuple(_instruction(text, n, labels, side_set) for n, text in pending)
    return Program(
        name,
        words,
        wrap_target=wrap_target or 0,
        wrap=len(words) - 1 if wrap is None else wrap,
        side_set=side_set,
        origin=origin,
        labels=labels,
    )


def _side_set(args: list[str], number: int) -> SideSet:
    if not args:
        raise AssemblyError(f"line {number}: .side_set needs a pin count")
    count = _number(args[0], number)
    flags = {a.lower() for a in args[1:]}
    if flags - {"opt", "pindirs"}:
        raise AssemblyError(f"line {number}: unknown .side_set option(s) {sorted(flags)}")
    side_set = SideSet(count, "opt" in flags, "pindirs" in flags)
    if side_set.bits > 5:
        raise AssemblyError(f"line {number}: side-set takes at most 5 bits")
    return side_set


def _number(text: str, number: int) -> int:
    try:
        return int(text, 0)
    except ValueError:
        raise AssemblyError(f"line {number}: expected a number, got {text!r}") from None


def _instruction(text: str, number: int, labels: Mapping[str, int], side_set: SideSet) -> int:
    delay = side = None
    match = _DELAY.search(text)
    if match:
        delay, text = _number(match.group(1), number), text[: match.start()].strip()
    match = _SIDE.search(text)
    if match:
        side, text = _number(match.group(1), number), text[: match.start()].strip()
    op, _, rest = text.partition(" ")
    op = op.lower()
    args = [a.strip().lower() for a in rest.split(",")] if rest.strip() else []
    try:
        word = _encode(op, args, labels)
    except (KeyError, IndexError, ValueError):
        raise AssemblyError(f"line {number}: cannot assemble {text!r}") from None
    return word | _delay_side(delay, side, side_set, number) << 8


def _encode(op: str, args: list[str], labels: Mapping[str, int]) -> int:
    """The word without its delay/side-set field."""
    if op == "nop":
        return 0xA042  # mov y, y
    if op == "jmp":
        *condition_words, target = " ".join(args).split()
        condition = "".join(condition_words)
        address = labels[target] if target in labels else int(target, 0)
        if not 0 <= address < INSTRUCTION_SLOTS:
            raise ValueError(target)
        return _JMP_CONDITIONS[condition] << 5 | address
    if op == "wait":
        polarity, source, *index = args[0].split()
        rel = index[1:] == ["rel"]
        value = int(index[0], 0)
        if polarity not in ("0", "1") or not 0 <= value < 32 or len(args) != 1:
            raise ValueError(args)
        return 1 << 13 | int(polarity) << 7 | _WAIT_SOURCES[source] << 5 | rel << 4 | value
    if op in ("in", "out"):
        table = _IN_SOURCES if op == "in" else _OUT_DESTINATIONS
        count = int(args[1], 0)
        if not 1 <= count <= 32 or len(args) != 2:
            raise ValueError(args)
        return _OPCODES[op] << 13 | table[args[0]] << 5 | (count & 31)
    if op in ("push", "pull"):
        flags = set(" ".join(args).split())
        conditional = "iffull" if op == "push" else "ifempty"
        if flags - {conditional, "block", "noblock"}:
            raise ValueError(flags)
        block = "noblock" not in flags
        return 4 << 13 | (op == "pull") << 7 | (conditional in flags) << 6 | block << 5
    if op == "mov":
        destination, source = args
        operation = 0
        if source[:1] in ("!", "~"):
            operation, source = 1, source[1:].strip()
        elif source[:2] == "::":
            operation, source = 2, source[2:].strip()
        return 5 << 13 | _MOV_DESTINATIONS[destination] << 5 | operation << 3 | _MOV_SOURCES[source]
    if op == "irq":
        words = " ".join(args).split()
        mode = words[0] if words[0] in ("set", "nowait", "wait", "clear") else "set"
        rel = words[-1] == "rel"
        value = int(words[1 if mode == words[0] else 0], 0)
        if not 0 <= value < 8:
            raise ValueError(words)
        return 6 << 13 | (mode == "clear") << 6 | (mode == "wait") << 5 | rel << 4 | value
    if op == "set":
        value = int(args[1], 0)
        if not 0 <= value < 32 or len(args) != 2:
            raise ValueError(args)
        return 7 << 13 | _SET_DESTINATIONS[args[0]] << 5 | value
    raise KeyError(op)


def _delay_side(delay: int | None, side: int | None, side_set: SideSet, number: int) -> int:
    """The delay/side-set field (bits 12-8)."""
    delay = delay or 0
    if not 0 <= delay <= side_set.max_delay:
        raise AssemblyError(f"line {number}: delay {delay} exceeds {side_set.max_delay}")
    field_ = delay
    if side is None:
        if side_set.count and not side_set.optional:
            raise AssemblyError(f"line {number}: .side_set is not optional: give a side value")
        return field_
    if not side_set.count:
        raise AssemblyError(f"line {number}: 'side' without .side_set")
    if not 0 <= side < 1 << side_set.count:
        raise AssemblyError(f"line {number}: side value {side} does not fit")
    delay_bits = 5 - side_set.bits
    return field_ | (side | side_set.optional << side_set.count) << delay_bits
