"""Two BusAccess machines on a simulated control cable, with a fake clock.

Each node has a backend that applies its operations (control-line writes
coalesced as the link driver coalesces them, data claims and releases) one
after another, each after a random delay, as pigpiod applies one socket's
commands in order; as in the link driver, the machine is told a claim or
release is done once it is queued (what follows it is applied after it).
Each applied write reaches the other node after a random latency, in order,
as one observation of all four lines: lines written in one call arrive
together, as they can in one pigpiod report. Nodes start at given times, want
the bus at random, transmit bursts while allowed, and can be restarted (the
daemon dies and a new one sets the safe state) or told to re-arbitrate.

The harness checks, at every instant something changes, that the two nodes
never both drive the data lines and never both hold the master role.
"""

from __future__ import annotations

import functools
import heapq
import itertools
import random
from collections.abc import Callable
from dataclasses import dataclass, field

from rpilinkd.link.arbiter import Role
from rpilinkd.link.busaccess import BusAccess, RoleConflict, coalesce
from rpilinkd.pins import ControlLine

LATENCY_S = (0.0002, 0.003)  # a change reaches the peer's daemon (reports come in batches)
OP_DELAY_S = (0.0, 0.0005)  # pigpiod applies one command (a busy pigpiod: back to back)
DEBOUNCE_S = 20e-6  # a level shorter than this never reaches the peer (the glitch filter)
BURST_S = (0.001, 0.01)


class ViolationError(AssertionError):
    pass


def all_low() -> dict[ControlLine, bool]:
    return dict.fromkeys(ControlLine, False)


@dataclass
class Node:
    name: str
    role: str
    access: BusAccess | None = None
    outputs: dict[ControlLine, bool] = field(default_factory=all_low)
    seen: dict[ControlLine, bool] = field(default_factory=all_low)
    driving: bool = False
    backend_free_at: float = 0.0
    incarnation: int = 0
    bursting: bool = False
    conflicts: int = 0
    up_at: float | None = None
    timer_at: float | None = None


