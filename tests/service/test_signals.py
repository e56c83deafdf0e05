"""SIGTERM stops the daemon cleanly, and is never left at its default (death) meanwhile.

The daemon has a native second thread (numpy's OpenBLAS), so a SIGTERM that comes
while its disposition is SIG_DFL can kill the process whatever the main thread
blocks: under load that turned a clean stop into exit -15 (test_systemd.py has the
process-level check; this one watches every disposition SIGTERM gets, in-process).
"""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path
from typing import Any

import pytest

from rpilinkd.config import config_from_mapping
from rpilinkd.service import daemon as daemon_module
from rpilinkd.sim import SimConfig, Simulator
from tests.support.waiting import wait_until


async def test_sigterm_stops_the_daemon_and_never_leaves_sigterm_at_its_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("PIGPIO_ADDR", "PIGPIO_PORT"):
        monkeypatch.delenv(name, raising=False)
    given: list[Any] = []  # every disposition SIGTERM gets, asyncio's own included
    real_signal = signal.signal

    def spy(signum: int, handler: Any) -> Any:
        if signum == signal.SIGTERM:
            given.append(handler)
        return real_signal(signum, handler)

    original = signal.getsignal(signal.SIGTERM)
    monkeypatch.setattr(signal, "signal", spy)
    try:
        async with Simulator(SimConfig(seed=3)) as sim:
            socket = tmp_path / "api.sock"
            config = config_from_mapping(
                {"pigpio": {"port": sim.port("a")}, "api": {"socket": str(socket)}}
            )
            running = asyncio.create_task(daemon_module.run(config))
            await wait_until(lambda: socket.exists() or running.done(), 20)
            assert not running.done(), running
            # the daemon's handler (or the loop's): never the default, which would end pytest
            assert signal.getsignal(signal.SIGTERM) not in (signal.SIG_DFL, signal.SIG_IGN, None)
            os.kill(os.getpid(), signal.SIGTERM)
            assert await asyncio.wait_for(running, 20) == 0
        assert signal.getsignal(signal.SIGTERM) == signal.SIG_IGN  # a late one: ignored
        assert signal.SIG_DFL not in given, given
    finally:
        real_signal(signal.SIGTERM, original)
