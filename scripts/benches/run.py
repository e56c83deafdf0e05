"""Run the benchmark suites in this folder and report their figures.

Each suite is a module here with ``DESCRIPTION`` and ``run(quick) -> dict``;
the dict's keys name the figures (units in the name: ``_MBps``, ``_pct``,
``_ratio``). Figures come with the machine they were measured on, because the
machines here are shared and noisy: compare ratios, not absolute times.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent))  # the repository, for `import rpilinkd`
sys.path.insert(0, str(HERE))


def suites() -> list[str]:
    return sorted(
        p.stem
        for p in HERE.glob("*.py")
        if p.stem not in {"run", "__init__"} and not p.stem.startswith("_")
    )


def machine() -> dict[str, Any]:
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        load = os.getloadavg()[0]
    except OSError:
        load = float("nan")
    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "load_1min_at_start": round(load, 2),
    }


PROBE_LOOPS = 300_000


def cpu_times() -> list[int] | None:
    """The machine's CPU time so far by kind (/proc/stat: user ... steal), or None."""
    try:
        return [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    except (OSError, ValueError):
        return None


def steal_pct(before: list[int] | None, after: list[int] | None) -> float | None:
    """The share of all CPU time the hypervisor gave other guests in between (a VM's
    steal time: the runs here lose that much of their machine, unseen by their own
    CPU clocks)."""
    if before is None or after is None:
        return None
    spent = [b - a for a, b in zip(before, after, strict=True)]
    return round(100 * spent[7] / sum(spent), 1) if sum(spent) else None


def speed_probe_ms() -> float:
    """Milliseconds for a fixed piece of interpreter work, best of three: this shared
    host's speed drifts by half within an hour, so figures compare only at like speeds."""
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        total = 0
        for i in range(PROBE_LOOPS):
            total += i * i % 7
        best = min(best, time.perf_counter() - started)
    return round(best * 1e3, 1)


def main() -> int:
    parser = argparse.ArgumentParser(
        prog="scripts/bench",
        description="Measure rpilinkd's speed. Suites: " + ", ".join(suites()),
    )
    parser.add_argument("suite", nargs="*", help="suites to run (default: all)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--quick", action="store_true", help="shorter runs, rougher figures")
    args = parser.parse_args()
    chosen = args.suite or suites()
    unknown = sorted(set(chosen) - set(suites()))
    if unknown:
        parser.error(f"unknown suite(s): {', '.join(unknown)}; known: {', '.join(suites())}")
    report: dict[str, Any] = {"machine": machine()}
    report["machine"]["speed_probe_ms_at_start"] = speed_probe_ms()
    times_at_start = cpu_times()
    for name in chosen:
        module = importlib.import_module(name)
        if not args.json:
            print(f"== {name}: {module.DESCRIPTION}", file=sys.stderr, flush=True)
        started = time.perf_counter()
        figures = module.run(args.quick)
        figures["suite_seconds"] = round(time.perf_counter() - started, 1)
        report[name] = figures
        if not args.json:
            width = max(len(k) for k in figures)
            for key, value in figures.items():
                shown = f"{value:,.2f}" if isinstance(value, float) else str(value)
                print(f"  {key:<{width}}  {shown}")
    report["machine"]["cpu_steal_pct"] = steal_pct(times_at_start, cpu_times())
    report["machine"]["speed_probe_ms_at_end"] = speed_probe_ms()
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        m = report["machine"]
        print(
            f"(machine: {m['cpu']}, {m['cores']} cores, Python {m['python']}, "
            f"load {m['load_1min_at_start']}, speed probe {m['speed_probe_ms_at_start']} ms "
            f"at the start and {m['speed_probe_ms_at_end']} at the end: lower is faster; "
            f"steal time {m['cpu_steal_pct']} % of the CPU)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