class BusPair:
    def __init__(
        self,
        seed: int,
        roles: tuple[str, str] = ("auto", "auto"),
        starts: tuple[float, float] = (0.0, 0.0),
        turn_ms: float = 5.0,
        auto_bursts: bool = True,  # bursts at random whenever allowed (else: burst())
    ) -> None:
        self.rng = random.Random(seed)
        self.auto_bursts = auto_bursts
        self.now = 0.0
        self.turn_ms = turn_ms
        self.nodes = {"a": Node("a", roles[0]), "b": Node("b", roles[1])}
        self._queue: list[tuple[float, int, Callable[[], None]]] = []
        self._count = itertools.count()
        self._last_seen_at = {"a": 0.0, "b": 0.0}  # keeps each direction in order
        self._shown: dict[str, tuple[float, dict[str, bool]]] = {}  # a node's last write
        self.last_disturbance = max(starts)
        self.disturbances: list[float] = []  # when a daemon restarted or re-arbitrated
        for node, start in zip(self.nodes.values(), starts, strict=True):
            self.at(start, functools.partial(self._boot, node))

    # -- the event queue ------------------------------------------------------------

    def at(self, when: float, action: Callable[[], None]) -> None:
        heapq.heappush(self._queue, (when, next(self._count), action))

    def run(self, until: float) -> None:
        while self._queue and self._queue[0][0] <= until:
            self.now, _, action = heapq.heappop(self._queue)
            action()
            self._check()

    def other(self, node: Node) -> Node:
        return self.nodes["b" if node.name == "a" else "a"]

    def _check(self) -> None:
        a, b = self.nodes.values()
        if a.driving and b.driving:
            raise ViolationError(f"both nodes drive the data lines at {self.now:.6f}")
        roles = [n.access.role for n in (a, b) if n.access is not None]
        if roles.count(Role.MASTER) == 2:
            raise ViolationError(f"two masters at {self.now:.6f}")
        for node in (a, b):
            up = node.access is not None and node.access.role is not None
            if up and node.outputs[ControlLine.REQ] and node.outputs[ControlLine.RW]:
                raise ViolationError(f"{node.name} shows the presence signature while up")

    # -- one node's daemon and backend ----------------------------------------------

    def _boot(self, node: Node) -> None:
        node.incarnation += 1
        node.access = BusAccess(
            role=node.role, rng=random.Random(self.rng.random()), turn_ms=self.turn_ms, now=self.now
        )
        node.access.peer_lines(dict(node.seen), self.now)
        self._service(node)

    def restart_daemon(self, node: Node) -> None:
        """The daemon dies; a new one opens the backend (safe state) and starts over."""
        if node.access is None:
            return  # not running yet (or already restarting)
        node.access = None
        node.bursting = False
        self.last_disturbance = max(self.last_disturbance, self.now)
        self.disturbances.append(self.now)
        done = self._backend(node, lambda: self._safe_state(node))
        self.at(done + 0.001, lambda: self._boot(node))

    def rearbitrate(self, node: Node) -> None:
        if node.access is not None:
            self.last_disturbance = max(self.last_disturbance, self.now)
            self.disturbances.append(self.now)
            node.access.restart(self.now)
            self._service(node)

    def _safe_state(self, node: Node) -> None:
        node.driving = False
        self._apply(node, all_low())

    def _backend(self, node: Node, operation: Callable[[], None]) -> float:
        """Queue an operation on the node's backend; returns when it will be applied."""
        when = max(self.now, node.backend_free_at) + self.rng.uniform(*OP_DELAY_S)
        node.backend_free_at = when
        self.at(when, operation)
        return when

    def _apply(self, node: Node, levels: dict[ControlLine, bool]) -> None:
        if all(node.outputs[line] == level for line, level in levels.items()):
            return
        previous = self._shown.get(node.name)
        if previous is not None and self.now - previous[0] < DEBOUNCE_S:
            previous[1]["void"] = True  # it did not last: the peer's filter never passes it
        node.outputs.update(levels)
        snapshot = dict(node.outputs)
        shown: dict[str, bool] = {"void": False}
        self._shown[node.name] = (self.now, shown)
        peer = self.other(node)
        arrive = max(self.now + self.rng.uniform(*LATENCY_S), self._last_seen_at[peer.name])
        self._last_seen_at[peer.name] = arrive
        self.at(arrive, lambda: None if shown["void"] else self._observe(peer, snapshot))

    def _observe(self, node: Node, levels: dict[ControlLine, bool]) -> None:
        node.seen = dict(levels)
        if node.access is not None:
            node.access.peer_lines(levels, self.now)
            self._service(node)

    def _service(self, node: Node) -> None:
        """What the link driver does after every input: apply outputs, requests, timers."""
        access, incarnation = node.access, node.incarnation
        if access is None:
            return
        queued = False
        while True:  # as the driver: a claim or release counts as done once queued
            for levels in coalesce(access.writes()):
                self._backend(node, functools.partial(self._apply_if, node, incarnation, levels))
                queued = True
            request = access.data_request()
            if request is None:
                break
            self._backend(node, functools.partial(self._data, node, incarnation, request))
            queued = True
            if not request:
                node.bursting = False  # the driver cancels a burst to release the lines
            (access.data_claimed if request else access.data_released)(self.now)
        if queued:  # the backend confirms once all of them are applied
            self._backend(node, functools.partial(self._applied, node, incarnation))
        while (event := access.next_event()) is not None:
            if isinstance(event, RoleConflict):
                node.conflicts += 1
        if access.role is not None and node.up_at is None:
            node.up_at = self.now
        if access.role is None:
            node.up_at = None
        if self.auto_bursts and access.may_transmit and self.rng.random() < 0.7:
            self.burst(node)
        timer = access.get_timer()
        if timer is not None and timer != node.timer_at:
            node.timer_at = timer
            self.at(max(timer, self.now), lambda: self._timer(node, incarnation, timer))

    def _apply_if(self, node: Node, incarnation: int, levels: dict[ControlLine, bool]) -> None:
        if node.incarnation == incarnation and node.access is not None:
            self._apply(node, levels)

    def _data(self, node: Node, incarnation: int, claim: bool) -> None:
        if node.incarnation == incarnation and node.access is not None:
            node.driving = claim

    def _applied(self, node: Node, incarnation: int) -> None:
        if node.incarnation == incarnation and node.access is not None:
            node.access.writes_applied(self.now)
            self._service(node)

    def burst(self, node: Node, answer_expected: bool | None = None) -> None:
        """Transmit a burst if allowed; ``answer_expected`` None: at random."""
        access = node.access
        if access is None or not access.may_transmit or node.bursting:
            return
        node.bursting = True
        access.burst_started(self.now)
        ends = self.now + self.rng.uniform(*BURST_S)
        answered = self.rng.random() < 0.5 if answer_expected is None else answer_expected
        end = functools.partial(self._burst_end, node, node.incarnation, answered)
        self.at(ends, end)

    def _burst_end(self, node: Node, incarnation: int, answer_expected: bool) -> None:
        if node.incarnation == incarnation and node.access is not None and node.bursting:
            node.bursting = False
            node.access.burst_done(self.now, answer_expected=answer_expected)
            self._service(node)

    def _timer(self, node: Node, incarnation: int, when: float) -> None:
        access = node.access
        if node.incarnation != incarnation or access is None:
            return
        if node.timer_at == when:
            node.timer_at = None
        timer = access.get_timer()
        if timer is not None and timer <= self.now:
            access.handle_timer(self.now)
            self._service(node)

    def want(self, node: Node, want: bool) -> None:
        if node.access is not None:
            node.access.want_bus(want, self.now)
            self._service(node)

    def hold(self, node: Node, seconds: float) -> None:
        """Keep the bus ``seconds`` past the next answered burst (0: end the hold)."""
        if node.access is not None:
            node.access.hold_turn(self.now + seconds, self.now)
            self._service(node)

    # -- questions ----------------------------------------------------------------------

    def linked(self) -> bool:
        a, b = self.nodes.values()
        if a.access is None or b.access is None:
            return False
        return {a.access.role, b.access.role} == {Role.MASTER, Role.SLAVE}
