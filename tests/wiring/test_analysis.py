"""The analysis on ideal observations: every fault class, seen from both boards."""

from __future__ import annotations

import pytest

from rpilinkd.pins import DEFAULT_PINS, WIDE_PINS, PinMap
from rpilinkd.wiring.analysis import analyse, nothing_seen
from rpilinkd.wiring.cable import bus_pins
from rpilinkd.wiring.model import End, Finding, Observations, Role, Verdict
from tests.wiring.synthetic import cable_text, observe

Faults = dict[str, tuple[Verdict, tuple[str, ...]]]


def faults(text: str, board: str, pins: PinMap = DEFAULT_PINS) -> Faults:
    findings = analyse(pins, observe(text, board, pins))
    assert [f.wire for f in findings] == [p.name for p in bus_pins(pins)]
    return {f.wire: (f.verdict, f.others) for f in findings if not f.ok}


@pytest.mark.parametrize("pins", [DEFAULT_PINS, WIDE_PINS], ids=["8-bit", "16-bit"])
def test_the_right_cable_is_all_ok_on_both_boards(pins: PinMap) -> None:
    for board in "ab":
        assert faults(cable_text(pins), board, pins) == {}


CASES: dict[str, tuple[str, Faults, Faults]] = {
    "cut data": (
        cable_text(D3="cut = true"),
        {"D3": (Verdict.CUT, ())},
        {"D3": (Verdict.CUT, ())},
    ),
    "cut control": (  # board a's STB output to board b's STB input
        cable_text(STB_AB="cut = true"),
        {"STB_OUT": (Verdict.CUT, ())},
        {"STB_IN": (Verdict.CUT, ())},
    ),
    "stuck high": (
        cable_text(D5="stuck = 1"),
        {"D5": (Verdict.STUCK_HIGH, ())},
        {"D5": (Verdict.STUCK_HIGH, ())},
    ),
    "stuck low": (
        cable_text(REQ_BA="stuck = 0"),
        {"REQ_IN": (Verdict.STUCK_LOW, ())},
        {"REQ_OUT": (Verdict.STUCK_LOW, ())},
    ),
    "shorted data": (
        cable_text(extra='[[short]]\nwires = ["D2", "D3"]\n'),
        {"D2": (Verdict.SHORTED, ("D3",)), "D3": (Verdict.SHORTED, ("D2",))},
        {"D2": (Verdict.SHORTED, ("D3",)), "D3": (Verdict.SHORTED, ("D2",))},
    ),
    "shorted data to control": (
        cable_text(extra='[[short]]\nwires = ["STB_AB", "D0"]\n'),
        {"D0": (Verdict.SHORTED, ("STB_OUT",)), "STB_OUT": (Verdict.SHORTED, ("D0",))},
        {"D0": (Verdict.SHORTED, ("STB_IN",)), "STB_IN": (Verdict.SHORTED, ("D0",))},
    ),
    "swapped data": (
        cable_text(extra='[[swap]]\nwires = ["D0", "D1"]\n'),
        {"D0": (Verdict.SWAPPED, ("D1",)), "D1": (Verdict.SWAPPED, ("D0",))},
        {"D0": (Verdict.SWAPPED, ("D1",)), "D1": (Verdict.SWAPPED, ("D0",))},
    ),
    "swapped control pair": (
        cable_text(extra='[[swap]]\nwires = ["STB_AB", "FRM_AB"]\n'),
        {"STB_OUT": (Verdict.SWAPPED, ("FRM_OUT",)), "FRM_OUT": (Verdict.SWAPPED, ("STB_OUT",))},
        {"STB_IN": (Verdict.SWAPPED, ("FRM_IN",)), "FRM_IN": (Verdict.SWAPPED, ("STB_IN",))},
    ),
    "crossed pair wired straight": (
        cable_text(extra='[[swap]]\nwires = ["FRM_AB", "FRM_BA"]\n'),
        {"FRM_OUT": (Verdict.STRAIGHT, ()), "FRM_IN": (Verdict.STRAIGHT, ())},
        {"FRM_OUT": (Verdict.STRAIGHT, ()), "FRM_IN": (Verdict.STRAIGHT, ())},
    ),
    "data wired to a control input": (
        cable_text(extra='[[swap]]\nwires = ["D7", "RW_AB"]\n'),
        {"D7": (Verdict.SWAPPED, ("RW_OUT",)), "RW_OUT": (Verdict.SWAPPED, ("D7",))},
        {"D7": (Verdict.SWAPPED, ("RW_IN",)), "RW_IN": (Verdict.SWAPPED, ("D7",))},
    ),
    "two faults": (
        cable_text(D3="cut = true", extra='[[swap]]\nwires = ["STB_AB", "FRM_AB"]\n'),
        {
            "D3": (Verdict.CUT, ()),
            "STB_OUT": (Verdict.SWAPPED, ("FRM_OUT",)),
            "FRM_OUT": (Verdict.SWAPPED, ("STB_OUT",)),
        },
        {
            "D3": (Verdict.CUT, ()),
            "STB_IN": (Verdict.SWAPPED, ("FRM_IN",)),
            "FRM_IN": (Verdict.SWAPPED, ("STB_IN",)),
        },
    ),
    "wrong header pin": (  # D0's far end on GPIO 4, not a bus pin: nothing comes back
        cable_text().replace('name = "D0"\na = 16\nb = 16', 'name = "D0"\na = 16\nb = 4'),
        {"D0": (Verdict.CUT, ())},
        {"D0": (Verdict.CUT, ())},
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_each_fault_names_exactly_its_wires_on_both_boards(case: str) -> None:
    text, on_a, on_b = CASES[case]
    assert faults(text, "a") == on_a
    assert faults(text, "b") == on_b


def test_a_rotation_of_three_data_lines_names_where_each_lands() -> None:
    text = cable_text().replace("a = 16\nb = 16", "a = 16\nb = 17")
    text = text.replace("a = 17\nb = 17", "a = 17\nb = 18").replace(
        "a = 18\nb = 18", "a = 18\nb = 16"
    )
    findings = {f.wire: f for f in analyse(DEFAULT_PINS, observe(text, "b"))}
    assert {w for w, f in findings.items() if not f.ok} == {"D0", "D1", "D2"}
    landing = findings["D1"].lands_on  # b's D1 pin is reached by a's D0
    assert landing is not None
    assert landing.signal == "D0"
    assert findings["D1"].others == ("D0",)


def test_the_wide_bus_names_a_swap_and_a_cut() -> None:
    text = cable_text(WIDE_PINS, D12="cut = true", extra='[[swap]]\nwires = ["D9", "D10"]\n')
    expected = {
        "D12": (Verdict.CUT, ()),
        "D9": (Verdict.SWAPPED, ("D10",)),
        "D10": (Verdict.SWAPPED, ("D9",)),
    }
    assert faults(text, "a", WIDE_PINS) == expected
    assert faults(text, "b", WIDE_PINS) == expected


def test_a_powered_off_peer_is_not_seen_on_any_wire() -> None:
    findings = analyse(DEFAULT_PINS, observe(cable_text(), "a", peer_off=True))
    assert {f.verdict for f in findings} == {Verdict.PEER_NOT_SEEN}
    assert len(findings) == 16
    assert nothing_seen(DEFAULT_PINS) == findings


def test_a_finding_names_both_ends_with_gpio_and_header_pin() -> None:
    text = cable_text(STB_AB="cut = true")
    finding = next(f for f in analyse(DEFAULT_PINS, observe(text, "a")) if not f.ok)
    assert finding == Finding("STB_OUT", Verdict.CUT, End("STB_OUT", 24, 18), End("STB_IN", 25, 22))


def test_a_pin_high_all_the_time_is_stuck_and_not_mistaken_for_the_peer() -> None:
    bus = bus_pins(DEFAULT_PINS)
    n, gpio = len(bus), {p.name: p.gpio for p in bus}
    d0, d1 = 1 << 16, 1 << 17
    walk = tuple((1 << gpio[p.partner]) | d0 for p in bus)  # each peer pin lands right
    obs = Observations(Role.FOLLOWER, quiet=d0, pulled_up=~0, own=(d0,) * n, peer=walk)
    verdicts = {f.wire: f.verdict for f in analyse(DEFAULT_PINS, obs) if not f.ok}
    assert verdicts == {"D0": Verdict.STUCK_HIGH}
    obs = Observations(Role.FOLLOWER, 0, ~0, (0,) * n, (d0 | d1,) + (0,) * (n - 1))
    verdicts = {f.wire: f.verdict for f in analyse(DEFAULT_PINS, obs)}
    assert verdicts["D0"] is verdicts["D1"] is Verdict.SHORTED  # one peer pin reached both
