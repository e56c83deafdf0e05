"""scripts/soak: long runs of the fault campaign and of fresh start-ups, quiet or loaded.

    scripts/soak --minutes 5               the fault campaign, round after round
    scripts/soak --minutes 5 --hogs 2      the same with two CPU-bound processes running
    scripts/soak --startups 50 --hogs 2    50 fresh pair start-ups, timed

Prints progress on stderr and a JSON summary on stdout; exits 1 when a promise
is broken: a message acknowledged and lost, duplicated, corrupted or
reordered, a short on any wire, waves left in pigpiod when idle, an internal
error, or a relink (or a fresh link-up) slower than the bound: 1 s quiet,
3 s with CPU hogs (docs/operations.md).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from rpilinkd.stats import percentile
from rpilinkd.testbed.campaign import Campaign
from rpilinkd.testbed.processes import Child
from rpilinkd.testbed.system import System

QUIET_BOUND_S, LOADED_BOUND_S = 1.0, 3.0


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


@contextmanager
def cpu_hogs(count: int) -> Iterator[None]:
    """``count`` processes spinning on a core each, stopped on the way out."""
    hogs = [Child([sys.executable, "-c", "while True: pass"]) for _ in range(count)]
    try:
        yield
    finally:
        for hog in hogs:
            hog.stop()


def distribution(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    figures = {
        f"p{round(q * 100)}": round(percentile(values, q) or 0.0, 3) for q in (0.5, 0.9, 0.99)
    }
    return {
        "min": round(min(values), 3),
        **figures,
        "max": round(max(values), 3),
        "mean": round(sum(values) / len(values), 3),
    }


def startups(count: int) -> dict[str, Any]:
    """Fresh pairs: emulator and both daemons started, timed to link up.

    ``link_s`` counts from both daemons answering their sockets (the link's own
    work: arbitration and HELLO); ``process_s`` from starting the processes
    (Python's start-up included).
    """
    link_s, process_s = [], []
    for index in range(count):
        with tempfile.TemporaryDirectory(prefix="rpilink-soak-") as workdir:
            system = System(Path(workdir))
            began = time.monotonic()
            system.launch()
            try:
                daemons = list(system.daemons.values())
                while not all(d.answering() for d in daemons):
                    time.sleep(0.01)
                answering = time.monotonic()
                for daemon in daemons:
                    daemon.wait_for("up", 30)
                up = time.monotonic()
            finally:
                system.stop()
        link_s.append(up - answering)
        process_s.append(up - began)
        say(
            f"  start-up {index + 1}/{count}: link up {link_s[-1]:.2f} s after the daemons "
            f"answered ({process_s[-1]:.2f} s from their start)"
        )
    return {
        "count": count,
        "link_s": distribution(link_s),
        "process_s": distribution(process_s),
        "worst_link_s": max(link_s, default=0.0),
    }


def campaign(minutes: float, seed: int) -> dict[str, Any]:
    with (
        tempfile.TemporaryDirectory(prefix="rpilink-soak-") as workdir,
        System(Path(workdir)) as system,
    ):
        runner = Campaign(system, seed=seed, log=say)
        result = asyncio.run(runner.run(duration_s=minutes * 60, quick=False))
        return {**result.summary(), "clean": result.clean}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="scripts/soak",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split("\n\n", 1)[1],
    )
    parser.add_argument(
        "--minutes", type=float, default=0.0, help="run the fault campaign this long (0: skip it)"
    )
    parser.add_argument("--startups", type=int, default=0, help="time this many fresh link-ups")
    parser.add_argument("--hogs", type=int, default=0, help="CPU-bound processes to run meanwhile")
    parser.add_argument("--seed", type=int, default=1, help="the campaign's random seed")
    args = parser.parse_args(argv)
    if args.minutes <= 0 and args.startups <= 0:
        parser.error("nothing to do: give --minutes and/or --startups")
    bound = LOADED_BOUND_S if args.hogs else QUIET_BOUND_S
    report: dict[str, Any] = {"hogs": args.hogs, "bound_s": bound}
    ok = True
    with cpu_hogs(args.hogs):
        if args.startups > 0:
            say(f"{args.startups} fresh start-ups ({args.hogs} CPU hogs)")
            report["startups"] = figures = startups(args.startups)
            ok &= figures["worst_link_s"] <= bound
        if args.minutes > 0:
            say(f"fault campaign for {args.minutes:g} min ({args.hogs} CPU hogs)")
            report["campaign"] = figures = campaign(args.minutes, args.seed)
            ok &= figures["clean"] and figures["relink_s"].get("max", 0.0) <= bound
    report["ok"] = ok
    print(json.dumps(report, indent=2))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
