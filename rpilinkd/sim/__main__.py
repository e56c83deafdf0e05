"""rpilink-sim: run two virtual Raspberry Pis, wired together, each a pigpiod.

When both boards listen it prints one JSON line, e.g.
``{"a": 8888, "b": 8889, "control": "/tmp/sim.sock", "seed": 42}``, and then
serves until SIGTERM or SIGINT, when it prints a summary.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import signal
import sys
from pathlib import Path
from typing import Any

from rpilinkd import __version__
from rpilinkd.exits import run_main
from rpilinkd.sim.alerts import DEFAULT_BUFFER_MS, DEFAULT_REPORT_RATE
from rpilinkd.sim.clock import AlertPhases
from rpilinkd.sim.core import SAMPLE_PERIODS_US, SimConfig, Simulator

EPILOG = """\
examples:
  rpilink-sim                                  boards a and b on 127.0.0.1:8888 and :8889
  rpilink-sim --port-a 0 --port-b 0            free ports, printed in the JSON line
  rpilink-sim --sample-us 1 --vcd bus.vcd      faster sampling, trace every wire
  rpilink-sim --wiring bad.toml --power-off b  a faulty cable, and board b switched off
  rpilink-sim --fault glitch:wire=D3,rate_hz=200,width_us=3 --fault drop:board=b,probability=0.01
  PIGPIO_ADDR=127.0.0.1 PIGPIO_PORT=8888 pigs hwver     talk to board a with Debian's pigs

faults (--fault KIND:key=value,...): glitch (wire, rate_hz, width_us), flip (wire, rate_hz),
stuck (wire, value), cut (wire), drop (board, probability). Wires of the default cable:
D0..D7, STB_AB, STB_BA, FRM_AB, FRM_BA, REQ_AB, REQ_BA, RW_AB, RW_BA (X_AB: a's output to b).
At run time use the control socket (--control PATH): JSON lines such as
{"op": "stats"}, {"op": "fault", "kind": "cut", "wire": "D0"}, {"op": "restart", "board": "b"}.
See docs/emulator.md.
"""


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="rpilink-sim",
        description="Emulate pigpiod on two Raspberry Pis wired together (boards a and b).",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1)")
    parser.add_argument("--port-a", type=int, default=8888, help="board a's port (8888; 0: free)")
    parser.add_argument("--port-b", type=int, default=8889, help="board b's port (8889; 0: free)")
    parser.add_argument(
        "--sample-us",
        type=int,
        default=5,
        choices=SAMPLE_PERIODS_US,
        help="pigpiod's -s sample period in µs, both boards (5)",
    )
    parser.add_argument("--sample-us-a", type=int, choices=SAMPLE_PERIODS_US, help="board a only")
    parser.add_argument("--sample-us-b", type=int, choices=SAMPLE_PERIODS_US, help="board b only")
    parser.add_argument("--wiring", type=Path, help="wiring file (TOML); default: the pin map")
    parser.add_argument(
        "--width",
        type=int,
        default=8,
        choices=(8, 16),
        help="the default cable's data lines: 8, or 16 for the wide bus's pin map (8)",
    )
    parser.add_argument(
        "--power-off",
        action="append",
        default=[],
        choices=("a", "b"),
        metavar="BOARD",
        help="this board is powered off: its pins float and its pigpiod does not answer "
        "(its port is null in the JSON line)",
    )
    parser.add_argument(
        "--report-rate",
        type=float,
        default=DEFAULT_REPORT_RATE,
        metavar="N",
        help="level changes a second each pigpiod can report (400000, a Pi 2B's measured "
        "ceiling); past it reports come late, then are lost; 0: no ceiling",
    )
    parser.add_argument(
        "--buffer-ms",
        type=float,
        default=DEFAULT_BUFFER_MS,
        help="pigpiod's sample ring (its -b, 120 ms): how late a report may be before it is lost",
    )
    parser.add_argument(
        "--alert-phases",
        default=AlertPhases.FREE.value,
        choices=[phases.value for phases in AlertPhases],
        help="the two pigpiods' alert passes (about every 0.95 ms): free, as on two Pis "
        "(b's at a random phase of a's, drifting 0.3 %% a period), or shared (the same "
        "instants) (free)",
    )
    parser.add_argument("--seed", type=int, help="random seed (sample phases, ticks, faults)")
    parser.add_argument("--vcd", type=Path, help="write every wire's changes to this VCD file")
    parser.add_argument("--control", type=Path, help="Unix socket for run-time control")
    parser.add_argument(
        "--fault", action="append", default=[], metavar="SPEC", help="inject a fault (repeatable)"
    )
    parser.add_argument(
        "--log-level",
        default="warning",
        choices=("debug", "info", "warning", "error"),
        help="log level on stderr (warning)",
    )
    parser.add_argument("--version", action="version", version=f"rpilink-sim {__version__}")
    return parser.parse_args(argv)


def summary_lines(stats: dict[str, Any]) -> list[str]:
    lines = [f"rpilink-sim ran {stats['uptime_s']:.1f} s (seed {stats['seed']})"]
    for name, board in stats["boards"].items():
        lines.append(
            f"  board {name}: {board['commands']} commands, {board['waves_started']} waves, "
            f"{board['reports']} reports ({board['reports_dropped']} dropped, "
            f"{board['reports_lost']} lost past the report ceiling), "
            f"{board['batches_dropped']} batches dropped"
        )
    shorts = ", ".join(f"{w} {n}" for w, n in stats["shorts"].items()) or "none"
    lines.append(f"  shorts: {stats['shorts_total']} ({shorts})")
    injected = ", ".join(f"{k} {v}" for k, v in stats["faults_injected"].items())
    lines.append(f"  faults: {len(stats['faults'])} active; injected: {injected}")
    return lines


async def serve(config: SimConfig) -> dict[str, Any]:
    sim = Simulator(config)
    await sim.start()
    ready: dict[str, Any] = {name: sim.port(name) or None for name in ("a", "b")}
    ready["seed"] = sim.seed
    if config.control is not None:
        ready["control"] = str(config.control)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):  # before "ready": a signal may come at once
        loop.add_signal_handler(signum, stop.set)
    print(json.dumps(ready), flush=True)
    await stop.wait()
    stats = sim.stats()
    await sim.stop()
    return stats


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(),
        format="%(asctime)s rpilink-sim %(levelname)s %(name)s: %(message)s",
    )
    return run_main("rpilink-sim", lambda: _run(args))


def _run(args: argparse.Namespace) -> int:
    config = SimConfig(
        sample_us=args.sample_us,
        sample_us_a=args.sample_us_a,
        sample_us_b=args.sample_us_b,
        seed=args.seed,
        wiring=args.wiring,
        host=args.host,
        port_a=args.port_a,
        port_b=args.port_b,
        vcd=args.vcd,
        control=args.control,
        faults=tuple(args.fault),
        report_rate=args.report_rate,
        width=args.width,
        buffer_ms=args.buffer_ms,
        alert_phases=AlertPhases(args.alert_phases),
        off=tuple(args.power_off),
    )
    try:
        stats = asyncio.run(serve(config))
    except OSError as exc:
        raise OSError(f"cannot listen: {exc}") from exc
    print("\n".join(summary_lines(stats)), file=sys.stderr)
    print(json.dumps({"summary": stats}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
