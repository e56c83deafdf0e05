"""pigpiod's TCP socket, one server per virtual board.

Each connection reads 16-byte requests (and their extensions) and answers each
with one 16-byte reply, in order (pigpio.py reads each reply whole). A NOIB
request turns the connection into that handle's report stream; it still
answers commands, whose replies then land among the reports, as on a Pi.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from typing import Protocol

from rpilinkd.pigpio_protocol import (
    MAX_EXTENSION,
    MAX_MICS_DELAY,
    MAX_MILS_DELAY,
    REQUEST,
    Cmd,
    Err,
    pack_reply,
)
from rpilinkd.sim.board import Board
from rpilinkd.sim.stamped import StampedListener, StampedSocket, listener

_LOGGER = logging.getLogger(__name__)
#: a report stream whose reader lags this far behind loses reports (counted);
#: pigpiod would instead block its alert thread for every client
SINK_LIMIT_BYTES = 16 * 1024 * 1024
#: what a command takes pigpiod (a socket read, the call, the reply): the commands of
#: one read act this far apart (see Session.serve)
COMMAND_US = 2.0
READ_CHUNK = 1 << 16
#: at stop, how long a connection's handler may take to see its socket closed (it is
#: not cancelled: Python 3.11's stream server logs a cancelled handler as an error)
STOP_WAIT_S = 1.0
#: pigpiod's delays: the longest it takes, seconds per unit, its refusal of a longer one
DELAYS = {
    Cmd.MICS: (MAX_MICS_DELAY, 1e-6, Err.BAD_MICS_DELAY),
    Cmd.MILS: (MAX_MILS_DELAY, 1e-3, Err.BAD_MILS_DELAY),
}


class Executor(Protocol):
    def execute(self, board: Board, cmd: int, p1: int, p2: int, ext: bytes) -> int: ...
    def now_us(self) -> float: ...
    def wall_us(self) -> float: ...
    async def delay_until(self, at_us: float) -> None: ...
    def act_at(self, board: Board, at_us: float | None) -> float: ...
    def us_of(self, monotonic_ns: int) -> float: ...


class Session:
    """One client connection to a board's pigpiod."""

    def __init__(
        self,
        machine: Executor,
        board: Board,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        stamped: StampedSocket | None = None,
    ) -> None:
        self.machine = machine
        self.stamped = stamped  # knows when the bytes read arrived
        self.board = board
        self.reader = reader
        self.writer = writer
        self._acting_at = 0.0  # the instant the command being run acts at (see serve)
        self._done_at = 0.0  # when the commands read so far were done (pigpiod's thread)

    def sink(self, data: bytes) -> bool:
        """Write reports; False (dropped) if the peer is gone or hopelessly behind."""
        if self.writer.is_closing():
            return False
        if self.writer.transport.get_write_buffer_size() > SINK_LIMIT_BYTES:
            return False
        self.writer.write(data)
        return True

    async def serve(self) -> None:
        """Run the requests in the order they come; the replies to one read go out in
        one write (pigpiod writes each on its own, microseconds apart: the same bytes).
        A delay (MICS, MILS) holds this connection's later requests, as it holds the
        pigpiod thread that serves the socket; other connections run on.

        pigpiod runs a pipelined batch in tens of µs; Python takes 0.1-0.5 ms, wakes
        from a delay 0.1-1 ms late, and reads a batch that came during a pass only
        after it. So the commands of one read act at the instants pigpiod's would:
        the first when it came (the kernel's receive stamp: sim/stamped.py), each next
        ``COMMAND_US`` later, and those after a delay from its end (never before what
        a pass has sampled, nor after now: see Simulator.act_at)."""
        held = b""
        try:
            while chunk := await self.reader.read(READ_CHUNK):
                held += chunk
                replies: list[bytes] = []
                self._act_from(self._arrived_us())
                while len(held) >= REQUEST.size:
                    cmd, p1, p2, p3 = REQUEST.unpack_from(held)
                    if p3 >= MAX_EXTENSION:
                        _LOGGER.warning(
                            "board %s: extension of %d bytes is too large; closing the "
                            "socket (pigpiod does the same)",
                            self.board.name,
                            p3,
                        )
                        return
                    if len(held) < REQUEST.size + p3:
                        break  # the extension is still on its way
                    ext, held = held[REQUEST.size : REQUEST.size + p3], held[REQUEST.size + p3 :]
                    if cmd in DELAYS and p1 <= DELAYS[cmd][0]:
                        self._write(replies)
                        replies = []
                        await self._delay(p1 * DELAYS[cmd][1] * 1e6)
                    replies.append(pack_reply(cmd, p1, p2, self._run(cmd, p1, p2, ext)))
                    self._act_from(self._acting_at + COMMAND_US)
                self._write(replies)
                self._done_at = self._acting_at
                self._act_from(None)
        except ConnectionError:
            pass  # the client went away
        finally:
            self._act_from(None)
            self.board.close_handles_of(self)
            self.close()

    def _arrived_us(self) -> float:
        """When the bytes just read came (now, if the kernel did not say), yet not
        before the commands read earlier were done: pigpiod's thread runs a socket's
        commands in order, so a batch sent during a MICS waits for its end."""
        wall = self.machine.wall_us()
        arrived_ns = self.stamped.arrived_ns if self.stamped is not None else None
        if arrived_ns is None:
            return wall
        return min(wall, max(self.machine.us_of(arrived_ns), self._done_at))

    async def _delay(self, micros: float) -> None:
        """Wait, then act from the delay's end."""
        ends_us = self._acting_at + micros
        self._act_from(None)  # others act at their own instants meanwhile
        await self.machine.delay_until(ends_us)
        self._act_from(ends_us)

    def _act_from(self, at_us: float | None) -> None:
        self._acting_at = self.machine.act_at(self.board, at_us)

    def _write(self, replies: list[bytes]) -> None:
        if replies and not self.writer.is_closing():
            self.writer.write(b"".join(replies))

    def _run(self, cmd: int, p1: int, p2: int, ext: bytes) -> int:
        if cmd in DELAYS:  # waited for in serve()
            limit, _, refusal = DELAYS[cmd]
            return 0 if p1 <= limit else refusal
        if cmd == Cmd.NOIB:
            handle = self.board.open_handle(self.sink, self, self.machine.now_us())
            return Err.NO_HANDLE if handle is None else handle
        return self.machine.execute(self.board, cmd, p1, p2, ext)

    def close(self) -> None:
        with contextlib.suppress(RuntimeError):
            self.writer.close()


