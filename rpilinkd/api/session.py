"""One API client's connection: requests in, replies and pushes out, every part bounded.

* **Fair**: requests are answered in turns of at most ``REQUESTS_PER_TURN``;
  between turns the session yields to the event loop, so a client that
  pipelines 100,000 requests shares the loop with the link and other clients
  instead of holding it. Reading stops while a chunk is being answered, so a
  flooding client is slowed by its own socket (TCP backpressure).
* **Bounded**: a request is decoded within the schema's limits (protocol.py);
  pushes (messages, events) wait in a queue bounded by count and bytes. A client
  that pipelines faster than it reads is **paused**: no more of its requests are
  answered while more than ``REPLY_PAUSE_BYTES`` of replies wait for it (a slow
  reader is slowed, not cut: a loaded machine starves readers for a while). One
  that reads none of them for ``STALLED_S``, or lets them reach ``reply_budget``
  bytes (replies to sends come while paused), is **aborted** (not politely closed,
  which would wait for the unread bytes forever) and its slot, descriptor and
  memory are free at once.
* **Not held forever**: a request begun and left incomplete for ``idle_s`` ends
  the connection (a client idle *between* requests, like a listener, stays).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import math
import time
from collections import deque
from collections.abc import Mapping
from typing import Any, Protocol

from rpilinkd.api.protocol import Decoder, Request, error, ok, pack, parse_request
from rpilinkd.config import ApiConfig
from rpilinkd.errors import (
    ApiError,
    MessageTooLargeError,
    QueueFullError,
    RpilinkError,
    ShuttingDownError,
)

_LOGGER = logging.getLogger(__name__)
INTERNAL = RpilinkError("internal error in the daemon (its log has the details)")
READ_CHUNK = 64 * 1024
REQUESTS_PER_TURN = 16
REPLY_PAUSE_BYTES = 64 * 1024  # unread replies past which a client's requests wait
STALLED_S = 2.0  # a paused client that reads none of its replies this long is cut
MAX_PENDING_SENDS = 64  # per client
LINGER_S = 2.0  # after refusing garbage, how long to swallow the rest of it


class SendService(Protocol):
    def submit(self, port: int, data: bytes, *, src_port: int) -> asyncio.Future[None]: ...


class SessionOwner(Protocol):
    """What a session needs from its server (server.py's ApiServer)."""

    config: ApiConfig
    closing: bool
    max_message: int

    @property
    def service(self) -> SendService: ...
    @property
    def reply_budget(self) -> int: ...
    @property
    def queue_bytes(self) -> int: ...
    def count(self, key: str, n: int = 1) -> None: ...
    def answer(self, session: Session, request: Request) -> dict[str, Any] | None: ...
    def forget(self, session: Session) -> None: ...


class Session:
    def __init__(
        self,
        server: SessionOwner,
        number: int,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> None:
        self.server, self.number = server, number
        self.reader, self.writer = reader, writer
        self.ports: set[int] = set()
        self.subscribed = False
        self.client = ""
        self.queued_bytes = 0  # packed bytes of pushes waiting for the writer
        #: seconds from the last message pushed to this client to its next send (inf: a
        #: message went unanswered): a client that answers at once gets its turn held
        self.reply_delay = math.inf
        self._pushed_at: float | None = None  # a message pushed and not yet answered
        self._sends: set[asyncio.Future[None]] = set()
        self._pushes: deque[bytes] = deque()
        self._pushed = asyncio.Event()
        self._cut = False
        writer.transport.set_write_buffer_limits(high=REPLY_PAUSE_BYTES)  # drain() waits past it
        self._writer_task = asyncio.create_task(self._write_pushes(), name=f"api push {number}")

    # -- output ---------------------------------------------------------------------

    def reply(self, message: Mapping[str, Any]) -> None:
        if self._cut or self.writer.is_closing():
            return
        data = pack(message)
        if self.writer.transport.get_write_buffer_size() + len(data) > self.server.reply_budget:
            self.abort("does not read its replies")
            return
        self.writer.write(data)

    def abort(self, why: str) -> None:
        """Drop the connection now: no waiting for a client that does not read."""
        if self._cut:
            return
        self._cut = True
        self.server.count("slow_clients_cut")
        _LOGGER.warning("API client %d %s; disconnecting it", self.number, why)
        self.writer.transport.abort()
        self._release_pushes()

    def push(self, message: Mapping[str, Any]) -> bool:
        """Queue a push (a message or an event); False if the queue is full."""
        data = pack(message)
        full = len(self._pushes) >= self.server.config.client_queue or (
            self.queued_bytes and self.queued_bytes + len(data) > self.server.queue_bytes
        )
        if full or self._cut:
            return False
        self.queued_bytes += len(data)
        self._pushes.append(data)
        self._pushed.set()
        return True

    def message_pushed(self) -> None:
        """A message went to this client: it may answer it (see :attr:`reply_delay`)."""
        if self._pushed_at is not None:  # the one before went unanswered
            self.reply_delay = math.inf
        self._pushed_at = time.monotonic()

    def _release_pushes(self) -> None:
        self._pushes.clear()
        self.queued_bytes = 0

    async def _write_pushes(self) -> None:
        with contextlib.suppress(ConnectionError):
            while True:
                await self._pushed.wait()
                while self._pushes and not self._cut:
                    data = self._pushes.popleft()
                    self.queued_bytes -= len(data)  # the number it was counted with
                    self.writer.write(data)
                    await self.writer.drain()  # a slow reader slows only this task
                self._pushed.clear()

    # -- input -------------------------------------------------------------------------

    async def serve(self) -> None:
        config = self.server.config
        decoder = Decoder(config.max_request, self.server.max_message)
        try:
            while not self._cut:
                timeout = config.idle_s if decoder.pending else None
                try:
                    async with asyncio.timeout(timeout):
                        chunk = await self.reader.read(READ_CHUNK)
                except TimeoutError:
                    raise ApiError(
                        f"a request stayed incomplete for {config.idle_s:g} s (api.idle_s)"
                    ) from None
                if not chunk:
                    break
                for count, obj in enumerate(decoder.feed(chunk), 1):
                    if not self._handle(obj):
                        await self._linger()
                        return
                    if count % REQUESTS_PER_TURN == 0:
                        await asyncio.sleep(0)  # the link and other clients go first
                        await self._wait_for_reader()
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

    async def _wait_for_reader(self) -> None:
        """Answer nothing more while more than REPLY_PAUSE_BYTES of replies are unread
        (the client's requests wait in its socket meanwhile); cut a client that reads
        none of them for STALLED_S."""
        transport = self.writer.transport
        while not self._cut and (unread := transport.get_write_buffer_size()) > REPLY_PAUSE_BYTES:
            try:
                async with asyncio.timeout(STALLED_S):
                    await self.writer.drain()
            except TimeoutError:
                if transport.get_write_buffer_size() >= unread:
                    self.abort(f"read none of its replies for {STALLED_S:g} s")

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

    def _handle(self, obj: object) -> bool:
        """Answer one request; False when it had no usable id (the connection then ends)."""
        request_id = obj.get("id") if isinstance(obj, dict) else None
        reply_id = request_id if isinstance(request_id, int) and request_id >= 0 else None
        try:
            request = parse_request(obj)
            answer = self.server.answer(self, request)
            if answer is not None:
                self.reply(answer)
        except RpilinkError as exc:
            if isinstance(exc, ApiError):
                self.server.count("bad_requests")
            self.reply(error(reply_id, exc))
        except Exception:  # a bug of ours: answer, log it, keep serving
            _LOGGER.exception("internal error answering %r", obj)
            self.reply(error(reply_id, INTERNAL))
        return reply_id is not None

    def start_send(self, request: Request) -> None:
        """Queue the message now (no task: the link hears of it this turn); the reply
        goes out when the peer answers."""
        if self.server.closing:
            raise ShuttingDownError("the daemon is stopping")
        if len(self._sends) >= MAX_PENDING_SENDS:
            raise QueueFullError(f"more than {MAX_PENDING_SENDS} sends are waiting for the peer")
        if self._pushed_at is not None:  # an answer to the message pushed last
            self.reply_delay, self._pushed_at = time.monotonic() - self._pushed_at, None
        src_port = request.get("from", min(self.ports, default=0))
        sent = self.server.service.submit(
            request.args["port"], request.args["data"], src_port=src_port
        )
        self._sends.add(sent)
        sent.add_done_callback(functools.partial(self._sent, request))

    def _sent(self, request: Request, sent: asyncio.Future[None]) -> None:
        self._sends.discard(sent)
        if sent.cancelled():
            self.reply(error(request.id, ShuttingDownError("the daemon is stopping")))
        elif isinstance(exc := sent.exception(), RpilinkError):
            self.reply(error(request.id, exc))
        elif exc is not None:
            _LOGGER.error(
                "internal error sending to port %s", request.args.get("port"), exc_info=exc
            )
            self.reply(error(request.id, INTERNAL))
        else:
            self.server.count("messages_out")
            self.reply(ok(request.id))

    async def close(self) -> None:
        for task in list(self._sends):
            task.cancel()
        if self._sends:
            await asyncio.gather(*self._sends, return_exceptions=True)
        self._writer_task.cancel()
        await asyncio.gather(self._writer_task, return_exceptions=True)
        self._release_pushes()
        self.server.forget(self)
        with contextlib.suppress(ConnectionError, RuntimeError):
            self.writer.close()
