"""Cables with one fault each, and `rpilink wiring-check --json` run on both boards at once."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rpilinkd.pins import DEFAULT_PINS, ControlLine, PinMap
from rpilinkd.sim.wires import Wire, load_wiring
from rpilinkd.testbed import Child, System, python_module


def cable_text(pins: PinMap = DEFAULT_PINS, extra: str = "", **wire_keys: str) -> str:
    """A wiring file for ``pins``: data straight, control pairs crossed, then ``extra``.

    ``wire_keys`` adds keys to a wire, e.g. ``D3="cut = true"``.
    """
    wires = [(f"D{i}", g, g) for i, g in enumerate(pins.data)]
    for line in ControlLine:
        wires.append((f"{line.name}_AB", pins.out_pin(line), pins.in_pin(line)))
        wires.append((f"{line.name}_BA", pins.in_pin(line), pins.out_pin(line)))
    text = ""
    for name, a, b in wires:
        text += f'[[wire]]\nname = "{name}"\na = {a}\nb = {b}\n{wire_keys.get(name, "")}\n\n'
    return text + extra


@dataclass
class Check:
    board: str
    code: int
    report: dict[str, Any]
    stderr: str

    def faulty(self, wires: Sequence[Wire]) -> dict[str, str]:
        """The emulator's name of each wire the report faults, with its verdict."""
        at = {(w.a if self.board == "a" else w.b): w.name for w in wires}
        return {
            at[w["here"]["gpio"]]: w["verdict"]
            for w in self.report["wires"]
            if w["verdict"] != "ok"
        }


def run_checks(
    system: System,
    order: Sequence[str] = ("a", "b"),
    *,
    config: Path | None = None,
    stagger_s: float = 0.1,
    timeout_s: float = 15.0,
    daemons: bool = False,
) -> dict[str, Check]:
    """`rpilink wiring-check --json` on each board in ``order``, started ``stagger_s`` apart."""
    children: dict[str, Child] = {}
    try:
        for board in order:
            daemon = system.daemon(board)
            args = ["wiring-check", "--json", "--timeout", str(timeout_s)]
            args += ["--socket", str(daemon.socket if daemons else system.workdir / "no.sock")]
            args += ["--pigpio", f"127.0.0.1:{daemon.pigpio_port}"]
            args += ["--trace", str(system.workdir / f"trace-{board}.json")]
            if config is not None:
                args += ["--config", str(config)]
            log = system.workdir / f"check-{board}.log"
            children[board] = Child(python_module("rpilinkd.cli", *args), stderr_path=log)
            time.sleep(stagger_s)
        checks = {}
        for board, child in children.items():
            code = child.proc.wait(timeout_s + 30)
            assert child.proc.stdout is not None
            out = child.proc.stdout.read().decode()
            report = json.loads(out) if out.strip() else {}
            checks[board] = Check(board, code, report, child.stderr_text())
        return checks
    finally:
        for child in children.values():
            child.stop()


def wiring_of(path: Path) -> list[Wire]:
    return load_wiring(path)
