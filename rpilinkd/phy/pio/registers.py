"""A state machine's configuration as the four RP2040-layout registers RP1 takes.

``SmSettings`` names the fields; ``registers()`` packs them into CLKDIV, EXECCTRL,
SHIFTCTRL and PINCTRL (bit positions from the rp1-pio kernel header, the same as
the RP2040's ``proc_pio.h``); ``SmSettings.from_registers`` unpacks them. The
hardware gets the packed words through ``SM_INIT``, and the emulator unpacks the
very same words, so a packing mistake shows in the emulator tests.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from rpilinkd.phy.pio.asm import Program, SideSet


class FifoJoin(enum.IntEnum):
    NONE = 0
    TX = 1  # the RX FIFO's slots join the TX FIFO
    RX = 2


@dataclass(frozen=True)
class SmConfig:
    """The four registers, as ``SM_INIT`` sends them."""

    clkdiv: int
    execctrl: int
    shiftctrl: int
    pinctrl: int


@dataclass(frozen=True)
class SmSettings:
    clkdiv_int: int = 1  # 1-65535 (0 means 65536 on the silicon; not used here)
    clkdiv_frac: int = 0  # 1/256ths
    wrap_target: int = 0  # absolute addresses (program offset added)
    wrap: int = 31
    side_set: SideSet = field(default_factory=SideSet)
    sideset_base: int = 0
    set_base: int = 0
    set_count: int = 0
    out_base: int = 0
    out_count: int = 0
    in_base: int = 0
    jmp_pin: int = 0
    out_shift_right: bool = True
    in_shift_right: bool = True
    autopull: bool = False
    autopush: bool = False
    pull_threshold: int = 32
    push_threshold: int = 32
    join: FifoJoin = FifoJoin.NONE

    @classmethod
    def for_program(cls, program: Program, offset: int, **fields: object) -> SmSettings:
        """Wrap and side-set from the program, placed at ``offset``; the rest as given."""
        return cls(
            wrap_target=offset + program.wrap_target,
            wrap=offset + program.wrap,
            side_set=program.side_set,
            **fields,  # type: ignore[arg-type]
        )

    def registers(self) -> SmConfig:
        if not 1 <= self.clkdiv_int <= 0xFFFF or not 0 <= self.clkdiv_frac <= 0xFF:
            raise ValueError(f"clock divider {self.clkdiv_int}+{self.clkdiv_frac}/256")
        side = self.side_set
        execctrl = (
            side.optional << 30
            | side.pindirs << 29
            | self.jmp_pin << 24
            | self.wrap << 12
            | self.wrap_target << 7
        )
        shiftctrl = (
            (self.join == FifoJoin.RX) << 31
            | (self.join == FifoJoin.TX) << 30
            | (self.pull_threshold & 31) << 25
            | (self.push_threshold & 31) << 20
            | self.out_shift_right << 19
            | self.in_shift_right << 18
            | self.autopull << 17
            | self.autopush << 16
        )
        pinctrl = (
            side.bits << 29
            | self.set_count << 26
            | self.out_count << 20
            | self.in_base << 15
            | self.sideset_base << 10
            | self.set_base << 5
            | self.out_base
        )
        return SmConfig(self.clkdiv_int << 16 | self.clkdiv_frac << 8, execctrl, shiftctrl, pinctrl)

    @classmethod
    def from_registers(cls, config: SmConfig) -> SmSettings:
        execctrl, shiftctrl, pinctrl = config.execctrl, config.shiftctrl, config.pinctrl
        optional = bool(execctrl >> 30 & 1)
        bits = pinctrl >> 29 & 7
        join = FifoJoin.RX if shiftctrl >> 31 & 1 else FifoJoin.TX if shiftctrl >> 30 & 1 else 0
        return cls(
            clkdiv_int=config.clkdiv >> 16 & 0xFFFF,
            clkdiv_frac=config.clkdiv >> 8 & 0xFF,
            wrap_target=execctrl >> 7 & 31,
            wrap=execctrl >> 12 & 31,
            side_set=SideSet(bits - optional, optional, bool(execctrl >> 29 & 1)),
            sideset_base=pinctrl >> 10 & 31,
            set_base=pinctrl >> 5 & 31,
            set_count=pinctrl >> 26 & 7,
            out_base=pinctrl & 31,
            out_count=pinctrl >> 20 & 63,
            in_base=pinctrl >> 15 & 31,
            jmp_pin=execctrl >> 24 & 31,
            out_shift_right=bool(shiftctrl >> 19 & 1),
            in_shift_right=bool(shiftctrl >> 18 & 1),
            autopull=bool(shiftctrl >> 17 & 1),
            autopush=bool(shiftctrl >> 16 & 1),
            pull_threshold=(shiftctrl >> 25 & 31) or 32,
            push_threshold=(shiftctrl >> 20 & 31) or 32,
            join=FifoJoin(join),
        )
