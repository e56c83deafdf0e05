"""The rpilink subcommands (each an async function of the socket path and the arguments)."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import Callable
from typing import Any

from rpilinkd.client import Client
from rpilinkd.errors import RpilinkError
from rpilinkd.stats import percentile


async def send(path: str, args: argparse.Namespace) -> int:
    data = sys.stdin.buffer.read() if args.data == "-" else args.data.encode()
    async with Client(path, name="rpilink send") as client:
        await client.send(args.port, data, from_port=args.from_port)
    return 0


def show(data: bytes) -> str:
    """Text if it reads as text, else hex."""
    try:
        text = data.decode()
    except UnicodeDecodeError:
        return data.hex(" ")
    return text if text.isprintable() or not text else repr(text)


async def listen(path: str, args: argparse.Namespace) -> int:
    async with Client(path, name="rpilink listen") as client:
        if isinstance(args.port, int):
            port = await client.bind(args.port)
        else:
            port = await client.bind(name=args.port)
        if not args.quiet and not args.raw:
            label = "" if isinstance(args.port, int) else f" ({args.port})"
            print(f"listening on port {port}{label}", file=sys.stderr, flush=True)
        seen = 0
        async for message in client.messages():
            seen += 1
            if args.raw:
                sys.stdout.buffer.write(message.data)
                sys.stdout.buffer.flush()
            elif not args.quiet:
                print(f"[{message.src_port}→{message.port}] {show(message.data)}", flush=True)
            if args.count is not None and seen >= args.count:
                break
    return 0


async def status(path: str, args: argparse.Namespace) -> int:
    async with Client(path, name="rpilink status") as client:
        state = await client.status()
        figures = await client.stats()
    if args.json:
        print(json.dumps(state, indent=2))
        return 0
    role = f" as {state['role']}" if state.get("role") else ""
    peer = f" with {state['peer']}" if state.get("peer") else ""
    print(f"{state['node']}: link {state['link']}{role}{peer}")
    if state.get("reason"):
        print(f"  {'why':<14} {state['reason']}")
    for warning in state.get("warnings", []):
        print(f"  {'warning':<14} {warning}")
    for key in (
        "uptime_s",
        "state_since_s",
        "link_ups",
        "session",
        "peer_epoch",
        "max_message",
        "frame_payload",
        "window",
        "line_rate_Bps",
        "sample_us",
        "backend",
        "error_level",
    ):
        print(f"  {key:<14} {state.get(key)}")
    print(
        f"  {'traffic':<14} {figures['messages_sent']} messages sent, "
        f"{figures['messages_received']} received, {figures['delivery_failures']} failed"
    )
    print(
        f"  {'wire':<14} {figures['retransmissions']} frames resent, {figures['crc_errors']} "
        f"CRC errors, {figures['bad_frames']} malformed, "
        f"{figures.get('internal_errors', 0)} internal errors"
    )
    return 0


async def endpoints(path: str, args: argparse.Namespace) -> int:
    async with Client(path, name="rpilink endpoints") as client:
        table = await client.endpoints()
    if args.json:
        print(json.dumps(table, indent=2))
        return 0
    for side in ("local", "peer"):
        names = table.get(side, {})
        print(f"{side}: " + (", ".join(f"{n}={p}" for n, p in sorted(names.items())) or "none"))
    return 0


async def cat(path: str, args: argparse.Namespace) -> int:
    """Like netcat: stdin goes to the peer's port; what arrives on the port goes to stdout."""
    async with Client(path, name="rpilink cat") as client:
        await client.bind(args.port)
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader()
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)

        async def outgoing() -> None:
            while chunk := await reader.read(args.chunk):
                await client.send(args.port, chunk, from_port=args.port)

        async def incoming() -> None:
            async for message in client.messages():
                sys.stdout.buffer.write(message.data)
                sys.stdout.buffer.flush()

        receiving = asyncio.create_task(incoming())
        await outgoing()
        await asyncio.sleep(args.wait)
        receiving.cancel()
        await asyncio.gather(receiving, return_exceptions=True)
    return 0


def progress(done: int, total: int, started: float, size: int) -> None:
    if not sys.stderr.isatty():
        return
    width = 30
    filled = width * done // max(total, 1)
    elapsed = max(time.monotonic() - started, 1e-9)
    rate = done * size / elapsed / 1e3
    sys.stderr.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total} {rate:8.1f} kB/s")
    sys.stderr.flush()


async def measure(
    client: Client,
    port: int,
    *,
    count: int,
    size: int,
    parallel: int,
    on_progress: Callable[[int, float], None] | None = None,
) -> dict[str, Any]:
    """Send ``count`` messages of ``size`` bytes to ``port``, ``parallel`` at once: the summary.

    ``on_progress(done, started)`` is called after each message (``rpilink bench``'s bar).
    """
    payload = (bytes(range(256)) * (size // 256 + 1))[:size]
    latencies: list[float] = []
    failures: dict[str, int] = {}
    started = time.monotonic()
    queue = iter(range(count))

    async def worker() -> None:
        for _ in queue:
            began = time.monotonic()
            try:
                await client.send(port, payload)
                latencies.append(time.monotonic() - began)
            except RpilinkError as exc:
                failures[exc.code] = failures.get(exc.code, 0) + 1
            if on_progress is not None:
                on_progress(len(latencies) + sum(failures.values()), started)

    await asyncio.gather(*(worker() for _ in range(max(1, parallel))))
    return bench_summary(latencies, failures, time.monotonic() - started, size)


async def bench(path: str, args: argparse.Namespace) -> int:
    async with Client(path, name="rpilink bench") as client:
        summary = await measure(
            client,
            args.port,
            count=args.count,
            size=args.size,
            parallel=args.parallel,
            on_progress=lambda done, started: progress(done, args.count, started, args.size),
        )
    if sys.stderr.isatty():
        sys.stderr.write("\n")
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        width = max(len(k) for k in summary)
        for key, value in summary.items():
            print(f"{key:<{width}}  {value}")
    return 0 if not summary["failed"] else 1


def bench_summary(
    latencies: list[float], failures: dict[str, int], elapsed: float, size: int
) -> dict[str, Any]:

    def pick(fraction: float) -> float | None:
        value = percentile(latencies, fraction)
        return None if value is None else round(value * 1e3, 2)

    return {
        "messages": len(latencies),
        "failed": dict(failures),
        "bytes_per_message": size,
        "seconds": round(elapsed, 3),
        "messages_per_s": round(len(latencies) / elapsed, 1) if elapsed else None,
        "kB_per_s": round(len(latencies) * size / elapsed / 1e3, 1) if elapsed else None,
        "latency_p50_ms": pick(0.5),
        "latency_p90_ms": pick(0.9),
        "latency_p99_ms": pick(0.99),
    }
