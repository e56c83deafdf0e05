"""pigpiod's socket protocol from asyncio: pipelined commands and a bulk report stream.

Why not the official ``pigpio`` module here: its calls block (so they cannot
run on the event loop), it has no timeouts, its notification thread spins at
100 % of a core when pigpiod dies (joan2937/pigpio#563), and it hands every
edge to a Python callback, which chokes near 4,000 reports a second. This
client writes requests without waiting (replies come back in order on one
socket) and reads the NOIB stream in large chunks for a numpy decoder. The
``pigpio`` module still provides the error texts, and the tests use it as an
independent client of the emulator.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections import deque
from collections.abc import Sequence

import pigpio

from rpilinkd.errors import PhyTimeoutError, PhyUnavailableError, PigpioCommandError
from rpilinkd.pigpio_protocol import (
    COMMAND_NAMES,
    REPLY_SIGNED,
    REPLY_UNSIGNED,
    UNSIGNED_RESULTS,
    Cmd,
    pack_request,
)
from rpilinkd.streams import close_stream

_LOGGER = logging.getLogger(__name__)
Request = tuple[int, int, int, bytes]  # cmd, p1, p2, extension
READ_CHUNK = 1 << 18


def describe(status: int) -> str:
    text = pigpio.error_text(status)
    return text if text and not text.startswith("unknown error") else f"error {status}"


Stream = tuple[asyncio.StreamReader, asyncio.StreamWriter]


async def _open(host: str, port: int, timeout: float) -> Stream:
    try:
        async with asyncio.timeout(timeout):
            reader, writer = await asyncio.open_connection(host, port, limit=READ_CHUNK)
    except (OSError, TimeoutError) as exc:
        reason = "timed out" if isinstance(exc, TimeoutError) else exc.strerror or str(exc)
        raise PhyUnavailableError(f"pigpiod at {host}:{port} is unreachable: {reason}") from None
    sock = writer.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return reader, writer


class PigpiodClient:
    """One command socket to pigpiod; requests are pipelined, replies matched in order.

    Every reply future has an owner: either a caller waiting for it, or nobody (a
    command fired and forgotten, or a caller that was cancelled); a future whose
    owner went away is resolved all the same and never warns. Once the reply
    reader ends (pigpiod closed the socket), every new command fails at once
    instead of waiting for a reply that cannot come.
    """

    def __init__(self, host: str, port: int, *, timeout: float = 5.0) -> None:
        self.host, self.port, self.timeout = host, port, timeout
        self._writer: asyncio.StreamWriter | None = None
        self._pending: deque[tuple[int, asyncio.Future[int]]] = deque()
        self._reader_task: asyncio.Task[None] | None = None
        self._lost: PhyUnavailableError | None = None
        self.commands_sent = 0

    @property
    def where(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def connected(self) -> bool:
        return self._writer is not None and self._lost is None and not self._writer.is_closing()

    async def connect(self) -> None:
        """Raises: PhyUnavailableError (naming host:port) when pigpiod is not there."""
        reader, self._writer = await _open(self.host, self.port, self.timeout)
        self._lost = None
        self._reader_task = asyncio.create_task(self._read_replies(reader), name="pigpiod replies")

    async def _read_replies(self, reader: asyncio.StreamReader) -> None:
        error = PhyUnavailableError(f"pigpiod at {self.where} closed the connection")
        held = b""  # part of a reply
        try:
            while chunk := await reader.read(READ_CHUNK):
                data, whole = held + chunk, (len(held) + len(chunk)) // 16 * 16
                held = data[whole:]
                for offset in range(0, whole, 16):
                    self._settle(data[offset : offset + 16])
        except ConnectionError as exc:
            error = PhyUnavailableError(f"pigpiod at {self.where}: {exc}")
        finally:
            self._lost = error
            while self._pending:
                _, future = self._pending.popleft()
                if not future.done():
                    future.set_exception(error)
                    future.exception()  # seen: a caller gone meanwhile leaves no warning

    def _settle(self, reply: bytes) -> None:
        if not self._pending:
            _LOGGER.warning("pigpiod at %s sent a reply nobody asked for", self.where)
            return
        cmd, future = self._pending.popleft()
        layout = REPLY_UNSIGNED if cmd in UNSIGNED_RESULTS else REPLY_SIGNED
        if not future.done():
            future.set_result(layout.unpack(reply)[3])

    def send(self, cmd: int, p1: int = 0, p2: int = 0, ext: bytes = b"") -> asyncio.Future[int]:
        """Write one request now; its result comes in the returned future.

        Raises:
            PhyUnavailableError: the connection is gone (checked before writing).
        """
        return self.send_many([(cmd, p1, p2, ext)])[0]

    def send_many(self, requests: Sequence[Request]) -> list[asyncio.Future[int]]:
        """Write requests now, in one write (one syscall); their results in futures.

        Raises:
            PhyUnavailableError: the connection is gone (checked before writing).
        """
        if self._lost is not None:
            raise self._lost
        if self._writer is None or self._writer.is_closing():
            raise PhyUnavailableError(f"pigpiod at {self.where} is not connected")
        loop = asyncio.get_running_loop()
        futures: list[asyncio.Future[int]] = []
        for cmd, _, _, _ in requests:
            # no done callback: one per reply cost a turn of the event loop each
            future: asyncio.Future[int] = loop.create_future()
            self._pending.append((cmd, future))
            futures.append(future)
        self._writer.write(b"".join(pack_request(*request) for request in requests))
        self.commands_sent += len(requests)
        return futures

    def fire(self, cmd: int, p1: int = 0, p2: int = 0) -> None:
        """Send a command whose answer nobody waits for (cleanup that must never block);
        nothing happens if the connection is gone, as pigpiod's state went with it or
        the next open resets it."""
        with contextlib.suppress(PhyUnavailableError):
            self.send(cmd, p1, p2)

    async def command(
        self, cmd: int, p1: int = 0, p2: int = 0, ext: bytes = b"", *, check: bool = True
    ) -> int:
        """Send one command and return its result.

        Raises:
            PigpioCommandError: pigpiod answered with a negative status (``check``).
            PhyUnavailableError: the connection is gone.
            PhyTimeoutError: no answer within the timeout.
        """
        return (await self.batch([(cmd, p1, p2, ext)], check=check))[0]

    async def batch(self, requests: Sequence[Request], *, check: bool = True) -> list[int]:
        """Send several commands back to back and wait for all their results, in order."""
        return await self.results(requests, self.send_many(requests), check=check)

    async def results(
        self,
        requests: Sequence[Request],
        futures: Sequence[asyncio.Future[int]],
        *,
        check: bool = True,
    ) -> list[int]:
        """Wait for the replies of requests already sent (see :meth:`send`)."""
        if all(future.done() for future in futures):  # no wait: no timeout to set up
            results = [future.result() for future in futures]
        else:
            try:
                async with asyncio.timeout(self.timeout):
                    results = [await asyncio.shield(future) for future in futures]
            except TimeoutError:
                raise PhyTimeoutError(f"pigpiod at {self.where} did not answer in time") from None
        if check:
            for (cmd, p1, p2, _), result in zip(requests, results, strict=True):
                if result < 0 and cmd not in UNSIGNED_RESULTS:
                    name = COMMAND_NAMES.get(cmd, str(cmd))
                    raise PigpioCommandError(f"{name}({p1}, {p2})", result, describe(result))
        return results

    async def close(self) -> None:
        writer, reader = self._writer, self._reader_task
        self._writer = self._reader_task = None
        await close_stream(writer, reader)


class Unchecked:
    """A batch sent without waiting for its answers (pigpiod runs what the socket sends
    later after it, which is all ordering needs): check them at a later call."""

    def __init__(self, requests: list[Request], futures: list[asyncio.Future[int]]) -> None:
        self.requests, self.futures = requests, futures

    @property
    def answered(self) -> bool:
        return all(future.done() for future in self.futures)

    async def check(self, client: PigpiodClient) -> list[int]:
        """Raises: PigpioCommandError for a refusal, as :meth:`PigpiodClient.results`."""
        return await client.results(self.requests, self.futures)


class ReportStream:
    """A NOIB socket: after the handshake, pigpiod's 12-byte reports, read in bulk."""

    def __init__(self, host: str, port: int, *, timeout: float = 5.0) -> None:
        self.host, self.port, self.timeout = host, port, timeout
        self.handle = -1
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def open(self) -> int:
        """Open the socket and a notification handle on it; returns the handle."""
        self._reader, self._writer = await _open(self.host, self.port, self.timeout)
        self._writer.write(pack_request(Cmd.NOIB))
        try:
            async with asyncio.timeout(self.timeout):
                reply = await self._reader.readexactly(16)
        except (TimeoutError, asyncio.IncompleteReadError, ConnectionError):
            raise PhyUnavailableError(
                f"pigpiod at {self.host}:{self.port} did not open a notification handle"
            ) from None
        self.handle = REPLY_SIGNED.unpack(reply)[3]
        if self.handle < 0:
            raise PigpioCommandError("NOIB", self.handle, describe(self.handle))
        return self.handle

    async def read(self) -> bytes:
        """The next chunk of report bytes (any length); b"" when pigpiod closed the socket."""
        if self._reader is None:
            return b""
        try:
            return await self._reader.read(READ_CHUNK)
        except ConnectionError:
            return b""

    async def close(self) -> None:
        if self._writer is not None:
            with contextlib.suppress(ConnectionError, RuntimeError):
                self._writer.close()
            self._writer = None
            self._reader = None
