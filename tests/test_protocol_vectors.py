"""docs/protocol.md's test vectors are what the code produces, and mean what they say.

The vectors section of the document is rendered here from the code; the test
fails when the two differ (after a deliberate change, rewrite the section with
``RPILINK_UPDATE_VECTORS=1 pytest tests/test_protocol_vectors.py``). Each vector
is also read back without the encoder: frames through ``Frame.from_bytes``,
pulse lists through a plain model of pigpio playing them and a receiver
latching at STB edges.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

from rpilinkd.config import BusConfig
from rpilinkd.link.connection import PROTOCOL_VERSION
from rpilinkd.link.frames import SACK, Flag, Frame, Kind, announce_payload
from rpilinkd.link.hello import Hello
from rpilinkd.phy.codec import BusTiming, Masks, encode
from rpilinkd.pins import DEFAULT_PINS, WIDE_PINS, PinMap
from tests.support.procs import REPO

DOC = REPO / "docs" / "protocol.md"
BEGIN, END = "<!-- vectors:begin -->", "<!-- vectors:end -->"
SESSION = 0x2A
ANNOUNCE_ECHO = announce_payload(1, "echo")
HELLO = Hello(PROTOCOL_VERSION, 0x11223344, 0, 0xA5A5A5A5, 256, 64, 1 << 20, "alpha")
FRAMES = [
    ("HELLO from the leader", Frame(Kind.HELLO, session=SESSION, payload=HELLO.to_bytes())),
    (
        "DATA: the whole 5-byte message `hello` to port 7 from port 9, message id 1",
        Frame(
            Kind.DATA,
            Flag.FIRST | Flag.LAST,
            SESSION,
            seq=1,
            port=7,
            src_port=9,
            message_id=1,
            payload=(5).to_bytes(4, "little") + b"hello",
        ),
    ),
    (
        "ACK: 2 expected next; 4 and 6 arrived (SACK bits 1 and 3)",
        Frame(Kind.ACK, session=SESSION, ack=2, payload=SACK.pack(0b1010)),
    ),
    (
        "VERDICT ok for message 1 (port 7), acknowledging seq 1",
        Frame(Kind.VERDICT, session=SESSION, seq=1, ack=2, port=7, message_id=1, payload=b"\0"),
    ),
    (
        "ANNOUNCE: port 7 is named `echo`",
        Frame(
            Kind.ANNOUNCE,
            session=SESSION,
            seq=2,
            ack=2,
            port=7,
            payload=announce_payload(1, "echo"),
        ),
    ),
]


@dataclass(frozen=True)
class BusVector:
    title: str
    pins: PinMap
    sample_us: int
    frame: bytes

    @property
    def timing(self) -> BusTiming:
        return BusTiming.from_config(BusConfig(sample_us=self.sample_us, width=self.pins.width))


BUSES = [
    BusVector("8-bit bus, default pins, `-s 5`", DEFAULT_PINS, 5, bytes([0x01, 0x02, 0x03, 0x04])),
    BusVector("16-bit bus, wide pins, `-s 1`", WIDE_PINS, 1, bytes([0x01, 0x02, 0x03, 0x04])),
]


def hexdump(data: bytes) -> str:
    rows = [data[i : i + 16] for i in range(0, len(data), 16)]
    return "\n".join(" ".join(f"{b:02x}" for b in row) for row in rows)


def render() -> str:
    out = [BEGIN, ""]
    for number, (title, frame) in enumerate(FRAMES, 1):
        out += [f"**F{number}. {title}** ({len(frame.to_bytes())} bytes):", ""]
        out += ["```text", hexdump(frame.to_bytes()), "```", ""]
    for number, bus in enumerate(BUSES, 1):
        timing = bus.timing
        pulses = encode([bus.frame], Masks.from_pins(bus.pins), timing)
        out += [
            f"**B{number}. {bus.title}**: the frame `{bus.frame.hex(' ')}` as pigpio pulses "
            f"(set mask, clear mask, delay µs; setup {timing.setup_us}, hold "
            f"{timing.hold_us}, gap {timing.gap_us}):",
            "",
            "```text",
        ]
        out += [f"{int(on):08x} {int(off):08x} {int(delay)}" for on, off, delay in pulses]
        out += ["```", ""]
    out.append(END)
    return "\n".join(out)


def documented() -> str:
    text = DOC.read_text()
    match = re.search(re.escape(BEGIN) + ".*?" + re.escape(END), text, re.S)
    assert match, f"{DOC} has no test-vector section ({BEGIN} ... {END})"
    return match.group(0)


def test_the_documented_vectors_are_what_the_code_makes() -> None:
    if os.environ.get("RPILINK_UPDATE_VECTORS"):
        DOC.write_text(DOC.read_text().replace(documented(), render()))
    assert documented() == render(), "docs/protocol.md's vectors are stale (see this module)"


def test_the_frame_vectors_parse_back_to_their_fields() -> None:
    blocks = re.findall(r"\*\*F\d+\..*?```text\n(.*?)```", documented(), re.S)
    assert len(blocks) == len(FRAMES)
    for block, (_, frame) in zip(blocks, FRAMES, strict=True):
        assert Frame.from_bytes(bytes.fromhex(block.replace("\n", " "))) == frame


def play(pulses: list[tuple[int, int, int]], pins: PinMap) -> bytes:
    """What a receiver latches: pigpio applies each pulse's set mask, then its clear
    mask; a unit is latched at every STB change while FRM is high (docs §1.2)."""
    level, units = 0, []
    stb, frm = 1 << pins.stb_out, 1 << pins.frm_out
    for on, off, _ in pulses:
        for new in (level | on, (level | on) & ~off):
            if (new ^ level) & stb and new & frm:
                units.append(sum(((new >> gpio) & 1) << bit for bit, gpio in enumerate(pins.data)))
            level = new
    return b"".join(unit.to_bytes(pins.width // 8, "little") for unit in units)


def parse_pulse(line: str) -> tuple[int, int, int]:
    on, off, delay = line.split()
    return int(on, 16), int(off, 16), int(delay)


def test_the_pulse_vectors_carry_their_frame() -> None:
    blocks = re.findall(r"\*\*B\d+\..*?```text\n(.*?)```", documented(), re.S)
    assert len(blocks) == len(BUSES)
    for block, bus in zip(blocks, BUSES, strict=True):
        rows = [parse_pulse(line) for line in block.strip().splitlines()]
        assert play(rows, bus.pins) == bus.frame
        assert rows[-1][1] & (1 << bus.pins.frm_out)  # the frame ends with FRM low
