"""The backend interface: what every bus backend does, in one screen.

A backend moves opaque frames (bytes) across the data lines and sets and reads
the four control lines. It knows nothing of roles, CRCs or retransmission: the
link layer decides who may drive the data lines and when; a backend only does
what it is told, safely, and reports what it sees, in order.

Subclasses **must** override: ``capabilities``, ``_open``, ``_close``,
``set_controls``, ``read_controls``, ``drive_data``, ``send_frames``, and feed
received events with :meth:`_deliver` (frames and control-line changes, in wire
order), ending the stream with :meth:`_fail` when the connection is lost. They
**may** override ``set_framing`` (when their receiver decodes frames from the
same lines the arbitration uses). Everything else is shared.

Two modes of the receiver: with framing off (while the link arbitrates) every
change of the four control inputs is a ``ControlsChanged`` event and no frames
are decoded; with framing on (once roles are decided) STB and FRM carry frames
and only REQ and RW changes are ``ControlsChanged`` events.

Use::

    async with open_backend("pigpio", config) as phy:
        await phy.set_controls({ControlLine.REQ: True})
        async for event in phy.events():
            ...
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import enum
import functools
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any, ClassVar, NoReturn, Self

from rpilinkd.errors import PhyError, PhyUnavailableError
from rpilinkd.phy.events import FrameReceived, Levels, PhyEvent

if TYPE_CHECKING:
    from rpilinkd.config import Config

_LOGGER = logging.getLogger(__name__)
FIRST_RETRY_S = 0.1  # reconnecting: the first wait, doubled up to pigpio.retry_s
WORD = 4  # frames are whole 32-bit words


def check_send(frames: Sequence[bytes], *, driving: bool, max_frame: int) -> None:
    """What every backend's ``send_frames`` refuses, with the same words.

    Raises:
        PhyError: the data lines are not claimed, or a frame is empty, longer than
            ``max_frame`` or not whole 32-bit words.
    """
    if not driving:
        raise PhyError("send_frames needs the data lines: call drive_data(True) first")
    for frame in frames:
        if not 0 < len(frame) <= max_frame or len(frame) % WORD:
            raise PhyError(
                f"frame of {len(frame)} bytes: must be whole 4-byte words, 4-{max_frame} bytes"
            )


class DataLines(enum.Enum):
    """A step of :meth:`PhyBackend.apply` on the data lines."""

    CLAIM = "claim"  # outputs, latched low first
    RELEASE = "release"  # inputs (pulled down), any waveform stopped first


BusStep = Levels | DataLines


@dataclass(frozen=True)
class PhyCapabilities:
    """What a backend can carry."""

    max_frame: int  # bytes in one frame
    line_rate_bps: float  # raw bytes per second while a frame is on the wire
    sample_us: int | None = None  # the receiver's sample period, if it samples
    #: ControlsChanged shows FRM as it was at that instant (pigpio: one sampled word),
    #: so a master can tell a release (RW falls between frames) from a cut RW wire
    frame_line_in_step: bool = False
    #: a change of the peer's lines may never be reported (pigpiod past its report
    #: ceiling): the driver then reads them afresh after a quiet spell
    reports_may_be_lost: bool = False


#: a report of a change arrives within this (pigpiod batches every ms or so)
REPORT_LAG_S = 0.02


class PhyBackend(abc.ABC):
    """One end of the bus. Reusable after :meth:`aclose`, not reentrant."""

    name: ClassVar[str]
    #: bound on undelivered events; a backend whose reader falls this far behind
    #: drops the oldest frames (counted in ``dropped_events``), never control changes.
    EVENT_QUEUE = 4096

    def __init__(self) -> None:
        self._events: asyncio.Queue[PhyEvent | BaseException] = asyncio.Queue()
        self._listener: Callable[[PhyEvent], None] | None = None
        self._failure: PhyUnavailableError | None = None
        self._ended = asyncio.Event()
        self._is_open = False
        self._has_resources = False  # opened and not yet closed, even if the connection died
        self.framing = False
        self.dropped_events = 0
        self.stats: dict[str, int] = {}  # a backend's own counters, for ``stats``

    @classmethod
    def from_config(cls, config: Config, **options: Any) -> Self:
        """Build the backend from the daemon's config; options are backend-specific."""
        raise NotImplementedError(f"{cls.__name__} cannot be built from a config")

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
        if self._has_resources:
            raise PhyError(f"{self.name} backend is already open (close it first)")
        self._events = asyncio.Queue()
        self._listener, self._failure, self._ended = None, None, asyncio.Event()
        await self._open()
        self._is_open = self._has_resources = True

    async def aclose(self) -> None:
        """Release the data lines and disconnect. Idempotent, also after a lost connection."""
        self._is_open = False
        if self._has_resources:
            self._has_resources = False
            await self._close()

    @property
    def is_open(self) -> bool:
        return self._is_open

    def set_framing(self, enabled: bool) -> None:
        """Decode frames from STB/FRM (link up), or report them as control lines."""
        self.framing = enabled

    async def debounce_strobes(self, enabled: bool) -> None:
        """Filter single-sample glitches on STB and FRM too (while they carry the
        arbitration exchange), or pass them at full speed (data). REQ and RW are
        always debounced by backends that sample. Default: nothing to do."""
        return

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
        """Set some control outputs; returns once they are on the wire.

        Lines going low change before lines going high (callers that need a
        stricter order make separate calls).
        """

    @abc.abstractmethod
    async def read_controls(self) -> Levels:
        """The peer's control outputs as read now (all four lines)."""

    async def reports_caught_up(self, timeout: float) -> bool:
        """Wait until every change made before the last :meth:`read_controls` has been
        reported (or lost); False if that cannot be told within ``timeout`` (the
        report stream lags). Default: a report's usual lag."""
        await asyncio.sleep(min(timeout, REPORT_LAG_S))
        return True

    @abc.abstractmethod
    async def drive_data(self, enable: bool) -> None:
        """Claim (outputs) or release (inputs) the data lines; returns once done.

        Releasing first stops any waveform still on the wire.
        """

    async def apply(self, steps: Sequence[BusStep]) -> None:
        """Control writes and data-line claims and releases, applied in this order.

        Returns once all are done, or queued where nothing this backend does later
        can overtake them (pigpio: one socket, run in order by pigpiod; a failure
        then shows at a later call). Each step takes effect after the one before it,
        so "release, then grant" is safe in one call; a backend that applies one
        queue of commands in order sends the whole call as one batch (pigpio: one
        round trip instead of one per step).
        """
        for step in steps:
            if isinstance(step, DataLines):
                await self.drive_data(step is DataLines.CLAIM)
            else:
                await self.set_controls(step)

    def flush(self) -> None:
        """Send now what :meth:`apply` held back for a burst that is not coming.

        A backend may hold an :meth:`apply` call's writes while a claim waits for the
        next burst, and send both with the burst's first batch (pigpio: one round trip
        fewer per turn). The link driver calls this when a turn ends without a burst.
        Default: nothing is ever held."""
        return

    @abc.abstractmethod
    async def send_frames(self, frames: Sequence[bytes]) -> float:
        """Put frames on the wire back to back; returns once the last byte is out, or
        (like :meth:`apply`) once nothing sent later can overtake it, with the seconds
        the burst still plays then (0.0 once it is out): the peer's answer, and so
        every retransmission timer, can only start after that.

        Frames are whole 32-bit words (a multiple of 4 bytes, as every link frame is):
        the bus clocks them in pairs of units (docs/protocol.md §1).

        Raises:
            PhyError: the data lines are not claimed, or a frame exceeds
                ``capabilities.max_frame``, is empty, or is not whole words.
            PhyUnavailableError: the connection was lost.
        """

    def queues_turn_end(self, frames: Sequence[bytes]) -> bool:
        """Whether :meth:`send_burst` queues its ``then`` together with these frames, at
        once, so that nothing applied meanwhile can come between them (pigpio: a burst
        of one wave). Only then may the driver decide a turn's end before its burst.
        Default: no."""
        return False

    async def send_burst(self, frames: Sequence[bytes], then: Sequence[BusStep]) -> float:
        """:meth:`send_frames`, then ``then`` (:meth:`apply`): the steps that end the
        turn once the burst is over, the release of the data lines and the hand-over's
        writes. A backend that runs one queue of commands in order sends them with the
        burst's last batch (pigpio: pigpiod runs the hand-over the moment the burst is
        over, with no round trip to the daemon in between). Default: one after the other.
        """
        plays_on = await self.send_frames(frames)
        if then:
            await self.apply(then)
        return plays_on

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

    def listen(self, handler: Callable[[PhyEvent], None]) -> None:
        """Hand every event to ``handler`` as it comes, in the backend's own task, those
        queued since :meth:`open` first: no queue and no task switch between the wire
        and the link (a turn-around answers that much sooner). :meth:`ended` then tells
        when the connection is lost. ``handler`` must not raise."""
        while not self._events.empty():
            item = self._events.get_nowait()
            if not isinstance(item, BaseException):  # a failure is for ended()
                handler(item)
        self._listener = handler

    async def ended(self) -> NoReturn:
        """Wait until the connection is lost, then raise why.

        Raises:
            PhyUnavailableError: always (the backend must be opened again).
        """
        await self._ended.wait()
        assert self._failure is not None
        raise self._failure

    def _deliver(self, event: PhyEvent) -> None:
        """Hand an event to the listener, else queue it for :meth:`events` (called by
        subclasses)."""
        if self._listener is not None:
            self._listener(event)
            return
        if isinstance(event, FrameReceived) and self._events.qsize() >= self.EVENT_QUEUE:
            self.dropped_events += 1
            return
        self._events.put_nowait(event)

    def _fail(self, error: PhyUnavailableError) -> None:
        """End :meth:`events` with an error (connection lost)."""
        self._is_open = False
        self._failure = error
        self._ended.set()
        self._events.put_nowait(error)


