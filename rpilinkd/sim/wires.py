"""The cable between the two virtual Pis: which pin meets which, and what a wire reads.

A wire joins GPIO ``a`` on board a to GPIO ``b`` on board b. Its level comes
from whoever drives it (a pin in OUTPUT mode) and otherwise from the pull
resistors at its ends. When both ends drive it to different levels it is a
**short**: counted per wire, and each end reads its own driven level (as
through the series resistors the wiring guide prescribes). A wire can be cut
(each end reads only its own pull), stuck at 0 or 1 (shorted to a rail: both
ends read that level), swapped with another wire at board b's end, or
shorted to other wires: they form one **net**, whose ends all read whatever
any end drives (a short, if two ends drive different levels: an undriven end
then reads 0, the level between the rails being undefined).

Wiring file (TOML)::

    [[wire]]
    name = "D0"        # optional; defaults to "a16-b16"
    a = 16
    b = 16
    cut = false        # optional
    stuck = 1          # optional: 0 or 1

    [[swap]]           # optional: exchange the b ends of two wires
    wires = ["D0", "D1"]

    [[short]]          # optional: join two (or more) wires into one net
    wires = ["D2", "D3"]
"""

from __future__ import annotations

import functools
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from rpilinkd.errors import SimError
from rpilinkd.pigpio_protocol import PUD_DOWN, PUD_UP
from rpilinkd.pins import DEFAULT_PINS, ControlLine, PinMap

U32 = npt.NDArray[np.uint32]
Flags = npt.NDArray[np.bool_]


@dataclass(frozen=True)
class Wire:
    name: str
    a: int
    b: int
    cut: bool = False
    stuck: int | None = None
    net: str = ""  # the name of the net it is shorted into ("D2+D3"), if any


def default_wires(pins: PinMap = DEFAULT_PINS) -> list[Wire]:
    """The project's cable for a pin map: data lines straight, control lines crossed."""
    names: dict[tuple[int, int], str] = {}
    for index, gpio in enumerate(pins.data):
        names[(gpio, gpio)] = f"D{index}"
    for line in ControlLine:
        out_pin, in_pin = pins.out_pin(line), pins.in_pin(line)
        names[(out_pin, in_pin)] = f"{line.name}_AB"  # a's output to b's input
        names[(in_pin, out_pin)] = f"{line.name}_BA"
    return [Wire(name, a, b) for (a, b), name in names.items()]


