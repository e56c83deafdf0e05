"""``rpilink wiring-check``: test the cable, wire by wire, from both Pis.

With rpilinkd running, the daemon lends the pins (API ``lend``; the link
pauses, and comes back on ``take_back``, or when this program dies); without
it, the check uses pigpiod directly, at the config's (or --pigpio's) address.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import signal
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from rpilinkd.client import Client
from rpilinkd.config import DEFAULT_CONFIG_PATH, config_from_mapping, load_config
from rpilinkd.errors import PhyTimeoutError, PhyUnavailableError, RpilinkError
from rpilinkd.exits import ExitCode, Hint, run_main
from rpilinkd.pins import PinMap
from rpilinkd.wiring.analysis import analyse, nothing_seen
from rpilinkd.wiring.cable import bus_pins
from rpilinkd.wiring.local import LocalPigpiod
from rpilinkd.wiring.model import CheckResult
from rpilinkd.wiring.report import render_json, render_table, to_json, use_colour
from rpilinkd.wiring.runner import Outcome, check

DESCRIPTION = """\
Check the cable between the two Pis: run this on both (in any order; the first
waits for the second, up to --timeout). Each reports every wire of the bus as
ok, cut, stuck high or low, shorted to another wire, swapped with another
wire, or a crossed control pair wired straight, naming the GPIO and header pin
at both ends and what to do. It drives each pin high briefly, one at a time
(never low), so it is safe even on a miswired cable (docs/wiring.md).
"""

EPILOG = """\
examples:
  rpilink wiring-check                    on both Pis; rpilinkd may be running or not
  rpilink wiring-check --json             the same, for scripts
  rpilink wiring-check --timeout 120      give yourself two minutes to reach the other Pi
  rpilink wiring-check --pigpio 127.0.0.1:8889 --config wide.toml
                                          rpilinkd stopped: this pigpiod, this pin map

