"""Configuration: TOML in, frozen dataclasses out; a bad key names itself.

Every section is a frozen dataclass whose fields are the keys, each declared
with :func:`setting` (default, one-line doc, bounds or choices). The loader is
generic: it rejects unknown keys, checks types and bounds from the field
declarations, and raises :class:`ConfigError` naming ``section.key``. The
shipped ``etc/rpilink/rpilinkd.toml`` lists every key; a test keeps it in step
with this module.
"""

from __future__ import annotations

import dataclasses
import tomllib
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from rpilinkd.errors import ConfigError
from rpilinkd.pins import PinMap

DEFAULT_CONFIG_PATH = Path("/etc/rpilink/rpilinkd.toml")
SAMPLE_PERIODS_US = (1, 2, 4, 5, 8, 10)
MESSAGE_HARD_CAP = 16 * 1024 * 1024


def setting(
    default: Any,
    doc: str,
    *,
    min: float | None = None,
    max: float | None = None,
    choices: tuple[Any, ...] | None = None,
) -> Any:
    """Declare a config key: its default, what it means, and its allowed values."""
    meta = {"doc": doc, "min": min, "max": max, "choices": choices}
    return field(default=default, metadata=meta)


@dataclass(frozen=True)
class NodeConfig:
    name: str = setting("", "this node's name, shown to the peer (empty: the hostname)")
    role: str = setting(
        "auto", "bus role: auto (decided by handshake), master or slave",
        choices=("auto", "master", "slave"),
    )

    @property
    def effective_name(self) -> str:
        import socket  # noqa: PLC0415 - keeps the sans-IO link layer free of sockets

        return self.name or socket.gethostname()


@dataclass(frozen=True)
class PigpioConfig:
    host: str = setting("127.0.0.1", "pigpiod host (env PIGPIO_ADDR overrides)")
    port: int = setting(8888, "pigpiod TCP port (env PIGPIO_PORT overrides)", min=1, max=65535)
    connect_timeout_s: float = setting(5.0, "give up one connection attempt after", min=0.1)
    retry_s: float = setting(2.0, "wait between connection attempts", min=0.05)


@dataclass(frozen=True)
class BusConfig:
    sample_us: int = setting(
        5, "pigpiod's sample period (its -s option), µs", choices=SAMPLE_PERIODS_US
    )
    setup_us: int = setting(0, "data stable before each strobe rise, µs (0: one sample)", min=0)
    hold_us: int = setting(0, "strobe high time after the rise, µs (0: one sample)", min=0)
    gap_us: int = setting(0, "frame-enable low time between frames, µs (0: one sample)", min=0)
    max_frame: int = setting(1024, "largest frame the bus carries, bytes", min=32, max=2048)
    debounce_us: int = setting(
        0, "control inputs count a level only once it held this long, µs (0: four samples)",
        min=0, max=10_000,
    )

    def _or_sample(self, value: int) -> int:
        return value or self.sample_us

    @property
    def effective_setup_us(self) -> int:
        return self._or_sample(self.setup_us)

    @property
    def effective_hold_us(self) -> int:
        return self._or_sample(self.hold_us)

    @property
    def effective_gap_us(self) -> int:
        return self._or_sample(self.gap_us)

    @property
    def effective_debounce_us(self) -> int:
        return self.debounce_us or 4 * self.sample_us

    @property
    def line_rate_bps(self) -> float:
        """Raw bytes per second while a frame is on the wire."""
        return 1e6 / (self.effective_setup_us + self.effective_hold_us)


@dataclass(frozen=True)
class LinkConfig:
    frame_payload: int = setting(256, "payload bytes per frame (multiple of 4)", min=16, max=1024)
    window: int = setting(64, "frames in flight before an acknowledgement", min=1, max=256)
    max_message: int = setting(
        1024 * 1024, "largest message, bytes (hard cap 16 MiB)", min=1, max=MESSAGE_HARD_CAP
    )
    retries: int = setting(10, "transmissions of a frame before its message fails", min=1)
    rto_initial_ms: float = setting(100.0, "first retransmission timeout, ms", min=1)
    rto_min_ms: float = setting(10.0, "retransmission timeout floor, ms", min=1)
    rto_max_ms: float = setting(2000.0, "retransmission timeout ceiling, ms", min=1)
    keepalive_ms: float = setting(200.0, "send a keepalive after this much silence, ms", min=10)
    dead_after_ms: float = setting(
        900.0, "declare the peer gone after this much silence, ms", min=50
    )
    turn_ms: float = setting(
        20.0, "how long one side keeps the data lines while the other waits, ms", min=1
    )
    resume_s: float = setting(
        5.0, "a dropped link that comes back within this resends what was in flight, s "
        "(0: fail it at once)", min=0, max=3600,
    )

    def __post_init__(self) -> None:
        if self.frame_payload % 4:
            raise ConfigError("link.frame_payload", "must be a multiple of 4", self.frame_payload)
        if self.dead_after_ms <= self.keepalive_ms:
            raise ConfigError(
                "link.dead_after_ms", "must exceed link.keepalive_ms", self.dead_after_ms
            )
        if not self.rto_min_ms <= self.rto_initial_ms <= self.rto_max_ms:
            raise ConfigError(
                "link.rto_initial_ms", "must lie between rto_min_ms and rto_max_ms",
                self.rto_initial_ms,
            )


