"""Running systems (emulator + two daemons) for the tests that need whole daemons.

``shared``: one per module, for tests that leave nothing lasting behind (they
bind and release ports, send, read status). ``system``: one per test, for
tests that kill, cut, restart or reconfigure something. ``sim``: the emulator
alone, for tests that start their own daemon (its first line: the ports).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from rpilinkd.testbed import System
from rpilinkd.testbed.processes import Child, python_module


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    with System(tmp_path_factory.mktemp("shared")) as running:
        yield running


@pytest.fixture
def system(tmp_path: Path) -> Iterator[System]:
    with System(tmp_path) as running:
        yield running


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[Child]:
    child = Child(
        python_module("rpilinkd.sim", "--port-a", "0", "--port-b", "0"),
        stderr_path=tmp_path / "sim.log",
    )
    yield child
    child.stop()
