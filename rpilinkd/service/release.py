"""``rpilinkd --release-pins``: leave the bus pins safe after the daemon is gone.

A daemon that exits cleanly leaves them so itself. One that is killed (SIGKILL, the
watchdog, the OOM killer) leaves them as they were: pigpiod keeps driving whatever
it drove, maybe the data lines, which the peer may soon drive too. systemd runs this
as ``ExecStopPost=`` after every stop: the backend's opening puts the data lines to
inputs and the control outputs low, and its closing leaves them so.
"""

from __future__ import annotations

import asyncio
import logging

from rpilinkd.config import Config
from rpilinkd.errors import PhyError
from rpilinkd.phy import create_backend
from rpilinkd.phy.autodetect import resolve_backend

_LOGGER = logging.getLogger(__name__)
RELEASE_TIMEOUT_S = 10.0


async def release_pins(config: Config) -> int:
    """0 once the pins are safe; 1 (with one line saying why) when the backend could
    not be reached: then there is nobody driving them either, or nothing to do."""
    phy = create_backend(resolve_backend(config.bus.backend), config)
    try:
        async with asyncio.timeout(RELEASE_TIMEOUT_S):
            await phy.open()
            await phy.aclose()
    except (PhyError, OSError, TimeoutError) as exc:
        reason = "no answer in time" if isinstance(exc, TimeoutError) else str(exc)
        _LOGGER.warning("could not release the bus pins: %s", reason)
        return 1
    _LOGGER.info("bus pins released: data lines inputs, control outputs low")
    return 0
