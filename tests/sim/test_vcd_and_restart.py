"""The VCD trace (must-show 5) and a board's pigpiod restarting."""

from __future__ import annotations

import contextlib
import itertools
import socket
import struct
import time
from pathlib import Path

import pigpio
import pytest

from rpilinkd.sim import SimConfig, ThreadedSimulator

D0 = 16


def read_vcd(path: Path) -> dict[str, list[tuple[int, str]]]:
    """A small VCD reader: {signal name: [(time, value), ...]}."""
    names: dict[str, str] = {}
    changes: dict[str, list[tuple[int, str]]] = {}
    now = 0
    in_header = True
    for line in path.read_text().splitlines():
        parts = line.split()
        if in_header:
            if parts[:1] == ["$var"]:
                names[parts[3]] = parts[4]
                changes[parts[4]] = []
            if parts[:1] == ["$enddefinitions"]:
                in_header = False
            continue
        if line.startswith("#"):
            now = int(line[1:])
        elif line:
            changes[names[line[1:]]].append((now, line[0]))
    return changes


def test_vcd_shows_the_edges_at_the_right_times(tmp_path: Path) -> None:
    trace = tmp_path / "bus.vcd"
    with ThreadedSimulator(SimConfig(seed=9, vcd=trace)) as sim:
        a = pigpio.pi("127.0.0.1", sim.port("a"), show_errors=False)
        a.set_mode(D0, pigpio.OUTPUT)
        a.wave_clear()
        widths = [30, 70, 10, 40]
        masks = [(1 << D0, 0), (0, 1 << D0)]
        a.wave_add_generic([pigpio.pulse(*masks[i % 2], w) for i, w in enumerate(widths)])
        a.wave_send_once(a.wave_create())
        while a.wave_tx_busy():
            time.sleep(0.002)
        a.stop()
    d0 = [(t, v) for t, v in read_vcd(trace)["D0"] if v in "01"]
    rises_and_falls = d0[-4:]
    assert [v for _, v in rises_and_falls] == ["1", "0", "1", "0"]
    times = [t / 100 for t, _ in rises_and_falls]  # the trace counts 10 ns
    widths_seen = [b - a for a, b in itertools.pairwise(times)]
    assert widths_seen == pytest.approx([30, 70, 10], abs=0.05)  # clears trail sets by ~20 ns
    assert set(read_vcd(trace)) >= {"D0", "D7", "STB_AB", "STB_BA", "RW_BA"}


def test_restart_closes_every_socket_and_keeps_the_pins(
    sim: ThreadedSimulator, pi_a: pigpio.pi
) -> None:
    pi_a.write(D0, 1)
    with socket.create_connection(("127.0.0.1", sim.port("b")), timeout=5) as victim:
        victim.sendall(struct.pack("<IIII", 26, 0, 0, 0))  # PIGPV: the session is up
        assert len(victim.recv(16)) == 16
        sim.restart_board("b", down_s=0.05)
        victim.settimeout(5)
        assert victim.recv(16) == b""  # closed by the restart
    b = pigpio.pi("127.0.0.1", sim.port("b"), show_errors=False)
    try:
        assert b.connected
        assert b.read(D0) == 1  # GPIO state outlives pigpiod
    finally:
        b.stop()
    assert sim.stats()["boards"]["b"]["restarts"] == 1


def test_restart_forgets_waves(sim: ThreadedSimulator) -> None:
    before = pigpio.pi("127.0.0.1", sim.port("a"), show_errors=False)
    before.wave_add_generic([pigpio.pulse(1 << D0, 0, 10)])
    wave = before.wave_create()
    sim.restart_board("a", down_s=0.05)
    # The restart closed this client's sockets; the official client's stop() then races its
    # own notify thread (as against a restarted pigpiod), so its OSError means nothing here.
    with contextlib.suppress(OSError):
        before.stop()
    a = pigpio.pi("127.0.0.1", sim.port("a"), show_errors=False)
    try:
        with pytest.raises(pigpio.error, match="non existent wave id"):
            a.wave_send_once(wave)
    finally:
        a.stop()
