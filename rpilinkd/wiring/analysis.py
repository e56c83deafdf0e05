"""From what one Pi saw to a verdict per wire. Pure: no I/O, no clock.

The evidence, per wire (named by its pin on this Pi):

* **stuck high**: it read high in the quiet phase, when nothing drove anything
  and both ends pulled down;
* **stuck low**: it read low with pull-ups at both ends (a cut wire reads its
  own pull-up, so it is not mistaken for this);
* **shorted**: driving it lit another of this Pi's pins, or one pin of the peer
  lit it and another pin here;
* otherwise the peer pins that lit it during the peer's walk say where it goes:
  its partner only (**ok**), none (**cut**), the same-kind pin of its own
  control pair (a crossed pair wired **straight**), or another pin (**swapped**
  with the wire that belongs there).

Nothing at all from the peer, on any pin, is **peer not seen** for every wire.
"""

from __future__ import annotations

from collections.abc import Sequence

from rpilinkd.pins import PinMap
from rpilinkd.wiring.cable import BusPin, Kind, bus_pins, gpios, mask
from rpilinkd.wiring.model import End, Finding, Observations, Verdict


def lit_by_peer(quiet: int, peer: Sequence[int], everything: int) -> list[int]:
    """Per peer pin: the pins here that went high while it was driven (stuck ones left out)."""
    return [word & everything & ~quiet for word in peer]


def peer_seen(quiet: int, peer: Sequence[int], everything: int) -> bool:
    return any(lit_by_peer(quiet, peer, everything))


def nothing_seen(pins: PinMap) -> tuple[Finding, ...]:
    """The verdict when no round ran: the other Pi was never heard."""
    bus = bus_pins(pins)
    by_name = {pin.name: pin for pin in bus}
    return tuple(_finding(pin, Verdict.PEER_NOT_SEEN, by_name) for pin in bus)


def analyse(pins: PinMap, obs: Observations) -> tuple[Finding, ...]:
    bus = bus_pins(pins)
    by_name = {pin.name: pin for pin in bus}
    everything = mask(bus)
    if not peer_seen(obs.quiet, obs.peer, everything):
        return nothing_seen(pins)
    stuck_high = obs.quiet & everything
    stuck_low = ~obs.pulled_up & everything & ~stuck_high
    usable = everything & ~stuck_high & ~stuck_low
    lit = [word & usable for word in lit_by_peer(obs.quiet, obs.peer, everything)]
    joined = _short_groups(bus, obs.own, lit, usable)
    by_gpio = {pin.gpio: pin for pin in bus}
    findings = []
    for pin in bus:
        if pin.bit & stuck_high:
            findings.append(_finding(pin, Verdict.STUCK_HIGH, by_name))
        elif pin.bit & stuck_low:
            findings.append(_finding(pin, Verdict.STUCK_LOW, by_name))
        elif others := sorted(joined.get(pin.gpio, set()) - {pin.gpio}):
            names = tuple(by_gpio[gpio].name for gpio in others)
            findings.append(_finding(pin, Verdict.SHORTED, by_name, names))
        else:
            sources = [bus[k] for k, word in enumerate(lit) if word & pin.bit]
            findings.append(_placed(pin, sources, by_name))
    return tuple(findings)


def _placed(pin: BusPin, sources: list[BusPin], by_name: dict[str, BusPin]) -> Finding:
    """The verdict from the peer pins that reached this one."""
    if [source.name for source in sources] == [pin.partner]:
        return _finding(pin, Verdict.OK, by_name)
    if not sources:
        return _finding(pin, Verdict.CUT, by_name)
    if len(sources) > 1:  # two peer pins meet here: joined at the far end
        others = tuple(s.partner for s in sources if s.name != pin.partner)
        return _finding(pin, Verdict.SHORTED, by_name, others)
    source = sources[0]
    if pin.kind is not Kind.DATA and source.line is pin.line and source.kind is pin.kind:
        return _finding(pin, Verdict.STRAIGHT, by_name, (), source)
    return _finding(pin, Verdict.SWAPPED, by_name, (source.partner,), source)


def _finding(
    pin: BusPin,
    verdict: Verdict,
    by_name: dict[str, BusPin],
    others: tuple[str, ...] = (),
    lands_on: BusPin | None = None,
) -> Finding:
    there = End.of(by_name[pin.partner])  # the same map on both Pis
    landing = End.of(lands_on) if lands_on is not None else None
    return Finding(pin.name, verdict, End.of(pin), there, others, landing)


def _short_groups(
    bus: tuple[BusPin, ...], own: Sequence[int], lit: list[int], usable: int
) -> dict[int, set[int]]:
    """GPIOs joined to each other: by our own walk, or lit together by one peer pin."""
    parent = {pin.gpio: pin.gpio for pin in bus}

    def root(gpio: int) -> int:
        while parent[gpio] != gpio:
            gpio = parent[gpio]
        return gpio

    def join(x: int, y: int) -> None:
        parent[root(x)] = root(y)

    for pin, word in zip(bus, own, strict=True):
        if pin.bit & usable:
            for gpio in gpios(word & usable & ~pin.bit):
                join(pin.gpio, gpio)
    for word in lit:
        together = gpios(word)
        for gpio in together[1:]:
            join(together[0], gpio)
    groups: dict[int, set[int]] = {}
    for gpio in parent:
        groups.setdefault(root(gpio), set()).add(gpio)
    return {gpio: groups[root(gpio)] for gpio in parent}
