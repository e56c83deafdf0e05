"""Link frames: a 20-byte header (the address phase), a payload, a CRC-32.

All fields little-endian; the bus sends each 32-bit word as 4 bytes, least
significant first (docs/protocol.md §3)::

    word 0   kind (8) | flags (8) | session (8) | reserved (8)
    word 1   seq (16) | ack (16)
    word 2   port (16) | src_port (16)
    word 3   message id (32)
    word 4   length (16) | header CRC-16 (16)
    ...      payload, zero-padded to a multiple of 4 bytes
    last     CRC-32 (IEEE, zlib) over the header and the padded payload

The header CRC (CRC-16/CCITT over words 0-3 and the length) is checked before
the length is trusted, so a corrupted length can never make the receiver read
past the frame. The CRC-32 has Hamming distance 5 up to 371 bytes of data, so
at the default 256-byte payload (a 280-byte frame) every 1-4 bit error is
caught; payloads above 340 bytes drop to HD 4 (config.py warns).
"""

from __future__ import annotations

import binascii
import enum
import struct
import zlib
from dataclasses import dataclass

from rpilinkd.errors import CrcError, FrameError

HEADER = struct.Struct("<BBBBHHHHIH")  # without the header CRC
HEADER_SIZE = HEADER.size + 2
TRAILER_SIZE = 4
OVERHEAD = HEADER_SIZE + TRAILER_SIZE
MAX_PAYLOAD = 0xFFFF
HD5_LIMIT = 371  # bytes of data CRC-32 protects with Hamming distance 5


class Kind(enum.IntEnum):
    DATA = 1  # a message fragment (sequenced)
    ACK = 2  # acknowledgement and keepalive: SACK bitmap in the payload (not sequenced)
    HELLO = 3  # link set-up (not sequenced)
    VERDICT = 4  # the peer daemon's answer to a message (sequenced)
    ANNOUNCE = 5  # a name bound to or released from a port (sequenced)


SEQUENCED = frozenset({Kind.DATA, Kind.VERDICT, Kind.ANNOUNCE})


class Flag(enum.IntFlag):
    NONE = 0
    FIRST = 1  # first fragment of a message (payload starts with the total length)
    LAST = 2  # last fragment of a message
    HELLO_SEEN = 4  # in a HELLO: "I have your hello of this session"


@dataclass(frozen=True, slots=True)
class Frame:
    kind: Kind
    flags: Flag = Flag.NONE
    session: int = 0
    seq: int = 0
    ack: int = 0
    port: int = 0
    src_port: int = 0
    message_id: int = 0
    payload: bytes = b""

    def to_bytes(self) -> bytes:
        length = len(self.payload)
        if length > MAX_PAYLOAD:
            raise FrameError(f"payload of {length} bytes does not fit a frame")
        head = HEADER.pack(
            self.kind,
            self.flags,
            self.session,
            0,
            self.seq,
            self.ack,
            self.port,
            self.src_port,
            self.message_id,
            length,
        )
        body = head + binascii.crc_hqx(head, 0xFFFF).to_bytes(2, "little") + self.payload
        body += bytes(-length % 4)
        return body + zlib.crc32(body).to_bytes(4, "little")

    @classmethod
    def from_bytes(cls, data: bytes) -> Frame:
        """Parse a frame; anything malformed raises :class:`FrameError`, nothing else."""
        if len(data) < OVERHEAD:
            raise FrameError(f"frame of {len(data)} bytes is shorter than a header")
        head = data[: HEADER.size]
        header_crc = int.from_bytes(data[HEADER.size : HEADER_SIZE], "little")
        if binascii.crc_hqx(head, 0xFFFF) != header_crc:
            raise CrcError("header CRC mismatch")
        kind, flags, session, _, seq, ack, port, src_port, message_id, length = HEADER.unpack(head)
        padded = length + (-length % 4)
        if len(data) != HEADER_SIZE + padded + TRAILER_SIZE:
            raise FrameError(f"frame of {len(data)} bytes does not match its length {length}")
        if zlib.crc32(data[:-TRAILER_SIZE]) != int.from_bytes(data[-TRAILER_SIZE:], "little"):
            raise CrcError("frame CRC mismatch")
        try:
            frame_kind = Kind(kind)
        except ValueError:
            raise FrameError(f"unknown frame kind {kind}") from None
        if flags & ~0x7:
            raise FrameError(f"unknown frame flags {flags:#x}")
        payload = data[HEADER_SIZE : HEADER_SIZE + length]
        return cls(frame_kind, Flag(flags), session, seq, ack, port, src_port, message_id, payload)


def frame_size(payload: int) -> int:
    """Bytes on the wire for a frame with this much payload."""
    return OVERHEAD + payload + (-payload % 4)


# --- payloads of the control frames (HELLO: hello.py) ------------------------------

SACK = struct.Struct("<Q")  # bit i: seq ack + 1 + i has arrived (a default window's worth)


def sack_bits(data: bytes) -> int:
    if len(data) != SACK.size:
        raise FrameError(f"ack payload must be a {SACK.size * 8}-bit SACK bitmap")
    return int(SACK.unpack(data)[0])


ANNOUNCE_CREATE, ANNOUNCE_DESTROY = 1, 2
MAX_NAME = 32


def announce_payload(op: int, name: str) -> bytes:
    return bytes([op]) + name.encode()[:MAX_NAME]


def parse_announce(data: bytes) -> tuple[int, str]:
    if not data or data[0] not in (ANNOUNCE_CREATE, ANNOUNCE_DESTROY) or len(data) > MAX_NAME + 1:
        raise FrameError("malformed announce payload")
    try:
        return data[0], data[1:].decode()
    except UnicodeDecodeError:
        raise FrameError("announced name is not UTF-8") from None