def load_wiring(path: Path) -> list[Wire]:
    """Read a wiring file; every mistake is a :class:`SimError` naming it."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise SimError(f"wiring file {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise SimError(f"wiring file {path}: not valid TOML: {exc}") from None
    return parse_wiring(data, str(path))


def parse_wiring(data: dict[str, Any], where: str = "wiring") -> list[Wire]:
    unknown = set(data) - {"wire", "swap", "short"}
    if unknown:
        raise SimError(
            f"{where}: unknown table(s) {sorted(unknown)}; expected [[wire]], [[swap]], [[short]]"
        )
    wires: list[Wire] = []
    for index, entry in enumerate(data.get("wire", [])):
        key = f"{where}: wire[{index}]"
        if not isinstance(entry, dict):
            raise SimError(f"{key}: must be a table")
        extra = set(entry) - {"name", "a", "b", "cut", "stuck"}
        if extra:
            raise SimError(f"{key}: unknown key(s) {sorted(extra)}")
        for end in ("a", "b"):
            gpio = entry.get(end)
            if not isinstance(gpio, int) or isinstance(gpio, bool) or not 0 <= gpio <= 31:
                raise SimError(f"{key}.{end}: must be a GPIO number 0-31, got {gpio!r}")
        stuck = entry.get("stuck")
        if stuck not in (None, 0, 1):
            raise SimError(f"{key}.stuck: must be 0 or 1, got {stuck!r}")
        cut = entry.get("cut", False)
        if not isinstance(cut, bool):
            raise SimError(f"{key}.cut: must be true or false, got {cut!r}")
        name = str(entry.get("name", f"a{entry['a']}-b{entry['b']}"))
        wires.append(Wire(name, entry["a"], entry["b"], cut, stuck))
    check_wires(wires, where)
    for index, entry in enumerate(data.get("swap", [])):
        names = entry.get("wires") if isinstance(entry, dict) else None
        if not isinstance(names, list) or len(names) != 2:
            raise SimError(f"{where}: swap[{index}].wires must name two wires")
        wires = swap_wires(wires, names[0], names[1])
    for index, entry in enumerate(data.get("short", [])):
        names = entry.get("wires") if isinstance(entry, dict) else None
        if not isinstance(names, list) or len(names) < 2 or len(set(names)) != len(names):
            raise SimError(f"{where}: short[{index}].wires must name two or more different wires")
        if isinstance(entry, dict) and set(entry) != {"wires"}:
            raise SimError(
                f"{where}: short[{index}]: unknown key(s) {sorted(set(entry) - {'wires'})}"
            )
        wires = short_wires(wires, [str(n) for n in names], f"{where}: short[{index}]")
    return wires


def check_wires(wires: list[Wire], where: str = "wiring") -> None:
    for end in ("a", "b"):
        seen: dict[int, str] = {}
        for wire in wires:
            gpio = getattr(wire, end)
            if gpio in seen:
                raise SimError(
                    f"{where}: GPIO {gpio} on board {end} is on two wires "
                    f"({seen[gpio]!r} and {wire.name!r})"
                )
            seen[gpio] = wire.name
    names = [w.name for w in wires]
    if len(set(names)) != len(names):
        raise SimError(f"{where}: wire names must be unique")


def swap_wires(wires: list[Wire], first: str, second: str) -> list[Wire]:
    """Exchange the board-b ends of two wires (a miswired cable)."""
    by_name = {w.name: w for w in wires}
    for name in (first, second):
        if name not in by_name:
            raise SimError(f"swap: no wire named {name!r}")
    one, two = by_name[first], by_name[second]
    return [
        replace(w, b=two.b) if w is one else replace(w, b=one.b) if w is two else w for w in wires
    ]


def short_wires(wires: list[Wire], names: list[str], where: str = "short") -> list[Wire]:
    """Join the named wires into one net (a solder bridge, bare strands touching)."""
    by_name = {w.name: w for w in wires}
    for name in names:
        if name not in by_name:
            raise SimError(f"{where}: no wire named {name!r}")
        if by_name[name].net:
            raise SimError(
                f"{where}: wire {name!r} is already in the short {by_name[name].net!r}; "
                "list every wire of one short in one [[short]]"
            )
    net = "+".join(names)
    return [replace(w, net=net) if w.name in names else w for w in wires]


def effective(wires: list[Wire]) -> list[Wire]:
    """The wires as the physics sees them: a net with a stuck wire is stuck as a whole;
    a cut wire leaves its net; a net left with one wire is a plain wire."""
    members: dict[str, list[Wire]] = {}
    for wire in wires:
        if wire.net and not wire.cut:
            members.setdefault(wire.net, []).append(wire)
    out = []
    for wire in wires:
        group = members.get(wire.net, []) if wire.net and not wire.cut else []
        if len(group) < 2:
            out.append(replace(wire, net=""))
            continue
        stuck = next((w.stuck for w in group if w.stuck is not None), None)
        out.append(replace(wire, stuck=stuck))
    return out


def pull_level(x_pull: int, y_pull: int, *more: int) -> int:
    """What an undriven wire reads: up wins only if nobody pulls down; floating reads 0."""
    pulls = (x_pull, y_pull, *more)
    if PUD_DOWN in pulls:
        return 0
    return 1 if PUD_UP in pulls else 0


@dataclass(frozen=True)
class Side:
    """One board's pins over a run of instants: OUTPUT-mode mask and latch per instant."""

    drive: U32
    latch: U32
    pulls: list[int]
    carried: dict[int, tuple[U32, U32]] = field(default_factory=dict, compare=False, repr=False)

    def bit(self, gpio: int, of: U32) -> npt.NDArray[np.bool_]:
        return ((of >> np.uint32(gpio)) & np.uint32(1)).astype(bool)


