"""The sampling pass: what each board's pigpiod would have seen, and what it reports.

About once a millisecond (pigpiod's alert thread wakes every ~0.9 ms) the
emulator replays the pin changes of both boards since the last pass, resolves
the wires, samples each board's GPIO 0-31 on its own grid (``phase + k·s``
µs), applies glitches, flips and filters, and writes one 12-byte report per
sample whose watched bits changed. Everything is vectorised with numpy: at
``-s 1`` that is a million samples a second per board.

A level that lasts less than one sample period falls between samples or is
caught by exactly one, as on hardware; that is the property the bus timing
must respect.

Hot loops use array methods (``x.nonzero()[0]``, ``a.searchsorted``) and
``np.count_nonzero``: numpy's module functions and ``.any()`` cost several µs more
per call on the small arrays of a pass.
"""

from __future__ import annotations

import functools
import logging
import math
import random
from collections.abc import Callable

import numpy as np
import numpy.typing as npt

from rpilinkd.pigpio_protocol import ALIVE_AFTER_US, NTFY_ALIVE, NTFY_WDOG
from rpilinkd.sim.board import Board, NotifyHandle
from rpilinkd.sim.faults import Faults
from rpilinkd.sim.glitch import filters_steady, glitch_filter
from rpilinkd.sim.pio_board import PioBoard
from rpilinkd.sim.stretches import Stretch, Window, joined
from rpilinkd.sim.timeline import Timeline
from rpilinkd.sim.vcd import VcdWriter
from rpilinkd.sim.wires import Crossing, Flags, Side, Wire, resolve, shorts, wire_values

_LOGGER = logging.getLogger(__name__)
U32 = npt.NDArray[np.uint32]
F64 = npt.NDArray[np.float64]
SHORT_LOG_EVERY_S = 5.0  # rate limit for the short warning, per wire


