"""The composition root: one asyncio process that is the daemon.

Builds the pieces from the config, serves the API, runs the link driver,
telemetry and the status LED, talks to systemd, and shuts down in order on
SIGTERM: stop accepting, fail waiting sends with ``shutting_down``, release
the bus, say goodbye to MQTT.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import random
import signal
import socket
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from rpilinkd import __version__
from rpilinkd.api.server import ApiServer
from rpilinkd.config import Config, to_mapping
from rpilinkd.link import Connection
from rpilinkd.phy import create_backend
from rpilinkd.phy.autodetect import resolve_backend
from rpilinkd.phy.codec import BusTiming
from rpilinkd.platform import UNSUPPORTED, read_board
from rpilinkd.service.health import WireHealth
from rpilinkd.service.linkdriver import LinkDriver
from rpilinkd.service.memory import map_large_buffers
from rpilinkd.service.node import Node
from rpilinkd.service.systemd import Notifier, inherited_socket, watchdog_interval

_LOGGER = logging.getLogger(__name__)

# An optional part of the daemon, built before serving and run as a task: (name, run).
Service = tuple[str, Callable[[], Coroutine[Any, Any, None]]]
STATUS_EVERY_S = 5.0
RESTART_SERVICE_S = 5.0  # an optional service (MQTT, LED) that failed starts again after


@dataclass
class Daemon:
    config: Config
    node: Node
    driver: LinkDriver
    api: ApiServer
    notifier: Notifier


def board_problem(backend: str, pigpio_host: str) -> str:
    """Why this board cannot run the backend ("" if it can, or cannot tell): a Pi 5 has
    no pigpiod, and saying so beats "pigpiod unreachable" forever."""
    if backend != "pigpio" or pigpio_host not in ("127.0.0.1", "localhost", "::1"):
        return ""  # a remote pigpiod runs on some other board
    board = read_board()
    return board.reason if board.support == UNSUPPORTED else ""


def build(config: Config, *, backend: str | None = None, **backend_options: object) -> Daemon:
    backend = backend or resolve_backend(config.bus.backend)
    name = config.node.effective_name
    epoch = random.SystemRandom().getrandbits(32) or 1
    connection = Connection(config.link, node=name, epoch=epoch, max_frame=config.bus.max_frame)
    phy = create_backend(backend, config, **backend_options)
    where = f"{config.pigpio.host}:{config.pigpio.port}" if backend == "pigpio" else backend
    timing = BusTiming.from_config(config.bus)
    driver = LinkDriver(
        phy,
        connection,
        role=config.node.role,
        turn_ms=config.link.turn_ms,
        retry_s=config.pigpio.retry_s,
        unsupported=board_problem(backend, config.pigpio.host),
    )
    node = Node(
        driver,
        node=name,
        backend=f"{backend} {where}",
        line_rate_bps=timing.line_rate_bps,
        sample_us=timing.sample_us,
        lend_info={"pigpio": where, "pins": to_mapping(config)["pins"]},
    )
    api = ApiServer(config.api, node, node=name, max_message=config.link.max_message)
    node.api = api
    return Daemon(config, node, driver, api, Notifier())


async def run(config: Config, *, listen: socket.socket | None = None) -> int:
    map_large_buffers()
    daemon = build(config)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGINT, stop.set)
    _stop_on_sigterm(loop, stop)
    services = _optional_services(daemon)  # before serving: their config errors stop start-up
    await daemon.api.start(listen if listen is not None else inherited_socket())
    tasks = [
        asyncio.create_task(daemon.driver.run(), name="link driver"),
        asyncio.create_task(_keep_systemd_posted(daemon), name="systemd"),
    ]
    services.append(("wire health", WireHealth(daemon.node).watch))
    services.append(("loop lag", daemon.node.loop_lag.watch))
    tasks += [asyncio.create_task(_supervised(name, run), name=name) for name, run in services]
    daemon.notifier.ready(_status_line(daemon))
    _LOGGER.info(
        "rpilinkd %s serving %s as node %s", __version__, config.api.socket, daemon.node.node
    )
    stopped = asyncio.create_task(stop.wait())
    await asyncio.wait([stopped, *tasks], return_when=asyncio.FIRST_COMPLETED)
    crashed = [t for t in tasks if t.done() and not t.cancelled() and t.exception() is not None]
    for task in crashed:  # a bug: stop cleanly and exit 1, so systemd restarts the daemon
        _LOGGER.critical("%s failed", task.get_name(), exc_info=task.exception())
    daemon.notifier.stopping()
    _LOGGER.info("stopping")
    daemon.node.shutdown()
    await daemon.api.close()
    daemon.driver.stop()
    for task in tasks:
        if task.get_name() != "link driver":
            task.cancel()
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(10):
            await asyncio.gather(*tasks, return_exceptions=True)
    stopped.cancel()
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # stopped: see _stop_on_sigterm
    return 1 if crashed else 0


def _stop_on_sigterm(loop: asyncio.AbstractEventLoop, stop: asyncio.Event) -> None:
    """SIGTERM stops the daemon; once stopped, run() ignores it, so an impatient
    supervisor's next one cannot turn the clean exit into a kill. Not the loop's
    add_signal_handler: removing that sets SIGTERM's default (death) before anything
    can ignore it, and a SIGTERM in that instant reaches a thread that does not block
    it (numpy's OpenBLAS keeps one): seen as exit -15 under load. A Python handler is
    replaced by SIG_IGN in one step; it runs in the main thread, woken through the
    loop's wakeup fd (SIGINT's handler set it up)."""

    def handle(signum: int, frame: object) -> None:
        if not loop.is_closed():  # run() failed and its loop is gone: nothing to stop
            loop.call_soon_threadsafe(stop.set)

    signal.signal(signal.SIGTERM, handle)


def _optional_services(daemon: Daemon) -> list[Service]:
    """Telemetry and the status LED, if configured."""
    services: list[Service] = []
    config = daemon.config
    if config.mqtt.enabled:
        from rpilinkd.service.telemetry_source import NodeTelemetry  # noqa: PLC0415
        from rpilinkd.telemetry.mqtt import TelemetryPublisher  # noqa: PLC0415

        publisher = TelemetryPublisher(
            config.mqtt,
            node=daemon.node.node,
            version=__version__,
            source=NodeTelemetry(daemon.node),
        )
        daemon.node.listeners.append(publisher.on_node_event)
        services.append(("telemetry", publisher.run))
    if config.led.enabled:
        from rpilinkd.service.led import StatusLed  # noqa: PLC0415

        led = StatusLed(config)
        services.append(("status led", functools.partial(led.run, daemon.node)))
    return services


async def _supervised(name: str, run: Callable[[], Coroutine[Any, Any, None]]) -> None:
    """Run a service the link does not need; a bug in it is logged and it starts again."""
    while True:
        try:
            await run()
            return
        except Exception:
            _LOGGER.exception("%s failed; restarting it in %.0f s", name, RESTART_SERVICE_S)
        await asyncio.sleep(RESTART_SERVICE_S)


def _status_line(daemon: Daemon) -> str:
    status = daemon.node.status()
    peer = f" with {status['peer']}" if status["peer"] else ""
    role = f" as {status['role']}" if status["role"] else ""
    reason = f": {status['reason']}" if status["reason"] else ""
    return f"link {status['link']}{role}{peer}{reason}"


async def _keep_systemd_posted(daemon: Daemon) -> None:
    """Watchdog pings (proof the event loop runs) and a STATUS line on changes."""
    interval = watchdog_interval()
    last = ""
    while True:
        if interval is not None:
            daemon.notifier.watchdog()
        line = _status_line(daemon)
        if line != last:
            daemon.notifier.status(line)
            last = line
        await asyncio.sleep(min(interval or STATUS_EVERY_S, STATUS_EVERY_S))
