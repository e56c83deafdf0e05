"""What machine this is: the board, whether pigpio can drive it, the OS and the architecture.

Pure functions over the texts the kernel and the OS provide (``/proc/device-tree/model``,
``/proc/cpuinfo``, ``/proc/device-tree/system/linux,revision``, ``/etc/os-release``,
``dpkg --print-architecture``), so they are tested with captured texts and used by
``scripts/install`` (``python3 -m rpilinkd.platform --shell``) and, later, by the daemon.

Standard library only, and no syntax newer than Python 3.7: the installer runs this with
the system ``python3`` before it knows that Python is new enough for rpilinkd, so that
an old release (Bullseye, Python 3.9) still gets a clear message.

Board identification follows Raspberry Pi's revision-code table (raspberrypi/documentation,
``computers/raspberry-pi/revision-codes.adoc``): a new-style code has bit 23 set, the type
in bits 4-11 and the processor in bits 12-15. pigpio itself decides by the processor field
(``gpioHardwareRevision`` in pigpio.c, v79): BCM2835, BCM2836, BCM2837 and BCM2711 work,
anything else gives "this system does not appear to be a raspberry pi". The Pi 5 family
(types 0x17 Pi 5, 0x18 CM5, 0x19 Pi 500/500+, 0x1a CM5 Lite) has the BCM2712, whose GPIOs
sit on the RP1 chip. Type 0x1b (CM0) is a BCM2837 board, so "type 0x17 or later" would be
wrong: this module asks the processor field.
"""

from __future__ import annotations

import argparse
import json
import re
import shlex
import sys
from dataclasses import dataclass, replace

PROCESSORS = {0: "BCM2835", 1: "BCM2836", 2: "BCM2837", 3: "BCM2711", 4: "BCM2712"}
PIGPIO_PROCESSORS = frozenset({0, 1, 2, 3})  # what pigpio v79's gpioHardwareRevision accepts
BCM2712 = 4
TYPES = {
    0x00: "A",
    0x01: "B",
    0x02: "A+",
    0x03: "B+",
    0x04: "2B",
    0x05: "Alpha",
    0x06: "CM1",
    0x08: "3B",
    0x09: "Zero",
    0x0A: "CM3",
    0x0C: "Zero W",
    0x0D: "3B+",
    0x0E: "3A+",
    0x10: "CM3+",
    0x11: "4B",
    0x12: "Zero 2 W",
    0x13: "400",
    0x14: "CM4",
    0x15: "CM4S",
    0x17: "5",
    0x18: "CM5",
    0x19: "500",
    0x1A: "CM5 Lite",
    0x1B: "CM0",
}
PI5_FAMILY_TYPES = frozenset({0x17, 0x18, 0x19, 0x1A})
# Old-style codes 0002-0015 are all BCM2835 boards (pigpio accepts exactly this range).
OLD_STYLE_CODES = range(0x0002, 0x0016)
NEW_STYLE_FLAG = 1 << 23
# Device-tree model strings of the Pi 5 family: "Raspberry Pi 5 Model B Rev 1.0",
# "Raspberry Pi 500 Rev 1.0", "Raspberry Pi Compute Module 5 Rev 1.0", ...
PI5_MODEL = re.compile(r"Raspberry Pi (5\b|500|Compute Module 5\b)")
# Architectures where PyPI has no (or not always) wheels for numpy: use Debian's packages.
DEBIAN_PYTHON_ARCHES = frozenset({"armhf", "arm64", "armel"})
PYTHON_MIN = (3, 11)

SUPPORTED, UNSUPPORTED, UNKNOWN = "supported", "unsupported", "unknown"


@dataclass(frozen=True)
class Revision:
    """A decoded revision code."""

    code: int
    new_style: bool
    type_code: int | None  # None for old-style codes
    type_name: str
    processor: int  # 0 BCM2835 ... 4 BCM2712; old-style codes are BCM2835

    @property
    def processor_name(self) -> str:
        return PROCESSORS.get(self.processor, f"unknown processor {self.processor}")


@dataclass(frozen=True)
class Board:
    """This board, and whether rpilinkd (through pigpio) can use its GPIOs."""

    name: str  # the device-tree model, else one decoded from the revision code
    revision: str  # the revision code as the kernel shows it (hex), "" when none
    processor: str  # "BCM2711", ... ; "" when unknown
    is_raspberry_pi: bool
    pi5_family: bool
    pigpio_ok: bool
    support: str  # SUPPORTED, UNSUPPORTED (refuse) or UNKNOWN (warn: not a Pi, or no code)
    reason: str  # one sentence for the user; "" when supported


@dataclass(frozen=True)
class OsRelease:
    """/etc/os-release, the fields the installer needs."""

    id: str  # "debian", "raspbian", ...
    version_id: str  # "12"
    codename: str  # "bookworm"
    pretty_name: str
    id_like: str = ""

    @property
    def debian_based(self) -> bool:
        return self.id in ("debian", "raspbian") or "debian" in self.id_like.split()


