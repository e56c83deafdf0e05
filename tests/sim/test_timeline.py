"""The emulator's timeline (passes and handshake edges) and the legs the bench cuts from it."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import numpy as np
import pytest

from rpilinkd.phy.pigpiod import PigpiodClient
from rpilinkd.pigpio_protocol import MODE_OUTPUT, Cmd
from rpilinkd.pins import DEFAULT_PINS, ControlLine
from rpilinkd.sim import SimConfig, Simulator
from rpilinkd.sim import timeline as module
from rpilinkd.sim.clock import PERIOD_S
from rpilinkd.sim.wires import Side, Wire
from rpilinkd.testbed.legs import hand_overs, round_trip_legs

PERIOD_US = PERIOD_S * 1e6


async def test_the_control_socket_records_passes_and_the_handshake_edges(tmp_path: Path) -> None:
    path = tmp_path / "control.sock"
    frm, rw = (DEFAULT_PINS.out_pin(line) for line in (ControlLine.FRM, ControlLine.RW))
    async with Simulator(SimConfig(seed=3, control=path)) as sim:
        reader, writer = await asyncio.open_unix_connection(str(path))

        async def ask(request: object) -> dict[str, object]:
            writer.write(json.dumps(request).encode() + b"\n")
            return json.loads(await reader.readline())  # type: ignore[no-any-return]

        pi = PigpiodClient("127.0.0.1", sim.port("a"))
        await pi.connect()
        await pi.batch([(Cmd.MODES, gpio, MODE_OUTPUT, b"") for gpio in (frm, rw)])
        assert await ask({"op": "timeline", "record": True}) == {"ok": True}
        await pi.batch([(Cmd.BS1, 1 << frm, 0, b"")])
        await asyncio.sleep(3 * PERIOD_S)
        # a frame's end, and the hand-over 2 µs later (the next command)
        await pi.batch([(Cmd.BC1, 1 << frm, 0, b""), (Cmd.BS1, 1 << rw, 0, b"")])
        await asyncio.sleep(3 * PERIOD_S)
        answer = await ask({"op": "timeline", "record": False})
        bad = await ask({"op": "timeline", "record": "yes"})
        await pi.close()
        writer.close()
    timeline = answer["timeline"]
    assert isinstance(timeline, dict)
    assert [(wire, level) for wire, _, level in timeline["edges"]] == [
        ("FRM_AB", 1),
        ("FRM_AB", 0),
        ("RW_AB", 1),
    ]
    times = [at for _, at, _ in timeline["edges"]]
    passes = timeline["passes"]
    assert passes  # quiet ones are skipped, as pigpiod's report nothing
    assert passes == sorted(passes)
    assert times == sorted(times)
    assert times[-1] <= passes[-1]
    own = timeline["board_passes"]  # each board's alert thread, at a phase of its own
    assert set(own["a"]) | set(own["b"]) == set(passes)
    assert hand_overs(timeline["edges"], "a") == [times[-1]]
    assert not timeline["truncated"]
    assert bad["ok"] is False
    assert "record" in str(bad["error"])


def test_a_round_trip_is_cut_into_its_two_legs() -> None:
    """a sends, b answers: a hands over at 1,000 µs (the pass at 1,900 reports it), b
    at 3,100 (the pass at 3,800), a again at 5,900; each leg from the reporting pass."""
    passes = [PERIOD_US * k for k in range(1, 10)]
    edges: list[tuple[str, float, int]] = []
    for frm, rw, end in (("FRM_AB", "RW_AB", 1000.0), ("FRM_BA", "RW_BA", 3100.0)):
        edges += [(frm, end - 700, 1), (frm, end - 100, 0), (rw, end, 1)]
    edges += [("RW_AB", 4500.0, 0), ("FRM_AB", 5000.0, 1), ("FRM_AB", 5800.0, 0)]
    edges += [("RW_AB", 5900.0, 1)]
    edges.append(("RW_BA", 4000.0, 0))  # b taking its turn back: no frame before it
    timeline = {"passes": passes, "board_passes": {"a": passes, "b": passes}, "edges": edges}
    legs = round_trip_legs(timeline, "a")
    assert legs.receiver_ms == pytest.approx([(3100 - 1900) / 1e3])
    assert legs.sender_ms == pytest.approx([(5900 - 3800) / 1e3])
    assert legs.receiver_work_ms == pytest.approx([(3100 - 700 - 1900) / 1e3])
    assert legs.sender_work_ms == pytest.approx([(5000 - 3800) / 1e3])
    summary = legs.summary("x", PERIOD_S * 1e3)
    assert summary["x_receiver_leg_periods_p50"] == 2  # 1.2 ms: two 0.95 ms periods
    assert summary["x_sender_leg_periods_p50"] == 3  # 2.1 ms


def test_a_record_cuts_edges_across_passes_and_stops_at_its_bound(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A pass keeps its arrays; the edges, cut at stop, run on from one pass to the
    next (a level held across a pass boundary is no edge), and past the bound the
    record stops and says so."""
    rw = DEFAULT_PINS.out_pin(ControlLine.RW)
    wires = [Wire("RW_AB", rw, rw)]
    pulls = [0] * 54

    def side(levels: list[int]) -> Side:
        latch = np.array([level << rw for level in levels], np.uint32)
        return Side(np.full(len(levels), 1 << rw, np.uint32), latch, pulls)

    monkeypatch.setattr(module, "MAX_PASSES", 3)
    record = module.Timeline()
    record.start()
    for t_end, times, levels in ((10.0, [0.0, 5.0], [0, 1]), (20.0, [10.0, 15.0], [1, 0])):
        record.record(t_end, np.array(times), wires, side(levels), side([0] * len(levels)))
    record.record(30.0, np.array([20.0]), wires, side([0]), side([0]))
    assert not record.recording  # three passes: the bound
    taken = record.stop()
    assert taken["passes"] == [10.0, 20.0, 30.0]
    assert taken["edges"] == [("RW_AB", 5.0, 1), ("RW_AB", 15.0, 0)]
    assert taken["truncated"]


def test_each_leg_begins_at_its_own_boards_pass() -> None:
    """With the boards' alert threads at phases of their own (AlertPhases.FREE), the
    receiver's leg begins at b's pass that saw a's hand-over, not at a's."""
    a_passes = [PERIOD_US * k for k in range(1, 10)]
    b_passes = [at + 400.0 for at in a_passes]
    edges: list[tuple[str, float, int]] = []
    for frm, rw, end in (("FRM_AB", "RW_AB", 1000.0), ("FRM_BA", "RW_BA", 3100.0)):
        edges += [(frm, end - 700, 1), (frm, end - 100, 0), (rw, end, 1)]
    edges += [("RW_AB", 4500.0, 0), ("FRM_AB", 5000.0, 1), ("FRM_AB", 5800.0, 0)]
    edges += [("RW_AB", 5900.0, 1)]
    timeline = {
        "passes": sorted(a_passes + b_passes),
        "board_passes": {"a": a_passes, "b": b_passes},
        "edges": edges,
    }
    legs = round_trip_legs(timeline, "a")
    assert legs.receiver_ms == pytest.approx([(3100 - 1350) / 1e3])  # b's pass at 1,350
    assert legs.sender_ms == pytest.approx([(5900 - 3800) / 1e3])  # a's at 3,800
