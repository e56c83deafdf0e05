"""The send window: what an ACK drops, and the turn-taking pair's retransmissions."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from rpilinkd.config import LinkConfig
from rpilinkd.link import MessageDelivered
from rpilinkd.link.frames import Frame, Kind
from rpilinkd.link.window import SACK_SPAN, RttEstimator, SendWindow, seq_add, seq_diff
from tests.link.pair import LinkPair, WireFaults


def _window(first_seq: int, count: int, gone: set[int]) -> SendWindow:
    window = SendWindow(256, RttEstimator(0.1, 0.01, 2.0), next_seq=first_seq)
    for _ in range(count):
        window.push(Frame(Kind.DATA), 0.0)
    for offset in gone:  # acknowledged earlier (by a SACK): the rest keep their order
        window.frames.pop(seq_add(first_seq, offset), None)
    return window


@given(
    first_seq=st.integers(0, (1 << 16) - 1),
    count=st.integers(0, 256),
    gone=st.sets(st.integers(0, 255), max_size=40),
    ack_offset=st.integers(-5, 300),
    sack=st.integers(0, (1 << SACK_SPAN) - 1),
)
def test_an_ack_drops_exactly_what_is_below_it_and_what_its_sack_names(
    first_seq: int, count: int, gone: set[int], ack_offset: int, sack: int
) -> None:
    """Against the definition, over the whole window (sequence numbers wrap)."""
    window = _window(first_seq, count, gone)
    ack = seq_add(first_seq, ack_offset)
    expected = {
        seq
        for seq in window.frames
        if seq_diff(seq, ack) < 0
        or (0 < seq_diff(seq, ack) <= SACK_SPAN and sack >> (seq_diff(seq, ack) - 1) & 1)
    }
    dropped = {entry.seq for entry in window.acknowledge(ack, sack, 1.0)}
    assert dropped == expected
    assert not expected & set(window.frames)


def test_a_frame_whose_timeout_outgrew_the_keepalive_is_still_resent() -> None:
    """A side that sends something every 0.2 s (a keepalive) pauses its frames' timers
    while it holds the bus; a frame whose timeout doubled past 0.2 s must still fall
    due (restarting the timers at every turn resent it never, and the link stalled)."""
    window = SendWindow(128, RttEstimator(0.1, 0.01, 2.0))
    entry = window.push(Frame(Kind.DATA), 0.0)
    entry.rto = 0.5  # after a few timeouts
    now = 0.0
    while not window.due(now):
        assert now < 1.0, "never due"
        window.in_transit([entry.seq], now)  # our turn: a keepalive goes out
        now += 0.001
        window.on_wire([entry.seq], now)  # the turn is over: the peer may answer
        now += 0.199
    assert 0.5 <= now <= 0.7  # the turns' 1 ms each do not count


def test_on_a_turn_taking_wire_a_tenth_lost_costs_about_a_third_of_a_resend_per_frame() -> None:
    """10 % lost each way: a frame needs 0.11 resends at best (0.23 if every lost ACK
    cost one too); go-back-N some 15 at this window. docs/protocol.md §4.3 quotes the
    figure (scripts/bench link measures it over 2,000 messages)."""
    pair = LinkPair(LinkConfig(), seed=11, faults=WireFaults(loss=0.10), half_duplex=True)
    pair.run_until(pair.up, 10)
    pair.ends["b"].bind(1)
    sender = pair.ends["a"]
    for _ in range(300):
        sender.send(1, bytes(1000), pair.now)

    def all_answered() -> bool:
        return sum(isinstance(e, MessageDelivered) for _, e in pair.events["a"]) == 300

    pair.run_until(all_answered, 3600)
    per_frame = sender.stats.retransmissions / (300 * 4)  # four 256-byte fragments each
    assert 0.2 <= per_frame <= 0.45, per_frame
