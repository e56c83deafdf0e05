"""LinkPair: two connections joined by an in-memory wire, on a fake clock.

The wire can lose, corrupt, duplicate, delay and reorder frames, and be cut
for a while. The clock jumps straight to the next thing that happens (a frame
arriving, a timer, a restart), so minutes of link time pass in milliseconds.
Like the daemon, the pair restarts a connection after it goes down (as the
bus-access machine would after re-arbitrating) and answers every received
message with accept().

By default both ends send whenever they like (a full-duplex wire: the protocol
must work on any). ``half_duplex=True`` takes turns as the bus does: only the end
holding the turn sends; it hands the turn over after a burst (the peer then
answers), or when it has nothing to send and the peer has, and its frames' timers
start at the hand-over (``frames_on_wire``), as the daemon starts them.
"""

from __future__ import annotations

import heapq
import itertools
import random
from collections.abc import Callable
from dataclasses import dataclass, field

from rpilinkd.config import LinkConfig
from rpilinkd.link import Connection, LinkDown, LinkEvent, MessageReceived

RESTART_AFTER_S = 0.05  # what re-arbitration costs on the bus, roughly
TURN_AROUND_S = 0.001  # a hand-over on the half-duplex wire, roughly the bus's
SPIN_LIMIT = 100_000


@dataclass
class WireFaults:
    loss: float = 0.0
    flip: float = 0.0  # probability a frame gets one bit flipped
    duplicate: float = 0.0
    reorder: float = 0.0  # probability a frame is held back a little
    delay_s: float = 0.0005
    cuts: list[tuple[float, float]] = field(default_factory=list)  # (from, to) in link time

    def cut_at(self, now: float) -> bool:
        return any(start <= now < end for start, end in self.cuts)


class LinkPair:
    def __init__(
        self,
        config: LinkConfig,
        *,
        seed: int,
        faults: WireFaults | None = None,
        half_duplex: bool = False,
    ) -> None:
        self.rng = random.Random(seed)
        self.half_duplex = half_duplex
        self.turn = "a"  # (half duplex) who may send
        self._turn_passes_at: float | None = None  # (half duplex) a hand-over under way
        self.faults = faults or WireFaults()
        self.now = 0.0
        self.ends = {
            "a": Connection(
                config, node="a", epoch=self.rng.getrandbits(32), rng=random.Random(seed + 1)
            ),
            "b": Connection(
                config, node="b", epoch=self.rng.getrandbits(32), rng=random.Random(seed + 2)
            ),
        }
        self._in_flight: list[tuple[float, int, str, bytes]] = []  # heap: (arrival, n, to, bytes)
        self._actions: list[tuple[float, int, Callable[[], None]]] = []  # heap: see at()
        self._order = itertools.count()
        self.recorded: list[tuple[float, str, bytes]] | None = None  # see record()
        self._count = 0
        self._restarts: dict[str, float] = {}
        self._spins = 0
        self.events: dict[str, list[tuple[float, LinkEvent]]] = {"a": [], "b": []}
        self.ends["a"].start(0.0, leader=True)
        self.ends["b"].start(0.0, leader=False)

    def other(self, name: str) -> str:
        return "b" if name == "a" else "a"

    def record(self) -> list[tuple[float, str, bytes]]:
        """From now on, every frame put on the wire: (when, from, bytes)."""
        self.recorded = []
        return self.recorded

    def _transmit(self, source: str, frame: bytes) -> None:
        if self.recorded is not None:
            self.recorded.append((self.now, source, frame))
        f, rng = self.faults, self.rng
        if f.cut_at(self.now) or rng.random() < f.loss:
            return
        copies = 2 if rng.random() < f.duplicate else 1
        for _ in range(copies):
            data = frame
            if rng.random() < f.flip:
                flipped = bytearray(data)
                flipped[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
                data = bytes(flipped)
            delay = f.delay_s * (1 + (rng.random() * 20 if rng.random() < f.reorder else 0))
            self._count += 1
            arrival = (self.now + delay, self._count, self.other(source), data)
            heapq.heappush(self._in_flight, arrival)

    def at(self, when: float, action: Callable[[], None]) -> None:
        """Run ``action`` at ``when`` of link time (a client's next request, say)."""
        heapq.heappush(self._actions, (when, next(self._order), action))

    def step(self) -> None:
        """Do everything due now, then jump the clock to the next deadline."""
        while self._actions and self._actions[0][0] <= self.now:
            heapq.heappop(self._actions)[2]()
        for name, end in self.ends.items():
            if name in self._restarts and self._restarts[name] <= self.now:
                del self._restarts[name]
                end.start(self.now, leader=name == "a")
            timer = end.get_timer()
            if timer is not None and timer <= self.now:
                end.handle_timer(self.now)
            if not self.half_duplex:
                for frame in end.frames_to_send(self.now):
                    self._transmit(name, frame)
                end.frames_on_wire(self.now)
        if self.half_duplex:
            self._take_turn()
        while self._in_flight and self._in_flight[0][0] <= self.now:
            _, _, to, data = heapq.heappop(self._in_flight)
            self.ends[to].receive_frame(data, self.now)
        for name, end in self.ends.items():
            while (event := end.next_event()) is not None:
                self.events[name].append((self.now, event))
                if isinstance(event, MessageReceived):
                    end.accept(event.message_id, self.now)
                elif isinstance(event, LinkDown) and end.state.value == "down":
                    self._restarts[name] = self.now + RESTART_AFTER_S
        self.now = self._next_time()

    def _take_turn(self) -> None:
        """The turn holder sends a burst, then hands over once it has crossed the wire
        (or at once when it has nothing to send and the peer has)."""
        if self._turn_passes_at is not None:
            if self.now < self._turn_passes_at:
                return  # the burst is still crossing: nobody sends meanwhile
            self._turn_passes_at, self.turn = None, self.other(self.turn)
        holder, peer = self.ends[self.turn], self.ends[self.other(self.turn)]
        frames = holder.frames_to_send(self.now)
        for frame in frames:
            self._transmit(self.turn, frame)
        if frames or peer.wants_to_send(self.now):
            holder.frames_on_wire(self.now)  # the peer may answer once it has the turn
            self._turn_passes_at = self.now + (self.faults.delay_s if frames else 0) + TURN_AROUND_S

    def _next_time(self) -> float:
        candidates = [t for t in (e.get_timer() for e in self.ends.values()) if t is not None]
        candidates += list(self._restarts.values())
        candidates += [when for when, _, _ in self._actions[:1]]
        if self._in_flight:
            candidates.append(self._in_flight[0][0])
        if self._turn_passes_at is not None:  # (half duplex) nobody sends till then
            candidates.append(self._turn_passes_at)
        else:  # each end sends (half duplex: the holder sends, or hands the turn over)
            candidates += [self.now for end in self.ends.values() if end.wants_to_send(self.now)]
        future = [t for t in candidates if t > self.now]
        if any(t <= self.now for t in candidates):
            self._spins += 1
            if self._spins > SPIN_LIMIT:
                raise AssertionError("a connection keeps saying it is due but does nothing")
            return self.now + 1e-6  # something is due now: keep going (the clock still moves)
        self._spins = 0
        return min(future, default=self.now + 0.01)

    def run_until(self, condition: object, limit_s: float = 600.0) -> None:
        while not condition():  # type: ignore[operator]
            if self.now > limit_s:
                raise AssertionError(f"not done after {limit_s} s of link time")
            self.step()

    def up(self) -> bool:
        return all(end.state.value == "up" for end in self.ends.values())
