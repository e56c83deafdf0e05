"""scripts/bench's runner: its JSON names the machine and how fast it ran meanwhile."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.support.procs import REPO


def test_the_bench_reports_the_hosts_speed_beside_its_figures() -> None:
    """This shared host's speed drifts by half within an hour (the 64 B round trip then
    goes from 5 to 7 pass periods), so each report carries a speed probe at its start
    and end, and the steal time a VM's hypervisor took meanwhile: figures compare only
    at like speeds."""
    done = subprocess.run(
        [sys.executable, str(REPO / "scripts/benches/run.py"), "link", "--quick", "--json"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    report = json.loads(done.stdout)
    machine = report["machine"]
    assert machine["cores"] >= 1
    assert 0 < machine["speed_probe_ms_at_start"] < 10_000
    assert 0 < machine["speed_probe_ms_at_end"] < 10_000
    assert machine["cpu_steal_pct"] is None or 0 <= machine["cpu_steal_pct"] <= 100
    assert report["link"]["lossless_64B_msgs_per_s"] > 0
