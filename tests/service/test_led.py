"""The status LED through gpiozero's PiGPIOFactory, watched on the emulator's pin."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pigpio
import pytest

from rpilinkd.testbed import System

LED_PIN = 4


@pytest.fixture
def system(tmp_path: Path) -> Iterator[System]:
    running = System(tmp_path, config=f"[led]\nenabled = true\npin = {LED_PIN}\n").start()
    try:
        yield running
    finally:
        running.stop()


def levels(pi: pigpio.pi, seconds: float) -> set[int]:
    seen = set()
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        seen.add(pi.read(LED_PIN))
        time.sleep(0.02)
    return seen


def test_led_is_on_when_up_and_blinks_while_arbitrating(system: System) -> None:
    pi = pigpio.pi("127.0.0.1", system.daemon("a").pigpio_port)
    try:
        assert pi.connected
        # the LED follows the link state within a poll (0.25 s), so it may still blink briefly
        assert any(levels(pi, 0.6) == {1} for _ in range(8))  # then steady on while up
        assert pi.get_mode(LED_PIN) == pigpio.OUTPUT
        system.daemon("b").kill()
        system.daemon("a").wait_for("arbitrating")
        assert levels(pi, 1.5) == {0, 1}  # blinking while it looks for the peer
    finally:
        pi.stop()
