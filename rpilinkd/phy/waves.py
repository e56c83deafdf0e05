"""A burst of frames played as pigpiod waves: one batch per wave, nothing leaked.

Each wave is created and started in one pipelined batch (WVNEW, WVAG, WVCAP,
WVTXM): pigpiod runs one socket's commands in order, and the id WVCAP will
return is known in advance, because the burst starts from a cleared table
(WVCLR) and pigpio hands out ids by a fixed rule (:class:`WaveTable`). Waves
play back to back (the first ONE_SHOT, each next ONE_SHOT_SYNC, created while
its predecessor plays, two in pigpiod at a time), each padded with WVCAP to
the same share of the CB/OOL pool, so a deleted wave's slot is reused exactly
(pigpio issue #126).

When is a wave over? Its reply comes after pigpiod started it, so "reply time
+ start delay + the wave's length" is never early: a burst of more than two
waves waits for that instant (polling WVTAT near it, as asyncio's sleeps end
on a 1 ms grid) before it deletes a wave to make room. The last wave's batch
instead ends with a MICS for as long as the burst still plays, then the WVDELs,
then the epilogue its caller gave (the turn's hand-over, when it is known before
the burst goes out): pigpiod runs it the moment the burst is over. Its answers are
not waited for; a hand-over decided later goes out right behind it, so pigpiod has
it in hand when the MICS ends, however busy the daemon is meanwhile.
"""

from __future__ import annotations

import asyncio
import math
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from rpilinkd.errors import PhyError
from rpilinkd.phy.codec import U32, frame_cost, pack_wvag
from rpilinkd.phy.pigpiod import PigpiodClient, Request, Unchecked
from rpilinkd.pigpio_protocol import (
    MAX_MICS_DELAY,
    WAVE_MODE_ONE_SHOT,
    WAVE_MODE_ONE_SHOT_SYNC,
    WAVE_START_DELAY_US,
    WAVE_USABLE_CBS,
    WAVE_USABLE_OOL,
    WVAG_MAX_PULSES,
    Cmd,
)

WAVE_PAD_PERCENT = 45  # two padded waves fit in the pool with room to spare
WAVE_CBS = WAVE_USABLE_CBS * WAVE_PAD_PERCENT // 100
WAVE_OOL = WAVE_USABLE_OOL * WAVE_PAD_PERCENT // 100
START_DELAY_S = WAVE_START_DELAY_US * 1e-6
TAIL_MARGIN, TAIL_MARGIN_US = 0.01, 50
TIMER_GRAIN_S = 0.001  # asyncio's sleeps end on whole milliseconds (epoll)
T = TypeVar("T")


@dataclass
class WaveTable:
    """pigpiod's wave ids as its allocator hands them out (pigpio.c gpioWaveCreatePad
    and gpioWaveDelete), for waves that all take the same padded size."""

    deleted: list[bool] = field(default_factory=list)

    def next_id(self) -> int:
        """The lowest deleted slot (an exact fit), else a new id on top."""
        return next((i for i, gone in enumerate(self.deleted) if gone), len(self.deleted))

    def take(self, wave_id: int) -> None:
        if wave_id == len(self.deleted):
            self.deleted.append(False)
        else:
            self.deleted[wave_id] = False

    def free(self, wave_id: int) -> None:
        if wave_id < len(self.deleted):
            self.deleted[wave_id] = True
        while self.deleted and self.deleted[-1]:  # deleting the top frees the run below it
            self.deleted.pop()


