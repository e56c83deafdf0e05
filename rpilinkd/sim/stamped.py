"""Sockets that know when their bytes arrived (the kernel's receive timestamp).

pigpiod serves each socket in a thread of its own: a command acts when it arrives,
whatever its alert thread is doing. The emulator serves every socket and runs every
pass on one Python thread, so a batch that arrives during a pass is read a few
hundred µs late. asyncio's transport calls the socket's ``recv``: this one takes the
kernel's receive timestamp (``SO_TIMESTAMPNS``, which TCP reports for the last
segment read) with the bytes, so the commands act when they came (sim/server.py).
"""

from __future__ import annotations

import contextlib
import socket
import struct
import time
from typing import Any

SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)  # Linux; Python 3.11 lacks the name
_ANCILLARY_SPACE = socket.CMSG_SPACE(16)
_TIMESPEC = {16: struct.Struct("=qq"), 8: struct.Struct("=ii")}  # 64- and 32-bit time_t


class StampedSocket(socket.socket):
    """A TCP socket whose reads note when their last byte arrived (time.monotonic_ns)."""

    arrived_ns: int | None = None  # None: not known (no timestamp from this kernel)

    def stamp_arrivals(self) -> None:
        with contextlib.suppress(OSError):  # then reads act when read, as before
            self.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)

    def recv(self, bufsize: int, flags: int = 0) -> bytes:
        data, ancillary, _, _ = self.recvmsg(bufsize, _ANCILLARY_SPACE, flags)
        self.arrived_ns = None  # a read without a stamp acts when read, never on an old one
        for level, kind, payload in ancillary:
            layout = _TIMESPEC.get(len(payload))
            if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and layout is not None:
                seconds, nanos = layout.unpack(payload)
                # the stamp is CLOCK_REALTIME; the emulator keeps time.monotonic
                realtime_ns = seconds * 1_000_000_000 + nanos
                self.arrived_ns = realtime_ns - time.time_ns() + time.monotonic_ns()
        return data


class StampedListener(socket.socket):
    """A listening socket whose accepted connections are :class:`StampedSocket`, kept
    by file descriptor until :meth:`claim` (asyncio hands its callback only a wrapper)."""

    def __init__(self, family: int, kind: int) -> None:
        super().__init__(family, kind)
        self._accepted: dict[int, StampedSocket] = {}

    def accept(self) -> tuple[socket.socket, Any]:
        fd, address = self._accept()  # type: ignore[attr-defined]
        conn = StampedSocket(self.family, self.type, self.proto, fileno=fd)
        conn.stamp_arrivals()
        self._accepted[fd] = conn
        return conn, address

    def claim(self, fd: int) -> StampedSocket | None:
        """The accepted connection on ``fd``, handed over once."""
        return self._accepted.pop(fd, None)


def listener(host: str, port: int) -> StampedListener:
    """A listening TCP socket on ``host``:``port`` (0: a free port), as pigpiod's."""
    family, kind, _, _, address = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    sock = StampedListener(family, kind)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(100)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock
