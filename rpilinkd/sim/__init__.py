"""rpilink-sim: an emulator of pigpiod on two Raspberry Pis wired together.

Each virtual Pi ("a" and "b") answers pigpiod's socket protocol on its own
loopback port; the wires between them follow the project's pin map (or a
wiring file); waveforms play in real time and each board samples its pins the
way pigpiod does. See docs/emulator.md.
"""

from rpilinkd.sim.core import SimConfig, Simulator
from rpilinkd.sim.threaded import ThreadedSimulator

__all__ = ["SimConfig", "Simulator", "ThreadedSimulator"]
