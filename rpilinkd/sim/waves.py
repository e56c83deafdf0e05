"""Waveforms as pigpiod builds and stores them: pulses, merging, the CB/OOL pool.

A pulse is pigpio's ``gpioPulse_t``: set these GPIOs, clear those, then wait
``delay`` µs. Adding pulses to a wave under construction merges them by time
with what is already there (WVAG/WVAS semantics). Creating a wave takes DMA
control blocks (CBs) and out-of-line words (OOL) from one shared pool, costed
with pigpio's rules; deleting a wave only flags it, and its resources return
only when every higher id is deleted too, or when a new wave of exactly the
same size reuses its slot (pigpio issue #126).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from rpilinkd.pigpio_protocol import (
    MAX_WAVES,
    WAVE_MAX_CBS,
    WAVE_MAX_MICROS,
    WAVE_MAX_PULSES,
    WAVE_USABLE_CBS,
    WAVE_USABLE_OOL,
    Err,
)

U32 = npt.NDArray[np.uint32]
F64 = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Pulses:
    """A pulse list: parallel arrays of set masks, clear masks and delays (µs)."""

    on: U32
    off: U32
    delay: U32
    _writes_by_gap: dict[float, tuple[F64, U32, U32]] = field(
        default_factory=dict, compare=False, repr=False
    )

    @classmethod
    def empty(cls) -> Pulses:
        z = np.zeros(0, np.uint32)
        return cls(z, z, z)

    @classmethod
    def from_wvag(cls, ext: bytes) -> Pulses:
        raw = np.frombuffer(ext, dtype="<u4", count=len(ext) // 4)
        raw = raw[: len(raw) - len(raw) % 3].reshape(-1, 3).astype(np.uint32)
        return cls(raw[:, 0].copy(), raw[:, 1].copy(), raw[:, 2].copy())

    def __len__(self) -> int:
        return len(self.on)

    @property
    def micros(self) -> int:
        return int(self.delay.sum(dtype=np.uint64))

    def starts(self) -> npt.NDArray[np.int64]:
        """Each pulse's start, µs from the wave's start."""
        ends = np.cumsum(self.delay, dtype=np.int64)
        return np.concatenate(([0], ends[:-1])) if len(ends) else ends

    def writes(self, gap_us: float) -> tuple[F64, U32, U32]:
        """The wave's GPIO writes (µs from its start, set masks, clear masks), in time
        order: each pulse sets, then clears ``gap_us`` later (pigpio: two DMA writes).
        Worked out once per wave (a wave is created once, and may play many times)."""
        if gap_us not in self._writes_by_gap:
            self._writes_by_gap[gap_us] = _write_events(self, gap_us)
        return self._writes_by_gap[gap_us]

    def cost(self) -> tuple[int, int]:
        """(CBs, OOL words) this wave takes in pigpio's pool, without the start CB."""
        touches = (self.on | self.off) != 0
        cbs = int(np.count_nonzero(touches)) + int(np.count_nonzero(self.delay))
        ools = int(np.count_nonzero(self.on)) + int(np.count_nonzero(self.off))
        return cbs, ools


def _write_events(pulses: Pulses, gap_us: float) -> tuple[F64, U32, U32]:
    starts = pulses.starts().astype(np.float64)
    count = len(pulses)
    if count and (count == 1 or pulses.delay[:-1].min() > gap_us):
        # each clear comes before the next pulse's set: the writes interleave
        time = np.repeat(starts, 2)
        time[1::2] += gap_us
        on, off = np.zeros(2 * count, np.uint32), np.zeros(2 * count, np.uint32)
        on[0::2], off[1::2] = pulses.on, pulses.off
        real = (on | off) != 0  # a pulse that sets (or clears) nothing writes nothing
        return time[real], on[real], off[real]
    sets, clears = pulses.on != 0, pulses.off != 0
    time = np.concatenate([starts[sets], starts[clears] + gap_us])
    order = np.argsort(time, kind="stable")
    on = np.concatenate([pulses.on[sets], np.zeros(int(clears.sum()), np.uint32)])
    off = np.concatenate([np.zeros(int(sets.sum()), np.uint32), pulses.off[clears]])
    return time[order], on[order], off[order]


