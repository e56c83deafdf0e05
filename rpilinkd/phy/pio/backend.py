"""The pio backend: the bus on RP1's PIO (Raspberry Pi 5, Pi 500, CM5), same wire as pigpio.

Two state machines run programs.py's programs: TX clocks frames out of its FIFO
(fed by DMA from a worker thread) at the configured timing, RX latches a unit
at every STB edge while FRM is high and marks each frame's end; a reader
thread drains it in small DMA reads and framing.py cuts frames out in bulk.
The control lines go through gpiod (lines.py) with edge events on the event
loop; STB_OUT and FRM_OUT stay with PIO, set directly while the link
arbitrates. The TX machine runs only while this side drives the data lines,
the RX machine only while framing is on.

Everything hardware-specific sits behind device.PioDevice / ControlLines,
opened by :func:`open_rp1` (or handed in by the emulator: ``hardware=``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Callable, Sequence
from typing import Any, Self

from rpilinkd.config import Config
from rpilinkd.errors import PhyError, PhyUnavailableError
from rpilinkd.phy.base import PhyBackend, PhyCapabilities, check_send
from rpilinkd.phy.codec import BusTiming
from rpilinkd.phy.events import ControlsChanged, FrameReceived, Levels
from rpilinkd.phy.pio.device import ControlLines, PioDevice
from rpilinkd.phy.pio.framing import RxDecoder, tx_words
from rpilinkd.phy.pio.programs import RX_MARKERS, build_programs
from rpilinkd.pins import ControlLine, PinMap

_LOGGER = logging.getLogger(__name__)
DEVICE_PATH = "/dev/pio0"
NO_RP1 = (
    "no RP1 PIO here ({path} missing): the pio backend needs a Raspberry Pi 5, Pi 500 or "
    "CM5 (kernel with the rp1-pio driver); on a Pi 1-4 use backend pigpio"
)
NO_GPIOD = (
    "the pio backend needs the gpiod package (libgpiod v2 bindings) for its control lines: "
    "pip install 'rpilinkd[pio]'"
)
POLL_S = 0.0005
Hardware = Callable[[PinMap, int], tuple[PioDevice, ControlLines]]


def open_rp1(pins: PinMap, debounce_us: int, path: str = DEVICE_PATH) -> tuple[PioDevice, Any]:
    """The real thing: /dev/pio0 and the RP1 GPIO chip, or one clear reason why not."""
    if not os.path.exists(path):
        raise PhyUnavailableError(NO_RP1.format(path=path))
    try:
        from rpilinkd.phy.pio.lines import GpiodLines  # noqa: PLC0415 - needs gpiod
    except ImportError:
        raise PhyUnavailableError(NO_GPIOD) from None
    from rpilinkd.phy.pio.rp1 import Rp1Pio  # noqa: PLC0415 - Linux ioctls

    try:
        device = Rp1Pio(path)
    except PermissionError:
        raise PhyUnavailableError(
            f"cannot open {path}: permission denied (run as root, or give group gpio "
            'access: udev rule SUBSYSTEM=="*-pio", GROUP="gpio", MODE="0660")'
        ) from None
    except OSError as exc:
        raise PhyUnavailableError(f"cannot open {path}: {exc.strerror}") from None
    try:
        return device, GpiodLines(pins, debounce_us)
    except BaseException:
        device.close()
        raise


class PioPhy(PhyBackend):
    name = "pio"

    def __init__(
        self,
        *,
        pins: PinMap,
        timing: BusTiming,
        max_frame: int,
        hardware: Hardware | None = None,
        rx_clkdiv: int = 1,
        device_path: str = DEVICE_PATH,
    ) -> None:
        super().__init__()
        self.pins, self.timing, self.max_frame = pins, timing, max_frame
        self.programs = build_programs(timing, pins, rx_clkdiv)
        self._hardware = hardware
        self.device_path = device_path
        self._device: PioDevice | None = None
        self._lines: ControlLines | None = None
        self._tx_sm = self._rx_sm = self._tx_offset = self._rx_offset = 0
        self._decoder = RxDecoder(pins.width)
        self._reader: asyncio.Task[None] | None = None
        self._driving = False
        self._last_levels = 0
        self.stats = dict.fromkeys(
            ("frames_sent", "bytes_sent", "frames_received", "bytes_received", "empty_frames"), 0
        )

    @classmethod
    def from_config(cls, config: Config, **options: Any) -> Self:
        return cls(
            pins=config.pins,
            timing=BusTiming.from_config(config.bus),
            max_frame=config.bus.max_frame,
            hardware=options.get("hardware"),
            rx_clkdiv=int(options.get("rx_clkdiv", 1)),
        )

    @property
    def capabilities(self) -> PhyCapabilities:
        tx = self.programs.timing
        unit_pair_bytes = 2 * self.pins.width // 8
        return PhyCapabilities(
            self.max_frame, unit_pair_bytes * 1e6 / (tx.pair_cycles * tx.cycle_us)
        )

    @property
    def device(self) -> PioDevice:
        if self._device is None:
            raise PhyUnavailableError("pio backend is not open")
        return self._device

    @property
    def lines(self) -> ControlLines:
        if self._lines is None:
            raise PhyUnavailableError("pio backend is not open")
        return self._lines

    # -- life cycle ---------------------------------------------------------------------

    async def _open(self) -> None:
        for problem in self.timing.problems():
            _LOGGER.warning("bus timing: %s", problem)
        if self._hardware is not None:
            device, lines = self._hardware(self.pins, self.timing.debounce_us)
        else:
            device, lines = open_rp1(self.pins, self.timing.debounce_us, self.device_path)
        self._device, self._lines = device, lines
        try:
            self._setup(device)
            self._last_levels = lines.read()
            lines.start(self._controls_changed)
            lines.watch_strobes(not self.framing)
        except BaseException:
            await self._close()
            raise
        self._driving = False
        self._deliver(ControlsChanged(self._levels_of(self._last_levels)))
        if self.framing:
            self._start_rx()
        self._reader = asyncio.create_task(self._read_frames(), name="pio rx")
        tx = self.programs.timing
        _LOGGER.info(
            "pio backend: TX clock divider %d (%.3f µs a cycle), %d cycles a pair of units, "
            "line rate %.0f B/s",
            tx.clkdiv, tx.cycle_us, tx.pair_cycles, self.capabilities.line_rate_bps,
        )  # fmt: skip

    def _setup(self, device: PioDevice) -> None:
        programs, pins = self.programs, self.pins
        self._tx_sm, self._rx_sm = device.claim_sm(), device.claim_sm()
        self._tx_offset = device.add_program(programs.tx)
        self._rx_offset = device.add_program(programs.rx)
        for gpio in (*pins.data, pins.stb_out, pins.frm_out):
            device.gpio_to_pio(gpio)
        strobes = 1 << pins.stb_out | 1 << pins.frm_out
        device.sm_init(self._tx_sm, self._tx_offset, self._tx_config())
        device.sm_set_pins(self._tx_sm, 0, programs.tx_pins_mask)
        device.sm_set_pindirs(self._tx_sm, strobes, programs.tx_pins_mask)  # data released

    def _tx_config(self) -> Any:
        return self.programs.tx_settings(self._tx_offset).registers()

    async def _close(self) -> None:
        """Leave the pins safe: state machines stopped, outputs low, data lines inputs."""
        self._driving = False
        reader, self._reader = self._reader, None
        device, lines = self._device, self._lines
        if device is not None:
            with contextlib.suppress(PhyError, OSError):
                device.sm_enable(self._rx_sm, False)
                device.sm_enable(self._tx_sm, False)
                device.sm_set_pins(self._tx_sm, 0, self.programs.tx_pins_mask)
                device.sm_set_pindirs(self._tx_sm, 0, self.pins.data_mask)
        if reader is not None:  # its DMA read ends with the RX machine stopped (or times out)
            reader.cancel()
            await asyncio.gather(reader, return_exceptions=True)
        try:
            if lines is not None:
                lines.close()
            if device is not None:
                with contextlib.suppress(PhyError, OSError):  # inputs, pulled down: read low
                    for gpio in (*self.pins.data, self.pins.stb_out, self.pins.frm_out):
                        device.gpio_release(gpio)
                device.close()
        finally:
            self._device = self._lines = None

    # -- framing and the control lines ------------------------------------------------------

    def set_framing(self, enabled: bool) -> None:
        was = self.framing
        super().set_framing(enabled)
        if self._device is None or was == enabled:
            return
        self.lines.watch_strobes(not enabled)
        if enabled:
            self._start_rx()
        else:
            self.device.sm_enable(self._rx_sm, False)

    def _start_rx(self) -> None:
        """From the top: the first frame is the first FRM rise from now on."""
        self._decoder.reset()
        config = self.programs.rx_settings(self._rx_offset).registers()
        self.device.sm_init(self._rx_sm, self._rx_offset, config)
        self.device.sm_enable(self._rx_sm, True)

    async def debounce_strobes(self, enabled: bool) -> None:
        period = self.timing.debounce_us if enabled else 0
        self.lines.debounce((self.pins.stb_in, self.pins.frm_in), period)

    def _levels_of(self, word: int) -> dict[ControlLine, bool]:
        return {line: bool(word >> self.pins.in_pin(line) & 1) for line in ControlLine}

    def _controls_changed(self, word: int) -> None:
        watched = self.pins.control_in_mask
        if self.framing:
            watched = 1 << self.pins.req_in | 1 << self.pins.rw_in
        changed = (word ^ self._last_levels) & watched
        self._last_levels = word
        if changed:
            self._deliver(ControlsChanged(self._levels_of(word)))

    async def set_controls(self, levels: Levels) -> None:
        """Lines going low first, then lines going high (STB/FRM through PIO, REQ/RW gpiod)."""
        strobe_lines = {ControlLine.STB, ControlLine.FRM}
        for phase in (False, True):
            chosen = [line for line, up in levels.items() if up is phase]
            strobes = sum(1 << self.pins.out_pin(line) for line in chosen if line in strobe_lines)
            if strobes:
                self.device.sm_set_pins(self._tx_sm, strobes if phase else 0, strobes)
            others = {self.pins.out_pin(line): phase for line in chosen if line not in strobe_lines}
            self.lines.set_outputs(others)

    async def read_controls(self) -> Levels:
        return self._levels_of(self.lines.read())

    # -- data lines ---------------------------------------------------------------------------

    async def drive_data(self, enable: bool) -> None:
        device, data = self.device, self.pins.data_mask
        if enable:
            device.sm_set_pins(self._tx_sm, 0, data)  # latches low before driving
            device.sm_set_pindirs(self._tx_sm, data, data)
            device.sm_init(self._tx_sm, self._tx_offset, self._tx_config())
            device.sm_enable(self._tx_sm, True)
            self._driving = True
            return
        self._driving = False
        device.sm_enable(self._tx_sm, False)  # stops a frame mid-way, if one is on the wire
        device.sm_set_pins(self._tx_sm, 0, self.programs.tx_pins_mask)
        device.sm_set_pindirs(self._tx_sm, 0, data)

    async def send_frames(self, frames: Sequence[bytes]) -> float:
        check_send(frames, driving=self._driving, max_frame=self.max_frame)
        if not frames:
            return 0.0
        words = tx_words(frames, self.pins.width)
        await asyncio.to_thread(self.device.write, self._tx_sm, words)
        await self._drained(frames[-1])
        self.stats["frames_sent"] += len(frames)
        self.stats["bytes_sent"] += sum(map(len, frames))
        return 0.0  # out: waited for above

    async def _drained(self, last: bytes) -> None:
        """Until the TX FIFO is empty, then the longest the last frame's tail can take."""
        tx = self.programs.timing
        while self.device.tx_level(self._tx_sm):
            await asyncio.sleep(POLL_S)
        pairs_per_word = 4 // (2 * self.pins.width // 8)  # a word holds 1 or 2 pairs of units
        tail = (pairs_per_word * tx.pair_cycles + tx.frame_cycles(0)) * tx.cycle_us * 1e-6
        await asyncio.sleep(tail)

    # -- receiving ------------------------------------------------------------------------------

    async def _read_frames(self) -> None:
        device, sm = self.device, self._rx_sm
        while True:
            try:
                words = await asyncio.to_thread(device.read, sm, RX_MARKERS)
            except PhyError as exc:
                self._fail(PhyUnavailableError(f"pio backend: {exc.message}"))
                return
            if not self.framing or not len(words):
                continue  # words from before framing went off are stale
            decoded = self._decoder.feed(words)
            self.stats["empty_frames"] += decoded.empty_frames
            for frame in decoded.frames:
                self.stats["frames_received"] += 1
                self.stats["bytes_received"] += len(frame)
                self._deliver(FrameReceived(frame))
