"""pigpiod's socket protocol and limits, shared by the bus backend and the emulator.

The one place that knows pigpiod: command numbers, error codes, packing, pin
modes and pulls, wave modes, and the daemon's limits.

Facts from pigpio v79 (``pigpio.h``, ``command.h``, ``pigpio.py``): requests
and replies are 16 bytes, four little-endian uint32 (``cmd, p1, p2, p3``). In
a request ``p3`` is the length of the extension bytes that follow; in a reply
it is the result, negative for an error. Notification reports are 12 bytes.
"""

from __future__ import annotations

import struct
from typing import Final

REQUEST = struct.Struct("<IIII")
REPLY_SIGNED = struct.Struct("<IIIi")
REPLY_UNSIGNED = struct.Struct("<IIII")
REPORT_FORMAT: Final = [("seqno", "<u2"), ("flags", "<u2"), ("tick", "<u4"), ("level", "<u4")]
REPORT_SIZE: Final = 12

#: the server reads the extension into a 64 KiB buffer; longer closes the socket
MAX_EXTENSION: Final = 1 << 16

# notification flags (pigpio.h PI_NTFY_FLAGS_*)
NTFY_EVENT: Final = 0x80
NTFY_ALIVE: Final = 0x40
NTFY_WDOG: Final = 0x20

# pin modes, pulls and wave transmit modes (pigpio.h)
MODE_INPUT: Final = 0
MODE_OUTPUT: Final = 1
PUD_OFF: Final = 0
PUD_DOWN: Final = 1
PUD_UP: Final = 2
WAVE_MODE_ONE_SHOT: Final = 0
WAVE_MODE_ONE_SHOT_SYNC: Final = 2

#: reports are written in chunks of PIPE_BUF / 12
MAX_EMITS: Final = 341
PIGPIO_VERSION: Final = 79
HW_REVISION_PI3B: Final = 0xA02082
#: GPIO 2-27 for a Pi 3B/4B (pigpio's default `-x` permission mask)
DEFAULT_PERMITTED: Final = 0x0FFFFFFC
ALIVE_AFTER_US: Final = 60_000_000
NOTIFY_SLOTS: Final = 32
MAX_MICS_DELAY: Final = 1_000_000  # MICS: µs a socket's thread may wait
MAX_MILS_DELAY: Final = 60_000  # MILS: ms
MAX_FILTER_US: Final = 300_000  # FG / FN steady time

# waveform limits
WAVE_MAX_PULSES: Final = 12_000
WAVE_MAX_MICROS: Final = 1_800_000_000
MAX_WAVES: Final = 250
WAVE_MAX_CBS: Final = 25_016
WAVE_USABLE_CBS: Final = 23_836  # without the chain reserve
WAVE_MAX_OOL: Final = 16_748
WAVE_USABLE_OOL: Final = 15_958
WAVE_START_DELAY_US: Final = 20  # every non-SYNC wave starts with this delay
WAVE_NOT_FOUND: Final = 9998
NO_TX_WAVE: Final = 9999
#: 12-byte pulses that fit one WVAG extension (the 64 KiB buffer)
WVAG_MAX_PULSES: Final = (MAX_EXTENSION - 1) // 12


class Cmd:
    """Command numbers (pigpio.py ``_PI_CMD_*``)."""

    MODES = 0
    MODEG = 1
    PUD = 2
    READ = 3
    WRITE = 4
    PWM = 5
    PRS = 6
    PFS = 7
    SERVO = 8
    WDOG = 9
    BR1 = 10
    BR2 = 11
    BC1 = 12
    BC2 = 13
    BS1 = 14
    BS2 = 15
    TICK = 16
    HWVER = 17
    NO = 18
    NB = 19
    NP = 20
    NC = 21
    PRG = 22
    PFG = 23
    PRRG = 24
    PIGPV = 26
    WVCLR = 27
    WVAG = 28
    WVAS = 29
    WVGO = 30
    WVGOR = 31
    WVBSY = 32
    WVHLT = 33
    WVSM = 34
    WVSP = 35
    WVSC = 36
    TRIG = 37
    MICS = 46
    MILS = 47
    WVCRE = 49
    WVDEL = 50
    WVTX = 51
    WVTXR = 52
    WVNEW = 53
    GDC = 83
    GPW = 84
    WVCHA = 93
    FG = 97
    FN = 98
    NOIB = 99
    WVTXM = 100
    WVTAT = 101
    PADS = 102
    PADG = 103
    WVCAP = 118


COMMAND_NAMES: dict[int, str] = {value: name for name, value in vars(Cmd).items() if name.isupper()}

#: replies the official client treats as unsigned (pigpio.py returns them raw)
UNSIGNED_RESULTS = frozenset({Cmd.BR1, Cmd.BR2, Cmd.TICK, Cmd.HWVER})


class Err:
    """pigpio error codes (pigpio.h ``PI_*``)."""

    BAD_USER_GPIO = -2
    BAD_GPIO = -3
    BAD_MODE = -4
    BAD_LEVEL = -5
    BAD_PUD = -6
    BAD_WDOG_TIMEOUT = -15
    BAD_DUTYCYCLE = -8
    BAD_DUTYRANGE = -21
    NO_HANDLE = -24
    BAD_HANDLE = -25
    BAD_WAVE_MODE = -33
    TOO_MANY_PULSES = -36
    NOT_PERMITTED = -41
    SOME_PERMITTED = -42
    BAD_WVSC_COMMND = -43
    BAD_WVSM_COMMND = -44
    BAD_WVSP_COMMND = -45
    BAD_PULSELEN = -46
    BAD_PARAM = -81
    BAD_WAVE_ID = -66
    TOO_MANY_CBS = -67
    TOO_MANY_OOL = -68
    EMPTY_WAVEFORM = -69
    NO_WAVEFORM_ID = -70
    BAD_MICS_DELAY = -64
    BAD_MILS_DELAY = -65
    UNKNOWN_COMMAND = -88
    NOT_PWM_GPIO = -92
    CHAIN_LOOP_CNT = -113
    BAD_CHAIN_LOOP = -114
    CHAIN_COUNTER = -115
    BAD_CHAIN_CMD = -116
    BAD_CHAIN_DELAY = -117
    CHAIN_NESTING = -118
    CHAIN_TOO_BIG = -119
    DEPRECATED = -120
    BAD_FOREVER = -124
    BAD_FILTER = -125
    BAD_PAD = -126
    BAD_STRENGTH = -127


def pack_request(cmd: int, p1: int = 0, p2: int = 0, ext: bytes = b"") -> bytes:
    return REQUEST.pack(cmd, p1 & 0xFFFFFFFF, p2 & 0xFFFFFFFF, len(ext)) + ext


def pack_reply(cmd: int, p1: int, p2: int, result: int) -> bytes:
    """One 16-byte reply; unsigned results are sent as their 32-bit pattern."""
    return REPLY_UNSIGNED.pack(cmd, p1, p2, result & 0xFFFFFFFF)
