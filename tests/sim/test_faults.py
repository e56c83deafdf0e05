"""Faults and shorts, visible in the stats and through the control socket (must-show 5)."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from pathlib import Path

import pigpio
import pytest

from rpilinkd.errors import SimError
from rpilinkd.sim import SimConfig, Simulator, ThreadedSimulator

D0, D1 = 16, 17


def test_both_boards_driving_a_wire_is_a_short(
    sim: ThreadedSimulator, pi_a: pigpio.pi, pi_b: pigpio.pi
) -> None:
    pi_a.write(D0, 1)
    pi_b.write(D0, 0)
    time.sleep(0.05)
    pi_b.set_mode(D0, pigpio.INPUT)
    pi_b.write(D1, 1)
    pi_a.write(D1, 1)  # both drive, same level: no short
    time.sleep(0.05)
    stats = sim.stats()
    assert stats["shorts"] == {"D0": 1}
    assert stats["shorts_total"] == 1


def test_stuck_and_cut_wires(sim: ThreadedSimulator, pi_a: pigpio.pi, pi_b: pigpio.pi) -> None:
    sim.add_fault("stuck:wire=D0,value=1")
    pi_a.write(D0, 0)
    assert pi_b.read(D0) == 1
    sim.clear_faults()
    assert pi_b.read(D0) == 0
    fault = sim.add_fault({"kind": "cut", "wire": "D1"})
    pi_b.set_pull_up_down(D1, pigpio.PUD_DOWN)
    pi_a.write(D1, 1)
    assert pi_b.read(D1) == 0
    sim.remove_fault(fault["id"])
    assert pi_b.read(D1) == 1


def test_glitches_reach_the_receiver_and_are_counted(
    sim: ThreadedSimulator, pi_a: pigpio.pi, pi_b: pigpio.pi
) -> None:
    pi_a.write(D0, 0)
    edges: list[int] = []
    cb = pi_b.callback(D0, pigpio.EITHER_EDGE, lambda g, level, tick: edges.append(level))
    sim.add_fault("glitch:wire=D0,rate_hz=2000,width_us=20")
    time.sleep(0.3)
    cb.cancel()
    injected = sim.stats()["faults_injected"]["glitches"]
    assert injected > 100
    assert len(edges) > 100  # 20 µs glitches are always seen at -s 5


def test_dropped_batches_are_counted(
    sim: ThreadedSimulator, pi_a: pigpio.pi, pi_b: pigpio.pi
) -> None:
    sim.add_fault("drop:board=b,probability=1")
    edges: list[int] = []
    cb = pi_b.callback(D0, pigpio.EITHER_EDGE, lambda g, level, tick: edges.append(level))
    for level in (1, 0, 1, 0):
        pi_a.write(D0, level)
        time.sleep(0.01)
    cb.cancel()
    assert edges == []
    assert sim.stats()["faults_injected"]["batches_dropped"] > 0


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("melt:wire=D0", "kind 'melt' unknown"),
        ("stuck:wire=D9,value=1", "no wire 'D9'"),
        ("stuck:wire=D0,value=2", "value must be 0 or 1"),
        ("glitch:wire=D0", "missing 'rate_hz'"),
        ("drop:board=c,probability=0.5", "board must be one of"),
        ("drop:board=a,probability=1.5", "probability must lie in"),
        ("cut:wire=D0,rate_hz=3", "unknown key"),
    ],
)
def test_bad_fault_specs_are_named(sim: ThreadedSimulator, spec: str, message: str) -> None:
    with pytest.raises(SimError, match=message):
        sim.add_fault(spec)


async def test_control_socket(tmp_path: Path) -> None:
    path = tmp_path / "control.sock"
    async with Simulator(SimConfig(seed=5, control=path)) as sim:
        reader, writer = await asyncio.open_unix_connection(str(path))

        async def ask(request: object) -> dict[str, object]:
            line = request if isinstance(request, bytes) else json.dumps(request).encode()
            writer.write(line + b"\n")
            return json.loads(await reader.readline())  # type: ignore[no-any-return]

        assert (await ask({"op": "ports"})) == {"ok": True, "a": sim.port("a"), "b": sim.port("b")}
        added = await ask({"op": "fault", "kind": "cut", "wire": "STB_AB"})
        assert added["ok"] is True
        stats = await ask({"op": "stats"})
        assert stats["stats"]["faults"][0]["wire"] == "STB_AB"  # type: ignore[index]
        assert (await ask({"op": "melt"}))["ok"] is False
        assert "not JSON" in str(await ask(b"{oops"))
        bad = await ask({"op": "fault", "kind": "cut", "wire": "nope"})
        assert bad == {"ok": False, "error": bad["error"]}
        assert "nope" in str(bad["error"])
        assert (await ask({"op": "clear-faults"}))["ok"] is True
        assert (await ask({"op": "restart", "board": "b", "down_s": 0.05}))["ok"] is True
        assert (await ask({"op": "reset-stats"}))["ok"] is True
        writer.close()


def test_control_socket_path_is_a_unix_socket(tmp_path: Path) -> None:
    path = tmp_path / "c.sock"
    with ThreadedSimulator(SimConfig(control=path)), socket.socket(socket.AF_UNIX) as sock:
        sock.connect(str(path))
        sock.sendall(b'{"op": "stats"}\n')
        assert b'"ok": true' in sock.recv(1 << 16)
    assert not path.exists()  # removed on stop
