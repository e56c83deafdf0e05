"""The documents stay true to the code."""

from __future__ import annotations

import re
from dataclasses import fields
from pathlib import Path

from rpilinkd.api.server import REPLY_BUDGET_BYTES
from rpilinkd.api.session import REPLY_PAUSE_BYTES, STALLED_S
from rpilinkd.config import LinkConfig, MqttConfig
from rpilinkd.errors import error_classes
from rpilinkd.events import EventKind
from rpilinkd.link.connection import ACK_DELAY_S, ACK_HOLD_S
from rpilinkd.phy.pigpio import HEARTBEAT_MS
from rpilinkd.service.resync import QUIET_S
from rpilinkd.telemetry.discovery import ENTITIES
from rpilinkd.telemetry.payloads import StateSnapshot, StatsSnapshot

DOCS = Path(__file__).resolve().parents[1] / "docs"


def test_every_documented_error_code_exists() -> None:
    table = (DOCS / "api.md").read_text().split("## Errors")[1].split("## Limits")[0]
    codes = set(re.findall(r"^\| `(\w+)`(?:, `(\w+)`)?", table, re.M))
    documented = {c for pair in codes for c in pair if c}
    assert documented
    assert documented <= set(error_classes())


def test_every_telemetry_field_and_entity_is_documented() -> None:
    text = (DOCS / "mqtt.md").read_text()
    names = [f.name for f in fields(StateSnapshot)] + [f.name for f in fields(StatsSnapshot)]
    names += list(ENTITIES) + [kind.value for kind in EventKind]
    missing = [name for name in names if f"`{name}`" not in text]
    assert not missing, f"docs/mqtt.md does not mention {missing}"


def test_every_config_key_is_in_the_mqtt_table() -> None:
    text = (DOCS / "mqtt.md").read_text().split("## Topics")[0]
    missing = [f.name for f in fields(MqttConfig) if f"`{f.name}`" not in text]
    assert not missing, f"docs/mqtt.md's config table lacks {missing}"


def test_the_protocol_timer_table_matches_the_code() -> None:
    table = (DOCS / "protocol.md").read_text().split("### 2.5 Timers")[1].split("###")[0]
    rows = dict(re.findall(r"^\| `(\w+)` \| (\d+) ms \|", table, re.M))
    assert int(rows["ACK_DELAY"]) == round(ACK_DELAY_S * 1000)
    assert int(rows["ACK_HOLD"]) == round(ACK_HOLD_S * 1000)
    assert int(rows["RESYNC_QUIET"]) == round(QUIET_S * 1000)
    assert int(rows["HEARTBEAT"]) == HEARTBEAT_MS


def test_the_reply_budget_in_api_md_matches_the_code() -> None:
    """A client that does not read its replies is paused past 64 KiB, cut after 2 s
    without reading or at 1 MiB plus one max_message."""
    text = " ".join((DOCS / "api.md").read_text().split())
    assert "while more than 64 KiB of replies wait for it" in text
    assert "if it reads none of them for 2 s, or once 1 MiB plus one `max_message`" in text
    assert "of them pile up unread (2 MiB by default;" in text
    assert REPLY_BUDGET_BYTES == 1 << 20
    assert REPLY_PAUSE_BYTES == 64 * 1024
    assert STALLED_S == 2.0
    assert LinkConfig().max_message == 1 << 20
