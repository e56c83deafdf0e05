"""The report: a table for people (colour only on a terminal), JSON for scripts; the CLI's edges."""

from __future__ import annotations

import io
import json
from dataclasses import replace
from pathlib import Path

import pytest

from rpilinkd.cli.__main__ import build_parser, main
from rpilinkd.exits import ExitCode
from rpilinkd.pins import DEFAULT_PINS
from rpilinkd.testbed import free_port
from rpilinkd.wiring.analysis import analyse, nothing_seen
from rpilinkd.wiring.model import CheckResult, Role, Verdict
from rpilinkd.wiring.report import GREEN, RED, advice, render_json, render_table, use_colour
from tests.wiring.synthetic import cable_text, observe


def result_for(text: str) -> CheckResult:
    return CheckResult(
        findings=analyse(DEFAULT_PINS, observe(text, "a")),
        width=8,
        role=Role.LEADER,
        pigpio="127.0.0.1:8888",
        borrowed=False,
        seconds=2.5,
    )


def test_the_table_names_each_fault_and_what_to_do() -> None:
    text = cable_text(D3="cut = true", extra='[[swap]]\nwires = ["STB_AB", "FRM_AB"]\n')
    table = render_table(result_for(text))
    assert "D3       GPIO 19 pin 35    GPIO 19 pin 35    CUT / OPEN" in table
    assert "STB_OUT  GPIO 24 pin 18    GPIO 25 pin 22    SWAPPED with FRM_OUT" in table
    assert "3 of 16 wires need work:" in table
    assert "  STB_OUT: this Pi's STB_OUT (GPIO 24, pin 18) reaches the other Pi's FRM_IN" in table
    assert "\033[" not in table


def test_colour_marks_good_and_bad_only_when_asked() -> None:
    table = render_table(result_for(cable_text(D3="cut = true")), colour=True)
    assert f"{GREEN}ok" in table
    assert f"{RED}CUT / OPEN" in table
    good = render_table(result_for(cable_text()), colour=True)
    assert f"{GREEN}All 16 wires are OK." in good
    assert RED not in good


def test_colour_needs_a_terminal_and_no_no_color(monkeypatch: pytest.MonkeyPatch) -> None:
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setenv("TERM", "xterm")
    assert use_colour(Tty())
    assert not use_colour(io.StringIO())
    monkeypatch.setenv("NO_COLOR", "1")
    assert not use_colour(Tty())


def test_json_carries_every_wire_with_both_ends_and_advice() -> None:
    data = json.loads(
        render_json(result_for(cable_text(extra='[[short]]\nwires = ["D2", "D3"]\n')))
    )
    assert data["ok"] is False
    assert data["faults"] == 2
    assert data["role"] == "leader"
    wires = {w["wire"]: w for w in data["wires"]}
    assert len(wires) == 16
    assert wires["D2"]["verdict"] == "shorted"
    assert wires["D2"]["others"] == ["D3"]
    assert wires["D2"]["here"] == {"signal": "D2", "gpio": 18, "pin": 12}
    assert "joined to D3" in wires["D2"]["advice"]
    assert wires["D0"]["advice"] == ""
    assert wires["D0"]["lands_on"] is None


def test_every_verdict_has_advice_and_not_seen_reads_as_one_line() -> None:
    result = CheckResult(nothing_seen(DEFAULT_PINS), 8, None, "127.0.0.1:8888", True, 30.0)
    assert "The other Pi was not seen." in render_table(result)
    assert "(pins lent by rpilinkd)" in render_table(result)
    finding = nothing_seen(DEFAULT_PINS)[0]
    for verdict in Verdict:  # a verdict added without advice fails here
        assert bool(advice(replace(finding, verdict=verdict))) is (verdict is not Verdict.OK)


def test_help_teaches_with_examples(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["wiring-check", "--help"])
    out = capsys.readouterr().out
    assert "examples:" in out
    assert "rpilink wiring-check --json" in out
    assert "--pigpio HOST:PORT" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [(["--pigpio", "localhost"], "expected HOST:PORT"), (["--timeout", "-1"], "0-3600")],
)
def test_bad_arguments_name_themselves(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_:
        build_parser().parse_args(["wiring-check", *args])
    assert exit_.value.code == ExitCode.BAD_INPUT
    assert message in capsys.readouterr().err


def test_a_missing_config_file_is_bad_input(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "nope.toml"
    code = main(["wiring-check", "--socket", str(tmp_path / "no.sock"), "--config", str(missing)])
    assert code == ExitCode.BAD_INPUT
    assert f"config key '{missing}': file not found" in capsys.readouterr().err


def test_no_pigpiod_is_unreachable(capsys: pytest.CaptureFixture[str]) -> None:
    port = free_port()
    code = main(["wiring-check", "--socket", "/nonexistent/rpilink.sock",
                 "--pigpio", f"127.0.0.1:{port}", "--timeout", "1"])  # fmt: skip
    assert code == ExitCode.UNREACHABLE
    assert f"pigpiod at 127.0.0.1:{port} is unreachable" in capsys.readouterr().err
