"""Configuration: TOML in, frozen dataclasses out, a bad key names itself.

``schema`` declares the sections and keys (and checks bounds when a section is
built), ``loading`` reads TOML, ``rendering`` writes the effective config and
the shipped example (``etc/rpilink/rpilinkd.toml``; a test keeps it in step).
"""

from rpilinkd.config.loading import (
    config_from_mapping,
    load_config,
    replace_keys,
    to_mapping,
)
from rpilinkd.config.rendering import dump_toml, example_toml
from rpilinkd.config.schema import (
    DEFAULT_CONFIG_PATH,
    FRAME_OVERHEAD,
    MESSAGE_HARD_CAP,
    SAMPLE_PERIODS_US,
    ApiConfig,
    BusConfig,
    Config,
    LedConfig,
    LinkConfig,
    LogConfig,
    MqttConfig,
    NodeConfig,
    PigpioConfig,
)

__all__ = [
    "DEFAULT_CONFIG_PATH",
    "FRAME_OVERHEAD",
    "MESSAGE_HARD_CAP",
    "SAMPLE_PERIODS_US",
    "ApiConfig",
    "BusConfig",
    "Config",
    "LedConfig",
    "LinkConfig",
    "LogConfig",
    "MqttConfig",
    "NodeConfig",
    "PigpioConfig",
    "config_from_mapping",
    "dump_toml",
    "example_toml",
    "load_config",
    "replace_keys",
    "to_mapping",
]
