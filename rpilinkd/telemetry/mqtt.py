"""The MQTT publisher: availability (with a Last Will), state, stats, events, discovery.

Built on aiomqtt (the maintained continuation of asyncio-mqtt). The broker is
optional and may be down, slow or wrong: nothing here ever blocks the data
path. ``event()`` and ``state_changed()`` only append to bounded queues; the
publishing task reconnects with exponential backoff, logs an outage once and
the recovery once, and republishes availability, state and discovery on every
connect (a restarted broker forgets retained messages).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections import deque
from pathlib import Path

import aiomqtt

from rpilinkd.config import MqttConfig
from rpilinkd.errors import ConfigError
from rpilinkd.events import Event, EventKind
from rpilinkd.telemetry.discovery import discovery_messages, machine_tag
from rpilinkd.telemetry.payloads import TelemetrySource, event_json, to_json

_LOGGER = logging.getLogger(__name__)
AUTH_CODES = {4, 5, 134, 135}  # MQTT 3.1.1: bad credentials, not authorised; 5.0 likewise
KEEPALIVE_S = 30
CONNECT_TIMEOUT_S = 10.0


def reraise_lost_cancel() -> None:
    """Raise the cancel aiomqtt swallowed, if it did.

    On Python 3.11, ``asyncio.wait_for`` (which aiomqtt uses for every broker
    round trip) drops a cancel that lands as its future completes (CPython
    gh-86296, fixed in 3.12); the task then idles forever and a stopping daemon
    hangs. The task still counts the request, so it is not lost for good.
    """
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


def read_password(config: MqttConfig) -> str | None:
    """``password``, or the first line of ``password_file``; ConfigError names the key."""
    if config.password_file:
        try:
            lines = Path(config.password_file).read_text(encoding="utf-8").splitlines()
        except OSError as exc:
            raise ConfigError(
                "mqtt.password_file", f"cannot read it: {exc.strerror}", config.password_file
            ) from None
        return lines[0] if lines else ""
    return config.password or None


def tls_context(config: MqttConfig) -> ssl.SSLContext | None:
    if not config.tls:
        return None
    try:
        context = ssl.create_default_context(cafile=config.ca_file or None)
        if config.cert_file:
            context.load_cert_chain(config.cert_file, config.key_file or None)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError("mqtt.ca_file", f"TLS files unusable: {exc}") from None
    if config.tls_insecure:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


class TelemetryPublisher:
    def __init__(
        self, config: MqttConfig, *, node: str, version: str, source: TelemetrySource
    ) -> None:
        self.config, self.node, self.version, self.source = config, node, version, source
        self.tag = machine_tag()
        # unique per machine, so two Pis with one hostname never fight over a session
        self.client_id = config.client_id or f"rpilinkd-{node}-{self.tag}"
        self.base = f"{config.prefix}/{node}"
        self.password = read_password(config)
        self.tls = tls_context(config)
        self._events: deque[tuple[EventKind, bytes]] = deque()
        self._stats: deque[bytes] = deque(maxlen=config.queue_size)
        self._wake = asyncio.Event()
        self._state_dirty = True
        self.connected = False
        self._outage_logged = ""
        self.counters = {
            "published": 0,
            "stats_dropped": 0,
            "events_dropped": 0,
            "connects": 0,
            "failed_connects": 0,
        }

    # -- from the daemon (never blocks) --------------------------------------------------

    def event(self, event: Event) -> None:
        self._events.append((event.kind, event_json(self.node, event.kind.value, event.fields)))
        limit = self.config.queue_size
        while len(self._events) > limit:  # drop the oldest event that is not about the link
            for index, (old_kind, _) in enumerate(self._events):
                if not old_kind.about_the_link:
                    del self._events[index]
                    self.counters["events_dropped"] += 1
                    break
            else:
                break  # only link-state events left: keep them all
        self._wake.set()

    def state_changed(self) -> None:
        self._state_dirty = True
        self._wake.set()

    def on_node_event(self, event: Event) -> None:
        self.event(event)
        if event.kind.about_the_link:
            self.state_changed()

    @property
    def queued(self) -> int:
        return len(self._events) + len(self._stats)

    # -- the publishing task ----------------------------------------------------------------

    def _client(self) -> aiomqtt.Client:
        will = aiomqtt.Will(f"{self.base}/availability", b"offline", qos=1, retain=True)
        return aiomqtt.Client(
            self.config.host,
            self.config.port,
            username=self.config.username or None,
            password=self.password,
            identifier=self.client_id,
            will=will,
            tls_context=self.tls,
            tls_insecure=self.config.tls_insecure if self.tls else None,
            keepalive=KEEPALIVE_S,
            timeout=CONNECT_TIMEOUT_S,
        )

    async def run(self) -> None:
        """Publish until cancelled; broker trouble is logged, never raised."""
        backoff = 1.0
        stats_task = asyncio.create_task(self._collect_stats(), name="telemetry stats")
        try:
            while True:
                try:
                    async with self._client() as client:
                        try:
                            await self._connected(client)
                            backoff = 1.0
                            await self._serve(client)
                        except asyncio.CancelledError:
                            await self._say_offline(client)
                            raise
                except aiomqtt.MqttError as exc:
                    self._disconnected(exc)
                self.connected = False
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self.config.reconnect_max_s)
        finally:
            stats_task.cancel()

    async def _connected(self, client: aiomqtt.Client) -> None:
        reraise_lost_cancel()  # connecting may have swallowed it
        self.connected = True
        self.counters["connects"] += 1
        if self._outage_logged:
            _LOGGER.warning("MQTT broker %s:%d reachable again", self.config.host, self.config.port)
            self._outage_logged = ""
        await self._publish(client, "availability", b"online", retain=True)
        if self.config.discovery:
            await client.subscribe(f"{self.config.discovery_prefix}/status")
            reraise_lost_cancel()
            await self._discovery(client)
        self._state_dirty = True

    async def _discovery(self, client: aiomqtt.Client) -> None:
        for topic, payload in discovery_messages(
            self.node,
            prefix=self.config.prefix,
            discovery_prefix=self.config.discovery_prefix,
            tag=self.tag,
        ):
            await client.publish(topic, payload, qos=self.config.qos, retain=True)

    async def _serve(self, client: aiomqtt.Client) -> None:
        listener = asyncio.create_task(self._listen(client), name="telemetry listen")
        try:
            while True:
                await self._flush(client)
                self._wake.clear()
                if listener.done():
                    listener.result()  # the connection broke: raise its MqttError
                    return
                waiter = asyncio.create_task(self._wake.wait())
                try:
                    await asyncio.wait({waiter, listener}, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    waiter.cancel()
        finally:
            listener.cancel()

    async def _say_offline(self, client: aiomqtt.Client) -> None:
        """A clean goodbye, wherever the cancel came (even as "online" went out): leaving
        with a clean disconnect drops the will, so nothing else would say it."""
        with contextlib.suppress(aiomqtt.MqttError, TimeoutError):
            await asyncio.wait_for(
                self._publish(client, "availability", b"offline", retain=True), 2
            )

    async def _listen(self, client: aiomqtt.Client) -> None:
        async for message in client.messages:  # Home Assistant's birth message
            if message.payload == b"online" and self.config.discovery:
                await self._discovery(client)
                self._state_dirty = True
                self._wake.set()

    async def _flush(self, client: aiomqtt.Client) -> None:
        if self._state_dirty:
            self._state_dirty = False
            await self._publish(
                client, "state", to_json(self.source.telemetry_state()), retain=self.config.retain
            )
        while self._events:
            _, payload = self._events[0]
            await self._publish(client, "event", payload, retain=False)
            self._events.popleft()
        while self._stats:
            await self._publish(client, "stats", self._stats[0], retain=False)
            self._stats.popleft()

    async def _publish(
        self, client: aiomqtt.Client, topic: str, payload: bytes, *, retain: bool
    ) -> None:
        await client.publish(f"{self.base}/{topic}", payload, qos=self.config.qos, retain=retain)
        self.counters["published"] += 1
        reraise_lost_cancel()

    async def _collect_stats(self) -> None:
        while True:
            await asyncio.sleep(self.config.stats_interval_s)
            if len(self._stats) == self._stats.maxlen:
                self.counters["stats_dropped"] += 1  # the oldest goes
            self._stats.append(to_json(self.source.telemetry_stats()))
            self._state_dirty = True  # uptime and since move on
            self._wake.set()

    def _disconnected(self, exc: aiomqtt.MqttError) -> None:
        self.counters["failed_connects"] += 0 if self.connected else 1
        cause = self._cause(exc)
        if cause != self._outage_logged:  # once per outage (and once per new cause)
            _LOGGER.error(
                "MQTT: %s; retrying with backoff up to %.0f s (data keeps flowing)",
                cause,
                self.config.reconnect_max_s,
            )
            self._outage_logged = cause

    def _cause(self, exc: aiomqtt.MqttError) -> str:
        where = f"broker {self.config.host}:{self.config.port}"
        rc = getattr(exc, "rc", None)
        code = getattr(rc, "value", rc)
        if code in AUTH_CODES:
            user = self.config.username or "(anonymous)"
            return f"{where} refused the credentials for user {user!r} ({exc})"
        text = str(exc)
        if isinstance(exc.__cause__, ssl.SSLError) or "SSL" in text or "certificate" in text:
            return f"TLS with {where} failed: {exc}"
        return f"{where} unreachable: {exc}" if not self.connected else f"lost {where}: {exc}"
