"""What the pio backend needs from a PIO block and the GPIO lines: two small interfaces.

Two implementations each: the hardware (``rp1.Rp1Pio``: /dev/pio0 ioctls;
``lines.GpiodLines``: the GPIO character device through gpiod) and the emulator
(``rpilinkd.sim.pio_board``). Methods are plain calls; those that may block
(``write``, ``read``) are run by the backend in a worker thread.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Protocol

from rpilinkd.phy.codec import U32
from rpilinkd.phy.pio.asm import Program
from rpilinkd.phy.pio.registers import SmConfig


class PioDevice(Protocol):
    """One PIO block: state machines, instruction memory, pins, FIFOs."""

    def claim_sm(self) -> int:
        """A free state machine, now ours (released by ``close``)."""
        ...

    def add_program(self, program: Program) -> int:
        """Load ``program`` (jumps relative to its start); returns its offset."""
        ...

    def remove_program(self, program: Program, offset: int) -> None: ...

    def gpio_to_pio(self, gpio: int) -> None:
        """Hand the pin to PIO (its function select), with a pull-down."""
        ...

    def gpio_release(self, gpio: int) -> None:
        """Give the pin back as a plain input with a pull-down."""
        ...

    def sm_init(self, sm: int, pc: int, config: SmConfig) -> None:
        """Configure and reset ``sm`` (disabled) to start at ``pc``; FIFOs cleared."""
        ...

    def sm_set_pins(self, sm: int, values: int, mask: int) -> None: ...

    def sm_set_pindirs(self, sm: int, dirs: int, mask: int) -> None: ...

    def sm_enable(self, sm: int, enabled: bool) -> None: ...

    def tx_level(self, sm: int) -> int:
        """Words waiting in the TX FIFO."""
        ...

    def write(self, sm: int, words: U32) -> None:
        """Queue words to the TX FIFO; returns once all are in it (blocks)."""
        ...

    def read(self, sm: int, count: int) -> U32:
        """Up to ``count`` words from the RX FIFO (blocks a while; empty if none came)."""
        ...

    def close(self) -> None:
        """Release everything claimed (state machines, programs, the device)."""
        ...


class ControlLines(Protocol):
    """The GPIOs the host drives and watches: REQ/RW out, the four control inputs."""

    def start(self, changed: Callable[[int], None]) -> None:
        """Call ``changed(levels)`` on the event loop at each change of a watched input
        (``levels``: the GPIO level word of the inputs)."""
        ...

    def read(self) -> int:
        """The inputs' GPIO level word, now."""
        ...

    def set_outputs(self, levels: Mapping[int, bool]) -> None:
        """Drive output GPIOs (REQ_OUT, RW_OUT) high or low."""
        ...

    def watch_strobes(self, enabled: bool) -> None:
        """Report STB_IN and FRM_IN changes too (arbitration), or not (frames: PIO reads them)."""
        ...

    def debounce(self, gpios: tuple[int, ...], period_us: int) -> None: ...

    def close(self) -> None:
        """Outputs low, lines released."""
        ...