def decode_revision(code: int) -> Revision:
    """Decode a revision code (the warranty and OTP bits above bit 23 are ignored)."""
    code &= 0xFFFFFF  # like pigpio: drop the warranty bit
    if not code & NEW_STYLE_FLAG:
        return Revision(code, False, None, "old-style board", 0)
    type_code = (code >> 4) & 0xFF
    return Revision(
        code=code,
        new_style=True,
        type_code=type_code,
        type_name=TYPES.get(type_code, f"type 0x{type_code:02x}"),
        processor=(code >> 12) & 0xF,
    )


def parse_cpuinfo(text: str) -> dict[str, str]:
    """The ``Revision``, ``Model`` and ``Hardware`` lines of /proc/cpuinfo (lower-case keys)."""
    found: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        key = key.strip().lower()
        if sep and key in ("revision", "model", "hardware") and key not in found:
            found[key] = value.strip()
    return found


def parse_dt_revision(data: bytes) -> int | None:
    """``/proc/device-tree/system/linux,revision``: a big-endian 32-bit number (pigpio's
    fallback when /proc/cpuinfo has no Revision line, as on some arm64 kernels)."""
    if len(data) < 4:
        return None
    return int.from_bytes(data[:4], "big") or None


def detect_board(model: str = "", cpuinfo: str = "", dt_revision: bytes = b"") -> Board:
    """The board from the device-tree model text, /proc/cpuinfo text and the device-tree
    revision bytes; any of them may be empty (not a Pi, or not readable)."""
    model = model.replace("\0", "").strip()
    info = parse_cpuinfo(cpuinfo)
    if not model and info.get("model", "").startswith("Raspberry Pi"):
        model = info["model"]  # Raspberry Pi kernels add it; on x86 "model" is a number
    revision_text = info.get("revision", "")
    code: int | None = None
    if re.fullmatch(r"[0-9a-fA-F]{4,8}", revision_text):
        code = int(revision_text, 16)
    elif dt_revision:
        code = parse_dt_revision(dt_revision)
        revision_text = f"{code:06x}" if code is not None else ""
    decoded = decode_revision(code) if code else None
    model_says_pi = model.startswith("Raspberry Pi")
    valid_old = decoded is not None and not decoded.new_style and decoded.code in OLD_STYLE_CODES
    is_pi = model_says_pi or (decoded is not None and (decoded.new_style or valid_old))
    pi5 = bool(PI5_MODEL.search(model)) or (
        decoded is not None
        and decoded.new_style
        and (decoded.type_code in PI5_FAMILY_TYPES or decoded.processor == BCM2712)
    )
    processor = ""
    if decoded is not None and (decoded.new_style or valid_old):
        processor = decoded.processor_name
    elif pi5:
        processor = PROCESSORS[BCM2712]
    name = model or (f"Raspberry Pi {decoded.type_name}" if decoded and is_pi else "")
    if decoded is not None and decoded.new_style:
        pigpio_ok = decoded.processor in PIGPIO_PROCESSORS and not pi5
    else:
        pigpio_ok = valid_old and not pi5
    board = Board(name or "unknown board", revision_text, processor, is_pi, pi5, pigpio_ok, "", "")
    support, reason = _judge(board, has_code=decoded is not None)
    return replace(board, support=support, reason=reason)


def _judge(board: Board, has_code: bool) -> tuple[str, str]:
    what = describe_board(board)
    if board.pi5_family:
        return UNSUPPORTED, (
            f"rpilinkd does not support the {what} yet: its GPIOs are on the RP1 chip, which "
            "pigpio cannot drive (pigpiod exits with 'this system does not appear to be a "
            "raspberry pi'). Use a Pi 4, 400, 3, 2, Zero 2 W or Zero for the bus; the "
            'experimental pio backend (bus.backend = "pio", docs/bus.md) has not yet run on '
            "a real Pi 5."
        )
    if board.pigpio_ok:
        return SUPPORTED, ""
    if board.is_raspberry_pi and has_code:
        return UNSUPPORTED, (
            f"rpilinkd does not support the {what}: pigpio (v79) knows only the BCM2835, "
            "BCM2836, BCM2837 and BCM2711 processors, so pigpiod cannot start on it."
        )
    if board.is_raspberry_pi:
        return UNKNOWN, (
            f"{what}: no revision code in /proc/cpuinfo or the device tree, so pigpio cannot "
            "tell which board this is and pigpiod will probably not start (a non-Raspberry Pi "
            "OS kernel?)."
        )
    return UNKNOWN, (
        "not a Raspberry Pi (no Raspberry Pi model or revision code found): pigpiod cannot "
        "run here; fine for a test install or with pigpiod on another machine."
    )


