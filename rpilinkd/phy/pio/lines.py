"""The control lines on a Pi 5: the GPIO character device through gpiod (libgpiod v2).

REQ_OUT and RW_OUT are outputs; STB_IN, FRM_IN, REQ_IN and RW_IN are inputs
with pull-downs, kernel debounce and edge events read on the event loop (the
request's fd). PIO has no interrupt to the host, so events come from here.
STB_IN and FRM_IN report edges only while the link arbitrates: with frames on
the wire PIO reads them and a kernel event per strobe edge would flood the host.
STB_OUT and FRM_OUT belong to PIO (the TX state machine): the backend sets them
with ``SM_SET_PINS`` during arbitration, so they never change owner.

The RP1 chip is found by its label, not its number (it moved between kernels).
Only the ``pio`` backend imports this module, and only on open.
"""

from __future__ import annotations

import asyncio
import glob
from collections.abc import Callable, Mapping
from datetime import timedelta
from typing import Any

import gpiod
from gpiod.line import Bias, Direction, Edge, Value

from rpilinkd.errors import PhyUnavailableError
from rpilinkd.pins import PinMap

CHIP_LABEL = "pinctrl-rp1"
CONSUMER = "rpilinkd"


def find_chip(label: str = CHIP_LABEL) -> str:
    for path in sorted(glob.glob("/dev/gpiochip*")):
        try:
            with gpiod.Chip(path) as chip:
                if chip.get_info().label == label:
                    return path
        except OSError:
            continue
    raise PhyUnavailableError(f"no GPIO chip labelled {label!r} (is this a Pi 5 family board?)")


class GpiodLines:
    """Implements device.ControlLines."""

    def __init__(self, pins: PinMap, debounce_us: int) -> None:
        self.outputs = (pins.req_out, pins.rw_out)
        self.handshake = (pins.req_in, pins.rw_in)
        self.strobes = (pins.stb_in, pins.frm_in)
        self._debounce = dict.fromkeys(self.handshake, debounce_us) | dict.fromkeys(self.strobes, 0)
        self._strobe_edges = True
        self._level = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        try:
            self.request: Any = gpiod.request_lines(
                find_chip(), consumer=CONSUMER, config=self._config(initial=True)
            )
        except OSError as exc:
            raise PhyUnavailableError(f"cannot request the control lines: {exc}") from exc
        self._level = self.read()

    def _config(self, *, initial: bool = False) -> dict[Any, Any]:
        config: dict[Any, Any] = {}
        if initial:
            config[self.outputs] = gpiod.LineSettings(
                direction=Direction.OUTPUT, output_value=Value.INACTIVE
            )
        for gpio in (*self.handshake, *self.strobes):
            watched = gpio in self.handshake or self._strobe_edges
            config[gpio] = gpiod.LineSettings(
                direction=Direction.INPUT,
                bias=Bias.PULL_DOWN,
                edge_detection=Edge.BOTH if watched else Edge.NONE,
                debounce_period=timedelta(microseconds=self._debounce[gpio]),
            )
        return config

    def start(self, changed: Callable[[int], None]) -> None:
        self._loop = asyncio.get_running_loop()
        self._loop.add_reader(self.request.fd, self._events, changed)

    def _events(self, changed: Callable[[int], None]) -> None:
        """One level word per edge, in the kernel's order."""
        for event in self.request.read_edge_events():
            bit = 1 << event.line_offset
            rising = event.event_type == event.Type.RISING_EDGE
            level = self._level | bit if rising else self._level & ~bit
            if level != self._level:
                self._level = level
                changed(level)

    def read(self) -> int:
        gpios = (*self.handshake, *self.strobes)
        values = self.request.get_values(list(gpios))
        return sum(1 << g for g, v in zip(gpios, values, strict=True) if v == Value.ACTIVE)

    def set_outputs(self, levels: Mapping[int, bool]) -> None:
        if levels:
            self.request.set_values(
                {gpio: Value.ACTIVE if up else Value.INACTIVE for gpio, up in levels.items()}
            )

    def watch_strobes(self, enabled: bool) -> None:
        if enabled != self._strobe_edges:
            self._strobe_edges = enabled
            self.request.reconfigure_lines(self._config())
            self._level = self.read()

    def debounce(self, gpios: tuple[int, ...], period_us: int) -> None:
        self._debounce.update(dict.fromkeys(gpios, period_us))
        self.request.reconfigure_lines(self._config())

    def close(self) -> None:
        if self._loop is not None:
            self._loop.remove_reader(self.request.fd)
            self._loop = None
        try:
            self.set_outputs(dict.fromkeys(self.outputs, False))
        finally:
            self.request.release()