class Sampler:
    def __init__(
        self,
        boards: dict[str, Board],
        wires: Callable[[], list[Wire]],
        *,
        faults: Faults,
        rng: random.Random,
        start_us: float,
        vcd: VcdWriter | None = None,
        timeline: Timeline | None = None,
    ) -> None:
        self.boards = boards
        self._wires = wires
        self.faults = faults
        self._rng = rng
        self.vcd, self.timeline = vcd, timeline
        self.last_us = start_us  # the end of the newest stretch
        self.sampled_us = dict.fromkeys(boards, start_us)  # each board's last pass
        self._unsampled: list[Stretch] = []  # since the board that passed longest ago
        self.last_level: dict[str, int | None] = dict.fromkeys(boards, None)  # None: not sampled
        self._short_since: dict[str, float] = {}  # wire (or net) -> when its ongoing short began
        self.short_counts: dict[str, int] = {}
        #: a board's last sample shows the pins as they are (no change since it)
        self._settled: dict[str, bool] = dict.fromkeys(boards, False)
        self.quiet_passes = 0
        self._cable: tuple[Wire, ...] = ()
        self._crossing: dict[str, Crossing] = {}
        self.short_longest_us: dict[str, float] = {}
        self._short_logged: dict[str, float] = {}
        self.passes = 0

    # -- one pass -------------------------------------------------------------------

    def run(self, t_end: float, boards: tuple[str, ...] = ("a", "b")) -> None:
        """The pass of ``boards`` (those whose alert thread's instant it is) at ``t_end``."""
        t0 = self.last_us
        if t_end <= t0:
            return
        a, b = self.boards["a"], self.boards["b"]
        a.advance(t_end)
        b.advance(t_end)
        glitches, flips = self.faults.glitches(t0, t_end), self.faults.flips(t_end - t0)
        if not (glitches or flips) and self.quiet(t_end):
            for board in (a, b):
                board.alerts.idle(t_end)
            self.last_us = t_end
            self.sampled_us = dict.fromkeys(self.boards, t_end)
            self.passes += 1
            self.quiet_passes += 1
            return
        # each Pi's alert thread runs on its own; here one board waits for the other's
        # sampling, so the one the other drove most (the burst's receiver) goes first
        a_first = b.changes_logged >= a.changes_logged
        times, side_a, side_b = self._replay(a, b, t0, t_end)
        self._unsampled.append(Stretch(Window(t0, t_end, times, glitches, flips), side_a, side_b))
        self.last_us = t_end
        wires = self._wires()
        crossings = self._crossings(wires)
        for name in sorted(boards, reverse=not a_first):
            board = self.boards[name]
            since = [s for s in self._unsampled if s.window.start >= self.sampled_us[name]]
            window, window_a, window_b = joined(since)
            x, y = (window_a, window_b) if name == "a" else (window_b, window_a)
            faulted = window.glitches or window.flips  # only they need the pins by wire name
            pins = {w.name: (w.a if name == "a" else w.b) for w in wires} if faulted else {}
            resolved = functools.partial(resolve, crossings[name], x, y)
            if isinstance(board, PioBoard):  # a simulated Pi 5's PIO reads the wires itself
                board.observe(window.times, resolved(), t_end)
            self._sample(board, window, resolved, x.drive, pins)
            self.sampled_us[name] = t_end
        oldest = min(self.sampled_us.values())
        self._unsampled = [s for s in self._unsampled if s.window.start >= oldest]
        # the reports are out: the emulator's own bookkeeping waits till then
        names = {w.a: w.name for w in wires}
        self._count_shorts(shorts(crossings["a"], side_a, side_b, names), times, t_end)
        if self.vcd is not None:
            self.vcd.record(times, wire_values(wires, side_a, side_b))
        if self.timeline is not None and self.timeline.recording:
            self.timeline.record(t_end, times, wires, side_a, side_b, boards=boards)
        self.passes += 1

    def _crossings(self, wires: list[Wire]) -> dict[str, Crossing]:
        """Each board's view of the cable, rebuilt only when a fault changes it."""
        key = tuple(wires)
        if key != self._cable:
            self._cable = key
            self._crossing = {
                "a": Crossing.build([(w.a, w.b, w) for w in wires]),
                "b": Crossing.build([(w.b, w.a, w) for w in wires]),
            }
        return self._crossing

    @staticmethod
    def watchdog_deadlines(board: Board) -> list[float]:
        """When each armed watchdog of ``board`` fires, failing a change first (µs)."""
        return [
            board.wdog_since[gpio] + timeout_us
            for gpio, timeout_us in board.watchdogs.items()
            if gpio in board.wdog_since
        ]

    def watchdog_due(self, board: Board, t_end: float) -> bool:
        """Whether a watchdog report falls due in a pass ending at ``t_end``."""
        return any(due <= t_end for due in self.watchdog_deadlines(board))

    def quiet(self, t_end: float) -> bool:
        """Whether this pass has nothing to report and nothing to change: no pin moved,
        every listener's last sample is still true, no filter or watchdog is pending,
        no report is waiting and none is due (most passes of an idle link)."""
        if self.vcd is not None or self._short_since:  # a short on is timed every pass
            return False
        if self._unsampled:  # a board has yet to sample what moved
            return False
        for board in self.boards.values():
            if isinstance(board, PioBoard):  # its PIO reads the wires every pass
                return False
            if board.pins_moved or self.watchdog_due(board, t_end) or not board.alerts.caught_up:
                return False
            if any(f.value != f.candidate for f in board.glitch.values()):
                return False
            running = [h for h in board.handles.values() if h.running and h.sink is not None]
            if running and not self._settled[board.name]:
                return False
            if any(t_end - h.last_emit_us > ALIVE_AFTER_US for h in running):
                return False
        return True

    def quiet_until(self, now_us: float) -> float | None:
        """While the next pass is :meth:`quiet`: the instant (µs) from which a pass
        finds something without any command (a watchdog, an ALIVE); else None."""
        if not self.quiet(now_us):
            return None
        due = [math.inf]
        for board in self.boards.values():
            due += self.watchdog_deadlines(board)
            due += [
                handle.last_emit_us + ALIVE_AFTER_US
                for handle in board.handles.values()
                if handle.running and handle.sink is not None
            ]
        return min(due)

    def _replay(self, a: Board, b: Board, t0: float, t_end: float) -> tuple[F64, Side, Side]:
        """Both boards' pin states at every instant either of them changed (the boards
        have advanced to the end of the pass)."""
        logs = a.take_log(), b.take_log()
        times = _merged(t0, logs[0][0][1:], logs[1][0][1:])
        sides = []
        for board, (log_t, log_drive, log_latch) in zip((a, b), logs, strict=True):
            index = log_t.searchsorted(times, side="right") - 1  # 0: the state before
            sides.append(Side(log_drive[index], log_latch[index], board.pulls))
        return times, sides[0], sides[1]

    def _count_shorts(self, found: dict[str, Flags], times: F64, now_us: float) -> None:
        """Count each wire's new shorts and time them (``found``: flags per instant)."""
        for name in set(found) | set(self._short_since):
            flags = found.get(name, np.zeros(len(times), bool))
            ongoing = name in self._short_since
            before = np.concatenate(([ongoing], flags[:-1]))
            began = times[flags & ~before].tolist()
            ended = times[~flags & before].tolist()
            starts = ([self._short_since[name]] if ongoing else []) + began
            ends = ended + [now_us] * bool(flags[-1])  # a short still on counts up to now
            for start, end in zip(starts, ends, strict=True):
                longest = max(self.short_longest_us.get(name, 0.0), end - start)
                self.short_longest_us[name] = longest
            if flags[-1]:
                self._short_since[name] = starts[-1]
            else:
                self._short_since.pop(name, None)
            if began:
                self._log_short(name, len(began), now_us)

    def _log_short(self, name: str, new: int, now_us: float) -> None:
        self.short_counts[name] = self.short_counts.get(name, 0) + new
        last = self._short_logged.get(name, -math.inf)
        if now_us - last >= SHORT_LOG_EVERY_S * 1e6:
            self._short_logged[name] = now_us
            _LOGGER.warning(
                "short on wire %s: two ends drive it to different levels (%d so far)",
                name,
                self.short_counts[name],
            )

    # -- sampling one board ---------------------------------------------------------

    def _sample(
        self,
        board: Board,
        window: Window,
        resolved: Callable[[], U32],
        drive: U32,
        pins: dict[str, int],
    ) -> None:
        t0, t_end = window.start, window.end
        running = [h for h in board.handles.values() if h.running and h.sink is not None]
        self._settled[board.name] = False
        if not running and not board.watchdogs and not board.glitch:
            self.last_level[board.name] = None  # nobody listens: no need to know the pins
            return
        levels = resolved()
        if self.last_level[board.name] is None:
            self.last_level[board.name] = int(levels[0])  # the level when this pass began
        if self._nothing_new(board, window, levels, running):
            board.alerts.idle(t_end)
            self.last_level[board.name] = int(levels[-1])
            self._settled[board.name] = True
            return
        period = board.sample_us
        first = math.floor((t0 - board.phase_us) / period) + 1
        last = math.floor((t_end - board.phase_us) / period)
        if last < first:
            return
        at = board.phase_us + np.arange(first, last + 1, dtype=np.float64) * period
        index = window.times.searchsorted(at, side="right") - 1
        level = levels[index].copy()
        driving = drive[index]
        for wire, start, stop in window.glitches:
            bit = np.uint32(1 << pins[wire])
            hit = (at >= start) & (at < stop) & ((driving & bit) == 0)
            level[hit] ^= bit
        for wire in window.flips:
            j = self._rng.randrange(len(level))
            bit = np.uint32(1 << pins[wire])
            if not driving[j] & bit:
                level[j] ^= bit
                self.faults.injected["flips"] += 1
        if not filters_steady(board.glitch, level):
            for gpio, state in board.glitch.items():
                level = glitch_filter(gpio, state, at, level, t_end)
        if self.faults.drop_batch(board.name):
            board.stats["batches_dropped"] += 1
            self.last_level[board.name] = int(level[-1])
            return
        self._emit(board, at, level, t_end)
        self.last_level[board.name] = int(level[-1])
        self._settled[board.name] = int(level[-1]) == int(levels[-1]) and bool(len(at))

    def _nothing_new(
        self, board: Board, window: Window, levels: U32, running: list[NotifyHandle]
    ) -> bool:
        """Whether sampling this board would report nothing: no pin it watches moved,
        no filter, watchdog, fault, backlog or ALIVE pending (the sender's board while
        it plays a burst: half of most passes' work)."""
        if window.glitches or window.flips or not board.alerts.caught_up:
            return False
        if self.watchdog_due(board, window.end):
            return False
        if any(f.value != f.candidate for f in board.glitch.values()):
            return False
        if any(window.end - h.last_emit_us > ALIVE_AFTER_US for h in running):
            return False
        filtered = sum(1 << g for g in (*board.glitch, *board.watchdogs))
        watched = np.uint32(sum(h.bits for h in running) | filtered)
        last = np.uint32(self.last_level[board.name] or 0)
        return not np.count_nonzero((levels ^ last) & watched)

    def _emit(self, board: Board, at: F64, level: U32, t_end: float) -> None:
        previous = np.empty_like(level)
        previous[0] = self.last_level[board.name] or 0
        previous[1:] = level[:-1]
        changed_bits = level ^ previous
        end_tick = board.tick(t_end)
        watched = np.uint32(sum(h.bits for h in board.handles.values() if h.running))
        current = int(level[-1])  # watchdog and alive reports carry the level of now
        news = ((changed_bits & watched) != 0).nonzero()[0]  # what the alert thread must report
        moved_at, moved = at, changed_bits
        at, level, changed_bits = board.alerts.process(
            at[news], level[news], changed_bits[news], t_end
        )
        # pigpiod checks its watchdogs on the samples it has processed: none fires
        # while changes wait to be reported (a report stamped now would overtake them)
        fired = self._watchdogs(board, moved_at, moved, t_end, board.alerts.caught_up)
        board.stats["reports_lost"] = board.alerts.lost
        ticks = (at.astype(np.int64) + board.tick_offset).astype(np.uint32)  # wraps, as pigpio's
        listening = [(h, h.sink) for h in board.handles.values() if h.running and h.sink]
        for handle, sink in listening:
            if len(listening) == 1 and int(watched) & ~handle.bits == 0:
                picked = None  # it watches all that was reported (the usual case)
            else:
                picked = ((changed_bits & np.uint32(handle.bits)) != 0).nonzero()[0]
            extra = [(NTFY_WDOG | g, end_tick) for g in fired if handle.bits >> g & 1]
            count = len(ticks) if picked is None else len(picked)
            if not count and not extra:
                if t_end - handle.last_emit_us > ALIVE_AFTER_US:
                    extra.append((NTFY_ALIVE, end_tick))
                else:
                    continue
            records = _records(
                handle.seqno,
                ticks if picked is None else ticks[picked],
                level if picked is None else level[picked],
                extra,
                current,
            )
            handle.seqno = (handle.seqno + count + len(extra)) & 0xFFFF
            handle.last_emit_us = t_end
            if sink(records):
                board.stats["reports"] += count + len(extra)
            else:
                board.stats["reports_dropped"] += count + len(extra)

    def _watchdogs(
        self, board: Board, at: F64, changed: U32, t_end: float, may_fire: bool
    ) -> list[int]:
        fired = []
        for gpio, timeout_us in board.watchdogs.items():
            moved = ((changed & np.uint32(1 << gpio)) != 0).nonzero()[0]
            if len(moved):
                board.wdog_since[gpio] = float(at[moved[-1]])
            if may_fire and t_end - board.wdog_since.get(gpio, t_end) >= timeout_us:
                fired.append(gpio)
                board.wdog_since[gpio] = t_end
        return fired


