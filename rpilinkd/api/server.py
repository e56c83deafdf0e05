"""The local API server: a stream Unix socket, one session per client.

Limits keep a hostile or slow client from hurting the others or the daemon:
at most ``max_clients`` sessions; a request larger than ``max_request`` bytes
ends its session; each session has a bounded queue of pushed messages (by
count and bytes) drained by its own writer task, so a client that does not
read gets ``queue_full`` verdicts for its ports and never blocks the link or
other clients; a client whose replies pile up past ``HARD_BUFFER_BYTES`` is
disconnected (logged and counted).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

from rpilinkd.api.protocol import API_VERSION, Decoder, Request, error, ok, pack, parse_request
from rpilinkd.config import ApiConfig
from rpilinkd.errors import (
    ApiError,
    MessageTooLargeError,
    NameInUseError,
    NotBoundError,
    PortInUseError,
    QueueFullError,
    RpilinkError,
    ShuttingDownError,
    TooManyClientsError,
)  # fmt: skip

_LOGGER = logging.getLogger(__name__)
INTERNAL = RpilinkError("internal error in the daemon (its log has the details)")
READ_CHUNK = 64 * 1024
HARD_BUFFER_BYTES = 8 * 1024 * 1024  # replies a client does not read
MAX_PENDING_SENDS = 64  # per client
LINGER_S = 2.0  # after refusing garbage, how long to swallow the rest of it


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
    async def send(self, port: int, data: bytes, *, src_port: int) -> None: ...


class Session:
    def __init__(self, server: ApiServer, number: int, reader: asyncio.StreamReader,
                 writer: asyncio.StreamWriter) -> None:  # fmt: skip
        self.server, self.number = server, number
        self.reader, self.writer = reader, writer
        self.ports: set[int] = set()
        self.subscribed = False
        self.client = ""
        self._sends: set[asyncio.Task[None]] = set()
        self._pushes: asyncio.Queue[bytes] = asyncio.Queue()
        self.queued_bytes = 0
        self._writer_task = asyncio.create_task(self._write_pushes(), name=f"api push {number}")

    # -- output ---------------------------------------------------------------------

    def reply(self, message: Mapping[str, Any]) -> None:
        if self.writer.is_closing():
            return
        if self.writer.transport.get_write_buffer_size() > HARD_BUFFER_BYTES:
            self.server.count("slow_clients_cut")
            _LOGGER.warning("API client %d does not read its replies; disconnecting", self.number)
            self.writer.close()
            return
        self.writer.write(pack(message))

    def push(self, message: Mapping[str, Any], size: int) -> bool:
        """Queue a push (a message or an event); False if the queue is full."""
        limit = self.server.queue_bytes
        if self._pushes.qsize() >= self.server.config.client_queue or (
            self.queued_bytes and self.queued_bytes + size > limit
        ):
            return False
        self.queued_bytes += size
        self._pushes.put_nowait(pack(message))
        return True

    async def _write_pushes(self) -> None:
        with contextlib.suppress(ConnectionError):
            while True:
                data = await self._pushes.get()
                self.writer.write(data)
                await self.writer.drain()  # a slow reader slows only this task
                self.queued_bytes = max(0, self.queued_bytes - len(data))

    # -- input -------------------------------------------------------------------------

    async def serve(self) -> None:
        decoder = Decoder(self.server.config.max_request)
        try:
            while chunk := await self.reader.read(READ_CHUNK):
                for obj in decoder.feed(chunk):
                    self._handle(obj)
            if self._sends:  # half-closed: answer what was asked, then go
                await asyncio.wait(set(self._sends))
        except (ApiError, MessageTooLargeError) as exc:  # no way to find the next request
            self.server.count("bad_requests")
            self.reply(error(None, exc))
            await self._linger()
        except ConnectionError:
            pass
        finally:
            await self.close()

    async def _linger(self) -> None:
        """Close gently: stop writing, swallow what the client still sends, briefly.

        Closing a socket with unread input makes the kernel reset the connection,
        and the client might then lose the error we just sent.
        """
        with contextlib.suppress(OSError, RuntimeError):
            if self.writer.can_write_eof():
                self.writer.write_eof()
        with contextlib.suppress(OSError, TimeoutError):
            async with asyncio.timeout(LINGER_S):
                while await self.reader.read(READ_CHUNK):
                    pass

    def _handle(self, obj: object) -> None:
        request_id = obj.get("id") if isinstance(obj, dict) else None
        reply_id = request_id if isinstance(request_id, int) else None  # for errors
        try:
            request = parse_request(obj)
            if request.op == "send":
                self._start_send(request)
            else:
                self.reply(self.server.answer(self, request))
        except RpilinkError as exc:
            if isinstance(exc, ApiError):
                self.server.count("bad_requests")
            self.reply(error(reply_id, exc))
        except Exception:  # a bug of ours: answer, log it, keep serving
            _LOGGER.exception("internal error answering %r", obj)
            self.reply(error(reply_id, INTERNAL))

    def _start_send(self, request: Request) -> None:
        if self.server.closing:
            raise ShuttingDownError("the daemon is stopping")
        if len(self._sends) >= MAX_PENDING_SENDS:
            raise QueueFullError(f"more than {MAX_PENDING_SENDS} sends are waiting for the peer")
        task = asyncio.create_task(self._send(request), name=f"api send {self.number}")
        self._sends.add(task)
        task.add_done_callback(self._sends.discard)

    async def _send(self, request: Request) -> None:
        src_port = request.get("from", min(self.ports, default=0))
        try:
            await self.server.service.send(request.args["port"], request.args["data"],
                                           src_port=src_port)  # fmt: skip
            self.server.count("messages_out")
            self.reply(ok(request.id))
        except RpilinkError as exc:
            self.reply(error(request.id, exc))
        except Exception:
            _LOGGER.exception("internal error sending to port %s", request.args.get("port"))
            self.reply(error(request.id, INTERNAL))
        except asyncio.CancelledError:
            self.reply(error(request.id, ShuttingDownError("the daemon is stopping")))
            raise

    async def close(self) -> None:
        for task in list(self._sends):
            task.cancel()
        if self._sends:
            await asyncio.gather(*self._sends, return_exceptions=True)
        self._writer_task.cancel()
        await asyncio.gather(self._writer_task, return_exceptions=True)
        self.server.forget(self)
        with contextlib.suppress(ConnectionError, RuntimeError):
            self.writer.close()


class ApiServer:
    def __init__(self, config: ApiConfig, service: LinkService, *, node: str) -> None:
        self.config, self.service, self.node = config, service, node
        self.sessions: set[Session] = set()
        self.owners: dict[int, Session] = {}  # port -> the session that bound it
        self.closing = False
        self.counters = dict.fromkeys(
            ("clients_total", "clients_refused", "bad_requests", "slow_clients_cut",
             "messages_in", "messages_out", "queue_full", "events_dropped"), 0,
        )  # fmt: skip
        self._server: asyncio.AbstractServer | None = None
        self._number = 0
        self._bound_path: Path | None = None

    @property
    def queue_bytes(self) -> int:
        return max(4 * 1024 * 1024, 2 * self.service.max_message)

    def count(self, key: str, n: int = 1) -> None:
        self.counters[key] += n

    # -- life cycle ---------------------------------------------------------------------

    async def start(self, sock: socket.socket | None = None) -> None:
        """Serve on ``sock`` (from systemd) or bind ``config.socket`` ourselves."""
        if sock is None:
            sock = self._bind(Path(self.config.socket))
        self._server = await asyncio.start_unix_server(
            self._accept, sock=sock, limit=READ_CHUNK, backlog=max(128, self.config.max_clients)
        )  # asyncio listens again with its own backlog (100) unless told

    def _bind(self, path: Path) -> socket.socket:
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
        sock.bind(str(path))
        os.chmod(path, self.config.socket_mode)
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
            exc = (ShuttingDownError("the daemon is stopping") if self.closing else
                   TooManyClientsError(f"the daemon serves {self.config.max_clients} clients"))
            session.reply(error(None, exc))  # fmt: skip
            await session.close()
            return
        self.sessions.add(session)
        await session.serve()

    def forget(self, session: Session) -> None:
        self.sessions.discard(session)
        for port in list(session.ports):
            self._release(session, port)

    # -- requests -----------------------------------------------------------------------

    def answer(self, session: Session, request: Request) -> dict[str, Any]:
        op = request.op
        if op == "hello":
            session.client = str(request.get("client", ""))
            return ok(request.id, api=API_VERSION, node=self.node,
                      max_message=self.service.max_message)  # fmt: skip
        if op == "ping":
            return ok(request.id)
        if op == "bind":
            return ok(request.id, port=self._bind_port(session, request))
        if op == "unbind":
            port = request.args["port"]
            if self.owners.get(port) is not session:
                raise NotBoundError(f"port {port} is not bound by this client")
            self._release(session, port)
            return ok(request.id, port=port)
        if op == "status":
            return ok(request.id, **self.service.status())
        if op == "stats":
            return ok(request.id, **self.service.stats(), api=self.snapshot())
        if op == "endpoints":
            return ok(request.id, peer=dict(self.service.peer_endpoints()),
                      local=dict(self.service.local_endpoints()))  # fmt: skip
        session.subscribed = bool(request.get("events", True))  # subscribe
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
        if not session.push({"op": "msg", "port": port, "from": src_port, "data": data}, len(data)):
            self.count("queue_full")
            return "queue_full"
        self.count("messages_in")
        return None

    def publish_event(self, event: Mapping[str, Any]) -> None:
        for session in list(self.sessions):
            if session.subscribed and not session.push({"op": "event", **event}, 256):
                self.count("events_dropped")

    def snapshot(self) -> dict[str, int]:
        queued = sum(s.queued_bytes for s in self.sessions)
        return {**self.counters, "clients": len(self.sessions), "bound_ports": len(self.owners),
                "queued_bytes": queued}  # fmt: skip
