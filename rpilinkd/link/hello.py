"""The HELLO payload: what each side tells the other at link-up, and its valid ranges.

A peer's HELLO is checked before anything in it is used (docs/protocol.md
§4.2): a value out of range is a refusal, named in the log, and the link does
not come up with that peer until it says something sensible.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from rpilinkd.errors import FrameError

# version, reserved, epoch, peer epoch, attempt nonce, frame payload, window, max message;
# then the node name
HELLO_FIXED = struct.Struct("<HHIIIHHI")
MAX_NODE_NAME = 64  # bytes of UTF-8

#: what a HELLO may say (inclusive); the same bounds as this side's own config
FRAME_PAYLOAD_RANGE = (16, 1024)  # and a multiple of 4
WINDOW_RANGE = (1, 256)
MAX_MESSAGE_RANGE = (1, 16 * 1024 * 1024)


def truncate_name(name: str, limit: int = MAX_NODE_NAME) -> str:
    """``name`` cut to at most ``limit`` bytes of UTF-8, never inside a character."""
    encoded = name.encode()
    if len(encoded) <= limit:
        return name
    return encoded[:limit].decode(errors="ignore")


@dataclass(frozen=True, slots=True)
class Hello:
    version: int
    epoch: int
    peer_epoch: int  # the epoch of the peer this hello answers (0: none yet)
    nonce: int  # random per start(): tells a late copy of an old hello from a new attempt
    frame_payload: int
    window: int
    max_message: int
    node: str

    def to_bytes(self) -> bytes:
        name = truncate_name(self.node).encode()
        fixed = HELLO_FIXED.pack(
            self.version,
            0,
            self.epoch,
            self.peer_epoch,
            self.nonce,
            self.frame_payload,
            self.window,
            self.max_message,
        )
        return fixed + bytes([len(name)]) + name

    @classmethod
    def from_bytes(cls, data: bytes) -> Hello:
        """Parse a HELLO payload; raises :class:`FrameError` when it is malformed."""
        if len(data) < HELLO_FIXED.size + 1:
            raise FrameError("hello payload too short")
        fields = HELLO_FIXED.unpack_from(data)
        version, _, epoch, peer_epoch, nonce, payload, window, max_message = fields
        size = data[HELLO_FIXED.size]
        name = data[HELLO_FIXED.size + 1 : HELLO_FIXED.size + 1 + size]
        if len(name) != size:
            raise FrameError("hello node name truncated")
        try:
            node = name.decode()
        except UnicodeDecodeError:
            raise FrameError("hello node name is not UTF-8") from None
        return cls(version, epoch, peer_epoch, nonce, payload, window, max_message, node)

    def problem(self) -> str | None:
        """Why a peer's HELLO cannot be used, naming the value; None when it is fine."""
        checks = (
            ("frame payload", self.frame_payload, FRAME_PAYLOAD_RANGE),
            ("window", self.window, WINDOW_RANGE),
            ("max message", self.max_message, MAX_MESSAGE_RANGE),
            ("node name length", len(self.node.encode()), (1, MAX_NODE_NAME)),
        )
        for what, value, (low, high) in checks:
            if not low <= value <= high:
                return f"{what} {value} is outside {low}-{high}"
        if self.frame_payload % 4:
            return f"frame payload {self.frame_payload} is not a multiple of 4"
        return None