def describe_board(board: Board) -> str:
    """'Raspberry Pi 4 Model B Rev 1.4 (revision c03114, BCM2711)'."""
    details = [f"revision {board.revision}"] if board.revision else []
    details += [board.processor] if board.processor else []
    return board.name + (f" ({', '.join(details)})" if details else "")


def parse_os_release(text: str) -> OsRelease:
    """/etc/os-release: KEY=value lines, values optionally quoted (os-release(5))."""
    fields: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.strip().partition("=")
        if not sep or key.startswith("#"):
            continue
        try:
            words = shlex.split(value)
        except ValueError:
            words = [value]
        fields[key] = words[0] if words else ""
    codename = fields.get("VERSION_CODENAME", "")
    if not codename:  # Debian testing/sid and some derivatives: "Debian GNU/Linux trixie/sid"
        match = re.search(r"\(([a-z]+)\)|\b([a-z]+)/sid\b", fields.get("VERSION", ""))
        codename = next((g for g in match.groups() if g), "") if match else ""
    return OsRelease(
        id=fields.get("ID", "linux"),
        version_id=fields.get("VERSION_ID", ""),
        codename=codename,
        pretty_name=fields.get("PRETTY_NAME", fields.get("NAME", "Linux")),
        id_like=fields.get("ID_LIKE", ""),
    )


def uses_debian_python_packages(arch: str) -> bool:
    """Take numpy, msgpack and systemd from Debian (venv with system site packages) rather
    than PyPI: on ARM, PyPI lacks wheels for some of them (numpy on armhf), and building
    them needs a compiler and hours."""
    return arch in DEBIAN_PYTHON_ARCHES


def python_ok(version: tuple[int, ...]) -> bool:
    return tuple(version[:2]) >= PYTHON_MIN


def summary(
    board: Board, os_release: OsRelease, arch: str, python: tuple[int, ...]
) -> dict[str, object]:
    """Everything the installer prints and decides on, as one flat mapping."""
    return {
        "board": board.name,
        "board_description": describe_board(board),
        "revision": board.revision,
        "processor": board.processor,
        "is_raspberry_pi": board.is_raspberry_pi,
        "pi5_family": board.pi5_family,
        "pigpio_ok": board.pigpio_ok,
        "support": board.support,
        "reason": board.reason,
        "os_id": os_release.id,
        "os_version": os_release.version_id,
        "os_codename": os_release.codename,
        "os_name": os_release.pretty_name,
        "debian_based": os_release.debian_based,
        "arch": arch,
        "debian_python_packages": uses_debian_python_packages(arch),
        "python": ".".join(str(part) for part in python[:3]),
        "python_ok": python_ok(python),
    }


def _read(path: str, binary: bool = False) -> str | bytes:
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except OSError:
        return b"" if binary else ""
    return data if binary else data.decode("utf-8", "replace")


MODEL_FILE = "/proc/device-tree/model"
CPUINFO_FILE = "/proc/cpuinfo"
DT_REVISION_FILE = "/proc/device-tree/system/linux,revision"


def read_board(
    model_file: str = MODEL_FILE,
    cpuinfo_file: str = CPUINFO_FILE,
    dt_revision_file: str = DT_REVISION_FILE,
) -> Board:
    """This machine's board (files that are missing or unreadable count as empty).

    For the daemon: ``board = read_board()``; if ``board.support == UNSUPPORTED``,
    ``board.reason`` is the one sentence to log and to show in ``rpilink status``.
    """
    dt_revision = _read(dt_revision_file, binary=True)
    return detect_board(
        str(_read(model_file)),
        str(_read(cpuinfo_file)),
        dt_revision if isinstance(dt_revision, bytes) else b"",
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python3 -m rpilinkd.platform",
        description="Print what this machine is (board, OS, architecture) and whether "
        "rpilinkd supports it. scripts/install uses --shell.",
    )
    parser.add_argument("--model-file", default=MODEL_FILE)
    parser.add_argument("--cpuinfo", default=CPUINFO_FILE)
    parser.add_argument("--dt-revision", default=DT_REVISION_FILE)
    parser.add_argument("--os-release", default="/etc/os-release")
    parser.add_argument("--arch", default="", help="dpkg's architecture (armhf, arm64, ...)")
    parser.add_argument("--shell", action="store_true", help="KEY=value lines for bash's eval")
    args = parser.parse_args(argv)
    board = read_board(args.model_file, args.cpuinfo, args.dt_revision)
    os_release = parse_os_release(str(_read(args.os_release)))
    found = summary(board, os_release, args.arch, tuple(sys.version_info[:3]))
    if args.shell:
        for key, value in found.items():
            text = ("1" if value else "0") if isinstance(value, bool) else str(value)
            print(f"PLATFORM_{key.upper()}={shlex.quote(text)}")
    else:
        print(json.dumps(found, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