With rpilinkd running, the link pauses for the check (sends wait, up to
link.resume_s) and comes back afterwards. Without it, the pin map comes from
--config (default /etc/rpilink/rpilinkd.toml) and pigpiod from --pigpio, else
the config's [pigpio]. It never needs the other Pi's pigpiod.
Exit status: 0 every wire ok, 1 a wire needs work (or the other Pi was not
seen), 2 bad arguments or config, 3 pigpiod or the daemon not reachable.
"""

PINS_FREE_S = 10.0  # how long the daemon may take to end its pigpiod session
LEASE_SPARE_S = 30.0  # a lend outlasts the check by this much (it ends with us anyway)
LATE_WARN_MS = 30.0  # steps later than this come near the next slot (runner.AGAIN_LATE_S)


def host_port(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, e.g. 127.0.0.1:8888, got {text!r}")
    return host, int(port)


def seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 < value <= 3600:
        raise argparse.ArgumentTypeError(f"a number of seconds, 0-3600, got {text!r}")
    return value


def add_parser(sub: Any) -> None:
    parser = sub.add_parser(
        "wiring-check",
        help="find the bad wire of the cable (run it on both Pis)",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--json", action="store_true", help="machine-readable result")
    parser.add_argument(
        "--timeout", type=seconds, default=30.0, help="wait this long for the other Pi (30)"
    )
    parser.add_argument(
        "--pigpio", type=host_port, metavar="HOST:PORT",
        help="this Pi's pigpiod when rpilinkd is not running (default: the config's [pigpio])",
    )  # fmt: skip
    parser.add_argument(
        "--socket", default=argparse.SUPPRESS,
        help="rpilinkd's socket, to borrow the pins from (default: $RPILINK_SOCKET or "
        "/run/rpilink.sock)",
    )  # fmt: skip
    parser.add_argument(
        "--trace", type=Path, metavar="FILE",
        help="write every level this Pi saw, and what it made of them, to FILE (JSON, for "
        "bug reports)",
    )  # fmt: skip
    parser.add_argument(
        "--config", type=Path,
        help="the pin map and pigpiod address when rpilinkd is not running "
        "(default: /etc/rpilink/rpilinkd.toml if it exists, else the defaults)",
    )  # fmt: skip


def run_wiring_check(socket_path: str, args: argparse.Namespace) -> int:
    hints: list[Hint] = [
        (PhyUnavailableError, ExitCode.UNREACHABLE, ""),
        (PermissionError, ExitCode.UNREACHABLE, f"not allowed to use {socket_path} "
         "(join group rpilink)"),
    ]  # fmt: skip

    def body() -> int:
        try:
            return asyncio.run(_check(socket_path, args))
        except asyncio.CancelledError:  # SIGTERM or Ctrl-C; the pins were left safe on the way out
            return ExitCode.INTERRUPTED

    return run_main("rpilink wiring-check", body, hints)


@dataclass
class Target:
    host: str
    port: int
    pins: PinMap
    lender: Client | None = None  # the daemon's client while it lends us the pins


async def _check(socket_path: str, args: argparse.Namespace) -> int:
    task = asyncio.current_task()
    assert task is not None
    for signum in (signal.SIGTERM, signal.SIGINT):  # SIGINT too: a shell may hand it down ignored
        asyncio.get_running_loop().add_signal_handler(signum, task.cancel)
    started = time.monotonic()
    target = await _borrow(socket_path, args.timeout) or _from_config(args)
    try:
        io = LocalPigpiod(target.host, target.port, bus_pins(target.pins))
        outcome = await check(io, timeout=args.timeout, rng=random.Random())
    finally:
        if target.lender is not None:
            await _give_back(target.lender)
    obs = outcome.observations
    warnings = []
    if obs is not None and obs.late_ms > LATE_WARN_MS:
        warnings.append(
            f"this Pi ran its steps up to {obs.late_ms:.0f} ms late, {outcome.rounds} rounds "
            "running (a busy system?): a wrong finding is possible; run the check again"
        )
    result = CheckResult(
        findings=analyse(target.pins, obs) if obs is not None else nothing_seen(target.pins),
        width=target.pins.width,
        role=obs.role if obs is not None else None,
        pigpio=f"{target.host}:{target.port}",
        borrowed=target.lender is not None,
        seconds=time.monotonic() - started,
        warnings=tuple(warnings),
        rounds=outcome.rounds,
    )
    if args.trace is not None:
        write_trace(args.trace, outcome, result)
    print(render_json(result) if args.json else render_table(result, colour=use_colour(sys.stdout)))
    return ExitCode.OK if result.ok else ExitCode.FAILED


def write_trace(path: Path, outcome: Outcome, result: CheckResult) -> None:
    origin = outcome.origin if outcome.origin is not None else outcome.timeline.times[0]
    trace = {
        "result": to_json(result),
        "observations": asdict(outcome.observations) if outcome.observations else None,
        "levels_ms_from_origin": outcome.timeline.dump(origin),
    }
    path.write_text(json.dumps(trace, default=str, indent=1) + "\n")


async def _borrow(socket_path: str, check_s: float) -> Target | None:
    """The pins from a running rpilinkd, or None when no daemon answers on the socket."""
    client = Client(socket_path, name="rpilink wiring-check", timeout=10.0)
    try:
        await client.connect()
    except (FileNotFoundError, ConnectionRefusedError):
        await client.close()
        return None
    try:
        lent = await client.request("lend", seconds=min(600.0, check_s + LEASE_SPARE_S))
        where = str(lent.get("pigpio", ""))
        host, sep, port = where.rpartition(":")
        if not sep or not port.isdigit():
            raise PhyUnavailableError(
                f"rpilinkd at {socket_path} does not use pigpiod (backend {where!r}): "
                "there is no cable to check"
            )
        pins = config_from_mapping(
            {"pins": lent["pins"], "bus": {"width": len(lent["pins"]["data"])}}
        ).pins
        deadline = time.monotonic() + PINS_FREE_S
        while not (await client.status()).get("pins_free"):
            if time.monotonic() > deadline:
                raise PhyTimeoutError(
                    f"rpilinkd did not let go of the pins within {PINS_FREE_S:.0f} s: is its "
                    "pigpiod running? (rpilink status, and the daemon's log)"
                )
            await asyncio.sleep(0.02)
    except BaseException:
        await _give_back(client)
        raise
    return Target(host, int(port), pins, client)


async def _give_back(client: Client) -> None:
    """take_back, then close; closing alone ends the lend too, so errors here do not matter."""
    try:
        await client.request("take_back")
    except (TimeoutError, OSError, ConnectionError):
        pass
    except RpilinkError as exc:  # a refusal: the close below ends the lend all the same
        print(f"rpilink wiring-check: take_back: {exc.message}", file=sys.stderr)
    finally:
        await client.close()


def _from_config(args: argparse.Namespace) -> Target:
    path = args.config or Path(DEFAULT_CONFIG_PATH)
    config = load_config(path, required=args.config is not None)
    host, port = args.pigpio or (config.pigpio.host, config.pigpio.port)
    return Target(host, port, config.pins)
