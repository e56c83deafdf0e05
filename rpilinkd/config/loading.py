"""TOML in, a checked :class:`Config` out; every error names ``section.key``.

The loader is generic: it rejects unknown sections and keys, checks each
value's type against the field's annotation, and lets the sections check
their own bounds (schema.py).
"""

from __future__ import annotations

import dataclasses
import tomllib
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

from rpilinkd.config.schema import Config
from rpilinkd.errors import ConfigError
from rpilinkd.pins import WIDE_PINS

S = TypeVar("S")


def build_section(cls: type[S], table: Mapping[str, Any], section: str) -> S:
    """Build one section from a TOML table; every error names ``section.key``."""
    names = [f.name for f in dataclasses.fields(cls)]  # type: ignore[arg-type]
    for key in table:
        if key not in names:
            known = ", ".join(sorted(names))
            raise ConfigError(f"{section}.{key}", f"unknown key (known: {known})")
    hints = typing.get_type_hints(cls)
    values = {
        name: _check_type(f"{section}.{name}", table[name], hints[name])
        for name in names
        if name in table
    }
    try:
        return cls(**values)
    except ConfigError:
        raise
    except (TypeError, ValueError) as exc:
        raise ConfigError(section, str(exc)) from None


def _check_type(key: str, value: Any, hint: Any) -> Any:
    origin = typing.get_origin(hint)
    if origin is tuple:
        (item,) = {arg for arg in typing.get_args(hint) if arg is not Ellipsis}
        if not isinstance(value, list):
            raise ConfigError(key, "must be a list", value)
        return tuple(_check_type(f"{key}[{i}]", v, item) for i, v in enumerate(value))
    if origin in (types.UnionType, typing.Union):
        raise ConfigError(key, "optional keys are not supported by the loader")
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(key, "must be true or false", value)
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(key, "must be an integer", value)
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(key, "must be a number", value)
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise ConfigError(key, "must be a string", value)
        return value
    raise ConfigError(key, f"has an unsupported type {hint!r}")  # a bug in this module


def config_from_mapping(data: Mapping[str, Any]) -> Config:
    """Build a :class:`Config` from parsed TOML (sections as tables)."""
    sections = {f.name: f for f in dataclasses.fields(Config)}
    hints = typing.get_type_hints(Config)
    built: dict[str, Any] = {}
    for name, table in data.items():
        if name not in sections:
            known = ", ".join(sections)
            raise ConfigError(name, f"unknown section (known: {known})")
        if not isinstance(table, Mapping):
            raise ConfigError(name, "must be a table, e.g. [" + name + "]", table)
        built[name] = build_section(hints[name], table, name)
    if "pins" not in built and getattr(built.get("bus"), "width", 8) == 16:
        built["pins"] = WIDE_PINS  # the wide bus's own default map
    try:
        return Config(**built)
    except ConfigError:
        raise
    except (TypeError, ValueError) as exc:
        raise ConfigError("config", str(exc)) from None


def load_config(path: Path | None, *, required: bool = False) -> Config:
    """Read a TOML file; a missing file gives the defaults unless ``required``."""
    if path is None:
        return Config()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        if required:
            raise ConfigError(str(path), "file not found") from None
        return Config()
    except OSError as exc:
        raise ConfigError(str(path), f"cannot read: {exc.strerror}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(str(path), f"not valid TOML: {exc}") from None
    return config_from_mapping(data)


def replace_keys(config: Config, overrides: Mapping[str, Any]) -> Config:
    """Apply ``{"section.key": value}`` overrides with the same checks as the file."""
    tables: dict[str, dict[str, Any]] = {}
    for dotted, value in overrides.items():
        section, _, key = dotted.partition(".")
        tables.setdefault(section, {})[key] = value
    data = to_mapping(config)
    for section, table in tables.items():
        data.setdefault(section, {}).update(table)
    return config_from_mapping(data)


def to_mapping(config: Config) -> dict[str, dict[str, Any]]:
    """The config as plain tables (tuples as lists), ready to dump or rebuild."""
    out: dict[str, dict[str, Any]] = {}
    for section in dataclasses.fields(config):
        obj = getattr(config, section.name)
        out[section.name] = {
            f.name: list(v) if isinstance(v := getattr(obj, f.name), tuple) else v
            for f in dataclasses.fields(obj)
        }
    return out
