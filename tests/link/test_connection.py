"""The connection's behaviour: link-up, verdicts, keepalive, peer restart, version mismatch."""

from __future__ import annotations

import random
from dataclasses import replace

import pytest

from rpilinkd.config import LinkConfig
from rpilinkd.errors import LinkDownError, MessageTooLargeError, NameInUseError, PortInUseError
from rpilinkd.link import (
    Connection,
    DeliveryFailed,
    EndpointsChanged,
    LinkDown,
    LinkState,
    LinkUp,
    MessageDelivered,
    PeerRestarted,
)
from rpilinkd.link.connection import ACK_HOLD_S
from rpilinkd.link.events import DownReason
from rpilinkd.link.frames import Flag, Frame, Kind
from rpilinkd.link.hello import Hello
from tests.link.pair import LinkPair, WireFaults


def events_of(pair: LinkPair, name: str, kind: type | tuple[type, ...]) -> list[object]:
    return [e for _, e in pair.events[name] if isinstance(e, kind)]


def up_pair(seed: int = 1, **config: object) -> LinkPair:
    pair = LinkPair(LinkConfig(**config), seed=seed)  # type: ignore[arg-type]
    pair.run_until(pair.up, 5)
    return pair


def test_link_comes_up_with_peer_information() -> None:
    pair = up_pair()
    (event,) = events_of(pair, "a", LinkUp)
    assert isinstance(event, LinkUp)
    assert event.peer.node == "b"
    assert event.peer.epoch == pair.ends["b"].epoch
    assert pair.ends["a"].session == pair.ends["b"].session != 0


def test_sending_before_link_up_and_too_large() -> None:
    a = Connection(LinkConfig(), node="a", epoch=1)
    with pytest.raises(LinkDownError, match="down"):
        a.send(1, b"x", 0.0)
    pair = up_pair(max_message=1000)
    with pytest.raises(MessageTooLargeError, match="1001 bytes exceeds the maximum of 1000"):
        pair.ends["a"].send(1, bytes(1001), pair.now)


def test_verdicts_travel_back() -> None:
    pair = up_pair()
    a, b = pair.ends["a"], pair.ends["b"]
    b.bind(7)
    delivered = a.send(7, b"hello", pair.now)
    nobody = a.send(8, b"hello", pair.now)
    answered = (MessageDelivered, DeliveryFailed)
    pair.run_until(lambda: len(events_of(pair, "a", answered)) == 2)
    assert events_of(pair, "a", MessageDelivered) == [MessageDelivered(delivered)]
    (failed,) = events_of(pair, "a", DeliveryFailed)
    assert isinstance(failed, DeliveryFailed)
    assert (failed.message_id, failed.code) == (nobody, "no_listener")


def test_endpoints_are_announced_and_checked() -> None:
    pair = up_pair()
    a, b = pair.ends["a"], pair.ends["b"]
    b.bind(10, "sensors")
    pair.run_until(lambda: a.endpoints.peer == {"sensors": 10})
    with pytest.raises(NameInUseError):
        b.bind(11, "sensors")
    with pytest.raises(PortInUseError):
        b.bind(10)
    b.unbind(10)
    pair.run_until(lambda: a.endpoints.peer == {})
    assert EndpointsChanged({"sensors": 10}) in events_of(pair, "a", EndpointsChanged)


def test_a_cut_cable_is_noticed_within_dead_after() -> None:
    pair = up_pair(keepalive_ms=200.0, dead_after_ms=900.0)
    a = pair.ends["a"]
    a.bind(1)
    message = pair.ends["b"].send(1, b"in flight", pair.now)
    cut_at = pair.now
    pair.faults.cuts.append((cut_at, cut_at + 100))
    pair.run_until(lambda: a.state is not LinkState.UP)
    down = events_of(pair, "a", LinkDown)[0]
    assert isinstance(down, LinkDown)
    assert down.reason is DownReason.TIMEOUT
    assert pair.now - cut_at <= 0.9 + 0.01
    pair.run_until(lambda: bool(events_of(pair, "b", DeliveryFailed)))
    failed = events_of(pair, "b", DeliveryFailed)[0]
    assert isinstance(failed, DeliveryFailed)
    assert (failed.message_id, failed.code) == (message, "link_down")


