"""The cable the pin map expects: every bus pin, in the order the walks drive them.

Both Pis run the same pin map, so a pin is named the same on both ("D3",
"STB_OUT"): a data line's wire meets the same name on the other Pi, a control
output meets the input of its signal there, and an input meets the output.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass

from rpilinkd.pins import HEADER_PIN, ControlLine, PinMap


class Kind(enum.Enum):
    DATA = "data"  # straight; either Pi may drive it
    OUT = "out"  # a control output: crossed to the other Pi's input of its signal
    IN = "in"  # a control input: from the other Pi's output of its signal


@dataclass(frozen=True)
class BusPin:
    name: str  # "D3", "STB_OUT", "STB_IN"
    gpio: int
    kind: Kind
    line: ControlLine | None = None

    @property
    def bit(self) -> int:
        return 1 << self.gpio

    @property
    def header(self) -> int | None:
        """The physical pin on the 40-pin header."""
        return HEADER_PIN.get(self.gpio)

    @property
    def partner(self) -> str:
        """The name of the other Pi's pin that this pin's wire should reach."""
        if self.line is None:
            return self.name
        return f"{self.line.name}_{'IN' if self.kind is Kind.OUT else 'OUT'}"


def bus_pins(pins: PinMap) -> tuple[BusPin, ...]:
    """The data lines, then the control outputs, then the control inputs."""
    data = [BusPin(f"D{i}", gpio, Kind.DATA) for i, gpio in enumerate(pins.data)]
    outs = [BusPin(f"{ln.name}_OUT", pins.out_pin(ln), Kind.OUT, ln) for ln in ControlLine]
    ins = [BusPin(f"{ln.name}_IN", pins.in_pin(ln), Kind.IN, ln) for ln in ControlLine]
    return (*data, *outs, *ins)


def mask(pins: Iterable[BusPin]) -> int:
    out = 0
    for pin in pins:
        out |= pin.bit
    return out


def gpios(word: int) -> list[int]:
    """The GPIO numbers whose bits are set."""
    return [gpio for gpio in range(32) if word >> gpio & 1]
