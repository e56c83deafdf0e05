"""Ideal observations of a cable, computed with the emulator's wire model, in-process.

What each board would read in each phase of a round if every step ran exactly
on time: the analysis's input without sockets or clocks.
"""

from __future__ import annotations

import tomllib

import numpy as np

from rpilinkd.pigpio_protocol import PUD_DOWN, PUD_OFF, PUD_UP
from rpilinkd.pins import DEFAULT_PINS, PinMap
from rpilinkd.sim.wires import Crossing, Side, Wire, parse_wiring, resolve
from rpilinkd.wiring.cable import bus_pins, mask
from rpilinkd.wiring.model import Observations, Role
from tests.wiring.support import cable_text


def wires_of(text: str) -> list[Wire]:
    return parse_wiring(tomllib.loads(text))


def _levels(wires: list[Wire], drive: dict[str, int], pulls: dict[str, int]) -> dict[str, int]:
    """Both boards' level words when each drives ``drive[board]`` high, every other pin pulled."""

    def side(board: str) -> Side:
        word = np.array([drive[board]], np.uint32)
        return Side(word, word, [pulls[board]] * 32)

    a, b = side("a"), side("b")
    return {
        "a": int(resolve(Crossing.build([(w.a, w.b, w) for w in wires]), a, b)[0]),
        "b": int(resolve(Crossing.build([(w.b, w.a, w) for w in wires]), b, a)[0]),
    }


def observe(
    text: str, board: str, pins: PinMap = DEFAULT_PINS, *, peer_off: bool = False
) -> Observations:
    """What ``board`` sees in a round on the cable of wiring file ``text``."""
    wires = wires_of(text)
    other = "b" if board == "a" else "a"
    bus = bus_pins(pins)
    down = {board: PUD_DOWN, other: PUD_OFF if peer_off else PUD_DOWN}
    up = {board: PUD_UP, other: PUD_OFF if peer_off else PUD_UP}

    def seen(mine: int, theirs: int, pulls: dict[str, int]) -> int:
        theirs = 0 if peer_off else theirs
        return _levels(wires, {board: mine, other: theirs}, pulls)[board] & mask(bus)

    return Observations(
        role=Role.LEADER,
        quiet=seen(0, 0, down),
        pulled_up=seen(0, 0, up),
        own=tuple(seen(pin.bit, 0, down) for pin in bus),
        peer=tuple(seen(0, pin.bit, down) for pin in bus),
    )


__all__ = ["cable_text", "observe", "wires_of"]
