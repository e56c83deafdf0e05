"""Fragmentation and reassembly: only whole messages ever come out (must-show 2)."""

from __future__ import annotations

import random

from hypothesis import given
from hypothesis import strategies as st

from rpilinkd.link.frames import Flag, Frame
from rpilinkd.link.messages import Assembled, Reassembler, Refused, fragments


@given(st.binary(max_size=5000), st.sampled_from([16, 64, 256]))
def test_fragments_reassemble(data: bytes, payload: int) -> None:
    parts = list(fragments(9, 7, 1, data, payload))
    assert parts[0].flags & Flag.FIRST
    assert parts[-1].flags & Flag.LAST
    assert all(len(p.payload) <= payload for p in parts)
    reassembler = Reassembler(max_message=1 << 20)
    results = [reassembler.feed(p) for p in parts]
    assert results[:-1] == [None] * (len(parts) - 1)
    assert results[-1] == Assembled(9, 7, 1, data)


@given(
    st.lists(st.binary(max_size=600), min_size=1, max_size=6),
    st.randoms(use_true_random=False),
)
def test_never_delivers_a_message_it_did_not_get_whole(
    messages: list[bytes], rng: random.Random
) -> None:
    stream: list[Frame] = []
    for message_id, data in enumerate(messages, 1):
        stream += fragments(message_id, 1, 0, data, 64)
    kept = [f for f in stream if rng.random() > 0.2]  # frames lost for good
    reassembler = Reassembler(max_message=1 << 20)
    out = [r for f in kept if (r := reassembler.feed(f)) is not None]
    for result in out:
        if isinstance(result, Assembled):
            assert result.data == messages[result.message_id - 1]


def test_too_large_is_refused_at_the_first_fragment() -> None:
    reassembler = Reassembler(max_message=100)
    parts = list(fragments(3, 5, 0, bytes(1000), 64))
    assert reassembler.feed(parts[0]) == Refused(3, 5, "too_large")
    assert [reassembler.feed(p) for p in parts[1:]] == [None] * (len(parts) - 1)
