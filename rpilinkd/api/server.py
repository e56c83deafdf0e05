"""The local API server: a stream Unix socket, one session (session.py) per client.

Limits keep a hostile or slow client from hurting the others, the link or the
daemon's memory: at most ``max_clients`` sessions, each bounded (session.py);
a client that does not read gets ``queue_full`` verdicts for its ports and
never blocks the link or other clients. Requests are answered by the handler
of their op, from a table that a test checks against the schema.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import stat
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Protocol

from rpilinkd.api.protocol import API_VERSION, Request, error, ok
from rpilinkd.api.session import READ_CHUNK, Session
from rpilinkd.config import ApiConfig
from rpilinkd.errors import (
    ApiError,
    NameInUseError,
    NotBoundError,
    PortInUseError,
    ShuttingDownError,
    TooManyClientsError,
)
from rpilinkd.events import Event

_LOGGER = logging.getLogger(__name__)
REPLY_BUDGET_BYTES = 1024 * 1024  # replies a client may leave unread (beyond one push)
LEND_S = 30.0  # how long a lend lasts when the borrower does not say


class LinkService(Protocol):
    """What the server needs from the daemon (rpilinkd.service.node implements it)."""

    @property
    def max_message(self) -> int: ...
    def status(self) -> Mapping[str, object]: ...
    def stats(self) -> Mapping[str, object]: ...
    def local_endpoints(self) -> Mapping[str, int]: ...
    def peer_endpoints(self) -> Mapping[str, int]: ...
    def bind(self, port: int, name: str | None) -> None: ...
    def unbind(self, port: int) -> None: ...
    def free_port(self) -> int: ...
    def lend(self, seconds: float) -> Mapping[str, object]: ...
    def take_back(self) -> None: ...
    def submit(self, port: int, data: bytes, *, src_port: int) -> asyncio.Future[None]: ...


Answer = dict[str, Any] | None  # None: the reply comes later (a send)
Handler = Callable[["ApiServer", Session, Request], Answer]


class ApiServer:
    def __init__(
        self, config: ApiConfig, service: LinkService, *, node: str, max_message: int
    ) -> None:
        self.config, self.service, self.node = config, service, node
        self.max_message = max_message  # this daemon's own limit (link.max_message)
        self.sessions: set[Session] = set()
        self.owners: dict[int, Session] = {}  # port -> the session that bound it
        self.lender: Session | None = None  # the client that borrowed the pins
        self.closing = False
        self.counters = dict.fromkeys(
            (
                "clients_total",
                "clients_refused",
                "bad_requests",
                "slow_clients_cut",
                "messages_in",
                "messages_out",
                "queue_full",
                "events_dropped",
            ),
            0,
        )
        self._server: asyncio.AbstractServer | None = None
        self._number = 0
        self._bound_path: Path | None = None

    @property
    def queue_bytes(self) -> int:
        """Pushes queued for one client, in bytes."""
        return max(4 * 1024 * 1024, 2 * self.max_message)

    @property
    def reply_budget(self) -> int:
        """Bytes a client may leave unread in its socket before it is cut off."""
        return REPLY_BUDGET_BYTES + self.max_message + 1024  # one push may be under way

    def count(self, key: str, n: int = 1) -> None:
        self.counters[key] += n

    # -- life cycle ---------------------------------------------------------------------

    async def start(self, sock: socket.socket | None = None) -> None:
        """Serve on ``sock`` (from systemd) or bind ``config.socket`` ourselves."""
        if sock is None:
            sock = self._listen(Path(self.config.socket))
        self._server = await asyncio.start_unix_server(
            self._accept, sock=sock, limit=READ_CHUNK, backlog=max(128, self.config.max_clients)
        )  # asyncio listens again with its own backlog (100) unless told

    def _listen(self, path: Path) -> socket.socket:
        if path.exists():
            if not stat.S_ISSOCK(path.stat().st_mode):
                raise OSError(f"{path} exists and is not a socket")
            probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                probe.connect(str(path))
            except ConnectionRefusedError:
                path.unlink()  # a stale socket from a daemon that died
            else:
                raise OSError(f"another daemon is serving on {path}")
            finally:
                probe.close()
        path.parent.mkdir(parents=True, exist_ok=True)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old_umask = os.umask(0o777 & ~self.config.socket_mode)  # never a moment too open
        try:
            sock.bind(str(path))
        finally:
            os.umask(old_umask)
        os.chmod(path, self.config.socket_mode)  # a umask can only take bits away
        sock.listen(max(128, self.config.max_clients))  # a burst of clients may all connect
        self._bound_path = path
        return sock

    async def close(self) -> None:
        """Stop accepting; pending sends answer ``shutting_down``; sessions close."""
        self.closing = True
        if self._server is not None:
            self._server.close()
        await asyncio.gather(*(s.close() for s in list(self.sessions)), return_exceptions=True)
        if self._bound_path is not None:
            with contextlib.suppress(FileNotFoundError):
                self._bound_path.unlink()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._number += 1
        self.count("clients_total")
        session = Session(self, self._number, reader, writer)
        if len(self.sessions) >= self.config.max_clients or self.closing:
            self.count("clients_refused")
            exc = (
                ShuttingDownError("the daemon is stopping")
                if self.closing
                else TooManyClientsError(f"the daemon serves {self.config.max_clients} clients")
            )
            session.reply(error(None, exc))
            await session.close()
            return
        self.sessions.add(session)
        await session.serve()

    def forget(self, session: Session) -> None:
        self.sessions.discard(session)
        if self.lender is session:  # a borrower that went away gives the pins back
            self.lender = None
            self.service.take_back()
        for port in list(session.ports):
            self._release(session, port)

    # -- requests -----------------------------------------------------------------------

    def answer(self, session: Session, request: Request) -> Answer:
        """The reply to a parsed request, from its op's handler (parse_request knows the op)."""
        return HANDLERS[request.op](self, session, request)

    def _hello(self, session: Session, request: Request) -> Answer:
        session.client = str(request.get("client", ""))
        return ok(request.id, api=API_VERSION, node=self.node, max_message=self.service.max_message)

    def _ping(self, session: Session, request: Request) -> Answer:
        return ok(request.id)

    def _bind(self, session: Session, request: Request) -> Answer:
        return ok(request.id, port=self._bind_port(session, request))

    def _unbind(self, session: Session, request: Request) -> Answer:
        port = request.args["port"]
        if self.owners.get(port) is not session:
            raise NotBoundError(f"port {port} is not bound by this client")
        self._release(session, port)
        return ok(request.id, port=port)

    def _send(self, session: Session, request: Request) -> Answer:
        session.start_send(request)
        return None

    def _status(self, session: Session, request: Request) -> Answer:
        return ok(request.id, **self.service.status())

    def _stats(self, session: Session, request: Request) -> Answer:
        return ok(request.id, **self.service.stats(), api=self.snapshot())

    def _endpoints(self, session: Session, request: Request) -> Answer:
        return ok(
            request.id,
            peer=dict(self.service.peer_endpoints()),
            local=dict(self.service.local_endpoints()),
        )

    def _lend(self, session: Session, request: Request) -> Answer:
        if self.lender is not None and self.lender is not session:
            raise PortInUseError("the pins are lent to another client already")
        self.lender = session
        return ok(request.id, **self.service.lend(float(request.get("seconds", LEND_S))))

    def _take_back(self, session: Session, request: Request) -> Answer:
        if self.lender is not session:
            raise NotBoundError("this client has not borrowed the pins")
        self.lender = None
        self.service.take_back()
        return ok(request.id)

    def _subscribe(self, session: Session, request: Request) -> Answer:
        session.subscribed = bool(request.get("events", True))
        return ok(request.id, events=session.subscribed)

    def _bind_port(self, session: Session, request: Request) -> int:
        name = request.get("name")
        port = request.get("port")
        if port is None and name is None:
            raise ApiError("bind: give a 'port', a 'name', or both")
        if port is None:  # a name alone gets a dynamic port, from 1024 up
            port = self.service.free_port()
        if port in self.owners:
            raise PortInUseError(f"port {port} is already bound by another client")
        if name is not None and name in self.service.local_endpoints():
            raise NameInUseError(f"the name {name!r} is already bound")
        self.service.bind(port, name)
        self.owners[port] = session
        session.ports.add(port)
        return int(port)

    def _release(self, session: Session, port: int) -> None:
        session.ports.discard(port)
        if self.owners.get(port) is session:
            del self.owners[port]
            self.service.unbind(port)

    # -- from the link ----------------------------------------------------------------------

    def deliver(self, port: int, src_port: int, data: bytes) -> str | None:
        """A message for ``port`` arrived: None if queued to its client, else a stable code."""
        session = self.owners.get(port)
        if session is None:
            return "no_listener"
        if self.closing:
            return "shutting_down"
        if not session.push({"op": "msg", "port": port, "from": src_port, "data": data}):
            self.count("queue_full")
            return "queue_full"
        session.message_pushed()
        self.count("messages_in")
        return None

    def answers_at_once(self, port: int, within: float) -> bool:
        """Whether the client of ``port`` answered the last message it got within
        ``within`` seconds (a request-reply client), so its next answer may be held for."""
        session = self.owners.get(port)
        return session is not None and session.reply_delay <= within

    def publish_event(self, event: Event) -> None:
        for session in list(self.sessions):
            if session.subscribed and not session.push({"op": "event", **event.payload()}):
                self.count("events_dropped")

    def snapshot(self) -> dict[str, int]:
        queued = sum(s.queued_bytes for s in self.sessions)
        return {
            **self.counters,
            "clients": len(self.sessions),
            "bound_ports": len(self.owners),
            "queued_bytes": queued,
        }


#: op -> handler; every op of the schema has exactly one (a test checks)
HANDLERS: dict[str, Handler] = {
    "hello": ApiServer._hello,
    "ping": ApiServer._ping,
    "bind": ApiServer._bind,
    "unbind": ApiServer._unbind,
    "send": ApiServer._send,
    "status": ApiServer._status,
    "stats": ApiServer._stats,
    "endpoints": ApiServer._endpoints,
    "subscribe": ApiServer._subscribe,
    "lend": ApiServer._lend,
    "take_back": ApiServer._take_back,
}
