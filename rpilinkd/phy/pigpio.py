"""The pigpio backend: frames as DMA waveforms, received from the notification stream.

The same code drives pigpiod on a Pi and ``rpilink-sim``. Sending encodes a
burst of frames into pulses, splits them into waves that respect pigpio's
limits (5,461 pulses per WVAG, the shared CB/OOL pool) and plays them back to
back (waves.py). Bus steps (control writes, claiming and releasing the data
lines) go to pigpiod as one batch per call. Receiving reads the NOIB stream in
large chunks and decodes it with numpy (decoder.py).
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Sequence
from typing import Any, Self

from rpilinkd.config import FRAME_OVERHEAD, Config
from rpilinkd.errors import PhyError, PhyUnavailableError
from rpilinkd.phy.base import BusStep, DataLines, PhyBackend, PhyCapabilities, check_send
from rpilinkd.phy.codec import BusTiming, Encoder, Masks
from rpilinkd.phy.decoder import ReportDecoder
from rpilinkd.phy.events import ControlsChanged, FrameReceived, Levels
from rpilinkd.phy.pigpiod import PigpiodClient, ReportStream, Request, Unchecked
from rpilinkd.phy.sampling import SamplePeriodCheck
from rpilinkd.phy.steps import StepRequests
from rpilinkd.phy.waves import WaveBurst, wave_groups
from rpilinkd.pigpio_protocol import (
    MODE_INPUT,
    PUD_DOWN,
    Cmd,
)
from rpilinkd.pins import ControlLine, PinMap

_LOGGER = logging.getLogger(__name__)

MIN_PIGPIO_VERSION = 76  # WVCAP, padded waves that reuse a deleted wave's slot
MAX_UNREAD = 64  # apply() batches whose answers are not yet checked: then it waits
HEARTBEAT_MS = 50  # pigpiod's watchdog on RW: a report at least this often
U32_MASK = 0xFFFFFFFF  # pigpiod's tick wraps


class PigpioPhy(PhyBackend):
    name = "pigpio"

    def __init__(
        self,
        *,
        host: str,
        port: int,
        pins: PinMap,
        timing: BusTiming,
        max_frame: int,
        timeout: float = 5.0,
    ) -> None:
        super().__init__()
        self.host, self.port = host, port
        self.pins, self.timing, self.max_frame, self.timeout = pins, timing, max_frame, timeout
        self.masks = Masks.from_pins(pins)
        self.encoder = Encoder(self.masks, timing)
        self.steps = StepRequests(pins, self.masks, timing)
        self._client: PigpiodClient | None = None
        self._stream: ReportStream | None = None
        self._decoder = ReportDecoder(self.masks)
        self.sampling = SamplePeriodCheck(timing, self.where)
        self._reader: asyncio.Task[None] | None = None
        self._driving = self._claim_later = False
        self._strobes_debounced = False
        self._unread: deque[Unchecked] = deque()
        self._held: list[Request] = []  # writes that go out with the pending claim
        self._read_tick: int | None = None  # pigpiod's tick at the last read_controls()
        self.stats = dict.fromkeys(
            (
                "frames_sent",
                "bytes_sent",
                "waves_sent",
                "frames_received",
                "bytes_received",
                "orphan_bytes",
                "empty_frames",
                "report_bytes",
            ),
            0,
        )

    @classmethod
    def from_config(cls, config: Config, **options: Any) -> Self:
        return cls(
            host=options.get("host", config.pigpio.host),
            port=options.get("port", config.pigpio.port),
            pins=config.pins,
            timing=BusTiming.from_config(config.bus),
            max_frame=config.bus.max_frame,
            timeout=config.pigpio.connect_timeout_s,
        )

    @property
    def where(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def capabilities(self) -> PhyCapabilities:
        return PhyCapabilities(
            self.max_frame,
            self.timing.line_rate_bps,
            self.timing.sample_us,
            frame_line_in_step=True,
            reports_may_be_lost=True,  # past the alert thread's ceiling
        )

    @property
    def client(self) -> PigpiodClient:
        if self._client is None:
            raise PhyUnavailableError(f"pigpio backend for {self.where} is not open")
        return self._client

    # -- life cycle -------------------------------------------------------------------

    async def _open(self) -> None:
        for problem in self.timing.problems():
            _LOGGER.warning("bus timing: %s", problem)
        self._client = PigpiodClient(self.host, self.port, timeout=self.timeout)
        self._stream = ReportStream(self.host, self.port, timeout=self.timeout)
        try:
            await self._client.connect()
            version = await self._client.command(Cmd.PIGPV)
            if version < MIN_PIGPIO_VERSION:
                raise PhyError(
                    f"pigpiod at {self.where} is version {version}; rpilinkd needs "
                    f"{MIN_PIGPIO_VERSION} or later (WVCAP): upgrade the pigpio "
                    "package (Bookworm ships 79; on Trixie scripts/install builds it)"
                )
            handle = await self._stream.open()
            pins = self.pins
            inputs = [pins.in_pin(line) for line in ControlLine]
            requests = [(Cmd.WVHLT, 0, 0, b""), (Cmd.WVCLR, 0, 0, b"")]
            for gpio in (*pins.data, *inputs):  # released data lines and inputs: pulled down
                requests += [(Cmd.MODES, gpio, MODE_INPUT, b""), (Cmd.PUD, gpio, PUD_DOWN, b"")]
            requests += [(Cmd.WRITE, pins.out_pin(line), 0, b"") for line in ControlLine]
            # debounced: a glitch on REQ or RW must never look like a grant; STB and FRM
            # only while they carry the arbitration (debounce_strobes)
            handshake = (pins.req_in, pins.rw_in)
            requests += [(Cmd.FG, gpio, self.timing.debounce_us, b"") for gpio in handshake]
            requests += [(Cmd.FG, gpio, 0, b"") for gpio in (pins.stb_in, pins.frm_in)]
            # a heartbeat through the report stream: a report comes at least this often,
            # so a fresh read of the lines can tell a lost report from a late one
            requests.append((Cmd.WDOG, pins.rw_in, HEARTBEAT_MS, b""))
            requests.append((Cmd.NB, handle, pins.control_in_mask, b""))
            requests.append((Cmd.BR1, 0, 0, b""))
            levels = (await self._client.batch(requests))[-1]
        except BaseException:
            await self._disconnect()
            raise
        self._driving = self._claim_later = False
        self._strobes_debounced = False
        self._unread.clear()
        self._held.clear()
        self._read_tick = None
        framing = self._decoder.framing
        self._decoder = ReportDecoder(self.masks, initial_level=levels)
        self._decoder.framing = framing
        self.sampling = SamplePeriodCheck(self.timing, self.where)  # pigpiod may be new
        self._deliver(ControlsChanged(self._decoder.levels_of(levels)))
        self._reader = asyncio.create_task(self._read_reports(), name=f"reports {self.where}")
        _LOGGER.info(
            "pigpio backend on %s: notify handle %d, line rate %.0f B/s",
            self.where,
            handle,
            self.timing.line_rate_bps,
        )

    async def _close(self) -> None:
        """Leave the pins safe: no wave, data lines inputs, control outputs low."""
        try:
            if self._client is not None and self._client.connected:
                await self.apply([DataLines.RELEASE, dict.fromkeys(ControlLine, False)])
                await self._check_replies(wait=True)  # done before the socket closes
                await self.client.command(Cmd.WDOG, self.pins.rw_in, 0)  # no heartbeat left
        except (PhyError, OSError):
            pass  # closing anyway; pigpiod may be gone
        await self._disconnect()

    async def _disconnect(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            await asyncio.gather(self._reader, return_exceptions=True)
            self._reader = None
        for part in (self._stream, self._client):
            if part is not None:
                await part.close()
        self._stream = self._client = None

    def set_framing(self, enabled: bool) -> None:
        super().set_framing(enabled)
        self._decoder.framing = enabled

    async def debounce_strobes(self, enabled: bool) -> None:
        """STB and FRM through pigpiod's glitch filter (arbitration) or not (data)."""
        if enabled == self._strobes_debounced:
            return
        steady = self.timing.debounce_us if enabled else 0
        await self.client.batch(
            [(Cmd.FG, self.pins.stb_in, steady, b""), (Cmd.FG, self.pins.frm_in, steady, b"")]
        )
        self._strobes_debounced = enabled

    # -- control lines ----------------------------------------------------------------

    async def set_controls(self, levels: Levels) -> None:
        """Clears go first, then sets (two bank writes, in that order)."""
        await self.apply([levels])
        self.flush()  # on the wire now, even while a claim waits for its burst
        await self._check_replies(wait=True)

    async def apply(self, steps: Sequence[BusStep]) -> None:
        """All steps as one batch of pigpiod commands: one socket runs them in order.

        Returns once the batch is sent: pigpiod runs it before anything this backend
        sends later, which is all the bus machine's "once confirmed" needs, so a turn
        costs no wait for the answers (checked at a later call; :meth:`set_controls`
        and :meth:`drive_data` wait for them).

        A claim waits for the next burst and goes out in its first batch: the lines
        are driven only once there is something to put on them (one round trip
        fewer per turn, and the shortest time on the lines for a peer to misjudge).
        The call's writes wait with it (held, in order, ahead of the claim): the
        taking of a turn (RW, then the claim, then the burst) is one batch, one
        round trip. :meth:`flush` sends them if no burst comes.
        """
        requests: list[Request] = []
        driving, claim_later = self._driving, self._claim_later
        for step in steps:
            if step is DataLines.CLAIM:
                driving = claim_later = True
            elif step is DataLines.RELEASE:
                requests += self.steps.release()
                self._driving = driving = claim_later = False  # no wave may start now
            else:
                requests += self.steps.write(step, guarded=self._strobes_debounced)
        self._claim_later = claim_later
        self._held += requests
        if not claim_later:
            self.flush()
        self._driving = driving
        await self._check_replies(wait=len(self._unread) > MAX_UNREAD)

    def flush(self) -> None:
        """Send the held writes (pigpiod runs them before anything sent later: no need
        to wait for the answers)."""
        requests, self._held = self._held, []
        if requests:
            self._unread.append(Unchecked(requests, self.client.send_many(requests)))

    async def _check_replies(self, *, wait: bool) -> None:
        """Check the answers to earlier :meth:`apply` batches that have come (all of
        them if ``wait``). Raises: PigpioCommandError for a refusal, as ``batch``."""
        while self._unread:
            if not wait and not self._unread[0].answered:
                return
            await self._unread.popleft().check(self.client)

    def _claim_requests(self) -> list[Request]:
        """The held writes, then the pending claim if any."""
        requests, self._held = self._held, []
        if not self._claim_later:
            return requests
        self._claim_later = False
        return requests + self.steps.claim()

    async def read_controls(self) -> Levels:
        self._read_tick, levels = await self.client.batch(
            [(Cmd.TICK, 0, 0, b""), (Cmd.BR1, 0, 0, b"")]
        )
        await self._check_replies(wait=False)  # answered before BR1 was
        return self._decoder.levels_of(levels)

    async def reports_caught_up(self, timeout: float) -> bool:
        """Wait for a report (the heartbeat at least) stamped after the last read."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not self._heard_since_read():
            if loop.time() >= deadline:
                return False
            await asyncio.sleep(0.005)
        return True

    def _heard_since_read(self) -> bool:
        heard, read = self._decoder.heard_tick, self._read_tick
        return heard is not None and read is not None and 0 <= (heard - read) & U32_MASK < 1 << 31

    # -- data lines ---------------------------------------------------------------------

    async def drive_data(self, enable: bool) -> None:
        await self.apply([DataLines.CLAIM if enable else DataLines.RELEASE])
        await self._check_replies(wait=True)

    async def send_frames(self, frames: Sequence[bytes]) -> float:
        """Returns once pigpiod has the burst's last wave (waves.py): the seconds it
        still plays."""
        check_send(frames, driving=self._driving, max_frame=self.max_frame)
        if not frames:
            return 0.0
        groups = wave_groups(frames, self.pins.width)
        return await self._send_waves([frames[start:end] for start, end in groups])

    def queues_turn_end(self, frames: Sequence[bytes]) -> bool:
        return bool(frames) and len(wave_groups(frames, self.pins.width)) == 1

    async def send_burst(self, frames: Sequence[bytes], then: Sequence[BusStep]) -> float:
        """A burst of one wave takes ``then`` into its batch, behind the MICS that waits
        for its end: the hand-over runs in pigpiod the moment the burst is over. (A
        longer burst's batches are sent over time: ``then`` follows it as a call.)"""
        check_send(frames, driving=self._driving, max_frame=self.max_frame)
        if not self.queues_turn_end(frames) or DataLines.CLAIM in then:  # (never a claim)
            return await super().send_burst(frames, then)
        epilogue: list[Request] = []
        for step in then:
            if step is DataLines.RELEASE:
                epilogue += self.steps.release()
            elif not isinstance(step, DataLines):
                epilogue += self.steps.write(step, guarded=self._strobes_debounced)
        return await self._send_waves([frames], epilogue, releases=DataLines.RELEASE in then)

    async def _send_waves(
        self, waves: list[Sequence[bytes]], epilogue: Sequence[Request] = (), releases: bool = False
    ) -> float:
        over_at = await self._play(waves, epilogue, releases)
        await self._check_replies(wait=False)  # answered before the burst's were
        self.stats["frames_sent"] += sum(map(len, waves))
        self.stats["bytes_sent"] += sum(len(frame) for wave in waves for frame in wave)
        return max(0.0, over_at - asyncio.get_running_loop().time())

    async def _play(
        self, waves: list[Sequence[bytes]], epilogue: Sequence[Request], releases: bool
    ) -> float:
        """Play the waves (waves.py), then the epilogue (``releases``: it lets the data
        lines go); returns once the last wave has started, with the loop time by which
        it is over."""
        burst = WaveBurst(self.client, self.where)
        try:
            prelude = self._claim_requests()  # the pending claim first
            if releases:  # ... and the release in the same batch: no wave after it
                self._driving = self._claim_later = False
            await burst.play(waves, self.encoder.encode, prelude=prelude, epilogue=epilogue)
        finally:
            self.stats["waves_sent"] += burst.waves_sent
            for sent in (burst.unchecked, burst.epilogue_unchecked):
                if sent is not None:
                    self._unread.append(sent)
        return burst.over_at

    # -- receiving ------------------------------------------------------------------------

    async def _read_reports(self) -> None:
        assert self._stream is not None
        while True:
            chunk = await self._stream.read()
            if not chunk:
                break
            self.stats["report_bytes"] += len(chunk)
            decoded = self._decoder.feed(chunk)
            if decoded.ticks is not None:
                self.sampling.feed(decoded.ticks)
            frames = [e.data for e in decoded.events if isinstance(e, FrameReceived)]
            runts = sum(len(f) < FRAME_OVERHEAD for f in frames)  # shorter than any frame
            self.sampling.frames(len(frames) - runts, decoded.empty_frames + runts)
            self.stats["orphan_bytes"] += decoded.orphan_bytes
            self.stats["empty_frames"] += decoded.empty_frames
            for event in decoded.events:
                if isinstance(event, FrameReceived):
                    self.stats["frames_received"] += 1
                    self.stats["bytes_received"] += len(event.data)
                self._deliver(event)
        self._fail(PhyUnavailableError(f"pigpiod at {self.where} closed the connection"))
