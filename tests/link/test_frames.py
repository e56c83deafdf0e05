"""Frames: golden bytes, round trips, and garbage that only ever raises FrameError.

Issue 3, must-show 2.
"""

from __future__ import annotations

import contextlib
import zlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rpilinkd.errors import FrameError
from rpilinkd.link.frames import HD5_LIMIT, Flag, Frame, Kind, frame_size
from rpilinkd.link.hello import Hello

frames = st.builds(
    Frame,
    kind=st.sampled_from(Kind),
    flags=st.sampled_from(
        [Flag.NONE, Flag.FIRST, Flag.LAST, Flag.FIRST | Flag.LAST, Flag.HELLO_SEEN]
    ),
    session=st.integers(0, 255),
    seq=st.integers(0, 0xFFFF),
    ack=st.integers(0, 0xFFFF),
    port=st.integers(0, 0xFFFF),
    src_port=st.integers(0, 0xFFFF),
    message_id=st.integers(0, 0xFFFFFFFF),
    payload=st.binary(max_size=600),
)


def test_golden_bytes() -> None:
    frame = Frame(
        Kind.DATA,
        Flag.FIRST | Flag.LAST,
        session=7,
        seq=1,
        ack=2,
        port=3,
        src_port=4,
        message_id=5,
        payload=b"hi",
    )
    data = frame.to_bytes()
    assert data[:18] == bytes([1, 3, 7, 0, 1, 0, 2, 0, 3, 0, 4, 0, 5, 0, 0, 0, 2, 0])
    assert data[20:24] == b"hi\x00\x00"  # padded to a 32-bit word
    assert data[-4:] == zlib.crc32(data[:-4]).to_bytes(4, "little")
    assert len(data) == frame_size(2) == 28
    assert len(data) % 4 == 0


def test_default_frame_keeps_crc32_hamming_distance_5() -> None:
    assert frame_size(256) - 4 <= HD5_LIMIT


@given(frames)
def test_decode_encode_is_identity(frame: Frame) -> None:
    assert Frame.from_bytes(frame.to_bytes()) == frame


@given(st.binary(max_size=700))
def test_random_bytes_only_raise_frame_error(data: bytes) -> None:
    with contextlib.suppress(FrameError):
        Frame.from_bytes(data)


@given(frames, st.data())
def test_truncated_or_flipped_frames_are_rejected(frame: Frame, data: st.DataObject) -> None:
    encoded = frame.to_bytes()
    cut = data.draw(st.integers(0, len(encoded) - 1))
    with pytest.raises(FrameError):
        Frame.from_bytes(encoded[:cut])
    position = data.draw(st.integers(0, len(encoded) - 1))
    bit = data.draw(st.integers(0, 7))
    flipped = bytearray(encoded)
    flipped[position] ^= 1 << bit
    with pytest.raises(FrameError):
        Frame.from_bytes(bytes(flipped))


def test_corrupted_length_is_caught_before_it_is_trusted() -> None:
    data = bytearray(Frame(Kind.DATA, payload=b"x" * 40).to_bytes())
    data[16] = 0xFF  # the length field
    with pytest.raises(FrameError, match="header CRC"):
        Frame.from_bytes(bytes(data))


@given(st.text(max_size=16), st.integers(0, 2**32 - 1))
def test_hello_round_trip(node: str, epoch: int) -> None:
    hello = Hello(1, epoch, 0, 99, 256, 16, 1 << 20, node)  # 16 characters fit 64 bytes
    assert Hello.from_bytes(hello.to_bytes()) == hello


@given(st.binary(max_size=100))
def test_hello_garbage_only_raises_frame_error(data: bytes) -> None:
    with contextlib.suppress(FrameError):
        Hello.from_bytes(data)