@dataclass(frozen=True)
class ApiConfig:
    socket: str = setting("/run/rpilink.sock", "the local API's Unix socket path")
    socket_mode: int = setting(0o660, "permissions when the daemon binds the socket itself")
    max_clients: int = setting(64, "concurrent API clients", min=1, max=4096)
    client_queue: int = setting(256, "messages queued for one client before it is cut", min=1)
    max_request: int = setting(
        2 * 1024 * 1024 + 4096, "largest msgpack request accepted, bytes", min=1024
    )
    idle_s: float = setting(
        30.0, "a client that leaves a request incomplete this long is disconnected, s", min=0.1
    )


@dataclass(frozen=True)
class MqttConfig:
    enabled: bool = setting(False, "publish status and statistics over MQTT")
    host: str = setting("127.0.0.1", "broker host")
    port: int = setting(1883, "broker port", min=1, max=65535)
    username: str = setting("", "user name (empty: anonymous)")
    password: str = setting("", "password (prefer password_file)")
    password_file: str = setting("", "file whose first line is the password")
    tls: bool = setting(False, "connect with TLS")
    ca_file: str = setting("", "CA bundle for TLS (empty: system store)")
    cert_file: str = setting("", "client certificate for TLS")
    key_file: str = setting("", "client key for TLS")
    tls_insecure: bool = setting(False, "skip the broker hostname check (testing only)")
    client_id: str = setting("", "MQTT client id (empty: rpilinkd-<node>-<machine tag>)")
    prefix: str = setting("rpilink", "topic prefix: <prefix>/<node>/...")
    stats_interval_s: float = setting(10.0, "seconds between stats messages", min=0.1)
    retain: bool = setting(True, "retain availability and state")
    qos: int = setting(1, "QoS of published messages", choices=(0, 1, 2))
    discovery: bool = setting(True, "publish Home Assistant discovery payloads")
    discovery_prefix: str = setting("homeassistant", "Home Assistant discovery prefix")
    queue_size: int = setting(100, "outgoing messages buffered while the broker is away", min=1)
    reconnect_max_s: float = setting(30.0, "longest wait between reconnection attempts", min=0.1)


@dataclass(frozen=True)
class LedConfig:
    enabled: bool = setting(False, "show the link state on an LED (gpiozero, PiGPIOFactory)")
    pin: int = setting(4, "BCM GPIO of the LED", min=0, max=27)
    active_high: bool = setting(True, "the LED lights when the GPIO is high")


@dataclass(frozen=True)
class LogConfig:
    level: str = setting(
        "info", "log level", choices=("debug", "info", "warning", "error", "critical")
    )


@dataclass(frozen=True)
class Config:
    node: NodeConfig = field(default_factory=NodeConfig)
    pigpio: PigpioConfig = field(default_factory=PigpioConfig)
    bus: BusConfig = field(default_factory=BusConfig)
    pins: PinMap = field(default_factory=PinMap)
    link: LinkConfig = field(default_factory=LinkConfig)
    api: ApiConfig = field(default_factory=ApiConfig)
    mqtt: MqttConfig = field(default_factory=MqttConfig)
    led: LedConfig = field(default_factory=LedConfig)
    log: LogConfig = field(default_factory=LogConfig)

    def __post_init__(self) -> None:
        frame = self.link.frame_payload + 64  # header and CRC fit in 64 bytes
        if frame > self.bus.max_frame:
            raise ConfigError(
                "link.frame_payload",
                f"frames of this payload exceed bus.max_frame ({self.bus.max_frame})",
                self.link.frame_payload,
            )
        if self.led.enabled:
            for key, pin in self.pins.named_pins():
                if pin == self.led.pin:
                    raise ConfigError("led.pin", f"GPIO {pin} is already the bus's {key}", pin)


S = TypeVar("S")


def build_section(cls: type[S], table: Mapping[str, Any], section: str) -> S:
    """Build one section from a TOML table; every error names ``section.key``."""
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    for key in table:
        if key not in fields:
            known = ", ".join(sorted(fields))
            raise ConfigError(f"{section}.{key}", f"unknown key (known: {known})")
    hints = typing.get_type_hints(cls)
    values: dict[str, Any] = {}
    for name, spec in fields.items():
        if name not in table:
            continue
        key = f"{section}.{name}"
        values[name] = _check_value(key, table[name], hints[name], spec.metadata)
    try:
        return cls(**values)
    except ConfigError:
        raise
    except (TypeError, ValueError) as exc:
        raise ConfigError(section, str(exc)) from None


def _check_value(key: str, value: Any, hint: Any, meta: Mapping[str, Any]) -> Any:
    value = _check_type(key, value, hint)
    choices = meta.get("choices")
    if choices is not None and value not in choices:
        raise ConfigError(key, f"must be one of {', '.join(map(str, choices))}", value)
    low, high = meta.get("min"), meta.get("max")
    if low is not None and value < low:
        raise ConfigError(key, f"must be at least {low}", value)
    if high is not None and value > high:
        raise ConfigError(key, f"must be at most {high}", value)
    return value


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


if __name__ == "__main__":
    print(example_toml(), end="")
