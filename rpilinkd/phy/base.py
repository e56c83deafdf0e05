"""The backend interface: what every bus backend does, in one screen.

A backend moves opaque frames (bytes) across the data lines and sets and reads
the four control lines. It knows nothing of roles, CRCs or retransmission: the
link layer decides who may drive the data lines and when; a backend only does
what it is told, safely, and reports what it sees, in order.

Subclasses **must** override: ``_open``, ``_close``, ``set_controls``,
``drive_data``, ``send_frames``, ``read_controls``, and feed received events
with :meth:`_deliver` (frames and control-line changes, in wire order).
They **may** override ``capabilities`` (a property) when it depends on the
connection. Everything else is shared.

Use::

    async with open_backend("pigpio", config) as phy:
        await phy.set_controls({ControlLine.REQ: True})
        async for event in phy.events():
            ...
"""

from __future__ import annotations

import abc
import asyncio
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import ClassVar, Self

from rpilinkd.errors import PhyError, PhyUnavailableError
from rpilinkd.phy.pins import ControlLine

Levels = Mapping[ControlLine, bool]


@dataclass(frozen=True)
class PhyCapabilities:
    """What a backend can carry."""

    max_frame: int  # bytes in one frame
    line_rate_bps: float  # raw bytes per second while a frame is on the wire
    sample_us: int | None = None  # the receiver's sample period, if it samples


@dataclass(frozen=True)
class FrameReceived:
    """A whole frame (frame-enable high to low) arrived; the bytes are unchecked."""

    data: bytes


@dataclass(frozen=True)
class ControlsChanged:
    """The peer's control outputs, as this side's ``*_in`` pins now read them."""

    levels: Levels


PhyEvent = FrameReceived | ControlsChanged


class PhyBackend(abc.ABC):
    """One end of the bus. Reusable after :meth:`aclose`, not reentrant."""

    name: ClassVar[str]
    #: bound on undelivered events; a backend whose reader falls this far behind
    #: drops the oldest frames (counted in ``dropped_events``), never control changes.
    EVENT_QUEUE = 4096

    def __init__(self) -> None:
        self._events: asyncio.Queue[PhyEvent | BaseException] = asyncio.Queue()
        self._is_open = False
        self.dropped_events = 0

    # -- life cycle ---------------------------------------------------------

    async def __aenter__(self) -> Self:
        await self.open()
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def open(self) -> None:
        """Connect and put the lines in their safe state: data lines released
        (inputs with pull-downs), control outputs low, no waveform running.

        Raises:
            PhyUnavailableError: the backend cannot be reached.
            PhyError: it was reached but refused the setup.
        """
        if self._is_open:
            raise PhyError(f"{self.name} backend is already open")
        self._events = asyncio.Queue()
        await self._open()
        self._is_open = True

    async def aclose(self) -> None:
        """Release the data lines and disconnect. Idempotent."""
        if not self._is_open:
            return
        self._is_open = False
        await self._close()

    @property
    def is_open(self) -> bool:
        return self._is_open

    @property
    @abc.abstractmethod
    def capabilities(self) -> PhyCapabilities: ...

    @abc.abstractmethod
    async def _open(self) -> None: ...

    @abc.abstractmethod
    async def _close(self) -> None: ...

    # -- the bus ------------------------------------------------------------

    @abc.abstractmethod
    async def set_controls(self, levels: Levels) -> None:
        """Set some control outputs; returns once they are on the wire."""

    @abc.abstractmethod
    async def read_controls(self) -> Levels:
        """The peer's control outputs as read now (all four lines)."""

    @abc.abstractmethod
    async def drive_data(self, enable: bool) -> None:
        """Claim (outputs) or release (inputs) the data lines; returns once done.

        Releasing first stops any waveform still on the wire.
        """

    @abc.abstractmethod
    async def send_frames(self, frames: Sequence[bytes]) -> None:
        """Put frames on the wire back to back; returns once the last byte is out.

        Raises:
            PhyError: the data lines are not claimed, or a frame exceeds
                ``capabilities.max_frame`` or is empty.
            PhyUnavailableError: the connection was lost.
        """

    # -- receiving ----------------------------------------------------------

    async def events(self) -> AsyncIterator[PhyEvent]:
        """Frames and control changes in wire order, until the backend closes.

        Raises:
            PhyUnavailableError: the connection was lost (reopen to go on).
        """
        while self._is_open or not self._events.empty():
            item = await self._events.get()
            if isinstance(item, BaseException):
                raise item
            yield item

    def _deliver(self, event: PhyEvent) -> None:
        """Queue an event for :meth:`events` (called by subclasses)."""
        if isinstance(event, FrameReceived) and self._events.qsize() >= self.EVENT_QUEUE:
            self.dropped_events += 1
            return
        self._events.put_nowait(event)

    def _fail(self, error: PhyUnavailableError) -> None:
        """End :meth:`events` with an error (connection lost)."""
        self._is_open = False
        self._events.put_nowait(error)