def test_link_comes_back_when_the_cable_is_mended() -> None:
    pair = up_pair()
    pair.faults.cuts.append((pair.now, pair.now + 3))
    pair.run_until(lambda: not pair.up())
    pair.run_until(pair.up, 30)
    assert len(events_of(pair, "a", LinkUp)) == 2


def test_a_restarted_peer_fails_in_flight_messages_with_a_distinct_reason() -> None:
    pair = up_pair()
    a = pair.ends["a"]
    pair.ends["b"].bind(3)
    old_epoch = pair.ends["b"].epoch
    pair.faults.loss = 1.0  # nothing gets through while b restarts
    message = a.send(3, b"lost in the restart", pair.now)
    pair.step()
    restarted = Connection(LinkConfig(), node="b", epoch=old_epoch + 1, rng=random.Random(5))
    restarted.bind(3)
    restarted.start(pair.now, leader=False)
    pair.ends["b"] = restarted
    pair.faults.loss = 0.0
    pair.run_until(lambda: bool(events_of(pair, "a", PeerRestarted)))
    assert events_of(pair, "a", PeerRestarted) == [PeerRestarted(old_epoch, old_epoch + 1)]
    (failed,) = events_of(pair, "a", DeliveryFailed)
    assert isinstance(failed, DeliveryFailed)
    assert (failed.message_id, failed.code) == (message, "peer_restarted")
    pair.run_until(pair.up, 10)
    again = a.send(3, b"after", pair.now)
    pair.run_until(lambda: MessageDelivered(again) in events_of(pair, "a", MessageDelivered))


def test_version_mismatch_is_a_clear_error() -> None:
    a = Connection(LinkConfig(), node="a", epoch=1)
    a.start(0.0, leader=False)
    hello = Hello(99, 5, 0, 1, 256, 16, 1 << 20, "future")
    a.receive_frame(Frame(Kind.HELLO, Flag.NONE, 9, payload=hello.to_bytes()).to_bytes(), 0.0)
    event = a.next_event()
    assert isinstance(event, LinkDown)
    assert event.reason is DownReason.VERSION_MISMATCH
    assert "speaks protocol 99" in event.detail
    assert a.state is LinkState.DOWN


def test_garbage_is_counted_never_raised() -> None:
    pair = up_pair()
    a = pair.ends["a"]
    for junk in (b"", b"\x00" * 3, bytes(range(40)), Frame(Kind.DATA).to_bytes()[:-1] + b"\x00"):
        a.receive_frame(junk, pair.now)
    assert a.stats.crc_errors + a.stats.bad_frames == 4


def test_stale_frames_from_an_old_session_are_dropped() -> None:
    pair = up_pair()
    a = pair.ends["a"]
    stale = Frame(Kind.DATA, Flag.FIRST | Flag.LAST, (a.session % 255) + 1, payload=b"\x00" * 4)
    a.receive_frame(stale.to_bytes(), pair.now)
    assert a.stats.stale_frames == 1


def test_error_counter_reports_a_sick_cable() -> None:
    pair = LinkPair(LinkConfig(), seed=3, faults=WireFaults(loss=0.4))
    pair.run_until(pair.up, 30)
    b = pair.ends["b"]
    b.bind(1)
    for _ in range(200):
        pair.ends["a"].send(1, bytes(200), pair.now)
    pair.run_until(lambda: pair.ends["a"].stats.error_level.value != "active", 60)
    assert pair.ends["a"].stats.tx_errors >= 96


def test_a_deadline_handled_and_still_standing_waits_for_the_bus_not_the_clock() -> None:
    """A keepalive due while the peer holds the bus stays wanted, but the timer moves
    on: before, get_timer kept answering the past deadline and the driver woke without
    end (thousands of turns a second) until the bus came."""
    pair = up_pair(keepalive_ms=200.0, dead_after_ms=900.0)
    a = pair.ends["a"]
    due = a.get_timer()
    assert due is not None
    later = due + 0.001  # the bus is the peer's meanwhile: nothing was sent
    a.handle_timer(later)
    assert a.needs_bus(later)  # the keepalive still asks for the bus
    next_timer = a.get_timer()
    assert next_timer is not None
    assert next_timer > later


def _parsed(recorded: list[tuple[float, str, bytes]]) -> list[tuple[float, str, Frame]]:
    """What LinkPair.record() saw, parsed: (when, from, frame)."""
    return [(when, source, Frame.from_bytes(data)) for when, source, data in recorded]