class WaveBurst:
    """The waves of one burst: each created wave is deleted exactly once, whatever happens.

    A wave belongs to the burst as soon as pigpiod's reply names it, even when
    the task that asked was cancelled before the reply came (the reply future
    survives its waiter). Deleting never waits: WVDEL is fired and forgotten,
    and on a dead connection there is nothing to delete (the next burst's WVCLR
    starts pigpiod's table from scratch).
    """

    def __init__(self, client: PigpiodClient, where: str) -> None:
        self.client, self.where = client, where
        self.table = WaveTable()
        self.owned: set[int] = set()
        self.closed = False
        self.waves_sent = 0
        self._prelude: list[Request] = []
        #: the last wave's batch, sent and not waited for (nothing needs its answers
        #: before the next call: pigpiod runs what is sent later after it)
        self.unchecked: UncheckedWave | None = None
        #: the loop time by which the last wave is over (play returns before that)
        self.over_at = 0.0
        self._epilogue: list[Request] = []
        #: the epilogue's batch part, sent and not waited for
        self.epilogue_unchecked: Unchecked | None = None

    async def play(
        self,
        groups: Sequence[T],
        encode: Callable[[T], U32],
        prelude: Sequence[Request] = (),
        epilogue: Sequence[Request] = (),
    ) -> None:
        """Play the groups' pulses back to back, each encoded just before it is sent
        (while the one before it plays). Returns once the last wave's batch is sent,
        its answers left in :attr:`unchecked`: the batch ends with a MICS for as long
        as the waves still have to play, then their WVDELs, so pigpiod runs whatever
        this socket sends next (the hand-over, the next burst) the moment the burst is
        over, with no poll and no round trip, even while the daemon is busy elsewhere.
        ``prelude``: commands to run first, in the first wave's batch; ``epilogue``:
        commands to run once the burst is over, in the last wave's batch after its
        tail (not sent if the burst is cut short: its caller then decides)."""
        self._prelude, self._epilogue = list(prelude), list(epilogue)
        loop = asyncio.get_running_loop()
        live: deque[tuple[int, float]] = deque()  # (wave id, when it is over at the latest)
        try:
            for index, group in enumerate(groups):
                pulses = encode(group)
                if len(live) == 2:
                    self.delete(await self._wait_done(*live.popleft()))
                first = self.waves_sent == 0
                micros = float(pulses[:, 2].sum())
                # the wave before it may be over already (a busy daemon): this one then
                # starts anew, a start delay after its WVTXM, not at that wave's end
                plays_on = max(0.0, live[-1][1] - loop.time()) if live else 0.0
                ends_in = plays_on + START_DELAY_S
                tail_us = tail_delay_us(ends_in + micros * 1e-6)
                last = index == len(groups) - 1 and tail_us <= MAX_MICS_DELAY
                tail = (tail_us, [wave_id for wave_id, _ in live]) if last else None
                wave_id = await self._create_and_send(pulses, first=first, tail=tail)
                begins = loop.time() if not live else max(live[-1][1], loop.time())
                live.append((wave_id, begins + START_DELAY_S + micros * 1e-6))
                self.waves_sent += 1
                if last:  # deleted by the tail, once over
                    self.over_at = max(ends for _, ends in live)
                    for done_id, _ in live:
                        self.owned.discard(done_id)
                    live.clear()
            while live:  # a wave too long for one MICS: wait for it here
                self.delete(await self._wait_done(*live.popleft()))
            if self._epilogue:  # no tail carried it
                epilogue, self._epilogue = self._epilogue, []
                self.epilogue_unchecked = Unchecked(epilogue, self.client.send_many(epilogue))
        finally:
            self.close()

    async def _create_and_send(
        self, pulses: U32, *, first: bool, tail: tuple[int, list[int]] | None = None
    ) -> int:
        """Create the wave and start it; ``tail``: (µs, earlier waves) to wait for the
        burst to end in pigpiod, then delete those waves and this one."""
        wave_id = 0 if first else self.table.next_id()
        mode = WAVE_MODE_ONE_SHOT if first else WAVE_MODE_ONE_SHOT_SYNC
        requests, self._prelude = self._prelude, []
        requests += [(Cmd.WVCLR, 0, 0, b"")] if first else []
        if first:
            self.table = WaveTable()
        requests += [
            (Cmd.WVNEW, 0, 0, b""),
            (Cmd.WVAG, 0, 0, pack_wvag(pulses)),
            (Cmd.WVCAP, WAVE_PAD_PERCENT, 0, b""),
            (Cmd.WVTXM, wave_id, mode, b""),
        ]
        started = len(requests)
        epilogue: list[Request] = []
        if tail is not None:  # their answers are never read
            micros, earlier = tail
            requests += [(Cmd.MICS, micros, 0, b"")]
            requests += [(Cmd.WVDEL, done, 0, b"") for done in (*earlier, wave_id)]
            epilogue, self._epilogue = self._epilogue, []
        ended = len(requests)
        futures = self.client.send_many(requests + epilogue)
        self.table.take(wave_id)  # pigpiod's table once these commands have run
        if tail is not None:  # deleted by the tail: its answers can wait (see unchecked)
            unchecked = UncheckedWave(requests[:started], futures[:started], wave_id, self.where)
            self.unchecked = unchecked
            if epilogue:
                self.epilogue_unchecked = Unchecked(epilogue, futures[ended:])
            return wave_id
        futures[started - 2].add_done_callback(self._created)
        created = (await self.client.results(requests[:started], futures[:started]))[-2]
        check_wave_id(created, wave_id, self.where)
        return wave_id

    def _created(self, future: asyncio.Future[int]) -> None:
        if future.cancelled() or future.exception() is not None or future.result() < 0:
            return
        if self.closed:  # the burst ended before pigpiod answered
            self.client.fire(Cmd.WVDEL, future.result())
        else:
            self.owned.add(future.result())

    async def _wait_done(self, wave_id: int, over_by: float) -> int:
        """Wait until the wave is over; returns its id."""
        loop = asyncio.get_running_loop()
        if over_by - loop.time() > TIMER_GRAIN_S:
            await asyncio.sleep(over_by - loop.time() - TIMER_GRAIN_S)
        while loop.time() < over_by:  # near the end: ask, a round trip at a time
            if await self.client.command(Cmd.WVTAT, check=False) != wave_id:
                break
        return wave_id

    def delete(self, wave_id: int) -> None:
        self.owned.discard(wave_id)
        self.table.free(wave_id)
        self.client.fire(Cmd.WVDEL, wave_id)

    def close(self) -> None:
        """End the burst: a wave still owned means it was cut short, so halt it first."""
        self.closed = True
        if self.owned:
            self.client.fire(Cmd.WVHLT)
        for wave_id in sorted(self.owned):
            self.client.fire(Cmd.WVDEL, wave_id)
        self.owned.clear()


