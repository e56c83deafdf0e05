"""The pin map: which BCM GPIO carries which bus signal, and its validation.

Both Pis run the same map. The eight data lines run straight (D0 to D0); every
control signal has an output and an input pin, and the cable crosses them
(this Pi's ``stb_out`` goes to the peer's ``stb_in``), like a LapLink cable.
So no control wire is ever driven from both ends; only the data lines change
direction, and the protocol hands them over explicitly.

The default puts D0-D7 on GPIO 16-23 so a report's level word yields a byte
with one shift, and keeps clear of GPIO 0-1 (HAT EEPROM), 2-3 (I2C pull-ups)
and 14-15 (console UART).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field

from rpilinkd.errors import ConfigError

#: GPIOs the default validation refuses: HAT EEPROM, I2C (hard pull-ups), UART console.
RESERVED_GPIOS = frozenset({0, 1, 2, 3, 14, 15})
#: The GPIOs that reach the 40-pin header.
HEADER_GPIOS = range(28)
#: data lines of the two bus widths
WIDTHS = (8, 16)
#: signal wires between the two Pis: the data lines and four crossed control pairs
CONTROL_LINES = 8

#: BCM GPIO -> physical pin on the 40-pin header (for docs and wiring pictures).
HEADER_PIN: Mapping[int, int] = {
    2: 3,
    3: 5,
    4: 7,
    14: 8,
    15: 10,
    17: 11,
    18: 12,
    27: 13,
    22: 15,
    23: 16,
    24: 18,
    10: 19,
    9: 21,
    25: 22,
    11: 23,
    8: 24,
    7: 26,
    0: 27,
    1: 28,
    5: 29,
    6: 31,
    12: 32,
    13: 33,
    19: 35,
    16: 36,
    26: 37,
    20: 38,
    21: 40,
}


class ControlLine(enum.Enum):
    """The four control signals. Each has an output pin and an input pin."""

    STB = "stb"  # byte strobe: data is latched on its rising edge
    FRM = "frm"  # frame enable: high from a frame's first byte to its last
    REQ = "req"  # bus request (slave) and arbitration signalling
    RW = "rw"  # read/write: the master's grant, the slave's acknowledgement


@dataclass(frozen=True)
class PinMap:
    """BCM GPIO numbers of every bus signal (the ``[pins]`` config section)."""

    data: tuple[int, ...] = (16, 17, 18, 19, 20, 21, 22, 23)
    stb_out: int = 24
    stb_in: int = 25
    frm_out: int = 26
    frm_in: int = 27
    req_out: int = 5
    req_in: int = 6
    rw_out: int = 12
    rw_in: int = 13
    allow_reserved: bool = field(default=False, compare=False)

    def __post_init__(self) -> None:
        self.validate()

    # -- validation ---------------------------------------------------------

    def named_pins(self) -> Iterator[tuple[str, int]]:
        """Every (config key, GPIO) pair, data lines as ``pins.data[i]``."""
        for index, gpio in enumerate(self.data):
            yield f"pins.data[{index}]", gpio
        for line in ControlLine:
            yield f"pins.{line.value}_out", self.out_pin(line)
            yield f"pins.{line.value}_in", self.in_pin(line)

    def validate(self) -> None:
        """Raise :class:`ConfigError` naming the first bad key."""
        if len(self.data) not in WIDTHS:
            raise ConfigError("pins.data", "must list 8 GPIOs (or 16 for the wide bus)", self.data)
        pins = list(self.named_pins())
        seen: dict[int, str] = {}
        for key, gpio in pins:
            if not isinstance(gpio, int) or isinstance(gpio, bool):
                raise ConfigError(key, "must be a BCM GPIO number", gpio)
            if gpio not in HEADER_GPIOS:
                raise ConfigError(key, "must be a header GPIO, 0-27", gpio)
            if gpio in RESERVED_GPIOS and not self.allow_reserved:
                raise ConfigError(
                    key,
                    "is a reserved GPIO (0-1 HAT EEPROM, 2-3 I2C, 14-15 UART); "
                    "set pins.allow_reserved = true to use it anyway",
                    gpio,
                )
            if gpio in seen:
                raise ConfigError(key, f"GPIO {gpio} is already used by {seen[gpio]}", gpio)
            seen[gpio] = key

    # -- lookups ------------------------------------------------------------

    def out_pin(self, line: ControlLine) -> int:
        pin: int = getattr(self, f"{line.value}_out")
        return pin

    def in_pin(self, line: ControlLine) -> int:
        pin: int = getattr(self, f"{line.value}_in")
        return pin

    @property
    def data_mask(self) -> int:
        return _mask(self.data)

    @property
    def control_out_mask(self) -> int:
        return _mask(self.out_pin(line) for line in ControlLine)

    @property
    def control_in_mask(self) -> int:
        return _mask(self.in_pin(line) for line in ControlLine)

    @property
    def width(self) -> int:
        """Data lines: 8, or 16 for the wide bus (two bytes per strobe edge)."""
        return len(self.data)

    @property
    def data_shift(self) -> int | None:
        """The shift that extracts the data from a level word, if the lines are contiguous."""
        first = self.data[0]
        return first if self.data == tuple(range(first, first + self.width)) else None

    def wires(self) -> list[tuple[int, int]]:
        """The cable between two Pis with this map: (GPIO on a, GPIO on b) per wire."""
        cable = [(gpio, gpio) for gpio in self.data]
        for line in ControlLine:
            cable.append((self.out_pin(line), self.in_pin(line)))
            cable.append((self.in_pin(line), self.out_pin(line)))
        return cable


def _mask(gpios: Iterable[int]) -> int:
    mask = 0
    for gpio in gpios:
        mask |= 1 << gpio
    return mask


DEFAULT_PINS = PinMap()

#: The 16-bit bus: 16 data lines and the four crossed control pairs take 24 GPIOs, every
#: header GPIO but the HAT EEPROM (0-1) and I2C (2-3) ones, so it needs the console
#: UART's GPIO 14 and 15 (disable the serial console: raspi-config, Interface Options).
WIDE_PINS = PinMap(
    data=tuple(range(12, 28)),
    stb_out=4,
    stb_in=5,
    frm_out=6,
    frm_in=7,
    req_out=8,
    req_in=9,
    rw_out=10,
    rw_in=11,
    allow_reserved=True,
)
