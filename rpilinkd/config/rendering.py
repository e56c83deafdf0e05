"""The configuration as text: the effective config (``--check-config``) and the example.

``python -m rpilinkd.config > etc/rpilink/rpilinkd.toml`` regenerates the
shipped example; a test fails when the two drift apart.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from rpilinkd.config.loading import to_mapping
from rpilinkd.config.schema import Config


def dump_toml(config: Config) -> str:
    """The effective config as TOML (what ``rpilinkd --check-config`` prints)."""
    lines: list[str] = []
    for section, table in to_mapping(config).items():
        lines.append(f"[{section}]")
        lines.extend(f"{key} = {_toml_value(value)}" for key, value in table.items())
        lines.append("")
    return "\n".join(lines)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    escaped = str(value).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def example_toml() -> str:
    """Every key with its default and its doc: the shipped ``etc/rpilink/rpilinkd.toml``.

    Regenerate the file with ``python -m rpilinkd.config > etc/rpilink/rpilinkd.toml``;
    a test fails when the two drift apart.
    """
    lines = [
        "# rpilinkd configuration. Every key is shown with its default value;",
        "# uncomment and change what you need. `rpilinkd --check-config` validates",
        "# this file and prints the effective configuration.",
        "",
    ]
    defaults = Config()
    for section in dataclasses.fields(defaults):
        obj = getattr(defaults, section.name)
        lines.append(f"[{section.name}]")
        for f in dataclasses.fields(obj):
            doc = f.metadata.get("doc") or _PIN_DOCS.get(f.name, "")
            if doc:
                lines.append(f"# {doc}")
            value = getattr(obj, f.name)
            value = list(value) if isinstance(value, tuple) else value
            lines.append(f"#{f.name} = {_toml_value(value)}")
        lines.append("")
    return "\n".join(lines)


_PIN_DOCS = {
    "data": "D0-D7, BCM GPIO numbers, the same on both Pis (wired straight)",
    "stb_out": "byte strobe output (wired to the peer's stb_in)",
    "stb_in": "byte strobe input (from the peer's stb_out)",
    "frm_out": "frame-enable output (to the peer's frm_in)",
    "frm_in": "frame-enable input",
    "req_out": "bus-request output (to the peer's req_in)",
    "req_in": "bus-request input",
    "rw_out": "read/write (grant / acknowledge) output (to the peer's rw_in)",
    "rw_in": "read/write input",
    "allow_reserved": "allow GPIO 0-3 and 14-15 (EEPROM, I2C, UART) in the map",
}