class UncheckedWave(Unchecked):
    """A wave's batch (WVNEW .. WVTXM) sent without waiting for its answers."""

    def __init__(
        self, requests: list[Request], futures: list[asyncio.Future[int]], wave_id: int, where: str
    ) -> None:
        super().__init__(requests, futures)
        self.wave_id, self.where = wave_id, where

    async def check(self, client: PigpiodClient) -> list[int]:
        """Raises: PigpioCommandError for a refusal, PhyError for a wave id not ours."""
        results = await super().check(client)
        check_wave_id(results[-2], self.wave_id, self.where)
        return results


def check_wave_id(created: int, expected: int, where: str) -> None:
    if created != expected:  # another program makes waves on this pigpiod
        raise PhyError(
            f"pigpiod at {where} named the wave {created}, not {expected}: "
            "is another program using waves on it? rpilinkd needs pigpiod's waves to itself"
        )


def tail_delay_us(seconds: float) -> int:
    """A MICS that outlasts ``seconds`` of waves for sure (DMA pacing and pigpiod's
    clock share a crystal: the margin is for rounding and the start of the DMA)."""
    return math.ceil(seconds * 1e6 * (1 + TAIL_MARGIN) + TAIL_MARGIN_US)


def wave_groups(frames: Sequence[bytes], width: int = 8) -> list[tuple[int, int]]:
    """Cut a burst into waves of whole frames within pigpio's limits: (first, end) indexes.

    Costs per frame from codec.frame_cost; a wave also takes one start-delay CB.
    """
    groups: list[tuple[int, int]] = []
    start = pulses = cbs = ools = 0
    for index, frame in enumerate(frames):
        p, c, o = frame_cost(len(frame), width)
        full = pulses + p > WVAG_MAX_PULSES or cbs + c > WAVE_CBS - 1 or ools + o > WAVE_OOL
        if index > start and full:
            groups.append((start, index))
            start, pulses, cbs, ools = index, 0, 0, 0
        pulses, cbs, ools = pulses + p, cbs + c, ools + o
    groups.append((start, len(frames)))
    return groups