@dataclass(frozen=True)
class Net:
    """Wires shorted together: their ends on our board and on the other."""

    name: str
    ours: tuple[int, ...]
    theirs: tuple[int, ...]

    def drivers(self, x: Side, y: Side) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.bool_]]:
        """Per instant: does any end drive it high, does any end drive it low."""
        high = np.zeros(len(x.drive), bool)
        low = np.zeros(len(x.drive), bool)
        for side, pins in ((x, self.ours), (y, self.theirs)):
            for pin in pins:
                driven, level = side.bit(pin, side.drive), side.bit(pin, side.latch)
                high |= driven & level
                low |= driven & ~level
        return high, low

    def value(self, x: Side, y: Side) -> npt.NDArray[np.int8]:
        """What an undriven end reads (1 or 0), or -1 where two ends fight."""
        high, low = self.drivers(x, y)
        pulls = [x.pulls[p] for p in self.ours] + [y.pulls[q] for q in self.theirs]
        pulled = np.int8(pull_level(*pulls))
        value = np.where(high | low, high.astype(np.int8), pulled).astype(np.int8)
        value[high & low] = -1
        return value


@dataclass(frozen=True)
class Crossing:
    """How the other board's pins land on this board's: wires grouped by bit shift.

    The default cable has three groups (data straight, control lines one bit up
    or down), so a whole cable resolves in a dozen vector operations. Shorted
    wires (nets) are resolved one net at a time after that.
    """

    groups: tuple[tuple[int, int], ...]  # (shift from the other pin to ours, our mask)
    wired: int  # our bits on an intact wire
    stuck_mask: int
    stuck_values: int
    pairs: tuple[tuple[int, int], ...]  # (our pin, their pin) of intact wires
    nets: tuple[Net, ...] = ()

    @classmethod
    def build(cls, links: list[tuple[int, int, Wire]]) -> Crossing:
        groups: dict[int, int] = {}
        wired = stuck_mask = stuck_values = 0
        pairs = []
        nets: dict[str, tuple[list[int], list[int]]] = {}
        real = effective([wire for _, _, wire in links])
        for (p, q, _), wire in zip(links, real, strict=True):
            if wire.stuck is not None:
                stuck_mask |= 1 << p
                stuck_values |= wire.stuck << p
            elif wire.net:
                ours, theirs = nets.setdefault(wire.net, ([], []))
                ours.append(p)
                theirs.append(q)
            elif not wire.cut:
                groups[q - p] = groups.get(q - p, 0) | 1 << p
                wired |= 1 << p
                pairs.append((p, q))
        return cls(
            tuple(groups.items()),
            wired,
            stuck_mask,
            stuck_values,
            tuple(pairs),
            tuple(Net(name, tuple(o), tuple(t)) for name, (o, t) in nets.items()),
        )

    @functools.cached_property
    def _moves(self) -> tuple[tuple[np.uint32, bool, np.uint32], ...]:
        """The groups as numpy scalars (made once: np.uint32() costs as much as an
        operation on a pass's short arrays)."""
        return tuple((np.uint32(abs(s)), s >= 0, np.uint32(mask)) for s, mask in self.groups)

    @functools.cached_property
    def wired_word(self) -> np.uint32:
        return np.uint32(self.wired)

    def carry(self, word: U32) -> U32:
        """The other board's bits, moved onto our pins."""
        out = np.zeros(word.shape, np.uint32)
        for shift, right, mask in self._moves:
            out |= (word >> shift if right else word << shift) & mask
        return out

    def carry_side(self, side: Side) -> tuple[U32, U32]:
        """The other board's drive and latch words moved onto our pins (once a pass)."""
        if id(self) not in side.carried:
            both = np.empty((2, len(side.drive)), np.uint32)  # one go: half the calls
            both[0], both[1] = side.drive, side.latch
            drive, latch = self.carry(both)
            side.carried[id(self)] = (drive, latch)
        return side.carried[id(self)]

    def pull_words(self, ours: list[int], theirs: list[int]) -> tuple[np.uint32, np.uint32]:
        """What our undriven pins read through the pulls: on an intact wire whose other
        end does not drive it (pull-ups at either end), and on any other pin (ours)."""
        return _pull_words(self.pairs, self.wired, tuple(ours[:32]), tuple(theirs[:32]))


