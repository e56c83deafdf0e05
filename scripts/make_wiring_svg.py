"""Draw docs/wiring.svg from the default pin map: two 40-pin headers and the cable.

Run ``python scripts/make_wiring_svg.py`` after changing rpilinkd/phy/pins.py;
a test checks that the committed picture matches the pin map.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rpilinkd.pins import DEFAULT_PINS, HEADER_PIN, ControlLine

OUT = Path(__file__).resolve().parents[1] / "docs" / "wiring.svg"
ROW_H, PIN_R = 22, 6
TOP = 70
LEFT_X, RIGHT_X = 300, 640  # x of pin column 1 (odd pins) of each header
GROUND_PINS = (6, 9, 14, 20, 25, 30, 34, 39)
POWER = {1: "3V3", 17: "3V3", 2: "5V", 4: "5V"}
COLOURS = {
    "data": "#1f77b4",
    "stb": "#d62728",
    "frm": "#2ca02c",
    "req": "#9467bd",
    "rw": "#ff7f0e",
    "gnd": "#222222",
}


def pin_xy(header_x: int, pin: int) -> tuple[int, int]:
    row = (pin - 1) // 2
    column = (pin - 1) % 2
    return header_x + column * 30, TOP + row * ROW_H


def label_of(pin: int) -> str:
    if pin in POWER:
        return POWER[pin]
    if pin in GROUND_PINS:
        return "GND"
    gpio = next((g for g, p in HEADER_PIN.items() if p == pin), None)
    return "" if gpio is None else f"GPIO{gpio}"


def header(x: int, title: str, names: dict[int, str], outside_left: bool) -> list[str]:
    """One 40-pin header: pins in two columns, each row's used pins named on the outside."""
    parts = [
        f'<rect x="{x - 18}" y="{TOP - 18}" width="66" height="{20 * ROW_H + 14}" rx="6" '
        'fill="#f3f3f3" stroke="#555"/>',
        f'<text x="{x + 15}" y="{TOP - 28}" text-anchor="middle" font-weight="bold">{title}</text>',
    ]
    for pin in range(1, 41):
        px, py = pin_xy(x, pin)
        fill = "#222" if pin in GROUND_PINS else "#c9a227" if pin in POWER else "#fff"
        parts.append(f'<circle cx="{px}" cy="{py}" r="{PIN_R}" fill="{fill}" stroke="#555"/>')
    for row in range(20):
        pair = (2 * row + 1, 2 * row + 2)
        text = "   ".join(
            f"{names.get(pin, label_of(pin))} ({pin})" for pin in pair if label_of(pin)
        )
        y = TOP + row * ROW_H + 4
        tx, anchor = (x - 26, "end") if outside_left else (x + 56, "start")
        parts.append(f'<text x="{tx}" y="{y}" text-anchor="{anchor}" font-size="11">{text}</text>')
    return parts


def main() -> None:
    pins = DEFAULT_PINS
    names: dict[int, str] = {}
    wires: list[tuple[int, int, str, str]] = []  # pin on A, pin on B, colour, label
    for bit, gpio in enumerate(pins.data):
        names[HEADER_PIN[gpio]] = f"D{bit}"
        wires.append((HEADER_PIN[gpio], HEADER_PIN[gpio], COLOURS["data"], f"D{bit}"))
    for line in ControlLine:
        out_pin, in_pin = HEADER_PIN[pins.out_pin(line)], HEADER_PIN[pins.in_pin(line)]
        names[out_pin] = f"{line.name}_OUT"
        names[in_pin] = f"{line.name}_IN"
        colour = COLOURS[line.value]
        wires.append((out_pin, in_pin, colour, f"{line.name} A→B"))
        wires.append((in_pin, out_pin, colour, f"{line.name} B→A"))
    wires.append((GROUND_PINS[0], GROUND_PINS[0], COLOURS["gnd"], "GND"))

    parts = [
        '<svg xmlns="http://www.w3.org/2000/svg" width="1000" height="560" '
        'font-family="sans-serif" font-size="12">',
        '<rect width="100%" height="100%" fill="white"/>',
        '<text x="500" y="22" text-anchor="middle" font-size="16" font-weight="bold">'
        "rpilinkd: two Raspberry Pis, header to header (default pin map)</text>",
    ]
    parts += header(LEFT_X, "Pi A (40-pin header)", names, outside_left=True)
    parts += header(RIGHT_X, "Pi B (40-pin header)", names, outside_left=False)
    lane_x0, lane_step = 400, 11
    for index, (pin_a, pin_b, colour, label) in enumerate(wires):
        ax, ay = pin_xy(LEFT_X, pin_a)
        bx, by = pin_xy(RIGHT_X, pin_b)
        ay += -4 if pin_a % 2 else 4  # the two pins of a row get their own tracks
        by += -4 if pin_b % 2 else 4
        lane = lane_x0 + index * lane_step
        path = f"M{ax},{ay} H{lane} V{by} H{bx}"
        parts.append(f'<path d="{path}" fill="none" stroke="{colour}" stroke-width="2"/>')
        if label.startswith("D"):  # the series resistor on every data line
            parts.append(
                f'<rect x="{RIGHT_X - 60}" y="{by - 4}" width="22" height="8" '
                f'fill="white" stroke="{colour}" stroke-width="1.5"/>'
            )
    parts.append(
        '<text x="500" y="522" text-anchor="middle">Data lines D0-D7 run straight, each '
        "through a 330 Ω-1 kΩ series resistor (drawn as a box).</text>"
    )
    parts.append(
        '<text x="500" y="540" text-anchor="middle">Each control output crosses to the same '
        "signal's input on the other Pi; one ground wire joins the two boards.</text>"
    )
    parts.append("</svg>")
    OUT.write_text("\n".join(parts) + "\n", encoding="utf-8")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