def merge(existing: Pulses, added: Pulses) -> Pulses | None:
    """Interleave two pulse lists by time, exactly as rawWaveAddGeneric does.

    Pulses of the two lists due at the same µs become one pulse (masks OR-ed);
    the output's delays are the gaps between successive due times. ``None``
    when the result would reach PI_WAVE_MAX_PULSES.
    """
    if len(existing) == 0:
        return added if len(added) < WAVE_MAX_PULSES else None
    new_on, new_off, new_delay = added.on.tolist(), added.off.tolist(), added.delay.tolist()
    old_on, old_off = existing.on.tolist(), existing.off.tolist()
    old_delay = existing.delay.tolist()
    never = 1 << 62
    n1, n2 = len(new_on), len(old_on)
    i1 = i2 = 0
    t_next1 = 0 if n1 else never
    t_next2 = 0 if n2 else never
    t_now = t_max = 0
    on: list[int] = []
    off: list[int] = []
    delay: list[int] = []
    while (i1 < n1 or i2 < n2) and len(on) < WAVE_MAX_PULSES:
        due = min(t_next1, t_next2)
        if t_now < due:  # extend the previous delay up to this pulse
            delay[-1] += due - t_now
            t_now = due
        mask_on = mask_off = 0
        if t_next1 == due:
            mask_on, mask_off = new_on[i1], new_off[i1]
            t_next1 = t_now + new_delay[i1]
            i1 += 1
            t_max = max(t_max, t_next1)
        if t_next2 == due:
            mask_on, mask_off = mask_on | old_on[i2], mask_off | old_off[i2]
            t_next2 = t_now + old_delay[i2]
            i2 += 1
            t_max = max(t_max, t_next2)
        step_to = min(t_next1, t_next2)  # before exhausted sides are retired, as in C
        on.append(mask_on)
        off.append(mask_off)
        delay.append(step_to - t_now)
        t_now = step_to
        if i1 >= n1:
            t_next1 = never
        if i2 >= n2:
            t_next2 = never
    if len(on) >= WAVE_MAX_PULSES:
        return None
    if t_now < t_max:
        delay[-1] += t_max - t_now
    return Pulses(
        np.asarray(on, np.uint32), np.asarray(off, np.uint32), np.asarray(delay, np.uint32)
    )


@dataclass
class WaveBuilder:
    """The wave under construction (WVNEW/WVAG/WVCRE) and pigpio's WVS* figures."""

    pending: Pulses = field(default_factory=Pulses.empty)
    high_micros: int = 0
    high_pulses: int = 0
    high_cbs: int = 0

    def clear(self) -> None:
        self.pending = Pulses.empty()

    def add(self, pulses: Pulses) -> int:
        """Merge pulses in; the new total, or a pigpio error code."""
        if len(pulses) > WAVE_MAX_PULSES:
            return Err.TOO_MANY_PULSES
        merged = merge(self.pending, pulses)
        if merged is None:
            return Err.TOO_MANY_PULSES
        self.pending = merged
        self.high_micros = max(self.high_micros, merged.micros)
        self.high_pulses = max(self.high_pulses, len(merged))
        self.high_cbs = max(self.high_cbs, self.current_cbs())
        return len(merged)

    def current_cbs(self) -> int:
        """WVSC(0): CBs of the wave being built, without the start-delay CB."""
        return self.pending.cost()[0]

    def stat(self, which: int, kind: str) -> int:
        """WVSM/WVSP/WVSC: 0 current, 1 high water, 2 maximum."""
        current = {
            "micros": self.pending.micros,
            "pulses": len(self.pending),
            "cbs": self.current_cbs(),
        }[kind]
        high = {"micros": self.high_micros, "pulses": self.high_pulses, "cbs": self.high_cbs}[kind]
        top = {"micros": WAVE_MAX_MICROS, "pulses": WAVE_MAX_PULSES, "cbs": WAVE_MAX_CBS}[kind]
        return (current, high, top)[which]


@dataclass
class Wave:
    wave_id: int
    pulses: Pulses
    cbs: int  # reserved in the pool, the start-delay CB and any WVCAP padding included
    ools: int
    deleted: bool = False