@functools.lru_cache(maxsize=64)  # every pass asks; pulls rarely change
def _pull_words(
    pairs: tuple[tuple[int, int], ...], wired: int, ours: tuple[int, ...], theirs: tuple[int, ...]
) -> tuple[np.uint32, np.uint32]:
    on_wires = sum(1 << p for p, q in pairs if pull_level(ours[p], theirs[q]))
    elsewhere = sum(1 << g for g, pull in enumerate(ours) if pull == PUD_UP) & ~wired
    return np.uint32(on_wires), np.uint32(elsewhere)


def resolve(crossing: Crossing, x: Side, y: Side) -> U32:
    """Board x's level words at each instant, from both boards' pins."""
    y_drives, y_levels = crossing.carry_side(y)
    pulled, own_pulled = crossing.pull_words(x.pulls, y.pulls)
    # carried bits and ``pulled`` lie on intact wires only
    undriven = (y_drives & y_levels) | (~y_drives & pulled) | own_pulled
    for net in crossing.nets:  # an undriven end reads the net (0 while two ends fight)
        reads_high = net.value(x, y) == 1
        for pin in net.ours:
            bit = np.uint32(1 << pin)
            undriven = (undriven & ~bit) | np.where(reads_high, bit, np.uint32(0))
    levels = (x.drive & x.latch) | (~x.drive & undriven)
    if crossing.stuck_mask:  # a wire stuck to a rail reads the rail, driven or not
        levels = (levels & ~np.uint32(crossing.stuck_mask)) | np.uint32(crossing.stuck_values)
    return levels


def shorts(crossing: Crossing, a: Side, b: Side, names: dict[int, str]) -> dict[str, Flags]:
    """Per wire (or net) with a short in this run: whether it is shorted at each instant.

    ``crossing`` is board a's view; ``names`` maps board a's GPIOs to wire names.
    """
    b_drives, b_levels = crossing.carry_side(b)
    word = a.drive & b_drives & (a.latch ^ b_levels) & crossing.wired_word
    found: dict[str, Flags] = {}
    touched = int(np.bitwise_or.reduce(word)) if len(word) else 0
    for gpio in range(32):
        if touched >> gpio & 1:
            found[names[gpio]] = a.bit(gpio, word)
    for net in crossing.nets:
        high, low = net.drivers(a, b)
        if (fight := high & low).any():
            found[net.name] = fight
    return found


def wire_values(wires: list[Wire], a: Side, b: Side) -> dict[str, npt.NDArray[np.int8]]:
    """Each wire's level for the trace: 0, 1, or -1 for a short (VCD ``x``)."""
    out: dict[str, npt.NDArray[np.int8]] = {}
    nets = {n.name: n for n in Crossing.build([(w.a, w.b, w) for w in wires]).nets}
    for wire in effective(wires):
        if wire.stuck is None and wire.net:
            out[wire.name] = nets[wire.net].value(a, b)
            continue
        a_drives, b_drives = a.bit(wire.a, a.drive), b.bit(wire.b, b.drive)
        a_val = a.bit(wire.a, a.latch).astype(np.int8)
        b_val = b.bit(wire.b, b.latch).astype(np.int8)
        pull = np.int8(pull_level(a.pulls[wire.a], b.pulls[wire.b]))
        value = np.where(a_drives, a_val, np.where(b_drives, b_val, pull)).astype(np.int8)
        if wire.stuck is not None:
            value[:] = wire.stuck
        elif not wire.cut:
            value[a_drives & b_drives & (a_val != b_val)] = -1
        out[wire.name] = value
    return out
