"""Fixtures: a mosquitto broker (anonymous, or with a password) and a subscriber."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.mosquitto import MOSQUITTO, Broker

pytestmark = pytest.mark.mqtt


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    if not shutil.which(MOSQUITTO) and not Path(MOSQUITTO).exists():
        pytest.skip("mosquitto missing: apt-get install mosquitto (scripts/test does)")
    running = Broker(tmp_path).start()
    yield running
    running.stop()


@pytest.fixture
def auth_broker(tmp_path: Path) -> Iterator[Broker]:
    if not shutil.which(MOSQUITTO) and not Path(MOSQUITTO).exists():
        pytest.skip("mosquitto missing: apt-get install mosquitto (scripts/test does)")
    running = Broker(tmp_path, users={"rpilink": "s3cret"}).start()
    yield running
    running.stop()
