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

import numpy as np

from rpilinkd.config import Config
from rpilinkd.errors import PhyError, PhyTimeoutError, PhyUnavailableError
from rpilinkd.phy.base import ControlsChanged, FrameReceived, Levels, PhyBackend, PhyCapabilities
from rpilinkd.phy.codec import U32, BusTiming, Masks, ReportDecoder, encode, pack_wvag, pulse_cost
from rpilinkd.phy.pigpiod import PigpiodClient, ReportStream
from rpilinkd.phy.pins import ControlLine, PinMap
from rpilinkd.pigpio_protocol import Cmd

_LOGGER = logging.getLogger(__name__)

WAVE_PAD_PERCENT = 45  # two padded waves fit in the pool with room to spare
POOL_CBS, POOL_OOL = 23_836, 15_958  # pigpio's wave pool, without the chain reserve
WAVE_CBS = POOL_CBS * WAVE_PAD_PERCENT // 100
WAVE_OOL = POOL_OOL * WAVE_PAD_PERCENT // 100
WVAG_PULSES = 5461  # 12-byte pulses in pigpiod's 64 KiB extension buffer
START_DELAY_S = 20e-6  # pigpio starts every non-SYNC wave with a 20 µs delay
MODE_INPUT, MODE_OUTPUT = 0, 1
PUD_DOWN = 1
ONE_SHOT, ONE_SHOT_SYNC = 0, 2
NO_TX_WAVE = 9999
POLL_S = 0.0005


