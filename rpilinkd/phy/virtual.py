"""A virtual bus: two backends in one process, with loss, bit flips and delay on demand.

For fast tests of the layers above the bus: no pigpiod, no sampling, but the
same contract as the pigpio backend: crossed control lines, data lines that
only one end may drive (both driving counts a short and garbles what is sent),
frames decoded only while the receiver is in framing mode, events in order.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Sequence
from typing import Any, Self

from rpilinkd.config import Config
from rpilinkd.errors import PhyError
from rpilinkd.phy.base import PhyBackend, PhyCapabilities, check_send
from rpilinkd.phy.events import ControlsChanged, FrameReceived, Levels
from rpilinkd.pins import ControlLine

_LOGGER = logging.getLogger(__name__)
ENDS = ("a", "b")


class VirtualBus:
    """The cable between two :class:`VirtualPhy` ends ``a`` and ``b``.

    Knobs (change them at any time): ``loss`` (probability a frame vanishes),
    ``bit_flip`` (probability that a byte has one bit flipped), ``delay_s``
    (one-way latency of frames and control changes), ``line_rate_bps`` (pace
    ``send_frames`` like a real bus; ``None`` returns at once), ``report_loss``
    (probability a control change is never reported, as when pigpiod falls
    behind: the far end reads the true levels with ``read_controls`` only).
    """

    def __init__(
        self,
        *,
        loss: float = 0.0,
        bit_flip: float = 0.0,
        delay_s: float = 0.0,
        line_rate_bps: float | None = None,
        max_frame: int = 1024,
        seed: int | None = None,
    ) -> None:
        self.loss, self.bit_flip, self.delay_s = loss, bit_flip, delay_s
        self.report_loss = 0.0
        self.line_rate_bps = line_rate_bps
        self.max_frame = max_frame
        self.rng = random.Random(seed)
        self.outputs: dict[str, dict[ControlLine, bool]] = {
            end: dict.fromkeys(ControlLine, False) for end in ENDS
        }
        self.driving = dict.fromkeys(ENDS, False)
        self.attached: dict[str, VirtualPhy] = {}
        self.shorts = 0
        self.frames_lost = 0
        self.reports_lost = 0
        self.held: dict[str, list[tuple[Any, tuple[Any, ...]]]] = {}  # stalled ends' reports
        self.in_flight = dict.fromkeys(ENDS, 0)  # reports on their way to each end
        self.bytes_flipped = 0

    def end(self, name: str) -> VirtualPhy:
        if name not in ENDS:
            raise PhyError(f"a virtual bus has ends 'a' and 'b', not {name!r}")
        return VirtualPhy(self, name)

    @staticmethod
    def other(end: str) -> str:
        return "b" if end == "a" else "a"

    def later(self, end: str, callback: Any, *args: Any) -> None:
        """Run ``callback`` for the far end after the bus delay (in order); held while
        that end's reports are stalled."""
        loop = asyncio.get_running_loop()
        self.in_flight[end] += 1
        if end in self.held:
            self.held[end].append((callback, args))
        elif self.delay_s > 0:
            loop.call_later(self.delay_s, self._arrive, end, callback, args)
        else:
            loop.call_soon(self._arrive, end, callback, args)

    def _arrive(self, end: str, callback: Any, args: tuple[Any, ...]) -> None:
        self.in_flight[end] -= 1
        callback(*args)

    def stall(self, end: str, seconds: float) -> None:
        """Hold every report to ``end`` for ``seconds``, then deliver them at once, in
        order (a starved pigpiod alert thread)."""
        self.held.setdefault(end, [])
        asyncio.get_running_loop().call_later(seconds, self._unstall, end)

    def _unstall(self, end: str) -> None:
        for callback, args in self.held.pop(end, []):
            self._arrive(end, callback, args)

    def mangle(self, frame: bytes) -> bytes | None:
        if self.loss and self.rng.random() < self.loss:
            self.frames_lost += 1
            return None
        if not self.bit_flip:
            return frame
        data = bytearray(frame)
        for index in range(len(data)):
            if self.rng.random() < self.bit_flip:
                data[index] ^= 1 << self.rng.randrange(8)
                self.bytes_flipped += 1
        return bytes(data)


class VirtualPhy(PhyBackend):
    name = "virtual"

    def __init__(self, bus: VirtualBus, end: str) -> None:
        super().__init__()
        self.bus, self.end = bus, end
        self.far = VirtualBus.other(end)
        self._in_flight_at_read = 0

    @classmethod
    def from_config(cls, config: Config, **options: Any) -> Self:
        bus = options.get("bus")
        if not isinstance(bus, VirtualBus):
            raise PhyError("the virtual backend needs bus=VirtualBus(...) and end='a' or 'b'")
        return cls(bus, str(options.get("end", "a")))

    @property
    def capabilities(self) -> PhyCapabilities:
        return PhyCapabilities(
            self.bus.max_frame,
            self.bus.line_rate_bps or float("inf"),
            reports_may_be_lost=True,  # report_loss
        )

    async def _open(self) -> None:
        if self.end in self.bus.attached:
            raise PhyError(f"end {self.end!r} of the virtual bus is already open")
        self.bus.attached[self.end] = self
        self._deliver(ControlsChanged(dict(self.bus.outputs[self.far])))

    async def _close(self) -> None:
        self.bus.attached.pop(self.end, None)
        self.bus.driving[self.end] = False
        await self.set_controls(dict.fromkeys(ControlLine, False))

    # -- control lines ----------------------------------------------------------------

    async def set_controls(self, levels: Levels) -> None:
        self.bus.outputs[self.end].update(levels)
        snapshot = dict(self.bus.outputs[self.end])
        self.bus.later(self.far, self._arrive_controls, snapshot)

    def _arrive_controls(self, levels: Levels) -> None:
        far = self.bus.attached.get(self.far)
        if self.bus.report_loss and self.bus.rng.random() < self.bus.report_loss:
            self.bus.reports_lost += 1
            return
        if far is not None and far.is_open:
            far._deliver(ControlsChanged(levels))

    async def read_controls(self) -> Levels:
        self._in_flight_at_read = self.bus.in_flight[self.end]
        return dict(self.bus.outputs[self.far])

    async def reports_caught_up(self, timeout: float) -> bool:
        """Every report on its way at the last read has arrived (none held)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self.bus.in_flight[self.end] > 0 and self._in_flight_at_read > 0:
            if loop.time() >= deadline:
                return False
            await asyncio.sleep(0.005)
        return True

    # -- data lines ---------------------------------------------------------------------

    async def drive_data(self, enable: bool) -> None:
        self.bus.driving[self.end] = enable
        if enable and self.bus.driving[self.far]:
            self.bus.shorts += 1
            _LOGGER.warning("virtual bus: both ends drive the data lines (%d)", self.bus.shorts)

    async def send_frames(self, frames: Sequence[bytes]) -> float:
        check_send(frames, driving=self.bus.driving[self.end], max_frame=self.bus.max_frame)
        if self.bus.line_rate_bps:
            await asyncio.sleep(sum(map(len, frames)) / self.bus.line_rate_bps)
        if self.bus.driving[self.far]:  # a short garbles everything on the lines
            self.bus.shorts += 1
            return 0.0
        for frame in frames:
            mangled = self.bus.mangle(frame)
            if mangled is not None:
                self.bus.later(self.far, self._arrive_frame, mangled)
        return 0.0

    def _arrive_frame(self, frame: bytes) -> None:
        far = self.bus.attached.get(self.far)
        if far is not None and far.is_open and far.framing:
            far._deliver(FrameReceived(frame))