@dataclass
class WavePool:
    """Wave ids and the shared CB/OOL pool, with gpioWaveCreate's reuse rules."""

    waves: list[Wave] = field(default_factory=list)

    @property
    def cbs_in_use(self) -> int:
        return sum(w.cbs for w in self.waves)

    @property
    def ools_in_use(self) -> int:
        return sum(w.ools for w in self.waves)

    @property
    def ids_in_use(self) -> int:
        return sum(not w.deleted for w in self.waves)

    def get(self, wave_id: int) -> Wave | None:
        if 0 <= wave_id < len(self.waves) and not self.waves[wave_id].deleted:
            return self.waves[wave_id]
        return None

    def create(self, pulses: Pulses, pad_percent: tuple[int, int, int] | None = None) -> int:
        """Store a wave (WVCRE, or WVCAP when padded); its id, or a pigpio error code."""
        if len(pulses) == 0:
            return Err.EMPTY_WAVEFORM
        cbs, ools = pulses.cost()
        cbs += 1  # the 20 µs delay CB at the start of every wave
        if pad_percent is not None:
            pct_cb, pct_bool, pct_tool = pad_percent
            if not all(0 <= pct <= 100 for pct in pad_percent):
                return Err.BAD_PARAM
            pad_cbs = WAVE_USABLE_CBS * pct_cb // 100
            pad_ools = WAVE_USABLE_OOL * pct_bool // 100 + WAVE_USABLE_OOL * pct_tool // 100
            if cbs > pad_cbs:
                return Err.TOO_MANY_CBS
            if ools > WAVE_USABLE_OOL * pct_bool // 100:
                return Err.TOO_MANY_OOL
            cbs, ools = pad_cbs, pad_ools
        for wave in self.waves:
            if wave.deleted and wave.cbs == cbs and wave.ools == ools:
                wave.pulses, wave.deleted = pulses, False
                return wave.wave_id
        if self.cbs_in_use + cbs > WAVE_USABLE_CBS:
            return Err.TOO_MANY_CBS
        if self.ools_in_use + ools > WAVE_USABLE_OOL:
            return Err.TOO_MANY_OOL
        if len(self.waves) >= MAX_WAVES:  # pigpio's own check never fires (a bug); we enforce it
            return Err.NO_WAVEFORM_ID
        wave = Wave(len(self.waves), pulses, cbs, ools)
        self.waves.append(wave)
        return wave.wave_id

    def delete(self, wave_id: int) -> int:
        if self.get(wave_id) is None:
            return Err.BAD_WAVE_ID
        self.waves[wave_id].deleted = True
        while self.waves and self.waves[-1].deleted:  # the top wave frees the deleted run below it
            self.waves.pop()
        return 0

    def clear(self) -> None:
        self.waves.clear()


# --- chains (WVCHA) ----------------------------------------------------------

CHAIN_CBS = 600  # WCB_CHAIN_CBS x PI_WAVE_COUNT_PAGES
CHAIN_COUNTERS = 20
CHAIN_NESTING = 10


@dataclass(frozen=True)
class ChainDelay:
    micros: int


@dataclass(frozen=True)
class ChainLoop:
    body: tuple[ChainItem, ...]
    count: int | None  # None: forever


ChainItem = int | ChainDelay | ChainLoop  # an int is a wave id


def parse_chain(data: bytes, pool: WavePool) -> tuple[ChainItem, ...] | int:
    """Parse WVCHA bytes into a program, or return gpioWaveChain's error code.

    Control blocks are counted as gpioWaveChain spends them, so the same
    chains are too big here as on a Pi.
    """
    stack: list[tuple[list[ChainItem], int]] = []  # open loops: (outer items, cb at start)
    items: list[ChainItem] = []
    cb, counters, i = 1, 0, 0  # cb 0 is the start delay
    while i < len(data):
        if data[i] != 255:
            if pool.get(data[i]) is None:
                return Err.BAD_WAVE_ID
            items.append(data[i])
            cb += 1
            if cb >= CHAIN_CBS:
                return Err.CHAIN_TOO_BIG
            i += 1
            continue
        if i + 2 > len(data):
            return Err.BAD_CHAIN_CMD
        op = data[i + 1]
        if op == 0:
            if len(stack) >= CHAIN_NESTING:
                return Err.CHAIN_NESTING
            stack.append((items, cb))
            items = []
            i += 2
        elif op == 1:
            if counters >= CHAIN_COUNTERS:
                return Err.CHAIN_COUNTER
            if i + 4 > len(data):
                return Err.BAD_CHAIN_CMD
            if not stack or stack[-1][1] == cb:
                return Err.BAD_CHAIN_LOOP
            cycles = data[i + 2] + 256 * data[i + 3]
            i += 4
            outer, _ = stack.pop()
            outer.append(ChainLoop(tuple(items), cycles))
            items = outer
            if cycles > 1:
                counters += 1
                cb += 1
                if cb >= CHAIN_CBS:
                    return Err.CHAIN_TOO_BIG
        elif op == 2:
            if i + 4 > len(data):
                return Err.BAD_CHAIN_CMD
            micros = data[i + 2] + 256 * data[i + 3]
            i += 4
            if micros:
                items.append(ChainDelay(micros))
                cb += 1
                if cb > CHAIN_CBS:
                    return Err.CHAIN_TOO_BIG
        elif op == 3:
            i += 2
            if not stack or stack[-1][1] == cb:
                return Err.BAD_CHAIN_LOOP
            if cb >= CHAIN_CBS:
                return Err.CHAIN_TOO_BIG
            cb += 1
            if i < len(data):
                return Err.BAD_FOREVER
            outer, _ = stack.pop()
            outer.append(ChainLoop(tuple(items), None))
            items = outer
        else:
            return Err.BAD_CHAIN_CMD
    if cb >= CHAIN_CBS:
        return Err.CHAIN_TOO_BIG
    while stack:  # an unclosed loop start is ignored by pigpio: its body plays once
        outer, _ = stack.pop()
        outer.extend(items)
        items = outer
    return tuple(items)
