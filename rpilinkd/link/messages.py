"""Messages over frames: fragmentation, reassembly, and the peer's verdict codes.

A message becomes one or more DATA frames of at most ``frame_payload`` bytes.
The first fragment's payload starts with the message's total length (uint32),
so a receiver can refuse a message that is too large before it arrives; the
last fragment is flagged LAST. The reliable stream is in order and a
message's fragments are sent back to back, so reassembly just appends.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass, field

from rpilinkd.errors import (
    ApiError,
    MessageTooLargeError,
    NoListenerError,
    QueueFullError,
    RemoteError,
    ShuttingDownError,
)
from rpilinkd.link.frames import Flag, Frame, Kind

TOTAL = struct.Struct("<I")

#: verdict numbers on the wire <-> the stable codes of the errors they stand for
OK = "ok"
VERDICTS = {
    0: OK,
    1: NoListenerError.code,
    2: QueueFullError.code,
    3: MessageTooLargeError.code,
    4: ShuttingDownError.code,
    5: ApiError.code,
    255: RemoteError.code,
}
VERDICT_NUMBERS = {code: number for number, code in VERDICTS.items()}


def verdict_number(code: str) -> int:
    return VERDICT_NUMBERS.get(code, VERDICT_NUMBERS[RemoteError.code])


def verdict_code(number: int) -> str:
    return VERDICTS.get(number, RemoteError.code)


def fragments(
    message_id: int, port: int, src_port: int, data: bytes, payload: int
) -> Iterator[Frame]:
    """The DATA frames of one message (sequence numbers are set when sent)."""
    first = TOTAL.pack(len(data)) + data[: payload - TOTAL.size]
    chunks = [first] + [
        data[start : start + payload] for start in range(payload - TOTAL.size, len(data), payload)
    ]
    for index, chunk in enumerate(chunks):
        flags = Flag.FIRST if index == 0 else Flag.NONE
        if index == len(chunks) - 1:
            flags |= Flag.LAST
        yield Frame(
            Kind.DATA, flags, port=port, src_port=src_port, message_id=message_id, payload=chunk
        )


@dataclass
class Partial:
    message_id: int
    port: int
    src_port: int
    total: int
    parts: list[bytes] = field(default_factory=list)
    received: int = 0
    refused: bool = False  # too large: fragments are counted, not kept


@dataclass(frozen=True)
class Assembled:
    message_id: int
    port: int
    src_port: int
    data: bytes


@dataclass(frozen=True)
class Refused:
    message_id: int
    port: int
    code: str


class Reassembler:
    """Whole messages from in-order DATA frames; only ever complete ones come out."""

    def __init__(self, max_message: int) -> None:
        self.max_message = max_message
        self._partial: Partial | None = None
        self.abandoned = 0  # partial messages dropped (their sender failed them)

    def reset(self) -> None:
        if self._partial is not None:
            self.abandoned += 1
        self._partial = None

    def feed(self, frame: Frame) -> Assembled | Refused | None:
        payload = frame.payload
        if frame.flags & Flag.FIRST:
            if self._partial is not None:
                self.abandoned += 1
            if len(payload) < TOTAL.size:
                self._partial = None
                return Refused(frame.message_id, frame.port, ApiError.code)
            total = TOTAL.unpack_from(payload)[0]
            self._partial = Partial(
                frame.message_id,
                frame.port,
                frame.src_port,
                total,
                refused=total > self.max_message,
            )
            payload = payload[TOTAL.size :]
            if self._partial.refused:
                refused = Refused(frame.message_id, frame.port, MessageTooLargeError.code)
                if frame.flags & Flag.LAST:
                    self._partial = None
                return refused
        partial = self._partial
        if partial is None or partial.message_id != frame.message_id:
            return None  # the rest of a message whose start we never had
        partial.received += len(payload)
        if not partial.refused:
            partial.parts.append(payload)
        if partial.received > partial.total:
            self._partial = None
            return None if partial.refused else Refused(frame.message_id, frame.port, ApiError.code)
        if not frame.flags & Flag.LAST:
            return None
        self._partial = None
        if partial.refused:
            return None
        if partial.received != partial.total:
            return Refused(frame.message_id, frame.port, ApiError.code)
        data = b"".join(partial.parts)
        return Assembled(partial.message_id, partial.port, partial.src_port, data)
