"""The host's side of the FIFOs: TX words per frame, RX words back to frames in any chunking."""

from __future__ import annotations

import random

import numpy as np
import pytest

from rpilinkd.phy.pio.framing import RxDecoder, tx_words
from rpilinkd.phy.pio.programs import MARKER, RX_MARKERS


def test_tx_words_carry_a_header_of_pairs() -> None:
    words = tx_words([bytes(range(8)), b"\xff\x00\x01\x02"], 8).tolist()
    assert words == [3, 0x03020100, 0x07060504, 1, 0x020100FF]
    assert tx_words([bytes(range(8))], 16).tolist() == [1, 0x03020100, 0x07060504]


def rx_stream(frames: list[bytes], width: int) -> list[int]:
    words: list[int] = []
    for frame in frames:
        if width == 8:
            words += list(frame)
        else:
            words += np.frombuffer(frame, "<u2").tolist()
        words += [MARKER] * RX_MARKERS
    return words


@pytest.mark.parametrize("width", [8, 16])
def test_rx_words_to_frames_in_any_chunking(width: int) -> None:
    rng = random.Random(width)
    frames = [rng.randbytes(4 * rng.randrange(1, 30)) for _ in range(20)]
    frames[3] = bytes([0xFF] * 8)  # data that looks like markers is not
    words = np.array(rx_stream(frames, width), np.uint32)
    decoder = RxDecoder(width)
    got: list[bytes] = []
    at = 0
    while at < len(words):
        size = rng.randrange(1, 40)
        got += decoder.feed(words[at : at + size]).frames
        at += size
    assert got == frames


def test_marker_runs_count_whole_frames() -> None:
    decoder = RxDecoder(8)
    out = decoder.feed(np.array([1, 2, *[MARKER] * (3 * RX_MARKERS), 9], np.uint32))
    assert out.frames == [b"\x01\x02"]
    assert out.empty_frames == 2
