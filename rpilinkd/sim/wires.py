"""The cable between the two virtual Pis: which pin meets which, and what a wire reads.

A wire joins GPIO ``a`` on board a to GPIO ``b`` on board b. Its level comes
from whoever drives it (a pin in OUTPUT mode) and otherwise from the pull
resistors at its ends. When both ends drive it to different levels it is a
**short**: counted per wire, and each end reads its own driven level (as
through the series resistors the wiring guide prescribes). A wire can be cut
(each end reads only its own pull), stuck at 0 or 1 (shorted to a rail: both
ends read that level), or swapped with another wire at board b's end.

Wiring file (TOML)::

    [[wire]]
    name = "D0"        # optional; defaults to "a16-b16"
    a = 16
    b = 16
    cut = false        # optional
    stuck = 1          # optional: 0 or 1

    [[swap]]           # optional: exchange the b ends of two wires
    wires = ["D0", "D1"]
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from rpilinkd.errors import SimError
from rpilinkd.phy.pins import DEFAULT_PINS, ControlLine

U32 = npt.NDArray[np.uint32]

PUD_OFF, PUD_DOWN, PUD_UP = 0, 1, 2


@dataclass(frozen=True)
class Wire:
    name: str
    a: int
    b: int
    cut: bool = False
    stuck: int | None = None


def default_wires() -> list[Wire]:
    """The project's default cable: D0-D7 straight, control lines crossed."""
    names: dict[tuple[int, int], str] = {}
    for index, gpio in enumerate(DEFAULT_PINS.data):
        names[(gpio, gpio)] = f"D{index}"
    for line in ControlLine:
        out_pin, in_pin = DEFAULT_PINS.out_pin(line), DEFAULT_PINS.in_pin(line)
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
    unknown = set(data) - {"wire", "swap"}
    if unknown:
        raise SimError(f"{where}: unknown table(s) {sorted(unknown)}; expected [[wire]], [[swap]]")
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
        replace(w, b=two.b) if w is one else replace(w, b=one.b) if w is two else w
        for w in wires
    ]


def pull_level(x_pull: int, y_pull: int) -> int:
    """What an undriven wire reads: up wins only if nobody pulls down; floating reads 0."""
    if PUD_DOWN in (x_pull, y_pull):
        return 0
    return 1 if PUD_UP in (x_pull, y_pull) else 0


def own_pull_mask(pulls: list[int]) -> int:
    return sum(1 << g for g in range(32) if pulls[g] == PUD_UP)


@dataclass(frozen=True)
class Side:
    """One board's pins over a run of instants: OUTPUT-mode mask and latch per instant."""

    drive: U32
    latch: U32
    pulls: list[int]

    def bit(self, gpio: int, of: U32) -> npt.NDArray[np.bool_]:
        return ((of >> np.uint32(gpio)) & np.uint32(1)).astype(bool)


def resolve(links: list[tuple[int, int, Wire]], x: Side, y: Side) -> U32:
    """Board x's level words at each instant; ``links`` are (pin on x, pin on y, wire)."""
    levels: U32 = (x.drive & x.latch) | (~x.drive & np.uint32(own_pull_mask(x.pulls)))
    for p, q, wire in links:
        bit = np.uint32(1 << p)
        if wire.stuck is not None:
            value = np.full(len(levels), wire.stuck, np.uint32)
            driven_here = np.zeros(len(levels), bool)  # the rail wins over our driver
        elif wire.cut:
            continue
        else:
            y_value = (y.latch >> np.uint32(q)) & np.uint32(1)
            pulled = np.uint32(pull_level(x.pulls[p], y.pulls[q]))
            value = np.where(y.bit(q, y.drive), y_value, pulled)
            driven_here = (x.drive & bit) != 0
        wire_bits = (levels & ~bit) | (value.astype(np.uint32) << np.uint32(p))
        levels = np.where(driven_here, levels, wire_bits).astype(np.uint32)
    return levels


def shorts(wires: list[Wire], a: Side, b: Side) -> dict[str, npt.NDArray[np.bool_]]:
    """Per wire, whether both ends drive it to different levels at each instant."""
    found: dict[str, npt.NDArray[np.bool_]] = {}
    for wire in wires:
        if wire.cut:
            continue
        both = a.bit(wire.a, a.drive) & b.bit(wire.b, b.drive)
        found[wire.name] = both & (a.bit(wire.a, a.latch) != b.bit(wire.b, b.latch))
    return found


def wire_values(wires: list[Wire], a: Side, b: Side) -> dict[str, npt.NDArray[np.int8]]:
    """Each wire's level for the trace: 0, 1, or -1 for a short (VCD ``x``)."""
    out: dict[str, npt.NDArray[np.int8]] = {}
    for wire in wires:
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