def _records(
    seqno: int, ticks: U32, levels: U32, extra: list[tuple[int, int]], current: int
) -> bytes:
    """pigpiod's 12-byte reports: level changes, then ``extra`` (flags, tick) ones
    carrying ``current``. Built as little-endian words (seqno | flags << 16, tick,
    level): cheaper than a structured array on a pass's few reports."""
    count = len(ticks)
    words = np.empty((count + len(extra), 3), "<u4")
    words[:, 0] = (seqno + np.arange(len(words))) & 0xFFFF
    words[:count, 1] = ticks
    words[:count, 2] = levels
    for row, (flags, tick) in enumerate(extra, start=count):
        words[row] = (int(words[row, 0]) | flags << 16, tick, current)
    return words.tobytes()


def _merged(t0: float, a: F64, b: F64) -> F64:
    """``t0`` and two logs, each in time order (a board logs its changes as they come):
    every instant once, in order (np.unique, for two sorted runs: a stable sort merges
    them in linear time; one run alone, as in most passes, needs no sort)."""
    alone = b if not len(a) else a if not len(b) else None
    if alone is not None and (not len(alone) or alone[0] >= t0):
        times = np.concatenate(([t0], alone))
    else:
        times = np.sort(np.concatenate(([t0], a, b)), kind="stable")
    distinct = np.empty(len(times), bool)
    distinct[0] = True
    np.not_equal(times[1:], times[:-1], out=distinct[1:])
    return times[distinct]
