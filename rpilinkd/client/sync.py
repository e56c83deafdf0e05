"""A blocking wrapper around the async client, for scripts and threads.

::

    with SyncClient() as client:
        client.bind(7)
        client.send(7, b"hello")
        message = client.receive(timeout=5)

It runs a private event loop on a background thread ("rpilink client") and
forwards every call to it, so it is safe to use from any one thread.
"""

from __future__ import annotations

from collections.abc import Coroutine
from types import TracebackType
from typing import Any, Self, TypeVar

from rpilinkd.client.aio import Client, Message
from rpilinkd.loopthread import LoopThread

T = TypeVar("T")


class SyncClient:
    def __init__(
        self, path: str | None = None, *, name: str = "rpilinkd.client.sync", timeout: float = 60.0
    ) -> None:
        self._client = Client(path, name=name, timeout=timeout)
        self._loop = LoopThread("rpilink client")

    def _run(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        return self._loop.run(coro, timeout)

    def __enter__(self) -> Self:
        self.connect()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def connect(self) -> None:
        self._loop.start()
        try:
            self._run(self._client.connect())
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        if self._loop.running:
            self._run(self._client.close())
        self._loop.stop()

    @property
    def node(self) -> str:
        return self._client.node

    @property
    def max_message(self) -> int:
        return self._client.max_message

    def bind(self, port: int | None = None, name: str | None = None) -> int:
        return self._run(self._client.bind(port, name))

    def unbind(self, port: int) -> None:
        self._run(self._client.unbind(port))

    def send(self, port: int, data: bytes, *, from_port: int | None = None) -> None:
        """Blocks until the peer daemon accepted the message (see Client.send)."""
        self._run(self._client.send(port, data, from_port=from_port))

    def receive(self, timeout: float | None = None) -> Message:
        return self._run(self._client.receive(timeout))

    def status(self) -> dict[str, Any]:
        return self._run(self._client.status())

    def stats(self) -> dict[str, Any]:
        return self._run(self._client.stats())

    def endpoints(self) -> dict[str, Any]:
        return self._run(self._client.endpoints())
