"""The bus's PIO programs (bus version 2, codec.py's wire format) and their timing.

**TX** (10 instructions): the host writes, per frame, a header word (pairs of
units - 1) and the frame's data words (4 bytes each, little-endian; a unit is
a byte, or two on the 16-bit bus). A frame is whole words, so a word always
starts at a rising edge's unit and the TX FIFO can only run dry there, with
STB low: an underrun delays the next unit, never loses or repeats one. STB is
side-set on every instruction, FRM is the ``set`` pin, the data lines the
``out`` pins. In SM cycles (no stall):

* FRM rise to the first unit's data: 2; data to STB's rise (setup): ``A+1``;
* STB's rise to the next data change (hold): ``B+1``; that change is the next
  unit's data and STB's fall in one instruction (the codec's falling edge);
* STB's fall to the next data change (hold): ``C+3``; to FRM's fall: ``C+2``;
* FRM low between frames (gap): ``D+4``; a pair of units: ``A+B+C+5``.

**RX** (17 instructions): from a rising
FRM it polls a snapshot of the inputs (5 cycles a turn), compares STB with its
last level (both edges count), and 3 cycles after seeing an edge while FRM is
high samples the data lines and pushes the unit (one word per unit). When FRM
falls it pushes ``RX_MARKERS`` words 0xFFFFFFFF (no unit is that wide): the end
of the frame, and enough words to complete any fixed-size DMA read in progress.

The TX clock divider is chosen so the configured setup, hold and gap (µs) are
met or just exceeded with an integer divider (no fractional jitter); the RX runs
at full speed (200 MHz on RP1) unless told otherwise.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from rpilinkd.errors import PhyError
from rpilinkd.phy.codec import BusTiming
from rpilinkd.phy.pio.asm import Program, assemble
from rpilinkd.phy.pio.registers import FifoJoin, SmSettings
from rpilinkd.pins import PinMap

CLOCK_HZ = 200_000_000  # RP1's clk_sys, which clocks its PIO
MAX_DELAY = 15  # the delay field beside one mandatory side-set bit
RX_MARKERS = 8
MARKER = 0xFFFFFFFF

TX_SOURCE = """
.program rpilink_tx
.side_set 1                             ; STB_OUT
.wrap_target
    pull block          side 0          ; header: pairs of units - 1 (idle waits here)
    out x, 32           side 0          ; x counts pairs; the OSR is now empty
    set pins, 1         side 0          ; FRM rises
pair:
    pull ifempty block  side 0          ; a word per two units' pairs; a stall keeps STB low
    out pins, {width}       side 0 [{a}]    ; the rising edge's unit, then setup
    nop                 side 1 [{b}]    ; STB rises; hold
    out pins, {width}       side 0 [{c}]    ; the falling edge's unit with STB's fall; hold
    jmp x-- pair        side 0
    set pins, 0         side 0          ; FRM falls
    mov pins, null      side 0 [{d}]    ; idle data lines low; gap
.wrap
"""

RX_SOURCE = """
.program rpilink_rx
    wait 0 gpio {frm}                   ; (re)started: the first frame begins at a FRM rise
.wrap_target
    wait 1 gpio {frm}
    mov x, null                         ; x: STB's last level, low as a frame starts
poll:
    mov osr, pins                       ; one snapshot of the inputs
    out null, {stb}                     ; STB_IN down to bit 0
    out y, 1                            ; y: STB
    jmp x!=y edge
    jmp pin poll                        ; FRM still high; once low, on to the end
edge:
    mov x, y
    jmp pin unit                        ; an edge while FRM is high carries a unit
end:
    set y, {markers}
pad:
    mov isr, ~null                      ; 0xFFFFFFFF: end of frame
    push block
    jmp y-- pad
.wrap
unit:
    in pins, {width}                        ; the data, settled well before the edge was seen
    push noblock                        ; a full FIFO drops a unit (CRC fails), never the edge count
    jmp poll
