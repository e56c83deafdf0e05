"""This Pi's pigpiod, as the check uses it: pin commands, and every level change, timed.

Commands go through :class:`PigpiodClient`; the levels come from a
notification stream (pigpiod reports every change of the bus pins with its
µs tick), so what was on a wire at an instant does not depend on how busy
this process was; ticks are mapped to the local monotonic clock.
"""

from __future__ import annotations

import asyncio
import struct
import time

from rpilinkd.errors import PhyError
from rpilinkd.phy.pigpiod import PigpiodClient, ReportStream, Request
from rpilinkd.pigpio_protocol import (
    MODE_INPUT,
    NTFY_ALIVE,
    NTFY_EVENT,
    NTFY_WDOG,
    PUD_DOWN,
    PUD_UP,
    REPORT_SIZE,
    Cmd,
)
from rpilinkd.wiring.cable import BusPin, Kind, mask
from rpilinkd.wiring.plan import Op, Step
from rpilinkd.wiring.timeline import Timeline

REPORT = struct.Struct("<HHII")  # seqno, flags, tick, level
NOT_LEVELS = NTFY_EVENT | NTFY_ALIVE | NTFY_WDOG
CLOCK_PROBES = 16  # the quickest answer bounds the error of the tick-to-clock map


class LocalPigpiod:
    def __init__(self, host: str, port: int, bus: tuple[BusPin, ...], timeout: float = 5.0):
        self.bus = bus
        self.mask = mask(bus)
        self.client = PigpiodClient(host, port, timeout=timeout)
        self._stream = ReportStream(host, port, timeout=timeout)
        self._reader: asyncio.Task[None] | None = None
        self._tick0 = 0
        self._mono0 = 0.0
        self.timeline = Timeline(time.monotonic(), 0)
        self.touched = False  # a pin command was sent: the pins must be left safe

    @property
    def where(self) -> str:
        return self.client.where

    async def open(self) -> None:
        """Connect, make every bus pin an input with a pull-down, and start listening.

        Raises:
            PhyUnavailableError: pigpiod is not there.
            PigpioCommandError: it refused a pin (not permitted, bad GPIO).
        """
        await self.client.connect()
        handle = await self._stream.open()
        self.touched = True
        await self.apply(Step(0.0, Op.PULL_DOWN))
        await self.client.batch([(Cmd.MODES, pin.gpio, MODE_INPUT, b"") for pin in self.bus])
        await self._sync_clock()
        self.timeline = Timeline(time.monotonic(), await self.client.command(Cmd.BR1) & self.mask)
        await self.client.command(Cmd.NB, handle, self.mask)
        self._reader = asyncio.create_task(self._read(), name="wiring-check reports")

    async def _sync_clock(self) -> None:
        """Pair a pigpiod tick with the monotonic clock (the probe with the shortest trip)."""
        best = float("inf")
        for _ in range(CLOCK_PROBES):
            sent = time.monotonic()
            tick = await self.client.command(Cmd.TICK)
            back = time.monotonic()
            if back - sent < best:
                best, self._tick0, self._mono0 = back - sent, tick, (sent + back) / 2

    def to_monotonic(self, tick: int) -> float:
        delta = (tick - self._tick0 + (1 << 31)) % (1 << 32) - (1 << 31)  # ticks wrap at 2^32 µs
        return self._mono0 + delta / 1e6

    async def _read(self) -> None:
        pending = b""
        while chunk := await self._stream.read():
            pending += chunk
            whole = len(pending) - len(pending) % REPORT_SIZE
            for _, flags, tick, level in REPORT.iter_unpack(pending[:whole]):
                if not flags & NOT_LEVELS:
                    self.timeline.add(self.to_monotonic(tick), level & self.mask)
            pending = pending[whole:]

    async def apply(self, step: Step) -> None:
        """Carry out one step of the schedule (the pins change as pigpiod gets each command)."""
        await self.client.batch(_requests(step, self.bus))

    async def make_safe(self) -> None:
        """Every bus pin safe: data lines and inputs inputs, outputs low, pull-downs.

        Uses a fresh connection if this one is gone (pigpiod keeps pin states).
        """
        if not self.touched:
            return
        requests = [(Cmd.PUD, pin.gpio, PUD_DOWN, b"") for pin in self.bus]
        for pin in self.bus:
            if pin.kind is Kind.OUT:
                requests.append((Cmd.WRITE, pin.gpio, 0, b""))
            else:
                requests.append((Cmd.MODES, pin.gpio, MODE_INPUT, b""))
        try:
            await self.client.batch(requests)
        except PhyError:
            spare = PigpiodClient(self.client.host, self.client.port, timeout=self.client.timeout)
            try:
                await spare.connect()
                await spare.batch(requests)
            finally:
                await spare.close()

    async def close(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            await asyncio.gather(self._reader, return_exceptions=True)
        await self._stream.close()  # pigpiod frees the handle with its socket
        await self.client.close()


def _requests(step: Step, bus: tuple[BusPin, ...]) -> list[Request]:
    if step.op is Op.DRIVE:  # WRITE sets the latch before it makes the pin an output
        return [(Cmd.WRITE, pin.gpio, 1, b"") for pin in step.pins]
    if step.op is Op.RELEASE:
        return [(Cmd.MODES, pin.gpio, MODE_INPUT, b"") for pin in step.pins]
    pull = PUD_UP if step.op is Op.PULL_UP else PUD_DOWN
    return [(Cmd.PUD, pin.gpio, pull, b"") for pin in bus]
