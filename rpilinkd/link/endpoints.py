"""Ports bound on this node and the names the peer announced (RPMsg's name service).

A port is a 16-bit endpoint address; a name optionally labels it. Named ports
are announced to the peer on every link-up and when bound or released, so a
program on either Pi can list the other's endpoints by name.
"""

from __future__ import annotations

from collections.abc import Iterator

from rpilinkd.errors import NameInUseError, NotBoundError, PortInUseError
from rpilinkd.link.frames import MAX_NAME

MAX_PORT = 0xFFFF


class Endpoints:
    def __init__(self) -> None:
        self._local: dict[int, str | None] = {}
        self.peer: dict[str, int] = {}

    def bind(self, port: int, name: str | None = None) -> None:
        """Raises PortInUseError, NameInUseError, or ValueError for a bad port or name."""
        if not 0 <= port <= MAX_PORT:
            raise ValueError(f"port {port} is not 0-{MAX_PORT}")
        if name is not None and not 0 < len(name.encode()) <= MAX_NAME:
            raise ValueError(f"a name is 1-{MAX_NAME} bytes of UTF-8, got {name!r}")
        if port in self._local:
            raise PortInUseError(f"port {port} is already bound")
        if name is not None and name in self._local.values():
            raise NameInUseError(f"the name {name!r} is already bound")
        self._local[port] = name

    def unbind(self, port: int) -> str | None:
        """Release a port; returns its name. Raises NotBoundError."""
        if port not in self._local:
            raise NotBoundError(f"port {port} is not bound")
        return self._local.pop(port)

    def is_bound(self, port: int) -> bool:
        return port in self._local

    def named(self) -> Iterator[tuple[int, str]]:
        return ((port, name) for port, name in self._local.items() if name)

    @property
    def local(self) -> dict[str, int]:
        return {name: port for port, name in self.named()}

    def free_port(self, start: int = 1024) -> int:
        """The lowest unbound port from ``start`` (dynamic ports begin at 1024, as in RPMsg)."""
        for port in range(start, MAX_PORT + 1):
            if port not in self._local:
                return port
        raise PortInUseError("every port is bound")

    def peer_announced(self, created: bool, name: str, port: int) -> bool:
        """Apply the peer's announcement; whether its table changed."""
        if created:
            changed = self.peer.get(name) != port
            self.peer[name] = port
            return changed
        return self.peer.pop(name, None) is not None

    def clear_peer(self) -> bool:
        had = bool(self.peer)
        self.peer = {}
        return had
