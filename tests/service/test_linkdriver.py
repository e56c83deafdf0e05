"""The link driver's own logic, without a bus."""

from __future__ import annotations

from rpilinkd.link.busaccess import coalesce
from rpilinkd.pins import ControlLine

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