"""


@dataclass(frozen=True)
class TxTiming:
    """The TX program's clock divider and phase lengths, in SM cycles."""

    clkdiv: int
    setup: int  # data to STB's rise
    hold: int  # an edge to the next data change (at least)
    gap: int  # FRM low between frames (at least)

    @property
    def cycle_us(self) -> float:
        return self.clkdiv * 1e6 / CLOCK_HZ

    @property
    def delays(self) -> tuple[int, int, int, int]:
        """The delay fields A, B, C, D of TX_SOURCE."""
        return self.setup - 1, self.hold - 1, max(0, self.hold - 2), max(0, self.gap - 4)

    @property
    def pair_cycles(self) -> int:
        a, b, c, _ = self.delays
        return a + b + c + 5

    def frame_cycles(self, pairs: int) -> int:
        """One frame from its header's pull to the next header's pull (no stall)."""
        d = self.delays[3]
        return 3 + pairs * self.pair_cycles + 2 + d

    def frame_us(self, pairs: int) -> float:
        return self.frame_cycles(pairs) * self.cycle_us

    @classmethod
    def for_cycles(cls, clkdiv: int, setup_us: float, hold_us: float, gap_us: float) -> TxTiming:
        cycle = clkdiv * 1e6 / CLOCK_HZ
        eps = 1e-9  # 2.0 µs at 0.125 µs a cycle is 16 cycles, not 17
        setup, hold, gap = (max(1, math.ceil(x / cycle - eps)) for x in (setup_us, hold_us, gap_us))
        return cls(clkdiv, setup, max(hold, 2), gap)

    @property
    def fits(self) -> bool:
        return all(0 <= d <= MAX_DELAY for d in self.delays)


def tx_timing(timing: BusTiming) -> TxTiming:
    """The integer divider whose cycles meet setup/hold/gap with the shortest pair of units."""
    s, h, g = timing.setup_us, timing.hold_us, timing.gap_us
    longest = max(s, h, g * 16 / 19)  # the gap phase has 4 cycles beside its delay
    first = max(1, math.ceil(longest * CLOCK_HZ / 1e6 / (MAX_DELAY + 1)))
    candidates = [TxTiming.for_cycles(div, s, h, g) for div in range(first, 4 * first + 9)]
    fitting = [t for t in candidates if t.fits and t.clkdiv <= 0xFFFF]
    if not fitting:
        raise PhyError(f"bus timing {s}/{h}/{g} µs does not fit the PIO clock divider")
    # the fastest pair of units, then the shortest gap, then the finest clock
    return min(fitting, key=lambda t: (t.pair_cycles * t.clkdiv, t.gap * t.clkdiv, t.clkdiv))


@dataclass(frozen=True)
class BusPrograms:
    """The assembled TX and RX programs for one pin map and timing."""

    pins: PinMap
    tx: Program
    rx: Program
    timing: TxTiming
    rx_clkdiv: int = 1

    @property
    def width(self) -> int:
        return self.pins.width

    def tx_settings(self, offset: int) -> SmSettings:
        return SmSettings.for_program(
            self.tx,
            offset,
            clkdiv_int=self.timing.clkdiv,
            sideset_base=self.pins.stb_out,
            set_base=self.pins.frm_out,
            set_count=1,
            out_base=self.pins.data[0],
            out_count=self.width,
            out_shift_right=True,  # the low byte of a word goes first
        )

    def rx_settings(self, offset: int) -> SmSettings:
        return SmSettings.for_program(
            self.rx,
            offset,
            clkdiv_int=self.rx_clkdiv,
            in_base=self.pins.data[0],
            jmp_pin=self.pins.frm_in,
            out_shift_right=True,  # the snapshot shifts STB down to bit 0
            in_shift_right=False,  # ``in pins, W`` leaves the unit in the low bits
            join=FifoJoin.RX,  # the RX program never pulls: twice the room for units
        )

    @property
    def tx_pins_mask(self) -> int:
        return self.pins.data_mask | 1 << self.pins.stb_out | 1 << self.pins.frm_out


def check_pins(pins: PinMap) -> None:
    """PIO's ``out``/``in`` need the data lines on consecutive GPIOs, D0 lowest."""
    if pins.data_shift is None:
        raise PhyError(
            "the pio backend needs the data lines on consecutive GPIOs in order "
            f"(pins.data = {list(pins.data)}); the default and wide maps are"
        )


def build_programs(timing: BusTiming, pins: PinMap, rx_clkdiv: int = 1) -> BusPrograms:
    check_pins(pins)
    tx = tx_timing(timing)
    a, b, c, d = tx.delays
    tx_program = assemble(TX_SOURCE.format(width=pins.width, a=a, b=b, c=c, d=d))
    stb = (pins.stb_in - pins.data[0]) % 32  # in_base-relative: never 0, the pins differ
    rx_source = RX_SOURCE.format(frm=pins.frm_in, stb=stb, width=pins.width, markers=RX_MARKERS - 1)
    return BusPrograms(pins, tx_program, assemble(rx_source), tx, rx_clkdiv)
