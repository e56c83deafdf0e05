"""The async client of the local API.

::

    async with Client() as client:                 # /run/rpilink.sock, or $RPILINK_SOCKET
        await client.bind(7)
        await client.send(7, b"hello")              # returns once the peer daemon took it
        async for message in client.messages():
            print(message.port, message.data)

Errors come back as the classes of :mod:`rpilinkd.errors`, chosen by the
stable code the daemon sends (``NoListenerError``, ``LinkDownError``, ...).
A connection the daemon closes raises ``ConnectionError``.
"""

from __future__ import annotations

import asyncio
import itertools
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self

import msgpack

from rpilinkd.errors import RpilinkError, error_for_code
from rpilinkd.streams import close_stream

DEFAULT_SOCKET = "/run/rpilink.sock"


def default_socket() -> str:
    return os.environ.get("RPILINK_SOCKET") or DEFAULT_SOCKET


@dataclass(frozen=True)
class Message:
    port: int
    src_port: int
    data: bytes


class Client:
    def __init__(
        self, path: str | None = None, *, name: str = "rpilinkd.client", timeout: float = 60.0
    ) -> None:
        self.path = path or default_socket()
        self.name = name
        self.timeout = timeout
        self.node = ""
        self.max_message = 0
        self._ids = itertools.count(1)
        self._replies: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._messages: asyncio.Queue[Message | None] = asyncio.Queue()
        self._events: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()
        self._writer: asyncio.StreamWriter | None = None
        self._reader_task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Self:
        await self.connect()
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def connect(self) -> None:
        """Raises ConnectionError (e.g. FileNotFoundError) when the daemon is not there."""
        reader, self._writer = await asyncio.open_unix_connection(self.path)
        self._reader_task = asyncio.create_task(self._read(reader), name="rpilink client")
        hello = await self.request("hello", client=self.name)
        self.node, self.max_message = hello["node"], hello["max_message"]

    @property
    def closed(self) -> bool:
        """Whether the connection is gone (closed here, or by the daemon)."""
        return self._reader_task is None or self._reader_task.done()

    async def close(self) -> None:
        writer, reader = self._writer, self._reader_task
        self._writer = self._reader_task = None
        await close_stream(writer, reader)

    async def _read(self, reader: asyncio.StreamReader) -> None:
        unpacker = msgpack.Unpacker(raw=False, max_buffer_size=64 * 1024 * 1024)
        try:
            while chunk := await reader.read(1 << 16):
                unpacker.feed(chunk)
                for obj in unpacker:
                    self._dispatch(obj)
        finally:
            for future in self._replies.values():
                if not future.done():
                    future.set_exception(ConnectionError("the daemon closed the connection"))
            self._messages.put_nowait(None)
            self._events.put_nowait(None)

    def _dispatch(self, obj: dict[str, Any]) -> None:
        request_id = obj.get("id")
        if isinstance(request_id, int) and request_id in self._replies:
            future = self._replies.pop(request_id)
            if not future.done():
                future.set_result(obj)
        elif obj.get("op") == "msg":
            self._messages.put_nowait(Message(obj["port"], obj.get("from", 0), obj["data"]))
        elif obj.get("op") == "event":
            self._events.put_nowait(obj)
        elif obj.get("ok") is False:  # an error without an id: the daemon refused us
            error = error_for_code(obj.get("code", ""))(obj.get("message", ""))
            for future in self._replies.values():
                if not future.done():
                    future.set_exception(error)

    # -- requests -----------------------------------------------------------------------

    async def request(self, op: str, **fields: Any) -> dict[str, Any]:
        """Send a request, wait for its reply; raises the error class of its code."""
        if self._writer is None or self.closed:  # no reply could ever come
            raise ConnectionError(
                "not connected" if self._writer is None else "the daemon closed the connection"
            )
        request_id = next(self._ids)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._replies[request_id] = future
        self._writer.write(msgpack.packb({"op": op, "id": request_id, **fields}, use_bin_type=True))
        try:
            async with asyncio.timeout(self.timeout):
                reply = await future
        finally:
            self._replies.pop(request_id, None)
        if not reply.get("ok"):
            raise error_for_code(reply.get("code", ""))(reply.get("message", "request failed"))
        return reply

    async def bind(self, port: int | None = None, name: str | None = None) -> int:
        """Receive messages for ``port`` (and/or announce ``name``); returns the port."""
        fields: dict[str, Any] = {}
        if port is not None:
            fields["port"] = port
        if name is not None:
            fields["name"] = name
        return int((await self.request("bind", **fields))["port"])

    async def unbind(self, port: int) -> None:
        await self.request("unbind", port=port)

    async def send(self, port: int, data: bytes, *, from_port: int | None = None) -> None:
        """Send ``data`` to the peer's ``port``; returns once the peer daemon accepted it.

        Raises:
            NoListenerError: nobody bound that port on the peer.
            LinkDownError: the link is not up.
            MessageTooLargeError: ``data`` is longer than ``max_message``.
            QueueFullError: the peer's client is not keeping up.
            DeliveryError, PeerRestartedError: not confirmed by the peer.
            ShuttingDownError: this daemon is stopping.
        """
        fields: dict[str, Any] = {"port": port, "data": bytes(data)}
        if from_port is not None:
            fields["from"] = from_port
        await self.request("send", **fields)

    async def status(self) -> dict[str, Any]:
        return _payload(await self.request("status"))

    async def stats(self) -> dict[str, Any]:
        return _payload(await self.request("stats"))

    async def endpoints(self) -> dict[str, Any]:
        return _payload(await self.request("endpoints"))

    async def subscribe(self, events: bool = True) -> None:
        await self.request("subscribe", events=events)

    # -- pushes -------------------------------------------------------------------------

    async def receive(self, timeout: float | None = None) -> Message:
        """The next message for any port this client bound."""
        async with asyncio.timeout(timeout):
            message = await self._messages.get()
        if message is None:
            raise ConnectionError("the daemon closed the connection")
        return message

    async def messages(self) -> AsyncIterator[Message]:
        while True:
            message = await self._messages.get()
            if message is None:
                return
            yield message

    async def events(self) -> AsyncIterator[dict[str, Any]]:
        """Link events (after :meth:`subscribe`): link_up, link_down, peer_restarted, ..."""
        while True:
            event = await self._events.get()
            if event is None:
                return
            yield event


def _payload(reply: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in reply.items() if k not in ("id", "ok")}


__all__ = ["DEFAULT_SOCKET", "Client", "Message", "RpilinkError", "default_socket"]
