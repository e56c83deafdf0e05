"""Draw the wires between the two Pis from the pin maps: docs/wiring.svg for the
default 8-bit bus (17 wires), docs/wiring-wide.svg for the 16-bit one (25 wires).

Run ``python scripts/make_wiring_svg.py`` after changing a pin map (pins.py);
a test checks that the committed pictures match the pin maps.

The picture is a wire list, not a photo of the headers: one row per signal on each
Pi, with its GPIO and header pin. Data lines and ground run straight across. Each
control signal has two rows (OUT above IN) and its two wires cross visibly in an X,
with an arrow into the input, so "OUT goes to the other Pi's IN" cannot be misread as
a straight wire. Every signal pin of each Pi has its own 1 kΩ series resistor (a
box next to the pin), so every wire has one at each end.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rpilinkd.pins import DEFAULT_PINS, HEADER_PIN, WIDE_PINS, ControlLine, PinMap

DOCS = Path(__file__).resolve().parents[1] / "docs"
PICTURES = ((DEFAULT_PINS, DOCS / "wiring.svg"), (WIDE_PINS, DOCS / "wiring-wide.svg"))
WIDTH = 1000
PIN_A, PIN_B = 360, 640  # x of the pin dots on Pi A and Pi B
ROW_H, PAIR_H, GROUP_GAP, TOP = 26, 40, 30, 104  # a crossed pair's rows are further apart
CROSS_A, CROSS_B = PIN_A + 80, PIN_B - 80  # the diagonal of a crossed wire runs between
COLOURS = {
    "data": "#1f77b4",
    "stb": "#d62728",
    "frm": "#2ca02c",
    "req": "#9467bd",
    "rw": "#e67e00",
    "gnd": "#222222",
}
GROUND_PIN = 6


def resistor(x: float, y: float, colour: str) -> str:
    """A series resistor: a white box across the wire, 30 px long, marked 1k."""
    return (
        f'<rect x="{x:.0f}" y="{y - 7:.0f}" width="30" height="14" rx="2" fill="white" '
        f'stroke="{colour}" stroke-width="2"/>'
        f'<text x="{x + 15:.0f}" y="{y + 3.5:.0f}" text-anchor="middle" font-size="9" '
        f'fill="{colour}">1k</text>'
    )


def label(x: float, y: float, text: str, anchor: str, **attrs: str) -> str:
    extra = "".join(f' {key.replace("_", "-")}="{value}"' for key, value in attrs.items())
    return f'<text x="{x:.0f}" y="{y + 4:.0f}" text-anchor="{anchor}"{extra}>{text}</text>'


def pin_label(signal: str, gpio: int | None, pin: int) -> str:
    if gpio is None:
        return f"GND  ·  pin {pin} (or any GND pin)"
    return f"{signal}  ·  GPIO{gpio}  ·  pin {pin}"


def main() -> None:
    for pins, out in PICTURES:
        out.write_text(draw(pins), encoding="utf-8")
        print(f"wrote {out}")


def draw(pins: PinMap) -> str:
    width = len(pins.data)
    wires = width + 2 * len(ControlLine) + 1
    signals = width + 2 * len(ControlLine)
    bus = "default pin map" if pins == DEFAULT_PINS else "the 16-bit bus's pin map"
    rows: list[tuple[str, int | None, str]] = []  # signal, gpio (None: ground), colour key
    groups: list[int] = []  # the index of the first row of each group
    groups.append(len(rows))
    rows += [(f"D{bit}", gpio, "data") for bit, gpio in enumerate(pins.data)]
    for line in ControlLine:
        groups.append(len(rows))
        rows.append((f"{line.name}_OUT", pins.out_pin(line), line.value))
        rows.append((f"{line.name}_IN", pins.in_pin(line), line.value))
    groups.append(len(rows))
    rows.append(("GND", None, "gnd"))

    def row_y(index: int) -> float:
        y = TOP + sum(GROUP_GAP for start in groups[1:] if start <= index)
        for previous in range(index):  # the step from each earlier row to the next
            y += PAIR_H if rows[previous][0].endswith("_OUT") else ROW_H
        return y

    bottom = row_y(len(rows) - 1) + 24
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{bottom + 86:.0f}" '
        'font-family="sans-serif" font-size="12">',
        "<defs>"
        + "".join(
            f'<marker id="arrow-{key}" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" '
            f'markerHeight="7" orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="{colour}"/>'
            "</marker>"
            for key, colour in COLOURS.items()
        )
        + "</defs>",
        '<rect width="100%" height="100%" fill="white"/>',
        label(
            WIDTH / 2,
            22,
            f"rpilinkd: the {wires} wires between two Raspberry Pis ({bus})",
            "middle",
            font_size="16",
            font_weight="bold",
        ),
        label(
            WIDTH / 2,
            42,
            "both Pis use the same pin map; each Pi has a 1 kΩ series resistor on each of its "
            f"{signals} signal pins (boxes marked 1k)",
            "middle",
        ),
    ]
    for x, title in ((PIN_A, "Pi A"), (PIN_B, "Pi B")):
        parts.append(
            f'<rect x="{x - 8}" y="{TOP - 20}" width="16" height="{bottom - TOP + 8:.0f}" '
            'rx="4" fill="#f3f3f3" stroke="#555"/>'
        )
        parts.append(label(x, TOP - 36, title, "middle", font_size="14", font_weight="bold"))

    for index, (signal, gpio, _key) in enumerate(rows):
        y = row_y(index)
        pin = GROUND_PIN if gpio is None else HEADER_PIN[gpio]
        text = pin_label(signal, gpio, pin)
        parts.append(label(PIN_A - 16, y, text, "end"))
        parts.append(label(PIN_B + 16, y, text, "start"))
        for x in (PIN_A, PIN_B):
            parts.append(
                f'<circle cx="{x}" cy="{y:.0f}" r="5" fill="white" stroke="#555" '
                'stroke-width="1.5"/>'
            )

    def wire(path: str, key: str, arrow: bool, dashed: bool = False) -> str:
        marker = f' marker-end="url(#arrow-{key})"' if arrow else ""
        dash = ' stroke-dasharray="7 4"' if dashed else ""
        return (
            f'<path d="{path}" fill="none" stroke="{COLOURS[key]}" stroke-width="2.5" '
            f'stroke-linejoin="round"{dash}{marker}/>'
        )

    for index, (signal, _gpio, key) in enumerate(rows):
        y = row_y(index)
        colour = COLOURS[key]
        if signal.startswith("D"):  # straight across, both ways, resistor in the middle
            parts.append(wire(f"M{PIN_A + 5},{y:.0f} H{PIN_B - 5}", key, arrow=False))
            parts.append(resistor(PIN_A + 30, y, colour))  # one at each Pi's pin
            parts.append(resistor(PIN_B - 60, y, colour))
        elif signal == "GND":
            parts.append(wire(f"M{PIN_A + 5},{y:.0f} H{PIN_B - 5}", key, arrow=False))
            parts.append(
                label(WIDTH / 2, y - 12, "ground: straight, no resistor", "middle", font_size="11")
            )
        elif signal.endswith("_OUT"):  # this row's OUT crosses to the next row's IN
            y_in = row_y(index + 1)
            a_to_b = f"M{PIN_A + 5},{y:.0f} H{CROSS_A} L{CROSS_B},{y_in:.0f} H{PIN_B - 9}"
            b_to_a = f"M{PIN_B - 5},{y:.0f} H{CROSS_B} L{CROSS_A},{y_in:.0f} H{PIN_A + 9}"
            parts.append(wire(a_to_b, key, arrow=True))
            parts.append(wire(b_to_a, key, arrow=True, dashed=True))  # the other wire
            for row in (y, y_in):  # one at each Pi's OUT and IN pin
                parts.append(resistor(PIN_A + 30, row, colour))
                parts.append(resistor(PIN_B - 60, row, colour))
            name = signal.removesuffix("_OUT")
            parts.append(
                label(
                    WIDTH / 2,
                    y - 19,
                    f"{name}: two wires, crossed, OUT → IN",
                    "middle",
                    font_size="11",
                    fill=colour,
                )
            )

    notes = [
        f"D0-D{width - 1} run straight (D0 to D0 ...); either Pi may drive them, one at a time.",
        "Control lines cross: each Pi's OUT goes to the other Pi's IN of the same signal "
        "(arrow = direction).",
        "Never join OUT to OUT. Pin numbers are the 40-pin header's (Pi 2, 3, 4, 400, Zero).",
    ]
    for offset, note in enumerate(notes):
        parts.append(label(WIDTH / 2, bottom + 20 + offset * 18, note, "middle"))
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


if __name__ == "__main__":
    main()
