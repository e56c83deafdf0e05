"""Hearing the beacon: the pattern on "any of my pins is high", and the origin it gives.

The follower watches the OR of its bus pins (leaving out any that never read
low: a pin stuck high says nothing). The beacon is high, low, high with the
durations of :data:`plan.BEACON_S`; a walk never holds a pin that long, so a
Pi that starts listening in the middle of another's round waits for the next
beacon instead of locking onto a walk.
"""

from __future__ import annotations

from rpilinkd.wiring.plan import BEACON_S, SYNC_RISE_S

HIGH_S = (BEACON_S[0][1] - BEACON_S[0][0]) * 0.8, (BEACON_S[0][1] - BEACON_S[0][0]) * 1.4
LOW_S = (BEACON_S[1][0] - BEACON_S[0][1]) * 0.6, (BEACON_S[1][0] - BEACON_S[0][1]) * 1.6


class BeaconMatcher:
    """Feed it the aggregate's level changes in time order; it answers the origin."""

    def __init__(self) -> None:
        self.high = False
        self._rise: float | None = None  # of the current or last high
        self._fall: float | None = None

    def feed(self, t: float, high: bool) -> float | None:
        """The round's origin (time of the beacon's first rise) once the beacon is heard."""
        if high == self.high:
            return None
        self.high = high
        if not high:
            self._fall = t
            return None
        rise, fall, self._rise = self._rise, self._fall, t
        if rise is None or fall is None or not rise < fall < t:
            return None
        if HIGH_S[0] <= fall - rise <= HIGH_S[1] and LOW_S[0] <= t - fall <= LOW_S[1]:
            return t - SYNC_RISE_S
        return None