class PigpioPhy(PhyBackend):
    name = "pigpio"

    def __init__(
        self, *, host: str, port: int, pins: PinMap, timing: BusTiming, max_frame: int,
        timeout: float = 5.0,
    ) -> None:  # fmt: skip
        super().__init__()
        self.host, self.port = host, port
        self.pins, self.timing, self.max_frame, self.timeout = pins, timing, max_frame, timeout
        self.masks = Masks.from_pins(pins)
        self._client: PigpiodClient | None = None
        self._stream: ReportStream | None = None
        self._decoder = ReportDecoder(self.masks)
        self._reader: asyncio.Task[None] | None = None
        self._driving = False
        self.stats = dict.fromkeys(
            ("frames_sent", "bytes_sent", "waves_sent", "frames_received", "bytes_received",
             "orphan_bytes", "empty_frames", "report_bytes"), 0,
        )  # fmt: skip

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
            handle = await self._stream.open()
            pins = self.pins
            inputs = [pins.in_pin(line) for line in ControlLine]
            requests = [(Cmd.WVHLT, 0, 0, b""), (Cmd.WVCLR, 0, 0, b"")]
            for gpio in (*pins.data, *inputs):  # released data lines and inputs: pulled down
                requests += [(Cmd.MODES, gpio, MODE_INPUT, b""), (Cmd.PUD, gpio, PUD_DOWN, b"")]
            requests += [(Cmd.WRITE, pins.out_pin(line), 0, b"") for line in ControlLine]
            requests.append((Cmd.NB, handle, pins.control_in_mask, b""))
            requests.append((Cmd.BR1, 0, 0, b""))
            levels = (await self._client.batch(requests))[-1]
        except BaseException:
            await self._disconnect()
            raise
        self._driving = False
        framing = self._decoder.framing
        self._decoder = ReportDecoder(self.masks, initial_level=levels)
        self._decoder.framing = framing
        self._deliver(ControlsChanged(self._decoder.levels_of(levels)))
        self._reader = asyncio.create_task(self._read_reports(), name=f"reports {self.where}")
        _LOGGER.info("pigpio backend on %s: notify handle %d, line rate %.0f B/s",
                     self.where, handle, self.timing.line_rate_bps)  # fmt: skip

    async def _close(self) -> None:
        try:
            if self._client is not None and self._driving:
                await self._release()
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
            if not 0 < len(frame) <= self.max_frame:
                raise PhyError(f"frame of {len(frame)} bytes: must be 1-{self.max_frame}")
        if not frames:
            return
        waves = split_waves(encode(frames, self.masks, self.timing), [len(f) for f in frames])
        await self._play(waves)
        self.stats["frames_sent"] += len(frames)
        self.stats["bytes_sent"] += sum(map(len, frames))

    async def _play(self, waves: list[U32]) -> None:
        """Play waves back to back, two in pigpiod at a time, deleting each when done."""
        loop = asyncio.get_running_loop()
        live: deque[tuple[int, float]] = deque()  # (wave id, expected end)
        try:
            for index, pulses in enumerate(waves):
                if len(live) == 2:
                    await self._wait_done(*live.popleft(), last=False)
                wave_id = await self._create(pulses)
                mode = ONE_SHOT if index == 0 else ONE_SHOT_SYNC
                await self.client.command(Cmd.WVTXM, wave_id, mode)
                micros = float(pulses[:, 2].sum()) * 1e-6
                start = loop.time() + START_DELAY_S if not live else max(live[-1][1], loop.time())
                live.append((wave_id, start + micros))
                self.stats["waves_sent"] += 1
            while live:
                await self._wait_done(*live.popleft(), last=not live)
        finally:
            for wave_id, _ in live:  # a failure mid-burst: free what is left
                await self.client.batch([(Cmd.WVDEL, wave_id, 0, b"")], check=False)

    async def _create(self, pulses: U32) -> int:
        results = await self.client.batch(
            [(Cmd.WVNEW, 0, 0, b""), (Cmd.WVAG, 0, 0, pack_wvag(pulses)),
             (Cmd.WVCAP, WAVE_PAD_PERCENT, 0, b"")],
        )  # fmt: skip
        return results[-1]

    async def _wait_done(self, wave_id: int, expected_end: float, *, last: bool) -> None:
        """Sleep until the wave should be over, then poll pigpiod; then delete it."""
        loop = asyncio.get_running_loop()
        await asyncio.sleep(max(0.0, expected_end - loop.time()))
        deadline = max(expected_end, loop.time()) + 1.0 + self.timeout
        while True:
            if last:
                busy = await self.client.command(Cmd.WVBSY)
            else:
                busy = int(await self.client.command(Cmd.WVTAT, check=False) == wave_id)
            if not busy:
                break
            if loop.time() > deadline:
                raise PhyTimeoutError(f"wave {wave_id} on {self.where} did not finish")
            await asyncio.sleep(POLL_S)
        await self.client.command(Cmd.WVDEL, wave_id)

    # -- receiving ------------------------------------------------------------------------

    async def _read_reports(self) -> None:
        assert self._stream is not None
        while True:
            chunk = await self._stream.read()
            if not chunk:
                break
            self.stats["report_bytes"] += len(chunk)
            decoded = self._decoder.feed(chunk)
            self.stats["orphan_bytes"] += decoded.orphan_bytes
            self.stats["empty_frames"] += decoded.empty_frames
            for kind, value in decoded.events:
                if kind == "frame":
                    assert isinstance(value, bytes)
                    self.stats["frames_received"] += 1
                    self.stats["bytes_received"] += len(value)
                    self._deliver(FrameReceived(value))
                else:
                    self._deliver(ControlsChanged(value))  # type: ignore[arg-type]
        self._fail(PhyUnavailableError(f"pigpiod at {self.where} closed the connection"))


def split_waves(pulses: U32, lengths: Sequence[int]) -> list[U32]:
    """Cut a burst's pulses at frame ends into waves within pigpio's limits."""
    cb_rows = np.count_nonzero(pulses[:, :2], axis=1).clip(max=1) + (pulses[:, 2] != 0)
    ool_rows = np.count_nonzero(pulses[:, :2], axis=1)
    ends = np.cumsum(2 * np.asarray(lengths, np.int64) + 1)  # row after each frame
    cum_cb = np.concatenate(([0], np.cumsum(cb_rows)))[ends]
    cum_ool = np.concatenate(([0], np.cumsum(ool_rows)))[ends]
    waves: list[U32] = []
    start_row = start_cb = start_ool = 0
    while start_row < len(pulses):
        fits = (
            (ends - start_row <= WVAG_PULSES)
            & (cum_cb - start_cb <= WAVE_CBS - 1)
            & (cum_ool - start_ool <= WAVE_OOL)
        )
        fits &= ends > start_row
        last = int(np.flatnonzero(fits)[-1]) if fits.any() else -1
        if last < 0:
            raise PhyError("a frame is too large for one pigpio wave")
        end_row = int(ends[last])
        waves.append(pulses[start_row:end_row])
        start_row, start_cb, start_ool = end_row, int(cum_cb[last]), int(cum_ool[last])
    assert all(pulse_cost(w)[0] <= WAVE_CBS for w in waves)
    return waves
