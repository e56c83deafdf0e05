"""10,000 messages through a hostile wire: exactly once, in order, intact, or failed.

Cuts shorter than ``link.resume_s`` are bridged (what was in flight is resent
after the relink, and still arrives exactly once); a longer one fails what was
in flight, and nothing else.
"""

from __future__ import annotations

import random
from collections import defaultdict

import pytest

from rpilinkd.config import LinkConfig
from rpilinkd.link import DeliveryFailed, MessageDelivered, MessageReceived
from tests.link.pair import LinkPair, WireFaults

PORTS = (1, 2, 3, 4)


def message_size(rng: random.Random) -> int:
    """0 B to 64 KiB, mostly small (as traffic is), the extremes included."""
    roll = rng.random()
    if roll < 0.02:
        return rng.choice((0, 65536))
    if roll < 0.80:
        return rng.randint(0, 512)
    if roll < 0.95:
        return rng.randint(512, 8192)
    return rng.randint(8192, 65536)


@pytest.mark.parametrize("half_duplex", [False, True], ids=["any-wire", "taking-turns"])
def test_messages_under_loss_flips_duplicates_reordering_and_cuts(
    full_run: bool, half_duplex: bool
) -> None:
    """3,000 messages by default, 10,000 with ``scripts/test --all``; on a wire both ends
    send on at will, and on one they take turns on, as on the bus."""
    faults = WireFaults(
        loss=0.10,
        flip=0.02,
        duplicate=0.03,
        reorder=0.05,
        cuts=[(1.0, 1.4), (2.5, 2.8), (3.5, 6.5), (7.0, 14.0)]
        if full_run  # link time, s
        else [(0.3, 0.5), (0.8, 1.0), (1.2, 2.4), (2.8, 9.8)],  # the last outlasts resume_s
    )
    pair = LinkPair(LinkConfig(), seed=2024, faults=faults, half_duplex=half_duplex)
    rng = random.Random(7)
    for end in pair.ends.values():
        for port in PORTS:
            end.bind(port)
    sent: dict[str, dict[int, tuple[int, bytes]]] = {"a": {}, "b": {}}  # id -> (port, data)
    order: dict[tuple[str, int], list[int]] = defaultdict(list)  # (sender, port) -> ids
    outcome: dict[str, dict[int, tuple[str, float]]] = {"a": {}, "b": {}}
    total, in_flight_max = (10_000 if full_run else 3_000), 24
    cursor = {"a": 0, "b": 0}
    seen_events = {"a": 0, "b": 0}

    def pump() -> None:
        for name, end in pair.ends.items():
            events = pair.events[name]
            for when, event in events[seen_events[name] :]:
                if isinstance(event, MessageDelivered):
                    outcome[name][event.message_id] = ("delivered", when)
                elif isinstance(event, DeliveryFailed):
                    outcome[name][event.message_id] = ("failed", when)
            seen_events[name] = len(events)
            pending = len(sent[name]) - len(outcome[name])
            while (
                end.state.value == "up" and pending < in_flight_max and sum(cursor.values()) < total
            ):
                port = rng.choice(PORTS)
                data = rng.randbytes(message_size(rng))
                message_id = end.send(port, data, pair.now)
                sent[name][message_id] = (port, data)
                order[(name, port)].append(message_id)
                cursor[name] += 1
                pending += 1

    def done() -> bool:
        pump()
        return sum(cursor.values()) >= total and all(len(outcome[n]) == len(sent[n]) for n in sent)

    pair.run_until(done, limit_s=3600)
    assert pair.now > faults.cuts[-1][1], "the traffic ended before the last cut: move the cuts"

    for sender in ("a", "b"):
        receiver = pair.other(sender)
        received = [
            (when, e) for when, e in pair.events[receiver] if isinstance(e, MessageReceived)
        ]
        ids = [e.message_id for _, e in received]
        assert len(ids) == len(set(ids)), "a message was delivered twice"
        for when, event in received:
            port, data = sent[sender][event.message_id]
            assert (event.port, event.data) == (port, data), "delivered bytes differ"
            verdict, at = outcome[sender][event.message_id]
            if verdict == "failed":
                assert when <= at, "delivered after its failure was reported"
        delivered = {e.message_id for _, e in received}
        for message_id, (verdict, _) in outcome[sender].items():
            if verdict == "delivered":
                assert message_id in delivered, "reported delivered but never arrived"
        for port in PORTS:
            arrived = [e.message_id for _, e in received if e.port == port]
            assert arrived == [m for m in order[(sender, port)] if m in delivered], "out of order"
    failures = sum(v == "failed" for o in outcome.values() for v, _ in o.values())
    successes = sum(v == "delivered" for o in outcome.values() for v, _ in o.values())
    assert successes + failures == total
    assert 0 < failures <= 2 * in_flight_max  # the longest cut failed what was in flight
    failed_at = [at for o in outcome.values() for v, at in o.values() if v == "failed"]
    last_cut = faults.cuts[-1]
    assert all(last_cut[0] + 5.0 <= at <= last_cut[1] for at in failed_at), "only at resume_s"
    stats = pair.ends["a"].stats
    assert stats.messages_resumed > 0
    assert stats.retransmissions > 0
    assert stats.crc_errors > 0
    assert stats.link_ups >= 2


def test_sequence_numbers_wrap_without_loss_or_disorder() -> None:
    """More than 65,536 data frames in one link-up: the 16-bit sequence space wraps."""
    faults = WireFaults(loss=0.03, reorder=0.02)
    pair = LinkPair(LinkConfig(frame_payload=16), seed=5, faults=faults)
    pair.run_until(pair.up, 10)
    a, b = pair.ends["a"], pair.ends["b"]
    b.bind(1)
    messages = [i.to_bytes(4, "little") * 256 for i in range(1100)]  # 64 frames each
    queue = list(messages)
    seen = {"events": 0, "delivered": 0}  # counted as they come: rescanning is quadratic

    def done() -> bool:
        events = pair.events["a"]
        new = events[seen["events"] :]
        seen["events"] = len(events)
        seen["delivered"] += sum(isinstance(e, MessageDelivered) for _, e in new)
        while queue and len(messages) - len(queue) - seen["delivered"] < 24:
            a.send(1, queue.pop(0), pair.now)
        return seen["delivered"] == len(messages)

    pair.run_until(done, 3600)
    received = [e.data for _, e in pair.events["b"] if isinstance(e, MessageReceived)]
    assert received == messages
    assert a.stats.frames_sent > 1 << 16
    assert a.stats.link_ups == 1  # one session throughout: the wrap did not reset the link