class BoardServer:
    """The listening socket of one board's pigpiod and its live sessions."""

    def __init__(self, machine: Executor, board: Board, host: str, port: int) -> None:
        self.machine = machine
        self.board = board
        self.host = host
        self.port = port
        self.sessions: set[Session] = set()
        self._server: asyncio.Server | None = None
        self._listener: StampedListener | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.connections = 0

    async def start(self) -> int:
        self._listener = listener(self.host, self.port)
        self._server = await asyncio.start_server(self._accept, sock=self._listener)
        self.port = self._listener.getsockname()[1]
        return self.port

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        sock = writer.get_extra_info("socket")
        if sock is not None:  # pigpiod sets TCP_NODELAY on every connection
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        stamped = self._listener.claim(sock.fileno()) if self._listener and sock else None
        session = Session(self.machine, self.board, reader, writer, stamped)
        if self._server is None:  # accepted just as pigpiod went away
            session.close()
            return
        self.sessions.add(session)
        self.connections += 1
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        try:
            await session.serve()
        finally:
            self.sessions.discard(session)
            if task is not None:
                self._tasks.discard(task)

    async def stop(self) -> None:
        """Stop listening and close every connection (pigpiod going away)."""
        if self._server is not None:
            self._server.close()
            for session in list(self.sessions):
                session.close()
            if self._tasks:  # each ends on its closed socket: none is left to be cancelled
                await asyncio.wait(self._tasks, timeout=STOP_WAIT_S)
            await self._server.wait_closed()
            self._server = None
            self._listener = None
        self.sessions.clear()
