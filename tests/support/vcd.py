"""Reading the emulator's VCD trace back: how long each wire was high."""

from __future__ import annotations

from pathlib import Path


def high_fraction(path: Path, wire: str, start_us: float, end_us: float) -> float:
    """The share of [start_us, end_us) during which ``wire`` read 1 (a short counts as 1)."""
    symbol = None
    level, since, high = 0, 0.0, 0.0
    now = 0.0
    for line in path.read_text(encoding="ascii").splitlines():
        if line.startswith("$var") and line.split()[4] == wire:
            symbol = line.split()[3]
        elif line.startswith("#"):
            now = float(line[1:]) / 100  # the trace counts 10 ns
        elif symbol is not None and line[1:] == symbol and line[0] in "01x":
            high += _overlap(since, now, start_us, end_us) if level else 0.0
            level, since = (0 if line[0] == "0" else 1), now
    if symbol is None:
        raise ValueError(f"no wire {wire!r} in {path}")
    high += _overlap(since, end_us, start_us, end_us) if level else 0.0
    return high / (end_us - start_us)


def _overlap(a: float, b: float, start: float, end: float) -> float:
    return max(0.0, min(b, end) - max(a, start))
