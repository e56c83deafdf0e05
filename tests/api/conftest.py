"""The API server in-process, on a real Unix socket, over a fake link service."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from rpilinkd.api.server import ApiServer
from rpilinkd.config import ApiConfig


@dataclass
class FakeLink:
    """The LinkService protocol: sends succeed at once (or wait on ``gate``)."""

    max_message: int = 1 << 20
    sent: list[tuple[int, bytes]] = field(default_factory=list)
    bound: dict[int, str | None] = field(default_factory=dict)
    gate: asyncio.Event | None = None
    lent: float = 0.0

    def status(self) -> Mapping[str, object]:
        return {"link": "up", "node": "fake"}

    def stats(self) -> Mapping[str, object]:
        return {"messages_sent": len(self.sent)}

    def local_endpoints(self) -> Mapping[str, int]:
        return {name: port for port, name in self.bound.items() if name}

    def peer_endpoints(self) -> Mapping[str, int]:
        return {}

    def bind(self, port: int, name: str | None) -> None:
        self.bound[port] = name

    def unbind(self, port: int) -> None:
        self.bound.pop(port, None)

    def free_port(self) -> int:
        return max(self.bound, default=1023) + 1

    def lend(self, seconds: float) -> Mapping[str, object]:
        self.lent = seconds
        return {"seconds": seconds}

    def take_back(self) -> None:
        self.lent = 0.0

    def submit(self, port: int, data: bytes, *, src_port: int) -> asyncio.Future[None]:
        return asyncio.ensure_future(self._send(port, data))

    async def _send(self, port: int, data: bytes) -> None:
        if self.gate is not None:
            await self.gate.wait()
        self.sent.append((port, data))


@dataclass
class Served:
    server: ApiServer
    link: FakeLink
    path: Path


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[Served]:
    link = FakeLink()
    config = ApiConfig(socket=str(tmp_path / "api.sock"), idle_s=0.5)
    server = ApiServer(config, link, node="fake", max_message=link.max_message)
    await server.start()
    try:
        yield Served(server, link, tmp_path / "api.sock")
    finally:
        await server.close()
