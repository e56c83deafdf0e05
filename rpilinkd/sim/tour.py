"""A short tour of the emulator: board a drives lines, board b sees them.

Run with ``python -m rpilinkd.sim.tour``. It uses only the official pigpio
client, as any pigpiod user would.
"""

from __future__ import annotations

import itertools
import sys
import time

import pigpio

from rpilinkd.sim import SimConfig, ThreadedSimulator

D0, STB_OUT, STB_IN = 16, 24, 25


def say(text: str) -> None:
    print(text, flush=True)


def main() -> int:
    with ThreadedSimulator(SimConfig(sample_us=5)) as sim:
        say(f"rpilink-sim: board a on port {sim.port('a')}, board b on port {sim.port('b')}")
        a = pigpio.pi("127.0.0.1", sim.port("a"), show_errors=False)
        b = pigpio.pi("127.0.0.1", sim.port("b"), show_errors=False)
        say(
            f"  both answer like a Pi 3B (hardware revision {a.get_hardware_revision():#x}, "
            f"pigpio {a.get_pigpio_version()})"
        )
        for level in (1, 0):
            a.write(D0, level)
            say(f"  a writes D0 (GPIO {D0}) = {level}  ->  b reads {b.read(D0)}")
        a.write(STB_OUT, 1)
        say(
            f"  a raises its strobe output (GPIO {STB_OUT}) -> b's strobe input "
            f"(GPIO {STB_IN}) reads {b.read(STB_IN)}: control wires are crossed"
        )
        a.write(STB_OUT, 0)
        edges: list[int] = []
        cb = b.callback(D0, pigpio.RISING_EDGE, lambda g, level, tick: edges.append(tick))
        a.wave_clear()
        pulses = [pigpio.pulse(1 << D0, 0, 10), pigpio.pulse(0, 1 << D0, 10)] * 500
        a.wave_add_generic(pulses)
        wave = a.wave_create()
        started = time.monotonic()
        a.wave_send_once(wave)
        while a.wave_tx_busy():
            time.sleep(0.001)
        took = time.monotonic() - started
        time.sleep(0.02)
        cb.cancel()
        gaps = {(y - x) & 0xFFFFFFFF for x, y in itertools.pairwise(edges)}
        say(
            f"  a plays a DMA waveform of 500 pulses (20 µs period) in {took * 1000:.0f} ms;"
            f" b's callback saw {len(edges)} rising edges, {sorted(gaps)} µs apart"
        )
        a.write(D0, 1)
        b.write(D0, 0)
        time.sleep(0.01)
        b.set_mode(D0, pigpio.INPUT)
        stats = sim.stats()
        say(
            f"  both boards drove D0 to different levels: the emulator counted "
            f"{stats['shorts_total']} short(s) on {list(stats['shorts'])}"
        )
        a.stop()
        b.stop()
    say("done: see docs/emulator.md; `rpilink-sim --help` runs it standalone")
    return 0


if __name__ == "__main__":
    sys.exit(main())
