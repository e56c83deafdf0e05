"""Round trips cut into legs, from the emulator's timeline (rpilinkd/sim/timeline.py).

With one message at a time from ``sender``, a round trip is two legs, each from
the alert pass that reported the other side's hand-over (its reports go out at
that instant) to this side's own hand-over, its RW changing after its last frame:
the receiver's leg (the sender's DATA reported, its VERDICT sent and the bus
handed back) and the sender's (the VERDICT reported, the client answered, the next
DATA sent and the bus handed over). A leg that ends after n pass periods costs n
of them, and a round trip is the sum: the legs say which side must be quicker for
the round trip to lose a period.
"""

from __future__ import annotations

import bisect
import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

#: each board's frame and RW outputs, as the timeline names the wires
OWN_WIRES = {"a": ("FRM_AB", "RW_AB"), "b": ("FRM_BA", "RW_BA")}
#: an RW change this soon after a side's frame ended is its hand-over (the MICS tail)
HAND_OVER_WITHIN_US = 500.0


@dataclass(frozen=True)
class Legs:
    sender_ms: list[float]
    receiver_ms: list[float]
    #: of each leg, the part before its first frame began on the wire: the work of the
    #: emulator's pass, the daemon (and for the sender, its client)
    sender_work_ms: list[float]
    receiver_work_ms: list[float]

    def summary(self, prefix: str, period_ms: float) -> dict[str, float]:
        """Medians, in ms and in pass periods (none if nothing was recorded)."""
        out: dict[str, float] = {}
        for name, legs, work in (
            ("sender", self.sender_ms, self.sender_work_ms),
            ("receiver", self.receiver_ms, self.receiver_work_ms),
        ):
            if legs:
                out[f"{prefix}_{name}_leg_p50_ms"] = round(statistics.median(legs), 2)
                periods = [math.ceil(leg / period_ms) for leg in legs]
                out[f"{prefix}_{name}_leg_periods_p50"] = float(statistics.median(periods))
            if work:
                out[f"{prefix}_{name}_leg_work_p50_ms"] = round(statistics.median(work), 2)
        return out


def hand_overs(edges: Sequence[Sequence[Any]], board: str) -> list[float]:
    """When ``board`` handed the bus over: its RW changing just after a frame's end (µs)."""
    frm, rw = OWN_WIRES[board]
    found: list[float] = []
    frame_end: float | None = None
    for wire, at, level in sorted(edges, key=lambda edge: float(edge[1])):
        if wire == frm and not level:
            frame_end = float(at)
        elif wire == rw and frame_end is not None and at - frame_end <= HAND_OVER_WITHIN_US:
            found.append(float(at))
            frame_end = None
    return found


def frame_starts(edges: Sequence[Sequence[Any]], board: str) -> list[float]:
    """When ``board``'s frames began: its FRM rising (µs)."""
    frm = OWN_WIRES[board][0]
    return sorted(float(at) for wire, at, level in edges if wire == frm and level)


def round_trip_legs(timeline: Mapping[str, Any], sender: str) -> Legs:
    edges = timeline["edges"]
    receiver = "b" if sender == "a" else "a"
    sent, answered = hand_overs(edges, sender), hand_overs(edges, receiver)

    def legs(
        starts: list[float], ends: list[float], frames: list[float], board: str
    ) -> tuple[list[float], list[float]]:
        """Legs of ``board``: from its pass that saw each of ``starts``."""
        passes: list[float] = sorted(timeline["board_passes"][board])
        whole, work = [], []
        for start in starts:
            reported = bisect.bisect_left(passes, start)  # the pass that saw it
            following = bisect.bisect_right(ends, start)  # the other side's next one
            if reported < len(passes) and following < len(ends):
                began = passes[reported]
                whole.append((ends[following] - began) / 1e3)
                first = bisect.bisect_left(frames, began)  # this side's first frame after
                if first < len(frames) and frames[first] < ends[following]:
                    work.append((frames[first] - began) / 1e3)
        return whole, work

    sender_ms, sender_work = legs(answered, sent, frame_starts(edges, sender), sender)
    receiver_ms, receiver_work = legs(sent, answered, frame_starts(edges, receiver), receiver)
    return Legs(sender_ms, receiver_ms, sender_work, receiver_work)
