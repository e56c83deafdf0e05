"""The node: the link as the local API and telemetry see it (the link service facade).

It implements the API server's ``LinkService`` on top of the link driver,
which owns the connection and the daemon's one clock: sends wait for the
peer daemon's verdict, received messages go to the API server (whose answer
becomes the verdict), and link events become typed events for API clients
and telemetry. It also keeps the figures for ``status`` and ``stats``.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from rpilinkd import __version__
from rpilinkd.errors import RpilinkError, ShuttingDownError, error_for_code
from rpilinkd.events import Event, EventKind, LinkStatus
from rpilinkd.link import (
    PROTOCOL_VERSION,
    Connection,
    DeliveryFailed,
    EndpointsChanged,
    LinkDown,
    LinkUp,
    MessageDelivered,
    MessageReceived,
    PeerRefused,
    PeerRestarted,
)
from rpilinkd.link.busaccess import BusLost, RoleConflict, RoleDecided
from rpilinkd.service.looplag import LoopLag
from rpilinkd.stats import percentile

if TYPE_CHECKING:
    from rpilinkd.api.server import ApiServer
    from rpilinkd.service.linkdriver import LinkDriver

_LOGGER = logging.getLogger(__name__)
LATENCY_SAMPLES = 2000
STATS_CACHE_S = 0.1


class Node:
    def __init__(
        self,
        driver: LinkDriver,
        *,
        node: str,
        backend: str,
        line_rate_bps: float,
        sample_us: int | None,
        lend_info: Mapping[str, object] | None = None,
    ) -> None:
        self.driver = driver
        self.now = driver.now  # the one clock
        self.node, self.backend = node, backend
        self.lend_info = dict(lend_info or {})  # what a borrower of the pins needs to know
        self.line_rate_bps, self.sample_us = line_rate_bps, sample_us
        self.api: ApiServer | None = None
        self.listeners: list[Callable[[Event], None]] = []  # telemetry, ...
        self.closing = False
        self.started = self.state_since = self.now()
        self.role: str | None = None
        self._pending: dict[int, tuple[asyncio.Future[None], float]] = {}
        self.latencies: deque[float] = deque(maxlen=LATENCY_SAMPLES)
        self.refused = ""  # the last problem with the peer's hello
        self.name_clash = False  # the peer has our name
        self.loop_lag = LoopLag()
        self._stats_cache: tuple[float, dict[str, Any]] | None = None
        driver.on_event = self.on_event

    @property
    def connection(self) -> Connection:
        return self.driver.connection

    # -- LinkService, for the API server ------------------------------------------------

    @property
    def max_message(self) -> int:
        return self.connection.max_message

    def local_endpoints(self) -> dict[str, int]:
        return self.connection.endpoints.local

    def peer_endpoints(self) -> dict[str, int]:
        return dict(self.connection.endpoints.peer)

    def bind(self, port: int, name: str | None) -> None:
        self.connection.bind(port, name)
        self.driver.wake()

    def unbind(self, port: int) -> None:
        self.connection.unbind(port)
        self.driver.wake()

    def free_port(self) -> int:
        return self.connection.endpoints.free_port()

    def lend(self, seconds: float) -> Mapping[str, object]:
        """Let go of the pins for ``seconds`` at most (rpilink wiring-check borrows them)."""
        _LOGGER.warning("lending the pins for %.0f s at most", seconds)
        self.driver.pause(seconds)
        return {**self.lend_info, "seconds": seconds}

    def take_back(self) -> None:
        if self.driver.paused:
            self.driver.resume()

    def submit(self, port: int, data: bytes, *, src_port: int) -> asyncio.Future[None]:
        """Queue a message now; the future ends once the peer daemon accepted it, or
        with its refusal. Raises at once what the message itself is refused for."""
        if self.closing:
            raise ShuttingDownError("the daemon is stopping")
        now = self.now()
        message_id = self.connection.send(port, data, now, src_port=src_port)
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending[message_id] = (future, now)
        future.add_done_callback(lambda _: self._pending.pop(message_id, None))
        self.driver.end_hold()  # what a hold waited for (and a wake)
        return future

    # -- events from the link -------------------------------------------------------------

    def on_event(self, event: object, now: float) -> None:
        if isinstance(event, MessageDelivered):
            self._settle(event.message_id, None, now)
        elif isinstance(event, DeliveryFailed):
            exc = error_for_code(event.code)(f"message to port {event.port}: {event.reason}")
            self._settle(event.message_id, exc, now)
            self.publish(
                EventKind.DELIVERY_FAILED, port=event.port, code=event.code, reason=event.reason
            )
        elif isinstance(event, MessageReceived):
            verdict = self.api.deliver(event.port, event.src_port, event.data) if self.api else None
            if verdict is None and self.api is not None:
                self.connection.accept(event.message_id, now)
                hold = self.connection.config.reply_hold_ms / 1e3
                if hold and self.api.answers_at_once(event.port, hold):  # may ride this turn
                    self.driver.hold_turn(hold)
                else:  # e.g. a second message before the first's answer: a pipeline
                    self.driver.end_hold()
            else:
                self.connection.reject(event.message_id, verdict or "no_listener", now)
        elif isinstance(event, LinkUp):
            self.state_since = now
            _LOGGER.info(
                "link up with %s (role %s, session %d)", event.peer.node, self.role, event.session
            )
            self._check_name(event.peer.node)
            self.publish(
                EventKind.LINK_UP, peer=event.peer.node, role=self.role, peer_epoch=event.peer.epoch
            )
        elif isinstance(event, LinkDown):
            self.state_since = now
            resuming = " (messages in flight wait for the relink)" if event.resuming else ""
            _LOGGER.warning("link down: %s %s%s", event.reason.value, event.detail, resuming)
            self.publish(EventKind.LINK_DOWN, reason=event.reason.value, detail=event.detail)
        elif isinstance(event, PeerRefused):
            if event.problem != self.refused:
                _LOGGER.error(
                    "the peer's hello is refused: %s; the link stays down until the "
                    "peer's configuration is fixed",
                    event.problem,
                )
            self.refused = event.problem
        elif isinstance(event, PeerRestarted):
            self.publish(
                EventKind.PEER_RESTARTED, old_epoch=event.old_epoch, new_epoch=event.new_epoch
            )
        elif isinstance(event, EndpointsChanged):
            self.publish(EventKind.ENDPOINTS, peer=dict(event.endpoints))
        elif isinstance(event, RoleDecided):
            self.role = event.role.value
            self.publish(EventKind.ROLE_DECIDED, role=self.role)
        elif isinstance(event, RoleConflict):
            self.role = None
            self.publish(EventKind.ROLE_CONFLICT, message=event.message)
        elif isinstance(event, BusLost):
            self.role = None
            self.state_since = now
            self.publish(EventKind.BUS_LOST, reason=event.reason)

    def _check_name(self, peer: str) -> None:
        self.refused = ""
        clash = peer == self.connection.node
        if clash and not self.name_clash:
            _LOGGER.warning(
                "the peer is also called %r: give the nodes different names "
                "(node.name in the config, or scripts/install --node NAME) so "
                "logs, status and MQTT topics tell them apart",
                peer,
            )
        self.name_clash = clash

    def _settle(self, message_id: int, exc: RpilinkError | None, now: float) -> None:
        entry = self._pending.get(message_id)
        if entry is None or entry[0].done():
            return
        future, started = entry
        if exc is None:
            self.latencies.append(now - started)
            future.set_result(None)
        else:
            future.set_exception(exc)

    def publish(self, kind: EventKind, **fields: Any) -> None:
        event = Event(kind, fields)
        if self.api is not None:
            self.api.publish_event(event)
        for listener in self.listeners:
            listener(event)

    def shutdown(self) -> None:
        """Every send still waiting fails with ``shutting_down``."""
        self.closing = True
        for future, _ in list(self._pending.values()):
            if not future.done():
                future.set_exception(ShuttingDownError("the daemon is stopping"))

    # -- figures ------------------------------------------------------------------------------

    @property
    def link_state(self) -> LinkStatus:
        return self.driver.link_state

    def warnings(self) -> list[str]:
        if self.name_clash:
            return [
                f"the peer has the same node name ({self.node!r}): give each Pi its own "
                "(node.name, or scripts/install --node NAME)"
            ]
        return []

    def status(self) -> dict[str, Any]:
        connection, peer = self.connection, self.connection.peer
        state = self.link_state
        up = state is LinkStatus.UP
        now = self.now()
        return {
            "link": state.value,
            "pins_free": self.driver.pins_free,
            "reason": "" if up else self.driver.reason(self.refused),
            "warnings": self.warnings(),
            "role": self.role if up else None,
            "node": self.node,
            "peer": peer.node if peer and up else None,
            "peer_epoch": peer.epoch if peer and up else None,
            "epoch": connection.epoch,
            "session": connection.session if up else None,
            "protocol": PROTOCOL_VERSION,
            "version": __version__,
            "uptime_s": round(now - self.started, 3),
            "state_since_s": round(now - self.state_since, 3),
            "link_ups": connection.stats.link_ups,
            "max_message": self.max_message,
            "frame_payload": connection.frame_payload,
            "window": connection.config.window,
            "line_rate_Bps": round(self.line_rate_bps),
            "sample_us": self.sample_us,
            "backend": self.backend,
            "error_level": connection.stats.error_level.value,
        }

    def stats(self) -> dict[str, Any]:
        """The figures; computed at most every ``STATS_CACHE_S`` (a flood of stats
        requests costs one computation per interval, not one each)."""
        now = self.now()
        if self._stats_cache is None or now - self._stats_cache[0] >= STATS_CACHE_S:
            self._stats_cache = (now, self._compute_stats())
        return self._stats_cache[1]

    def _compute_stats(self) -> dict[str, Any]:
        latencies = list(self.latencies)
        figures: dict[str, Any] = {**self.connection.stats.snapshot()}
        figures["pending_sends"] = len(self._pending)
        for name, fraction in (("p50", 0.5), ("p90", 0.9), ("p99", 0.99)):
            value = percentile(latencies, fraction)
            figures[f"latency_{name}_ms"] = None if value is None else round(value * 1e3, 3)
        figures.update(self.driver.figures())
        figures["loop_lag_ms"] = {
            "recent": self.loop_lag.recent_ms,
            "worst": self.loop_lag.worst_ms,
        }
        return figures
