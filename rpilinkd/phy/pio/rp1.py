"""RP1's PIO from Python: the rp1-pio kernel driver's ioctls on /dev/pio0 (ctypes + fcntl).

The structures mirror ``include/uapi/misc/rp1_pio_if.h`` (the kernel's userspace
ABI); each ioctl number is computed from its structure's size like the kernel's
``_IOW``, so 32-bit userland gets its own numbers, and the driver refuses a
mismatched size ("wrong argsize") rather than misreading it. Control calls are
RPCs to RP1's firmware; data goes by DMA through kernel bounce buffers, and a
transfer call returns only once all its bytes moved (reads time out after
about a second with ETIMEDOUT). Only the ``pio`` backend imports this module.

This code has not run on a Pi 5: it was checked against the kernel header's
structures and ioctl numbers, and against a recording stand-in for the kernel
(tests/pio/test_rp1.py, test_backend_open.py). See docs/bus.md.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import os
from typing import Any

import numpy as np

from rpilinkd.errors import PhyError
from rpilinkd.phy.codec import U32
from rpilinkd.phy.pio.asm import Program
from rpilinkd.phy.pio.registers import SmConfig

DEVICE = "/dev/pio0"
MAGIC = 102  # 'f'
FUNC_PIO = 7  # RP1_GPIO_FUNC_PIO
FUNC_GPIO = 5  # SYS_RIO: a plain GPIO
DIR_TO_SM, DIR_FROM_SM = 0, 1
ORIGIN_ANY = 0xFFFF
TX_BUFFER_BYTES, RX_BUFFER_BYTES, BUFFERS = 4096, 32, 4


class SmConfigArgs(ctypes.Structure):
    _fields_ = [("clkdiv", ctypes.c_uint32), ("execctrl", ctypes.c_uint32),
                ("shiftctrl", ctypes.c_uint32), ("pinctrl", ctypes.c_uint32)]  # fmt: skip


class AddProgramArgs(ctypes.Structure):
    _fields_ = [("num_instrs", ctypes.c_uint16), ("origin", ctypes.c_uint16),
                ("instrs", ctypes.c_uint16 * 32)]  # fmt: skip


class RemoveProgramArgs(ctypes.Structure):
    _fields_ = [("num_instrs", ctypes.c_uint16), ("origin", ctypes.c_uint16)]


class SmClaimArgs(ctypes.Structure):  # also SM_UNCLAIM, SM_RESTART
    _fields_ = [("mask", ctypes.c_uint16)]


class SmInitArgs(ctypes.Structure):
    _fields_ = [("sm", ctypes.c_uint16), ("initial_pc", ctypes.c_uint16),
                ("config", SmConfigArgs)]  # fmt: skip


class SmSetPinsArgs(ctypes.Structure):  # also SM_SET_PINDIRS (``values`` = dirs)
    _fields_ = [("sm", ctypes.c_uint16), ("rsvd", ctypes.c_uint16),
                ("values", ctypes.c_uint32), ("mask", ctypes.c_uint32)]  # fmt: skip


class SmSetEnabledArgs(ctypes.Structure):
    _fields_ = [("mask", ctypes.c_uint16), ("enable", ctypes.c_uint8), ("rsvd", ctypes.c_uint8)]


class SmClearFifosArgs(ctypes.Structure):
    _fields_ = [("sm", ctypes.c_uint16)]


class SmFifoStateArgs(ctypes.Structure):
    _fields_ = [("sm", ctypes.c_uint16), ("tx", ctypes.c_uint8), ("rsvd", ctypes.c_uint8),
                ("level", ctypes.c_uint16), ("empty", ctypes.c_uint8),
                ("full", ctypes.c_uint8)]  # fmt: skip


class GpioSetFunctionArgs(ctypes.Structure):
    _fields_ = [("gpio", ctypes.c_uint16), ("fn", ctypes.c_uint16)]


class GpioSetPullsArgs(ctypes.Structure):
    _fields_ = [("gpio", ctypes.c_uint16), ("up", ctypes.c_uint8), ("down", ctypes.c_uint8)]


class SmConfigXfer32Args(ctypes.Structure):
    _fields_ = [("sm", ctypes.c_uint16), ("dir", ctypes.c_uint16),
                ("buf_size", ctypes.c_uint32), ("buf_count", ctypes.c_uint32)]  # fmt: skip


class SmXferData32Args(ctypes.Structure):
    _fields_ = [("sm", ctypes.c_uint16), ("dir", ctypes.c_uint16),
                ("data_bytes", ctypes.c_uint32), ("data", ctypes.c_void_p)]  # fmt: skip


def _iow(number: int, struct: type[ctypes.Structure]) -> int:
    return 1 << 30 | ctypes.sizeof(struct) << 16 | MAGIC << 8 | number


IOC = {
    "SM_CONFIG_XFER32": _iow(3, SmConfigXfer32Args),
    "SM_XFER_DATA32": _iow(2, SmXferData32Args),
    "ADD_PROGRAM": _iow(11, AddProgramArgs),
    "REMOVE_PROGRAM": _iow(12, RemoveProgramArgs),
    "SM_CLAIM": _iow(20, SmClaimArgs),
    "SM_UNCLAIM": _iow(21, SmClaimArgs),
    "SM_INIT": _iow(30, SmInitArgs),
    "SM_CLEAR_FIFOS": _iow(33, SmClearFifosArgs),
    "SM_SET_PINS": _iow(35, SmSetPinsArgs),
    "SM_SET_PINDIRS": _iow(36, SmSetPinsArgs),
    "SM_SET_ENABLED": _iow(37, SmSetEnabledArgs),
    "SM_FIFO_STATE": _iow(44, SmFifoStateArgs),
    "GPIO_SET_FUNCTION": _iow(51, GpioSetFunctionArgs),
    "GPIO_SET_PULLS": _iow(52, GpioSetPullsArgs),
}


class Rp1Pio:
    """The PIO block behind /dev/pio0 (implements device.PioDevice)."""

    def __init__(self, path: str = DEVICE) -> None:
        self.path = path
        self.fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)  # the caller maps OSError
        self._claimed: list[int] = []
        self._programs: list[tuple[Program, int]] = []
        self._configured: set[tuple[int, int]] = set()  # (sm, direction) with DMA set up

    def _call(self, name: str, arg: ctypes.Structure) -> int:
        try:
            return fcntl.ioctl(self.fd, IOC[name], arg, True)  # type: ignore[no-any-return]
        except OSError as exc:
            raise PhyError(f"{self.path}: {name} failed: {exc.strerror}") from exc

    def claim_sm(self) -> int:
        sm = self._call("SM_CLAIM", SmClaimArgs(mask=0))  # 0: any free one
        self._claimed.append(sm)
        return sm

    def add_program(self, program: Program) -> int:
        args = AddProgramArgs(num_instrs=len(program), origin=ORIGIN_ANY)
        args.instrs[: len(program)] = program.instructions
        try:
            offset = self._call("ADD_PROGRAM", args)
        except PhyError as exc:
            raise PhyError(
                f"no room for the {program.name} program ({len(program)} instructions) in "
                "RP1's 32 PIO instruction slots: another program (another process?) uses them"
            ) from exc
        self._programs.append((program, offset))
        return offset

    def remove_program(self, program: Program, offset: int) -> None:
        self._call("REMOVE_PROGRAM", RemoveProgramArgs(num_instrs=len(program), origin=offset))
        self._programs.remove((program, offset))

    def gpio_to_pio(self, gpio: int) -> None:
        self._call("GPIO_SET_PULLS", GpioSetPullsArgs(gpio=gpio, up=0, down=1))
        self._call("GPIO_SET_FUNCTION", GpioSetFunctionArgs(gpio=gpio, fn=FUNC_PIO))

    def gpio_release(self, gpio: int) -> None:
        self._call("GPIO_SET_PULLS", GpioSetPullsArgs(gpio=gpio, up=0, down=1))
        self._call("GPIO_SET_FUNCTION", GpioSetFunctionArgs(gpio=gpio, fn=FUNC_GPIO))

    def sm_init(self, sm: int, pc: int, config: SmConfig) -> None:
        registers = SmConfigArgs(config.clkdiv, config.execctrl, config.shiftctrl, config.pinctrl)
        self._call("SM_INIT", SmInitArgs(sm=sm, initial_pc=pc, config=registers))
        self._call("SM_CLEAR_FIFOS", SmClearFifosArgs(sm=sm))

    def sm_set_pins(self, sm: int, values: int, mask: int) -> None:
        self._call("SM_SET_PINS", SmSetPinsArgs(sm=sm, values=values, mask=mask))

    def sm_set_pindirs(self, sm: int, dirs: int, mask: int) -> None:
        self._call("SM_SET_PINDIRS", SmSetPinsArgs(sm=sm, values=dirs, mask=mask))

    def sm_enable(self, sm: int, enabled: bool) -> None:
        self._call("SM_SET_ENABLED", SmSetEnabledArgs(mask=1 << sm, enable=int(enabled)))

    def tx_level(self, sm: int) -> int:
        state = SmFifoStateArgs(sm=sm, tx=1)
        self._call("SM_FIFO_STATE", state)
        return int(state.level)

    def _transfer(self, sm: int, direction: int, buffer: Any, size: int) -> None:
        if (sm, direction) not in self._configured:
            buffer_bytes = TX_BUFFER_BYTES if direction == DIR_TO_SM else RX_BUFFER_BYTES
            xfer = SmConfigXfer32Args(sm=sm, dir=direction, buf_size=buffer_bytes,
                                      buf_count=BUFFERS)  # fmt: skip
            self._call("SM_CONFIG_XFER32", xfer)
            self._configured.add((sm, direction))
        address = ctypes.addressof(buffer)
        args = SmXferData32Args(sm=sm, dir=direction, data_bytes=size, data=address)
        # fcntl releases the GIL around the call: the event loop runs on meanwhile
        fcntl.ioctl(self.fd, IOC["SM_XFER_DATA32"], args, True)

    def write(self, sm: int, words: U32) -> None:
        data = np.ascontiguousarray(words, "<u4")
        buffer = (ctypes.c_uint32 * len(data)).from_buffer_copy(data.tobytes())
        try:
            self._transfer(sm, DIR_TO_SM, buffer, 4 * len(data))
        except OSError as exc:
            raise PhyError(f"{self.path}: DMA to the TX FIFO failed: {exc.strerror}") from exc

    def read(self, sm: int, count: int) -> U32:
        buffer = (ctypes.c_uint32 * count)()
        try:
            self._transfer(sm, DIR_FROM_SM, buffer, 4 * count)
        except OSError as exc:
            if exc.errno == errno.ETIMEDOUT:  # nothing on the bus for a while
                return np.zeros(0, np.uint32)
            raise PhyError(f"{self.path}: DMA from the RX FIFO failed: {exc.strerror}") from exc
        return np.frombuffer(bytes(buffer), "<u4").astype(np.uint32)

    def close(self) -> None:
        """Disable and release our state machines and programs, then the device (the
        driver would on close too; this keeps the order explicit)."""
        try:
            for sm in self._claimed:
                self._call("SM_SET_ENABLED", SmSetEnabledArgs(mask=1 << sm, enable=0))
                self._call("SM_UNCLAIM", SmClaimArgs(mask=1 << sm))
            for program, offset in list(self._programs):
                self.remove_program(program, offset)
        finally:
            self._claimed.clear()
            os.close(self.fd)
