"""What a bus backend reports, in wire order (pure: the codec makes them, backends deliver them)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from rpilinkd.pins import ControlLine

Levels = Mapping[ControlLine, bool]


@dataclass(frozen=True)
class FrameReceived:
    """A whole frame (frame-enable high to low) arrived; the bytes are unchecked."""

    data: bytes


@dataclass(frozen=True)
class ControlsChanged:
    """The peer's control outputs, as this side's ``*_in`` pins now read them."""

    levels: Levels


PhyEvent = FrameReceived | ControlsChanged
