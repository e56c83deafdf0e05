"""rpilink demo: rpilink-sim and two daemons in a temporary directory, talking.

Everything runs on this machine: the emulator plays two Raspberry Pis wired
together, each running pigpiod; one rpilinkd runs on each; this script is a
client of both.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rpilinkd.cli.commands import bench_summary
from rpilinkd.client import Client

REPO = Path(__file__).resolve().parents[2]


def say(text: str = "") -> None:
    print(text, flush=True)


def spawn(args: list[str], log: Path) -> subprocess.Popen[bytes]:
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    for key in ("NOTIFY_SOCKET", "LISTEN_FDS", "LISTEN_PID", "RPILINK_SOCKET"):
        env.pop(key, None)
    return subprocess.Popen(
        [sys.executable, *args], stdout=subprocess.PIPE, stderr=log.open("wb"), env=env
    )


async def wait_up(path: Path, timeout: float = 30.0) -> dict[str, object]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError):
            async with Client(str(path), name="demo") as client:
                status = await client.status()
                if status["link"] == "up":
                    return status
        await asyncio.sleep(0.1)
    raise TimeoutError(f"the link did not come up within {timeout:.0f} s (logs in {path.parent})")


async def show(workdir: Path, sample_us: int, keep: bool) -> None:
    a_sock, b_sock = workdir / "alpha.sock", workdir / "beta.sock"
    say(f"status of both nodes (sockets in {workdir}):")
    started = time.monotonic()
    alpha, beta = await wait_up(a_sock), await wait_up(b_sock)
    for status in (alpha, beta):
        say(
            f"  {status['node']}: link {status['link']} as {status['role']}, peer {status['peer']}"
            f", line rate {status['line_rate_Bps']} B/s at -s {status['sample_us']}"
        )
    say(f"  (link up {time.monotonic() - started:.2f} s after the daemons answered)")
    async with (
        Client(str(a_sock), name="demo alpha") as a,
        Client(str(b_sock), name="demo beta") as b,
    ):
        say("\nbeta binds port 7 as 'greetings'; alpha binds port 8")
        await b.bind(7, "greetings")
        await a.bind(8)
        await asyncio.sleep(0.3)  # the name is announced to alpha
        say(f"  alpha sees beta's endpoints: {(await a.endpoints())['peer']}")
        began = time.monotonic()
        await a.send(7, b"hello from alpha")
        message = await b.receive(timeout=5)
        say(
            f"  alpha -> beta:7  {message.data!r}  (acknowledged by beta's daemon after "
            f"{(time.monotonic() - began) * 1e3:.1f} ms)"
        )
        await b.send(8, b"hello back from beta", from_port=7)
        message = await a.receive(timeout=5)
        say(f"  beta -> alpha:8  {message.data!r}  (from beta's port {message.src_port})")
        try:
            await a.send(9, b"anyone?")
        except Exception as exc:
            say(f"  alpha -> beta:9  refused: {getattr(exc, 'code', '?')}: {exc}")
        count, size = 300, 1024
        say(f"\nthroughput: alpha sends {count} messages of {size} bytes, 16 in flight")
        latencies: list[float] = []

        async def sink() -> None:
            for _ in range(count):
                await b.receive(timeout=30)

        async def worker(share: int) -> None:
            for _ in range(share):
                t0 = time.monotonic()
                await a.send(7, bytes(size))
                latencies.append(time.monotonic() - t0)

        receiving = asyncio.create_task(sink())
        t0 = time.monotonic()
        await asyncio.gather(*(worker(count // 16 + (i < count % 16)) for i in range(16)))
        await receiving
        summary = bench_summary(latencies, {}, time.monotonic() - t0, size)
        line_rate = float(str(alpha["line_rate_Bps"]))
        share = 100 * float(summary["kB_per_s"] or 0) * 1e3 / line_rate
        say(
            f"  {summary['messages_per_s']} messages/s, {summary['kB_per_s']} kB/s "
            f"({share:.0f} % of the raw line rate), latency p50 {summary['latency_p50_ms']} ms, "
            f"p99 {summary['latency_p99_ms']} ms"
        )
        stats = await a.stats()
        say(
            f"  alpha: {stats['frames_sent']} frames sent, {stats['retransmissions']} "
            f"retransmitted, {stats['crc_errors']} CRC errors"
        )
    if keep:
        say(f"\nrunning until Ctrl-C; try: rpilink --socket {a_sock} status")
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.Event().wait()


def run_demo(*, sample_us: int = 5, keep: bool = False) -> int:
    with tempfile.TemporaryDirectory(prefix="rpilink-demo-") as tmp:
        workdir = Path(tmp)
        say(f"starting rpilink-sim: two virtual Raspberry Pis (pigpiod -s {sample_us}), wired")
        sim = spawn(
            ["-m", "rpilinkd.sim", "--port-a", "0", "--port-b", "0", "--sample-us", str(sample_us)],
            workdir / "sim.log",
        )
        assert sim.stdout is not None
        ports = json.loads(sim.stdout.readline())
        say(f"  board a: pigpiod on 127.0.0.1:{ports['a']}, board b on 127.0.0.1:{ports['b']}")
        daemons = []
        for name, board in (("alpha", "a"), ("beta", "b")):
            config = workdir / f"{name}.toml"
            config.write_text(f"[bus]\nsample_us = {sample_us}\n")
            daemons.append(
                spawn(
                    [
                        "-m",
                        "rpilinkd",
                        "--config",
                        str(config),
                        "--node",
                        name,
                        "--pigpio",
                        f"127.0.0.1:{ports[board]}",
                        "--socket",
                        str(workdir / f"{name}.sock"),
                    ],
                    workdir / f"{name}.log",
                )
            )
        say("starting rpilinkd on each: alpha on board a, beta on board b")
        code = 0
        try:
            asyncio.run(show(workdir, sample_us, keep))
        except (TimeoutError, OSError) as exc:
            say(f"demo failed: {exc}")
            for log in sorted(workdir.glob("*.log")):
                say(f"--- {log.name}\n{log.read_text(errors='replace')[-2000:]}")
            code = 1
        except KeyboardInterrupt:
            pass
        finally:
            for proc in (*daemons, sim):
                proc.send_signal(signal.SIGTERM)
            for proc in (*daemons, sim):
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                if proc.stdout is not None:
                    proc.stdout.close()
        say("\nstopped: both daemons and the emulator exited (SIGTERM)")
        return code
