"""Figures from samples, one way everywhere (status, `rpilink bench`, soak)."""

from __future__ import annotations

from collections.abc import Iterable


def percentile(values: Iterable[float], fraction: float) -> float | None:
    """The sample at ``fraction`` (0-1) of the sorted values (nearest rank); None if empty."""
    ordered = sorted(values)
    if not ordered:
        return None
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]
