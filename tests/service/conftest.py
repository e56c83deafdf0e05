"""Running systems (emulator + two daemons) for the tests that need whole daemons.

``shared``: one per module, for tests that leave nothing lasting behind (they
bind and release ports, send, read status). ``system``: one per test, for
tests that kill, cut, restart or reconfigure something.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from rpilinkd.testbed import System


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    with System(tmp_path_factory.mktemp("shared")) as running:
        yield running


@pytest.fixture
def system(tmp_path: Path) -> Iterator[System]:
    with System(tmp_path) as running:
        yield running
