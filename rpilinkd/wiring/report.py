"""The check's result for people (a table, coloured on a terminal) and for scripts (JSON)."""

from __future__ import annotations

import json
import os
from typing import IO, Any

from rpilinkd.wiring.model import CheckResult, End, Finding, Verdict

GREEN, RED, BOLD, RESET = "\033[32m", "\033[31m", "\033[1m", "\033[0m"

LABELS = {
    Verdict.OK: "ok",
    Verdict.CUT: "CUT / OPEN",
    Verdict.STUCK_HIGH: "STUCK HIGH",
    Verdict.STUCK_LOW: "STUCK LOW",
    Verdict.SHORTED: "SHORTED",
    Verdict.SWAPPED: "SWAPPED",
    Verdict.STRAIGHT: "PAIR WIRED STRAIGHT",
    Verdict.PEER_NOT_SEEN: "PEER NOT SEEN",
}


def use_colour(stream: IO[str]) -> bool:
    """Colour only on a terminal, and never when NO_COLOR is set (no-color.org)."""
    return stream.isatty() and not os.environ.get("NO_COLOR") and os.environ.get("TERM") != "dumb"


def where(end: End) -> str:
    pin = f"pin {end.pin}" if end.pin is not None else "not on the header"
    return f"{end.signal} (GPIO {end.gpio}, {pin})"


def advice(finding: Finding) -> str:
    """What to do about one wire, in words that name both of its ends."""
    here, there = where(finding.here), where(finding.there)
    others = " and ".join(finding.others)
    landing = where(finding.lands_on) if finding.lands_on else "?"
    match finding.verdict:
        case Verdict.OK:
            return ""
        case Verdict.CUT:
            return (
                f"nothing gets through from this Pi's {here} to the other Pi's {there}: "
                "reseat or replace the wire, and check both ends are on these header pins"
            )
        case Verdict.STUCK_HIGH:
            return (
                f"this Pi's {here} reads high with nothing driving it: the wire touches "
                "3.3 V or a pin that drives it (a stray strand, a solder bridge, a wrong pin)"
            )
        case Verdict.STUCK_LOW:
            return (
                f"this Pi's {here} reads low against pull-ups at both ends: the wire "
                "touches GND or a pin that holds it low (a stray strand, a bridge, a wrong pin)"
            )
        case Verdict.SHORTED:
            return (
                f"this Pi's {here} is joined to {others}: separate them (a solder bridge, "
                "bare strands touching, one jumper on two pins)"
            )
        case Verdict.SWAPPED:
            return (
                f"this Pi's {here} reaches the other Pi's {landing} instead of its {there}: "
                f"it is swapped with {others}; exchange the two wires at one end"
            )
        case Verdict.STRAIGHT:
            return (
                f"this Pi's {here} reaches the other Pi's {landing}: the pair is wired "
                f"straight; cross it so {here} meets the other Pi's {there}"
            )
        case Verdict.PEER_NOT_SEEN:
            return (
                "no sign of the other Pi on any wire: run rpilink wiring-check there too; "
                "check it is powered, the ground wire, and that the cable sits on the pins "
                "of docs/wiring.md"
            )


def to_json(result: CheckResult) -> dict[str, Any]:
    def end(value: End | None) -> dict[str, Any] | None:
        return None if value is None else {"signal": value.signal, "gpio": value.gpio,
                                           "pin": value.pin}  # fmt: skip

    return {
        "ok": result.ok,
        "faults": len(result.faults),
        "width": result.width,
        "role": result.role.value if result.role else None,
        "pigpio": result.pigpio,
        "borrowed": result.borrowed,
        "seconds": round(result.seconds, 2),
        "rounds": result.rounds,
        "warnings": list(result.warnings),
        "wires": [
            {
                "wire": f.wire,
                "verdict": f.verdict.value,
                "here": end(f.here),
                "there": end(f.there),
                "others": list(f.others),
                "lands_on": end(f.lands_on),
                "advice": advice(f),
            }
            for f in result.findings
        ],
    }


def render_json(result: CheckResult) -> str:
    return json.dumps(to_json(result), indent=2)


def render_table(result: CheckResult, *, colour: bool = False) -> str:
    def paint(text: str, code: str) -> str:
        return f"{code}{text}{RESET}" if colour else text

    faults = result.faults
    lines = [
        f"wiring check: {result.width} data lines, pigpiod {result.pigpio}"
        + (" (pins lent by rpilinkd)" if result.borrowed else "")
        + (f", this Pi {result.role.value}" if result.role else "")
        + f", {result.seconds:.1f} s",
        "",
        f"{'wire':<8} {'this Pi':<17} {'other Pi':<17} result",
    ]
    for f in result.findings:
        label = LABELS[f.verdict]
        if f.others:
            label += " with " + ", ".join(f.others)
        lines.append(
            f"{f.wire:<8} {_cell(f.here):<17} {_cell(f.there):<17} "
            + paint(label, GREEN if f.ok else RED)
        )
    lines.append("")
    if not faults:
        lines.append(paint(f"All {len(result.findings)} wires are OK.", GREEN))
    elif all(f.verdict is Verdict.PEER_NOT_SEEN for f in faults):
        lines.append(paint("The other Pi was not seen. ", RED) + advice(faults[0]))
    else:
        lines.append(paint(f"{len(faults)} of {len(result.findings)} wires need work:", BOLD))
        lines += [f"  {f.wire}: {advice(f)}" for f in faults]
    lines += [f"warning: {text}" for text in result.warnings]
    return "\n".join(lines)


def _cell(end: End) -> str:
    return f"GPIO {end.gpio:<2} pin {end.pin if end.pin is not None else '-'}"
