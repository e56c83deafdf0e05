"""A running system (emulator + two daemons) per test that needs one."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from rpilinkd.testbed import System


@pytest.fixture
def system(tmp_path: Path) -> Iterator[System]:
    running = System(tmp_path).start()
    try:
        yield running
    finally:
        running.stop()
