"""Config loading: defaults, the shipped example, and errors that name the key."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest

from rpilinkd.config import (
    FRAME_OVERHEAD,
    ApiConfig,
    BusConfig,
    Config,
    LinkConfig,
    MqttConfig,
    config_from_mapping,
    dump_toml,
    example_toml,
    load_config,
    replace_keys,
)
from rpilinkd.errors import ConfigError
from rpilinkd.link.frames import OVERHEAD
from rpilinkd.pins import WIDE_PINS

REPO = Path(__file__).resolve().parents[1]


def test_shipped_example_lists_every_key_with_its_default() -> None:
    shipped = (REPO / "etc/rpilink/rpilinkd.toml").read_text()
    assert shipped == example_toml(), "regenerate: python -m rpilinkd.config > etc/..."


def test_uncommented_example_gives_the_defaults(tmp_path: Path) -> None:
    text = "\n".join(
        line[1:] if line.startswith("#") and "=" in line and not line.startswith("# ") else line
        for line in example_toml().splitlines()
    )
    path = tmp_path / "all.toml"
    path.write_text(text)
    assert load_config(path, required=True) == Config()


def test_dump_round_trips(tmp_path: Path) -> None:
    config = replace_keys(Config(), {"node.name": "a", "bus.sample_us": 1, "link.window": 4})
    path = tmp_path / "c.toml"
    path.write_text(dump_toml(config))
    assert load_config(path, required=True) == config


@pytest.mark.parametrize(
    ("data", "key"),
    [
        ({"bus": {"sample_us": 3}}, "bus.sample_us"),
        ({"bus": {"sampel_us": 5}}, "bus.sampel_us"),
        ({"busses": {}}, "busses"),
        ({"link": {"window": "8"}}, "link.window"),
        ({"link": {"window": 0}}, "link.window"),
        ({"link": {"frame_payload": 18}}, "link.frame_payload"),
        ({"mqtt": {"enabled": 1}}, "mqtt.enabled"),
        ({"pins": {"data": [16, 17]}}, "pins.data"),
        ({"pins": {"data": [16, 17, 18, 19, 20, 21, 22, "x"]}}, "pins.data[7]"),
        ({"pins": {"stb_out": 14}}, "pins.stb_out"),
        ({"pins": {"rw_in": 16}}, "pins.rw_in"),
        ({"pins": {"req_out": 40}}, "pins.req_out"),
        ({"node": {"role": "boss"}}, "node.role"),
        ({"led": {"enabled": True, "pin": 24}}, "led.pin"),
    ],
)
def test_bad_values_name_their_key(data: dict[str, dict[str, object]], key: str) -> None:
    with pytest.raises(ConfigError) as info:
        config_from_mapping(data)
    assert info.value.key == key
    assert repr(key) in str(info.value)


def test_bad_toml_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "broken.toml"
    path.write_text("[bus\nsample_us = 5\n")
    with pytest.raises(ConfigError, match=r"broken\.toml"):
        load_config(path)


def test_missing_file_is_defaults_unless_required(tmp_path: Path) -> None:
    assert load_config(tmp_path / "none.toml") == Config()
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "none.toml", required=True)


def test_the_wide_bus_takes_its_own_pin_map_unless_given_one() -> None:
    assert config_from_mapping({"bus": {"width": 16}}).pins == WIDE_PINS
    with pytest.raises(ConfigError, match=r"pins\.data"):
        config_from_mapping({"bus": {"width": 16}, "pins": {"stb_out": 24}})


@pytest.mark.parametrize(
    ("build", "key"),
    [
        (lambda: LinkConfig(window=0), "link.window"),
        (lambda: BusConfig(sample_us=3), "bus.sample_us"),
        (lambda: ApiConfig(max_clients=0), "api.max_clients"),
        (lambda: MqttConfig(qos=3), "mqtt.qos"),
    ],
)
def test_bounds_hold_for_a_config_built_in_code(build: Callable[[], object], key: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(repr(key))):
        build()


def test_the_frame_overhead_is_the_real_one() -> None:
    assert FRAME_OVERHEAD == OVERHEAD
    Config(link=LinkConfig(frame_payload=1000), bus=BusConfig(max_frame=1024))  # 1024 fits
    with pytest.raises(ConfigError, match=r"link\.frame_payload"):
        Config(link=LinkConfig(frame_payload=1004), bus=BusConfig(max_frame=1024))
