"""gpiozero's PiGPIOFactory on the emulator: an LED on board a, a Button on board b."""

from __future__ import annotations

import threading

import pigpio
from gpiozero import LED, Button
from gpiozero.pins.pigpio import PiGPIOFactory

from rpilinkd.sim import ThreadedSimulator

STB_OUT, STB_IN = 24, 25  # a's strobe output is wired to b's strobe input


def test_led_on_a_presses_button_on_b(sim: ThreadedSimulator, pi_b: pigpio.pi) -> None:
    factory_a = PiGPIOFactory(host="127.0.0.1", port=sim.port("a"))
    factory_b = PiGPIOFactory(host="127.0.0.1", port=sim.port("b"))
    pressed, released = threading.Event(), threading.Event()
    led = LED(STB_OUT, pin_factory=factory_a)
    button = Button(STB_IN, pull_up=False, pin_factory=factory_b)
    try:
        button.when_pressed = pressed.set
        button.when_released = released.set
        led.on()
        assert pi_b.read(STB_IN) == 1
        assert pressed.wait(10), "when_pressed did not fire"
        led.off()
        assert released.wait(10), "when_released did not fire"
        assert not button.is_pressed
    finally:
        button.close()
        led.close()
        factory_a.close()
        factory_b.close()
