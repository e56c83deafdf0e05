"""The status LED: off while the link is down, blinking while arbitrating, on when up.

Through gpiozero's PiGPIOFactory on the same pigpiod as the bus, so it works on
a Pi and on rpilink-sim alike. gpiozero is blocking and blinks from its own
thread; every call here runs in the default executor, never on the event loop.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from rpilinkd.config import Config
from rpilinkd.events import LinkStatus

if TYPE_CHECKING:
    from rpilinkd.service.node import Node

_LOGGER = logging.getLogger(__name__)
POLL_S = 0.25
BLINK_S = 0.25


class StatusLed:
    def __init__(self, config: Config) -> None:
        self.config = config
        self._led: Any = None
        self.shown: LinkStatus | None = None

    def _open(self) -> None:
        from gpiozero import LED  # noqa: PLC0415 - optional feature
        from gpiozero.pins.pigpio import PiGPIOFactory  # noqa: PLC0415

        factory = PiGPIOFactory(host=self.config.pigpio.host, port=self.config.pigpio.port)
        self._led = LED(
            self.config.led.pin, active_high=self.config.led.active_high, pin_factory=factory
        )

    def _show(self, state: LinkStatus) -> None:
        if state is LinkStatus.UP:
            self._led.on()
        elif state is LinkStatus.ARBITRATING:
            self._led.blink(on_time=BLINK_S, off_time=BLINK_S)
        else:
            self._led.off()

    async def run(self, node: Node) -> None:
        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(None, self._open)
        except Exception as exc:
            _LOGGER.error("status LED on GPIO %d unavailable: %s", self.config.led.pin, exc)
            return
        try:
            while True:
                state = node.link_state
                if state != self.shown:
                    await loop.run_in_executor(None, self._show, state)
                    self.shown = state
                await asyncio.sleep(POLL_S)
        finally:
            await loop.run_in_executor(None, self._close)

    def _close(self) -> None:
        if self._led is not None:
            factory = self._led.pin_factory
            self._led.close()
            factory.close()
