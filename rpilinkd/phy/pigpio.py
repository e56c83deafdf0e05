"""The pigpio backend: frames as DMA waveforms, received from the notification stream.

The same code drives pigpiod on a Pi and ``rpilink-sim``. Sending encodes a
burst of frames into pulses, splits them into waves that respect pigpio's
limits (5,461 pulses per WVAG, the shared CB/OOL pool), and plays them back to
back: the first wave with ONE_SHOT, each next one with ONE_SHOT_SYNC, created
while its predecessor plays, so the wire does not idle inside a burst. Every
wave is padded with WVCAP to the same share of the pool, so a deleted wave's
slot is always reused exactly and wave ids and control blocks never leak
(pigpio issue #126). Receiving reads the NOIB stream in large chunks and
decodes it with numpy (codec.py).
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Sequence
from typing import Any, Self

from rpilinkd.config import FRAME_OVERHEAD, Config
from rpilinkd.errors import PhyError, PhyTimeoutError, PhyUnavailableError
from rpilinkd.phy.base import WORD, PhyBackend, PhyCapabilities
from rpilinkd.phy.codec import U32, BusTiming, Encoder, Masks, frame_cost, pack_wvag
from rpilinkd.phy.decoder import ReportDecoder
from rpilinkd.phy.events import ControlsChanged, FrameReceived, Levels
from rpilinkd.phy.pigpiod import PigpiodClient, ReportStream
from rpilinkd.phy.sampling import SamplePeriodCheck
from rpilinkd.pigpio_protocol import (
    MODE_INPUT,
    MODE_OUTPUT,
    PUD_DOWN,
    WAVE_MODE_ONE_SHOT,
    WAVE_MODE_ONE_SHOT_SYNC,
    WAVE_START_DELAY_US,
    WAVE_USABLE_CBS,
    WAVE_USABLE_OOL,
    WVAG_MAX_PULSES,
    Cmd,
)
from rpilinkd.pins import ControlLine, PinMap

_LOGGER = logging.getLogger(__name__)

WAVE_PAD_PERCENT = 45  # two padded waves fit in the pool with room to spare
WAVE_CBS = WAVE_USABLE_CBS * WAVE_PAD_PERCENT // 100
WAVE_OOL = WAVE_USABLE_OOL * WAVE_PAD_PERCENT // 100
START_DELAY_S = WAVE_START_DELAY_US * 1e-6
POLL_S = 0.0005
MIN_PIGPIO_VERSION = 76  # WVCAP, padded waves that reuse a deleted wave's slot
TIMER_GRAIN_S = 0.001  # asyncio's sleeps end on whole milliseconds (epoll)


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
        self._client: PigpiodClient | None = None
        self._stream: ReportStream | None = None
        self._decoder = ReportDecoder(self.masks)
        self.sampling = SamplePeriodCheck(timing, self.where)
        self._reader: asyncio.Task[None] | None = None
        self._driving = False
        self._strobes_debounced = False
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
        return PhyCapabilities(self.max_frame, self.timing.line_rate_bps, self.timing.sample_us)

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
                    "package (Raspberry Pi OS Bullseye and Bookworm ship 79)"
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
            requests.append((Cmd.NB, handle, pins.control_in_mask, b""))
            requests.append((Cmd.BR1, 0, 0, b""))
            levels = (await self._client.batch(requests))[-1]
        except BaseException:
            await self._disconnect()
            raise
        self._driving = False
        self._strobes_debounced = False
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
                await self._release()
                await self.set_controls(dict.fromkeys(ControlLine, False))
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
        set_mask = sum(1 << self.pins.out_pin(line) for line, up in levels.items() if up)
        clear_mask = sum(1 << self.pins.out_pin(line) for line, up in levels.items() if not up)
        requests = [(Cmd.BC1, clear_mask, 0, b"")] if clear_mask else []
        requests += [(Cmd.BS1, set_mask, 0, b"")] if set_mask else []
        if requests:
            await self.client.batch(requests)

    async def read_controls(self) -> Levels:
        return self._decoder.levels_of(await self.client.command(Cmd.BR1))

    # -- data lines ---------------------------------------------------------------------

    async def drive_data(self, enable: bool) -> None:
        if enable:
            requests = [(Cmd.BC1, self.pins.data_mask, 0, b"")]  # latches low before driving
            requests += [(Cmd.MODES, gpio, MODE_OUTPUT, b"") for gpio in self.pins.data]
            await self.client.batch(requests)
            self._driving = True
        else:
            await self._release()

    async def _release(self) -> None:
        self._driving = False
        frame_lines = self.masks.stb_out | self.masks.frm_out
        requests = [(Cmd.WVHLT, 0, 0, b""), (Cmd.BC1, frame_lines, 0, b"")]
        requests += [(Cmd.MODES, gpio, MODE_INPUT, b"") for gpio in self.pins.data]
        await self.client.batch(requests)

    async def send_frames(self, frames: Sequence[bytes]) -> None:
        if not self._driving:
            raise PhyError("send_frames needs the data lines: call drive_data(True) first")
        for frame in frames:
            if not 0 < len(frame) <= self.max_frame or len(frame) % WORD:
                raise PhyError(
                    f"frame of {len(frame)} bytes: must be whole 4-byte words, "
                    f"4-{self.max_frame} bytes"
                )
        if not frames:
            return
        groups = wave_groups(frames, self.pins.width)
        await self._play([frames[start:end] for start, end in groups])
        self.stats["frames_sent"] += len(frames)
        self.stats["bytes_sent"] += sum(map(len, frames))

    async def _play(self, waves: list[Sequence[bytes]]) -> None:
        """Play waves back to back, two in pigpiod at a time, deleting each when done.

        Each wave is encoded just before it is created, while the one before it
        plays, so a long burst costs no encoding time up front. The burst owns
        every wave it creates, from the moment pigpiod names it: a cancelled or
        failed burst halts the transmitter and deletes them all, without waiting.
        """
        loop = asyncio.get_running_loop()
        burst = WaveBurst(self.client)
        live: deque[tuple[int, float]] = deque()  # (wave id, expected end)
        try:
            for index, wave_frames in enumerate(waves):
                pulses = self.encoder.encode(wave_frames)
                if len(live) == 2:
                    burst.delete(await self._wait_done(*live.popleft(), last=False))
                wave_id = await burst.create(pulses)
                mode = WAVE_MODE_ONE_SHOT if index == 0 else WAVE_MODE_ONE_SHOT_SYNC
                await self.client.command(Cmd.WVTXM, wave_id, mode)
                micros = float(pulses[:, 2].sum()) * 1e-6
                start = loop.time() + START_DELAY_S if not live else max(live[-1][1], loop.time())
                live.append((wave_id, start + micros))
                self.stats["waves_sent"] += 1
            while live:
                burst.delete(await self._wait_done(*live.popleft(), last=not live))
        finally:
            burst.close()

    async def _wait_done(self, wave_id: int, expected_end: float, *, last: bool) -> int:
        """Sleep until the wave should be over, then poll pigpiod; returns the wave's id.

        asyncio's timers fire on epoll's 1 ms grid, so a short wave (an ACK is
        ~0.1 ms) would cost a whole millisecond per turn-around: sleep only the
        part of the wait beyond that grain, and poll (a round trip) near the end.
        """
        loop = asyncio.get_running_loop()
        if expected_end - loop.time() > TIMER_GRAIN_S:
            await asyncio.sleep(expected_end - loop.time() - TIMER_GRAIN_S)
        deadline = max(expected_end, loop.time()) + 1.0 + self.timeout
        while True:
            if last:
                busy = await self.client.command(Cmd.WVBSY)
            else:
                busy = int(await self.client.command(Cmd.WVTAT, check=False) == wave_id)
            if not busy:
                return wave_id
            if loop.time() > deadline:
                raise PhyTimeoutError(f"wave {wave_id} on {self.where} did not finish")
            if loop.time() > expected_end + TIMER_GRAIN_S:
                await asyncio.sleep(POLL_S)  # late: pigpiod is slow, do not hammer it

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


class WaveBurst:
    """The waves of one burst: each created wave is deleted exactly once, whatever happens.

    A wave belongs to the burst as soon as pigpiod's reply names it, even when
    the task that asked was cancelled before the reply came (the reply future
    survives its waiter). Deleting never waits: WVDEL is fired and forgotten,
    and on a dead connection there is nothing to delete (the next open's WVCLR
    starts pigpiod's pool from scratch).
    """

    def __init__(self, client: PigpiodClient) -> None:
        self.client = client
        self.owned: set[int] = set()
        self.closed = False

    async def create(self, pulses: U32) -> int:
        requests = [
            (Cmd.WVNEW, 0, 0, b""),
            (Cmd.WVAG, 0, 0, pack_wvag(pulses)),
            (Cmd.WVCAP, WAVE_PAD_PERCENT, 0, b""),
        ]
        futures = [self.client.send(*request) for request in requests]
        futures[-1].add_done_callback(self._created)
        return (await self.client.results(requests, futures))[-1]

    def _created(self, future: asyncio.Future[int]) -> None:
        if future.cancelled() or future.exception() is not None or future.result() < 0:
            return
        if self.closed:  # the burst ended before pigpiod answered
            self.client.fire(Cmd.WVDEL, future.result())
        else:
            self.owned.add(future.result())

    def delete(self, wave_id: int) -> None:
        self.owned.discard(wave_id)
        self.client.fire(Cmd.WVDEL, wave_id)

    def close(self) -> None:
        """End the burst: a wave still owned means it was cut short, so halt it first."""
        self.closed = True
        if self.owned:
            self.client.fire(Cmd.WVHLT)
        for wave_id in sorted(self.owned):
            self.client.fire(Cmd.WVDEL, wave_id)
        self.owned.clear()


def wave_groups(frames: Sequence[bytes], width: int = 8) -> list[tuple[int, int]]:
    """Cut a burst into waves of whole frames within pigpio's limits: (first, end) indexes.

    Costs per frame from codec.frame_cost; a wave also takes one start-delay CB.
    """
    groups: list[tuple[int, int]] = []
    start = pulses = cbs = ools = 0
    for index, frame in enumerate(frames):
        p, c, o = frame_cost(len(frame), width)
        full = pulses + p > WVAG_MAX_PULSES or cbs + c > WAVE_CBS - 1 or ools + o > WAVE_OOL
        if index > start and full:
            groups.append((start, index))
            start, pulses, cbs, ools = index, 0, 0, 0
        pulses, cbs, ools = pulses + p, cbs + c, ools + o
    groups.append((start, len(frames)))
    return groups