def _quiet_pair() -> LinkPair:
    """Up, a listener on b's port 7, and nothing left to send either way."""
    pair = up_pair()
    pair.ends["b"].bind(7)
    pair.run_until(lambda: not any(e.wants_to_send(pair.now) for e in pair.ends.values()))
    return pair


def test_the_ack_of_a_verdict_rides_on_the_next_message() -> None:
    """A request-reply client: the verdict's ACK waits ACK_HOLD_S, and the next message
    (sent 1 ms after the verdict came: the wire takes 0.5 ms each way) carries it in
    its ack field, so no ACK frame goes out on its own."""
    pair = _quiet_pair()
    a = pair.ends["a"]
    recorded = pair.record()
    start = pair.now

    def ping() -> None:
        a.send(7, b"ping", pair.now)

    for i in range(3):
        pair.at(start + i * 0.002, ping)
    pair.run_until(lambda: len(events_of(pair, "a", MessageDelivered)) == 3)
    pair.run_until(lambda: pair.now >= start + 0.01)
    sent = [frame for _, source, frame in _parsed(recorded) if source == "a"]
    verdicts = [frame for _, source, frame in _parsed(recorded) if source == "b"]
    assert [f.kind for f in sent] == [Kind.DATA, Kind.DATA, Kind.DATA, Kind.ACK]
    assert [f.kind for f in verdicts] == [Kind.VERDICT] * 3
    assert [f.ack for f in sent[1:]] == [(v.seq + 1) & 0xFFFF for v in verdicts]


def test_a_held_ack_goes_alone_once_the_hold_is_over() -> None:
    pair = _quiet_pair()
    a = pair.ends["a"]
    recorded = pair.record()
    a.send(7, b"ping", pair.now)
    pair.run_until(lambda: any(f.kind is Kind.ACK for _, s, f in _parsed(recorded) if s == "a"))
    ((verdict_at, _),) = [(t, e) for t, e in pair.events["a"] if isinstance(e, MessageDelivered)]
    (sent_at,) = [when for when, s, f in _parsed(recorded) if s == "a" and f.kind is Kind.ACK]
    assert sent_at - verdict_at == pytest.approx(ACK_HOLD_S, abs=1e-5)
    pair.run_until(lambda: pair.now >= sent_at + 0.5)
    verdicts = [f for _, s, f in _parsed(recorded) if s == "b" and f.kind is Kind.VERDICT]
    assert len(verdicts) == 1  # acknowledged in time: never resent


def test_an_ack_owed_for_data_or_a_duplicate_is_never_held() -> None:
    """Only fresh verdicts are waited on: a DATA frame's sender awaits its verdict (which
    carries the ACK at once), and a duplicate means the peer is resending already."""
    pair = _quiet_pair()
    a, b = pair.ends["a"], pair.ends["b"]
    recorded = pair.record()
    a.send(7, b"ping", pair.now)
    pair.run_until(lambda: any(s == "b" for _, s, _ in recorded))
    data_at = next(when for when, s, f in _parsed(recorded) if s == "a" and f.kind is Kind.DATA)
    assert recorded[-1][0] - data_at < 0.001  # the verdict answered at the frame's arrival
    verdict = next(f for _, s, f in _parsed(recorded) if s == "b" and f.kind is Kind.VERDICT)
    pair.run_until(lambda: bool(events_of(pair, "a", MessageDelivered)))
    a.receive_frame(replace(verdict, session=b.session).to_bytes(), pair.now)  # again
    assert a.wants_to_send(pair.now)


@pytest.mark.parametrize("duplicate", [0.0, 0.5])
def test_two_sides_up_never_answer_each_others_hellos_without_end(duplicate: float) -> None:
    """Both ends say HELLO at start, so HELLOs cross; a late copy then reached a side
    already up, which answered it, and so did the other side, for ever: a HELLO turn of
    the bus every millisecond while the link was up (only the leader answers now)."""
    pair = LinkPair(LinkConfig(), seed=3, faults=WireFaults(duplicate=duplicate))
    recorded = pair.record()
    pair.run_until(pair.up, 5)
    settled = pair.now + 0.05
    pair.run_until(lambda: pair.now >= settled + 1.0)
    late = _parsed([r for r in recorded if r[0] > settled])
    hellos = [when for when, _, frame in late if frame.kind is Kind.HELLO]
    assert hellos == []
