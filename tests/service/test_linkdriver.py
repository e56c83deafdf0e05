"""The link driver's own logic, without a bus."""

from __future__ import annotations

import pytest

from rpilinkd.config import Config
from rpilinkd.link import Connection
from rpilinkd.link.busaccess import coalesce
from rpilinkd.phy import create_backend
from rpilinkd.pins import ControlLine
from rpilinkd.platform import detect_board
from rpilinkd.service import daemon
from rpilinkd.service.linkdriver import LinkDriver

REQ, RW, STB, FRM = ControlLine.REQ, ControlLine.RW, ControlLine.STB, ControlLine.FRM


def test_lows_then_highs_share_a_call_and_nothing_is_reordered() -> None:
    assert coalesce([]) == []
    assert coalesce([(REQ, False), (RW, True)]) == [{REQ: False, RW: True}]  # one round trip
    assert coalesce([(RW, True), (REQ, False)]) == [{RW: True}, {REQ: False}]  # high first
    assert coalesce([(STB, True), (STB, False)]) == [{STB: True}, {STB: False}]  # a pulse
    assert coalesce([(FRM, False), (STB, False), (RW, True), (REQ, True)]) == [
        {FRM: False, STB: False, RW: True, REQ: True}
    ]
    assert coalesce([(FRM, True), (STB, True), (FRM, False)]) == [
        {FRM: True, STB: True},
        {FRM: False},
    ]


def test_an_unsupported_board_is_the_reason_the_link_is_down(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A Pi 5 has no pigpiod: status says so, rather than "pigpiod unreachable" forever."""
    pi5 = detect_board("Raspberry Pi 5 Model B Rev 1.0", "Revision\t: c04170\n")
    monkeypatch.setattr(daemon, "read_board", lambda: pi5)
    assert "RP1" in daemon.board_problem("pigpio", "127.0.0.1")
    assert daemon.board_problem("pigpio", "192.168.1.20") == ""  # a remote pigpiod's board
    assert daemon.board_problem("pio", "127.0.0.1") == ""
    config = Config()
    phy = create_backend("pigpio", config, host="127.0.0.1", port=1)
    connection = Connection(config.link, node="n", epoch=1)
    driver = LinkDriver(phy, connection, role="auto", turn_ms=20, retry_s=1, unsupported="X")
    assert driver.reason() == "X"
