"""Why a link whose bus backend is open is not up, in words a user can act on."""

from __future__ import annotations

from rpilinkd.link.arbiter import Phase
from rpilinkd.link.busaccess import BusAccess


def bus_reason(bus: BusAccess, *, conflict: bool, refused: str, now: float) -> str:
    """``refused``: why the peer's hello was refused, if it was."""
    arbiter = bus.arbiter
    if conflict and arbiter.conflict_message:
        return f"role conflict: {arbiter.conflict_message}"
    if refused:
        return f"the peer's hello is refused: {refused}"
    if bus.role is not None:
        return f"roles decided ({bus.role.value}); waiting for the peer's hello"
    if arbiter.phase is Phase.PRESENT and not arbiter.peer_seen(now):
        return (
            "peer not seen: no sign of the other Pi on the control lines (is it powered, "
            "is rpilinkd running there, is the cable on the right pins? "
            "try rpilink wiring-check)"
        )
    if arbiter.stalled_in is not None:
        return (
            f"the handshake stalls in phase {arbiter.stalled_in.value} "
            f"({arbiter.counters['stalls']} times): a control wire may be cut or "
            "swapped (try rpilink wiring-check)"
        )
    return f"arbitrating (phase {arbiter.phase.value})"
