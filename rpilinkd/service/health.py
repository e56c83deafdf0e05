"""Damage on the wire, counted by the link, also logged and published (at most every few s).

Every frame that fails its CRC or its checks is counted where it happens (the
link's stats); this watcher turns the counts into one log line and one event
per interval, and reports when the cable's error level changes, so a loose
jumper shows up in the journal and on dashboards, not only in ``rpilink status``.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from rpilinkd.events import EventKind
from rpilinkd.link.states import ErrorLevel

if TYPE_CHECKING:
    from rpilinkd.service.node import Node

_LOGGER = logging.getLogger(__name__)
CHECK_EVERY_S = 5.0
LEVELS = list(ErrorLevel)  # from healthy to worst


class WireHealth:
    def __init__(self, node: Node) -> None:
        self.node = node
        self._damaged = 0
        self._level = ErrorLevel.ACTIVE

    def check(self) -> None:
        stats = self.node.connection.stats
        damaged = stats.crc_errors + stats.bad_frames
        if damaged > self._damaged:
            new = damaged - self._damaged
            _LOGGER.warning(
                "%d damaged frame(s) from the wire since the last check (%d CRC "
                "errors, %d malformed in all); the link resends them",
                new,
                stats.crc_errors,
                stats.bad_frames,
            )
            self.node.publish(
                EventKind.WIRE_ERRORS,
                new=new,
                crc_errors=stats.crc_errors,
                bad_frames=stats.bad_frames,
            )
        level = stats.error_level
        if level is not self._level:
            worse = LEVELS.index(level) > LEVELS.index(self._level)
            _LOGGER.log(
                logging.WARNING if worse else logging.INFO,
                "cable health %s -> %s (transmit error counter %d)",
                self._level.value,
                level.value,
                stats.tx_errors,
            )
            self.node.publish(
                EventKind.ERROR_LEVEL,
                level=level.value,
                previous=self._level.value,
                tx_errors=stats.tx_errors,
            )
        self._damaged, self._level = damaged, level

    async def watch(self) -> None:
        while True:
            await asyncio.sleep(CHECK_EVERY_S)
            self.check()
