"""The pigpio backend on the emulator: the issue's must-shows for the bus."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import time
import zlib
from collections.abc import AsyncIterator, Sequence

import pytest

from rpilinkd.config import BusConfig
from rpilinkd.errors import PhyError, PhyUnavailableError
from rpilinkd.phy import ControlsChanged, FrameReceived, PhyBackend, open_with_retry
from rpilinkd.phy.base import DataLines
from rpilinkd.phy.codec import U32, BusTiming
from rpilinkd.phy.pigpio import PigpioPhy
from rpilinkd.phy.waves import WAVE_CBS, wave_groups
from rpilinkd.pigpio_protocol import Cmd
from rpilinkd.pins import DEFAULT_PINS, ControlLine
from rpilinkd.sim import SimConfig, Simulator, ThreadedSimulator
from rpilinkd.sim.board import Board
from rpilinkd.testbed import free_port


def timing(sample_us: int) -> BusTiming:
    return BusTiming.from_config(BusConfig(sample_us=sample_us))


def backend(port: int, timing: BusTiming, max_frame: int = 1024) -> PigpioPhy:
    return PigpioPhy(
        host="127.0.0.1", port=port, pins=DEFAULT_PINS, timing=timing, max_frame=max_frame
    )


async def receive(phy: PhyBackend, into: list[bytes]) -> None:
    async for event in phy.events():
        if isinstance(event, FrameReceived):
            into.append(event.data)


async def settle(received: list[bytes], expected: int, timeout: float = 10.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while len(received) < expected and loop.time() < deadline:
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.05)  # anything extra would show up now


@contextlib.asynccontextmanager
async def pair_on(sim: Simulator, timing: BusTiming) -> AsyncIterator[tuple[PigpioPhy, PigpioPhy]]:
    a, b = backend(sim.port("a"), timing), backend(sim.port("b"), timing)
    await a.open()
    await b.open()
    a.set_framing(True)
    b.set_framing(True)
    try:
        yield a, b
    finally:
        await a.aclose()
        await b.aclose()


class Seen:
    """What a backend sees of its peer, in order: "frame", "rw high", "rw low"."""

    def __init__(self, phy: PhyBackend) -> None:
        self.events: list[str] = []
        self._task = asyncio.create_task(self._watch(phy))

    async def _watch(self, phy: PhyBackend) -> None:
        rw = False
        async for event in phy.events():
            if isinstance(event, FrameReceived):
                self.events.append("frame")
            elif isinstance(event, ControlsChanged) and event.levels[ControlLine.RW] != rw:
                rw = event.levels[ControlLine.RW]
                self.events.append(f"rw {'high' if rw else 'low'}")

    async def after(self, count: int) -> list[str]:
        """The events once ``count`` have come (5 s at most), and any more in 20 ms."""
        deadline = asyncio.get_running_loop().time() + 5
        while len(self.events) < count and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.005)
        await asyncio.sleep(0.02)
        return self.events

    def stop(self) -> None:
        self._task.cancel()


async def test_1000_frames_both_ways_at_s5() -> None:
    rng = random.Random(5)
    async with (
        Simulator(SimConfig(sample_us=5, seed=11)) as sim,
        pair_on(sim, timing(5)) as (a, b),
    ):
        for sender, receiver in ((a, b), (b, a)):
            frames = [rng.randbytes(4 * rng.randint(1, 256)) for _ in range(500)]
            got: list[bytes] = []
            listener = asyncio.create_task(receive(receiver, got))
            await sender.drive_data(True)
            await sender.send_frames(frames)
            await sender.drive_data(False)
            await settle(got, len(frames))
            listener.cancel()
            assert got == frames
        assert sim.stats()["shorts_total"] == 0


async def test_the_hand_over_waits_in_pigpiod_for_the_burst_to_end() -> None:
    """A burst returns once its last wave has started; a release and grant sent at
    once run in pigpiod the moment the wave is over (a MICS): no poll, no frame cut."""
    rng = random.Random(6)
    async with (
        Simulator(SimConfig(sample_us=5, seed=12)) as sim,
        pair_on(sim, timing(5)) as (a, b),
    ):
        events: list[str] = []

        async def watch() -> None:
            async for event in b.events():
                if isinstance(event, FrameReceived):
                    events.append("frame")
                elif isinstance(event, ControlsChanged) and event.levels[ControlLine.RW]:
                    events.append("grant")

        watcher = asyncio.create_task(watch())
        for _ in range(20):
            events.clear()
            sim.reset_stats()
            await a.apply([DataLines.CLAIM])
            await a.send_frames([rng.randbytes(200)])
            await a.apply([DataLines.RELEASE, {ControlLine.RW: True}])
            await a.read_controls()  # one round trip: all of it has run
            await a.apply([{ControlLine.RW: False}])
            deadline = asyncio.get_running_loop().time() + 5
            while len(events) < 2 and asyncio.get_running_loop().time() < deadline:
                await asyncio.sleep(0.005)
            assert events == ["frame", "grant"]  # whole, and only then the grant
            assert "WVTAT" not in sim.stats()["commands"]
        watcher.cancel()
        assert b.stats["frames_received"] == 20
        assert sim.stats()["shorts_total"] == 0


async def test_arbitration_toggles_sent_at_once_reach_the_peer_apart() -> None:
    """While STB carries the arbitration (debounced), two writes sent back to back run
    in pigpiod at least the peer's filter apart. A busy pigpiod reads its socket late
    and runs what piled up within µs; two toggles that close vanish together in the
    peer's glitch filter, and the arbitration stalls and starts over (start-ups under
    two CPU hogs: p90 2.6 s, max 4.1 s before the guard; 0.43 s and 0.72 s with it)."""
    async with (
        Simulator(SimConfig(sample_us=5, seed=3)) as sim,
        pair_on(sim, timing(5)) as (a, b),
    ):
        for phy in (a, b):  # as while arbitrating: STB is a control line, debounced
            phy.set_framing(False)
            await phy.debounce_strobes(True)
        seen: list[bool] = []

        async def watch() -> None:
            async for event in b.events():
                if isinstance(event, ControlsChanged):
                    level = event.levels[ControlLine.STB]
                    if not seen or seen[-1] != level:
                        seen.append(level)

        watcher = asyncio.create_task(watch())
        await asyncio.sleep(0.02)
        for _ in range(10):
            await a.apply([{ControlLine.STB: True}])  # sent at once, one after the other:
            await a.apply([{ControlLine.STB: False}])  # the emulator reads them together
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.05)
        watcher.cancel()
        assert seen[-20:] == [True, False] * 10


async def test_taking_a_turn_goes_out_with_the_burst_in_one_batch() -> None:
    """The writes of a call that claims the data lines wait for the burst and go out
    in its first batch, in order (RW, the claim, the wave: one round trip, not two);
    ``flush`` sends them alone when no burst comes."""
    async with (
        Simulator(SimConfig(sample_us=5, seed=13)) as sim,
        pair_on(sim, timing(5)) as (a, b),
    ):
        seen = Seen(b)
        await asyncio.sleep(0.02)
        sim.reset_stats()
        await a.apply([{ControlLine.RW: True}, DataLines.CLAIM])
        await asyncio.sleep(0.02)
        assert "BS1" not in sim.stats()["commands"]  # held, with the claim
        await a.send_frames([bytes(range(64))])
        await a.apply([DataLines.RELEASE])
        assert await seen.after(2) == ["rw high", "frame"]

        await a.apply([{ControlLine.RW: False}, DataLines.CLAIM])
        await asyncio.sleep(0.02)
        assert seen.events == ["rw high", "frame"]
        a.flush()  # no burst this turn
        assert await seen.after(3) == ["rw high", "frame", "rw low"]
        await a.apply([DataLines.RELEASE])
        seen.stop()


async def test_a_turns_end_goes_out_in_its_one_wave_bursts_batch() -> None:
    """``send_burst`` puts the release and the grant in a one-wave burst's own batch,
    behind its MICS: pigpiod runs them the moment the frame is over, and no batch of
    the daemon's has to follow (one that came late, from a busy daemon, held the grant
    back). A longer burst is followed by them as a call of their own, in order too."""
    async with (
        Simulator(SimConfig(sample_us=5, seed=14)) as sim,
        pair_on(sim, timing(5)) as (a, b),
    ):
        seen = Seen(b)
        batches: list[list[int]] = []
        send_many = a.client.send_many

        def record(requests: Sequence[tuple[int, int, int, bytes]]) -> list[asyncio.Future[int]]:
            batches.append([cmd for cmd, *_ in requests])
            return send_many(requests)

        a.client.send_many = record  # type: ignore[method-assign]
        for frames in ([bytes(range(64))], [bytes(1024)] * 12):
            seen.events.clear()
            batches.clear()
            await a.apply([DataLines.CLAIM])  # held for the burst
            await a.send_burst(frames, [DataLines.RELEASE, {ControlLine.RW: True}])
            with pytest.raises(PhyError, match="drive_data"):  # let go: no wave may follow
                await a.send_frames([bytes(4)])
            assert await seen.after(len(frames) + 1) == ["frame"] * len(frames) + ["rw high"]
            commands = [cmd for batch in batches for cmd in batch]
            order = [Cmd.WVTXM, Cmd.MICS, Cmd.WVHLT, Cmd.BS1]  # wave, tail, release, grant
            assert [commands.index(cmd) for cmd in order] == sorted(
                commands.index(cmd) for cmd in order
            )
            one_wave = len(wave_groups(frames)) == 1
            assert (len(batches) == 1) == one_wave, batches
            await a.apply([{ControlLine.RW: False}])
            assert await seen.after(len(frames) + 2) == [*seen.events[:-1], "rw low"]
        seen.stop()
        assert sim.stats()["shorts_total"] == 0


async def test_a_refusal_in_a_bursts_unwaited_batch_is_raised_by_the_next_call() -> None:
    """A burst's last batch is not waited for; what pigpiod answered to it (here: the
    wave got another id, as when another program makes waves) is raised by the
    backend's next call, so the link driver starts the session over rather than
    going on with a wave table it does not know."""
    async with (
        Simulator(SimConfig(sample_us=5, seed=14)) as sim,
        pair_on(sim, timing(5)) as (a, _),
    ):
        execute = sim.execute

        def another_programs_wave(board: Board, cmd: int, p1: int, p2: int, ext: bytes) -> int:
            result = execute(board, cmd, p1, p2, ext)
            return result + 1 if cmd == Cmd.WVCAP and board.name == "a" else result

        sim.execute = another_programs_wave  # type: ignore[method-assign]
        await a.apply([DataLines.CLAIM])
        await a.send_frames([bytes(64)])  # returns without the answers
        await asyncio.sleep(0.05)
        with pytest.raises(PhyError, match="named the wave 1, not 0"):
            await a.apply([DataLines.RELEASE])


async def test_a_burst_is_never_cut_when_its_daemon_lags_between_waves() -> None:
    """The last wave's MICS must cover it even when the wave before it is already over
    as the last batch goes out (a busy daemon): that wave then starts anew, a start
    delay after its WVTXM, and the hand-over must not halt it early. The tail once took
    the wave before it as still playing (a negative remainder), and cut the burst's end
    (found as a rare malformed frame in the benches, made likelier by a slower WVTXM)."""
    rng = random.Random(8)
    with ThreadedSimulator(SimConfig(sample_us=5, seed=15)) as threaded:
        async with pair_on(threaded.sim, timing(5)) as (a, b):
            frames = [rng.randbytes(1024) for _ in range(8)] + [rng.randbytes(64)]
            groups = wave_groups(frames, DEFAULT_PINS.width)
            assert len(groups) >= 2
            got: list[bytes] = []
            listener = asyncio.create_task(receive(b, got))
            encode, encoded = a.encoder.encode, []

            def busy_before_the_last(group: Sequence[bytes]) -> U32:
                encoded.append(group)
                if len(encoded) == len(groups):  # the daemon busy elsewhere meanwhile
                    time.sleep(0.1)  # longer than the wave before this one
                return encode(group)

            a.encoder.encode = busy_before_the_last  # type: ignore[assignment]
            await a.apply([DataLines.CLAIM])
            await a.send_frames(frames)
            await a.apply([DataLines.RELEASE, {ControlLine.RW: True}])
            await settle(got, len(frames))
            listener.cancel()
            assert got == frames


def with_crc(frame: bytes) -> bytes:
    return frame + zlib.crc32(frame).to_bytes(4, "little")


def crc_ok(frame: bytes) -> bool:
    return len(frame) >= 4 and zlib.crc32(frame[:-4]).to_bytes(4, "little") == frame[-4:]


async def send_checked(sample_us: int, timing: BusTiming, count: int = 60) -> tuple[int, int, int]:
    """(frames intact, frames caught by the CRC, frames accepted although corrupted)."""
    rng = random.Random(sample_us)
    frames = [with_crc(rng.randbytes(4 * rng.randint(5, 75))) for _ in range(count)]
    async with (
        Simulator(SimConfig(sample_us=sample_us, seed=21)) as sim,
        pair_on(sim, timing) as (a, b),
    ):
        got: list[bytes] = []
        listener = asyncio.create_task(receive(b, got))
        await a.drive_data(True)
        await a.send_frames(frames)
        await settle(got, count)
        listener.cancel()
    sent = set(frames)
    intact = sum(f in sent for f in got)
    caught = sum(not crc_ok(f) for f in got)
    silently_wrong = sum(crc_ok(f) and f not in sent for f in got)
    return intact, caught, silently_wrong


async def test_a_hold_below_the_sample_period_corrupts_and_is_caught() -> None:
    intact, caught, silently_wrong = await send_checked(5, BusTiming(5, 1, 3, 6))
    assert caught > 0 or intact < 60  # the emulator really loses strobes
    assert intact < 60
    assert silently_wrong == 0


@pytest.mark.parametrize("sample_us", [1, 5])
async def test_default_timing_never_corrupts(sample_us: int) -> None:
    s = sample_us
    assert await send_checked(s, timing(s)) == (60, 0, 0)


async def test_wave_ids_and_control_blocks_stay_flat_over_10000_frames() -> None:
    async with (
        Simulator(SimConfig(sample_us=1, seed=31)) as sim,
        pair_on(sim, timing(1)) as (a, _b),
    ):
        peak = {"ids": 0, "cbs": 0}

        async def watch() -> None:
            while True:
                board = sim.stats()["boards"]["a"]
                peak["ids"] = max(peak["ids"], board["wave_ids_in_use"])
                peak["cbs"] = max(peak["cbs"], board["wave_cbs_in_use"])
                await asyncio.sleep(0.002)

        watcher = asyncio.create_task(watch())
        await a.drive_data(True)
        for _ in range(20):  # 20 bursts of 500 frames
            await a.send_frames([os.urandom(24) for _ in range(500)])
            await a.read_controls()  # a round trip: pigpiod has done what came before
            board = sim.stats()["boards"]["a"]
            assert board["wave_ids_in_use"] == 0  # everything deleted after each burst
            assert board["wave_cbs_in_use"] == 0
        watcher.cancel()
        assert a.stats["frames_sent"] == 10_000
        assert peak["ids"] <= 2
        assert peak["cbs"] <= 2 * WAVE_CBS


async def test_a_burst_cancelled_at_any_moment_leaves_no_wave_behind() -> None:
    """Every created wave is deleted exactly once, whenever the burst is cut short."""
    rng = random.Random(5)
    async with (
        Simulator(SimConfig(sample_us=5, seed=32)) as sim,
        pair_on(sim, timing(5)) as (a, _b),
    ):
        await a.drive_data(True)
        for _ in range(40):
            frames = [os.urandom(200) for _ in range(60)]
            burst = asyncio.create_task(a.send_frames(frames))
            await asyncio.sleep(rng.uniform(0, 0.05))  # before, during or after a wave
            burst.cancel()
            await asyncio.gather(burst, return_exceptions=True)
            await asyncio.sleep(0.01)  # a reply naming a wave may still be on its way
            await a.read_controls()
            board = sim.stats()["boards"]["a"]
            assert board["wave_ids_in_use"] == 0
            assert board["wave_cbs_in_use"] == 0
        await a.send_frames([b"still works!"])  # and the pool is usable


async def test_a_dead_pigpiod_fails_a_burst_at_once() -> None:
    """No cleanup waits for a reply on a connection that is gone."""
    async with (
        Simulator(SimConfig(sample_us=5, seed=33)) as sim,
        pair_on(sim, timing(5)) as (a, _b),
    ):
        await a.drive_data(True)
        frames = [os.urandom(200) for _ in range(300)]
        burst = asyncio.create_task(a.send_frames(frames))
        await asyncio.sleep(0.02)
        restart = asyncio.create_task(sim.restart_board("a", down_s=0.5))
        with pytest.raises(PhyUnavailableError):
            async with asyncio.timeout(1.0):  # not the 5 s command timeout
                await burst
        await restart


async def test_unreachable_pigpiod_is_one_clear_error(caplog: pytest.LogCaptureFixture) -> None:
    port = free_port()
    phy = backend(port, timing(5))
    with pytest.raises(PhyUnavailableError, match=f"127.0.0.1:{port}"):
        await phy.open()
    caplog.set_level(logging.INFO)

    async def start_later() -> Simulator:
        await asyncio.sleep(0.5)
        sim = Simulator(SimConfig(port_a=port))
        await sim.start()
        return sim

    starter = asyncio.create_task(start_later())
    assert await open_with_retry(phy, retry_s=0.1)
    sim = await starter
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1  # logged once, not once per attempt
    assert "unreachable" in errors[0].getMessage()
    assert any("reachable again" in r.getMessage() for r in caplog.records)
    await phy.aclose()
    await sim.stop()


async def test_pigpiod_restart_ends_the_stream_and_reopens() -> None:
    async with Simulator(SimConfig(seed=41)) as sim:
        phy = backend(sim.port("b"), timing(5))
        await phy.open()
        await sim.restart_board("b", down_s=0.1)
        with pytest.raises(PhyUnavailableError, match="closed the connection"):
            async for _ in phy.events():
                pass
        await phy.aclose()
        assert await open_with_retry(phy, retry_s=0.05)
        assert phy.is_open
        await phy.aclose()
