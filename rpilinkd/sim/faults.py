"""Faults on demand: glitches, bit flips, stuck and cut wires, dropped report batches.

A fault is declared as ``KIND:key=value,...`` on the command line (or the same
keys as a JSON object on the control socket):

* ``glitch:wire=D3,rate_hz=100,width_us=2``: the wire's level inverts for
  ``width_us`` at random instants (a Poisson process of ``rate_hz``), as both
  ends' inputs see it; a glitch shorter than a sample period may be missed.
* ``flip:wire=D3,rate_hz=100``: single samples of the reading board see the
  bit inverted (a sampling error rather than a wire event).
* ``stuck:wire=D0,value=1``: the wire reads ``value`` at both ends.
* ``cut:wire=STB_AB``: the ends are disconnected; each reads its own pull.
* ``drop:board=b,probability=0.01``: a whole ~1 ms batch of reports is lost.

Restarting a board's pigpiod is not a standing fault but an action
(``restart``), see :mod:`rpilinkd.sim.control`.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, replace
from typing import Any

from rpilinkd.errors import SimError
from rpilinkd.sim.wires import Wire

KINDS = {
    "glitch": {"wire", "rate_hz", "width_us"},
    "flip": {"wire", "rate_hz"},
    "stuck": {"wire", "value"},
    "cut": {"wire"},
    "drop": {"board", "probability"},
}
NUMBERS = {"rate_hz", "width_us", "probability", "value"}


@dataclass(frozen=True)
class Fault:
    fault_id: int
    kind: str
    wire: str | None = None
    board: str | None = None
    rate_hz: float = 0.0
    width_us: float = 1.0
    value: int = 0
    probability: float = 0.0

    def describe(self) -> dict[str, Any]:
        keys = KINDS[self.kind]
        return {"id": self.fault_id, "kind": self.kind} | {k: getattr(self, k) for k in keys}


def parse_spec(text: str) -> dict[str, Any]:
    """``glitch:wire=D3,rate_hz=5`` -> ``{"kind": "glitch", "wire": "D3", "rate_hz": 5.0}``."""
    kind, _, rest = text.partition(":")
    spec: dict[str, Any] = {"kind": kind.strip()}
    for item in filter(None, (p.strip() for p in rest.split(","))):
        key, sep, value = item.partition("=")
        if not sep:
            raise SimError(f"fault {text!r}: expected key=value, got {item!r}")
        key, value = key.strip(), value.strip()
        if key in NUMBERS:
            try:
                spec[key] = float(value)
            except ValueError:
                raise SimError(f"fault {text!r}: {key} must be a number, got {value!r}") from None
        else:
            spec[key] = value
    return spec


class Faults:
    """The active faults and what they injected so far."""

    def __init__(self, rng: random.Random, wire_names: list[str], boards: list[str]) -> None:
        self._rng = rng
        self._wire_names = wire_names
        self._boards = boards
        self._next_id = 1
        self.active: dict[int, Fault] = {}
        self.injected = {"glitches": 0, "flips": 0, "batches_dropped": 0}

    def add(self, spec: dict[str, Any]) -> Fault:
        """Validate and activate a fault; :class:`SimError` names what is wrong."""
        kind = spec.get("kind")
        if kind not in KINDS:
            raise SimError(f"fault kind {kind!r} unknown; kinds: {', '.join(KINDS)}")
        extra = set(spec) - KINDS[kind] - {"kind", "op"}
        if extra:
            known = sorted(KINDS[kind])
            raise SimError(f"fault {kind}: unknown key(s) {sorted(extra)}; keys: {known}")
        fields: dict[str, Any] = {}
        for key in KINDS[kind]:
            if key not in spec:
                if key in ("width_us",):
                    continue
                raise SimError(f"fault {kind}: missing {key!r}")
            fields[key] = self._check(kind, key, spec[key])
        fault = Fault(self._next_id, kind, **fields)
        self._next_id += 1
        self.active[fault.fault_id] = fault
        return fault

    def _check(self, kind: str, key: str, value: Any) -> Any:
        if key == "wire":
            if value not in self._wire_names:
                wires = ", ".join(self._wire_names)
                raise SimError(f"fault {kind}: no wire {value!r}; wires: {wires}")
            return value
        if key == "board":
            if value not in self._boards:
                raise SimError(f"fault {kind}: board must be one of {self._boards}, got {value!r}")
            return value
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise SimError(f"fault {kind}: {key} must be a number, got {value!r}")
        if key == "value":
            if value not in (0, 1):
                raise SimError(f"fault {kind}: value must be 0 or 1, got {value!r}")
            return int(value)
        if key == "probability" and not 0 <= value <= 1:
            raise SimError(f"fault {kind}: probability must lie in [0, 1], got {value!r}")
        if value < 0:
            raise SimError(f"fault {kind}: {key} must not be negative, got {value!r}")
        return float(value)

    def remove(self, fault_id: int) -> None:
        if self.active.pop(fault_id, None) is None:
            raise SimError(f"no active fault with id {fault_id}")

    def clear(self) -> None:
        self.active.clear()

    # -- applying them ------------------------------------------------------------

    def apply_to_wires(self, wires: list[Wire]) -> list[Wire]:
        """The wiring with standing faults (stuck, cut) applied."""
        if not self.active:  # every pass asks
            return wires
        out = []
        for wire in wires:
            faulty = wire
            for fault in self.active.values():
                if fault.wire == wire.name and fault.kind == "cut":
                    faulty = replace(faulty, cut=True)
                elif fault.wire == wire.name and fault.kind == "stuck":
                    faulty = replace(faulty, stuck=fault.value)
            out.append(faulty)
        return out

    def glitches(self, start_us: float, end_us: float) -> list[tuple[str, float, float]]:
        """Glitch intervals (wire, from, to) falling in this window."""
        found = []
        span_s = (end_us - start_us) / 1e6
        for fault in self.active.values():
            if fault.kind != "glitch" or fault.wire is None:
                continue
            for _ in range(self._poisson(fault.rate_hz * span_s)):
                at = self._rng.uniform(start_us, end_us)
                found.append((fault.wire, at, at + fault.width_us))
        self.injected["glitches"] += len(found)
        return found

    def flips(self, span_us: float) -> list[str]:
        """Wires whose reading board sees one flipped sample in this window (one entry each)."""
        found = []
        for fault in self.active.values():
            if fault.kind == "flip" and fault.wire is not None:
                found += [fault.wire] * self._poisson(fault.rate_hz * span_us / 1e6)
        return found

    def drop_batch(self, board: str) -> bool:
        for fault in self.active.values():
            dropping = fault.kind == "drop" and fault.board == board
            if dropping and self._rng.random() < fault.probability:
                self.injected["batches_dropped"] += 1
                return True
        return False

    def _poisson(self, mean: float) -> int:
        if mean <= 0:
            return 0
        # inversion by sequential search: means here are tiny (events per ~1 ms)
        limit, count, product = math.exp(-mean), 0, self._rng.random()
        while product > limit:
            count += 1
            product *= self._rng.random()
        return count
