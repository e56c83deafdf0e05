"""The configuration's schema: one frozen dataclass per section, one field per key.

Each key is declared with :func:`setting` (default, one-line doc, bounds or
choices), and every section checks its bounds when it is built, from a file
(loading.py) or in code: ``LinkConfig(window=0)`` raises :class:`ConfigError`
naming ``link.window`` just as the file would.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from rpilinkd.errors import ConfigError
from rpilinkd.pins import PinMap

DEFAULT_CONFIG_PATH = Path("/etc/rpilink/rpilinkd.toml")
SAMPLE_PERIODS_US = (1, 2, 4, 5, 8, 10)
MESSAGE_HARD_CAP = 16 * 1024 * 1024


#: bytes a frame adds to its payload: the 20-byte header and the CRC-32 (link/frames.py)
FRAME_OVERHEAD = 24


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


def check_bounds(section: Any, name: str) -> None:
    """Raise :class:`ConfigError` naming ``name.key`` for a value outside its declaration."""
    for spec in dataclasses.fields(section):
        value, meta = getattr(section, spec.name), spec.metadata
        key = f"{name}.{spec.name}"
        choices = meta.get("choices")
        if choices is not None and value not in choices:
            raise ConfigError(key, f"must be one of {', '.join(map(str, choices))}", value)
        low, high = meta.get("min"), meta.get("max")
        if low is not None and value < low:
            raise ConfigError(key, f"must be at least {low}", value)
        if high is not None and value > high:
            raise ConfigError(key, f"must be at most {high}", value)


class Section:
    """A config section: its bounds are checked when it is built."""

    SECTION: ClassVar[str] = ""

    def __post_init__(self) -> None:
        check_bounds(self, self.SECTION)


@dataclass(frozen=True)
class NodeConfig(Section):
    SECTION = "node"

    name: str = setting("", "this node's name, shown to the peer (empty: the hostname)")
    role: str = setting(
        "auto",
        "bus role: auto (decided by handshake), master or slave",
        choices=("auto", "master", "slave"),
    )

    @property
    def effective_name(self) -> str:
        import socket  # noqa: PLC0415 - keeps the sans-IO link layer free of sockets

        return self.name or socket.gethostname()


@dataclass(frozen=True)
class PigpioConfig(Section):
    SECTION = "pigpio"

    host: str = setting("127.0.0.1", "pigpiod host (env PIGPIO_ADDR overrides)")
    port: int = setting(8888, "pigpiod TCP port (env PIGPIO_PORT overrides)", min=1, max=65535)
    connect_timeout_s: float = setting(5.0, "give up one connection attempt after", min=0.1)
    retry_s: float = setting(2.0, "wait between connection attempts", min=0.05)


@dataclass(frozen=True)
class BusConfig(Section):
    SECTION = "bus"

    backend: str = setting(
        "auto",
        "pigpio (Pi 1-4), pio (Pi 5, Pi 500, CM5), virtual, or auto (pio on a Pi 5 family "
        "board, pigpio elsewhere)",
        choices=("auto", "pigpio", "pio", "virtual"),
    )
    sample_us: int = setting(
        5, "pigpiod's sample period (its -s option), µs", choices=SAMPLE_PERIODS_US
    )
    width: int = setting(8, "data lines: 8, or 16 (two bytes per strobe edge)", choices=(8, 16))
    setup_us: int = setting(0, "data stable before a rising strobe edge, µs (0: 1 µs)", min=0)
    hold_us: int = setting(0, "data held after each strobe edge, µs (0: a sample + 1 µs)", min=0)
    gap_us: int = setting(0, "frame-enable low between frames, µs (0: a sample + 1 µs)", min=0)
    max_frame: int = setting(1024, "largest frame the bus carries, bytes", min=32, max=2048)
    debounce_us: int = setting(
        0,
        "control inputs count a level only once it held this long, µs (0: four samples)",
        min=0,
        max=10_000,
    )

    @property
    def effective_setup_us(self) -> int:
        return self.setup_us or 1

    @property
    def effective_hold_us(self) -> int:
        """Longer than a sample: the first sample after an edge must come before the next
        data change even when it falls on the same µs as that change (docs/bus.md)."""
        return self.hold_us or self.sample_us + 1

    @property
    def effective_gap_us(self) -> int:
        return self.gap_us or self.sample_us + 1

    @property
    def effective_debounce_us(self) -> int:
        return self.debounce_us or 4 * self.sample_us


@dataclass(frozen=True)
class LinkConfig(Section):
    SECTION = "link"

    frame_payload: int = setting(256, "payload bytes per frame (multiple of 4)", min=16, max=1024)
    window: int = setting(128, "frames in flight before an acknowledgement", min=1, max=256)
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
    reply_hold_ms: float = setting(
        5.0,
        "after handing a message to a client that answers at once, keep the bus this long "
        "for its answer to ride the same turn, ms (0: never; docs/protocol.md 2.4)",
        min=0,
        max=50,
    )
    resume_s: float = setting(
        5.0,
        "a dropped link that comes back within this resends what was in flight, s "
        "(0: fail it at once)",
        min=0,
        max=3600,
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.frame_payload % 4:
            raise ConfigError("link.frame_payload", "must be a multiple of 4", self.frame_payload)
        if self.dead_after_ms <= self.keepalive_ms:
            raise ConfigError(
                "link.dead_after_ms", "must exceed link.keepalive_ms", self.dead_after_ms
            )
        if not self.rto_min_ms <= self.rto_initial_ms <= self.rto_max_ms:
            raise ConfigError(
                "link.rto_initial_ms",
                "must lie between rto_min_ms and rto_max_ms",
                self.rto_initial_ms,
            )


@dataclass(frozen=True)
class ApiConfig(Section):
    SECTION = "api"

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
class MqttConfig(Section):
    SECTION = "mqtt"

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
class LedConfig(Section):
    SECTION = "led"

    enabled: bool = setting(False, "show the link state on an LED (gpiozero, PiGPIOFactory)")
    pin: int = setting(4, "BCM GPIO of the LED", min=0, max=27)
    active_high: bool = setting(True, "the LED lights when the GPIO is high")


@dataclass(frozen=True)
class LogConfig(Section):
    SECTION = "log"

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
        if self.pins.width != self.bus.width:
            raise ConfigError(
                "pins.data", f"lists {self.pins.width} GPIOs, but bus.width is {self.bus.width}"
            )
        frame = self.link.frame_payload + FRAME_OVERHEAD
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