async def open_with_retry(
    backend: PhyBackend,
    *,
    retry_s: float,
    stop: asyncio.Event | None = None,
    idle: Callable[[float], Awaitable[None]] | None = None,
    problem: Callable[[str], None] | None = None,
) -> bool:
    """Open ``backend``, retrying while it fails; logs each cause once, not each attempt.

    Two causes: pigpiod unreachable (:class:`PhyUnavailableError`, one line per
    outage) and a reachable pigpiod that refuses the setup (too old, pins
    denied: one line per distinct refusal). Between attempts it awaits
    ``idle(seconds)`` (default: a sleep that ``stop`` cuts short): 0.1 s at
    first, doubling up to ``retry_s`` (a restarted pigpiod is back in well under
    a second), and tells ``problem`` what failed. Returns False if ``stop`` was
    set before the backend could be opened.
    """
    failed_since: float | None = None
    wait = min(FIRST_RETRY_S, retry_s)
    logged = ""  # the cause last logged
    loop = asyncio.get_running_loop()
    while stop is None or not stop.is_set():
        try:
            await backend.open()
        except PhyError as exc:
            if failed_since is None:
                failed_since = loop.time()
            unavailable = isinstance(exc, PhyUnavailableError)
            cause = "unavailable" if unavailable else exc.message
            if cause != logged:
                _LOGGER.error(
                    "%s%s; retrying every %.1f s",
                    "" if unavailable else "bus backend refused: ",
                    exc.message,
                    retry_s,
                )
                logged = cause
            if problem is not None:
                problem(exc.message)
            await (idle or functools.partial(_sleep_unless, stop))(wait)
            wait = min(2 * wait, retry_s)
            continue
        if failed_since is not None:
            _LOGGER.warning(
                "%s backend reachable again after %.1f s", backend.name, loop.time() - failed_since
            )
        return True
    return False


async def _sleep_unless(stop: asyncio.Event | None, seconds: float) -> None:
    if stop is None:
        await asyncio.sleep(seconds)
    else:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await stop.wait()
