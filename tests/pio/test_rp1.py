"""rp1.py against a recording stand-in for the kernel: what each call puts in its ioctl."""

from __future__ import annotations

import ctypes
import errno
import fcntl
from typing import Any

import numpy as np
import pytest

from rpilinkd.errors import PhyError
from rpilinkd.phy.pio import rp1
from rpilinkd.phy.pio.asm import assemble
from rpilinkd.phy.pio.registers import SmConfig


class Kernel:
    def __init__(self) -> None:
        self.calls: list[tuple[str, bytes]] = []
        self.results: dict[str, int] = {"SM_CLAIM": 2, "ADD_PROGRAM": 22}
        self.fail: dict[str, int] = {}

    def ioctl(self, fd: int, request: int, arg: Any, mutate: bool = False) -> int:
        name = {v: k for k, v in rp1.IOC.items()}[request]
        assert mutate, "mutable argument: the ioctl's return value is needed"
        self.calls.append((name, bytes(arg)))
        if name in self.fail:
            raise OSError(self.fail[name], "stand-in failure")
        if name == "SM_FIFO_STATE":
            arg.level = 5
        return self.results.get(name, 0)


@pytest.fixture
def kernel(monkeypatch: pytest.MonkeyPatch) -> Kernel:
    fake = Kernel()
    monkeypatch.setattr(fcntl, "ioctl", fake.ioctl)
    return fake


def test_calls_carry_their_structures(kernel: Kernel) -> None:
    device = rp1.Rp1Pio("/dev/null")
    assert device.claim_sm() == 2
    program = assemble("loop: jmp loop\nnop")
    assert device.add_program(program) == 22
    device.sm_init(2, 22, SmConfig(1 << 16, 0x1234, 0x5678, 0x9ABC))
    device.sm_set_pins(2, 0x10000, 0x30000)
    assert device.tx_level(2) == 5
    device.close()
    names = [name for name, _ in kernel.calls]
    assert names == [
        "SM_CLAIM", "ADD_PROGRAM", "SM_INIT", "SM_CLEAR_FIFOS", "SM_SET_PINS", "SM_FIFO_STATE",
        "SM_SET_ENABLED", "SM_UNCLAIM", "REMOVE_PROGRAM",
    ]  # fmt: skip
    add = rp1.AddProgramArgs.from_buffer_copy(kernel.calls[1][1])
    assert (add.num_instrs, add.origin, list(add.instrs[:2])) == (2, 0xFFFF, [0x0000, 0xA042])
    init = rp1.SmInitArgs.from_buffer_copy(kernel.calls[2][1])
    assert (init.sm, init.initial_pc, init.config.execctrl, init.config.pinctrl) == (
        2, 22, 0x1234, 0x9ABC
    )  # fmt: skip
    pins = rp1.SmSetPinsArgs.from_buffer_copy(kernel.calls[4][1])
    assert (pins.sm, pins.values, pins.mask) == (2, 0x10000, 0x30000)
    enable = rp1.SmSetEnabledArgs.from_buffer_copy(kernel.calls[6][1])
    assert (enable.mask, enable.enable) == (1 << 2, 0)


def test_dma_read_times_out_to_nothing(kernel: Kernel) -> None:
    device = rp1.Rp1Pio("/dev/null")
    kernel.fail["SM_XFER_DATA32"] = errno.ETIMEDOUT
    assert len(device.read(0, 8)) == 0
    assert [name for name, _ in kernel.calls] == ["SM_CONFIG_XFER32", "SM_XFER_DATA32"]
    xfer = rp1.SmXferData32Args.from_buffer_copy(kernel.calls[1][1])
    assert (xfer.dir, xfer.data_bytes) == (rp1.DIR_FROM_SM, 32)
    kernel.fail["SM_XFER_DATA32"] = errno.EIO
    with pytest.raises(PhyError, match="DMA from the RX FIFO failed"):
        device.read(0, 8)
    kernel.fail.clear()
    device.write(1, np.array([1, 2, 3], np.uint32))
    device.write(1, np.array([1, 2, 3], np.uint32))
    assert [name for name, _ in kernel.calls].count("SM_CONFIG_XFER32") == 2  # once each way
    sent = rp1.SmXferData32Args.from_buffer_copy(kernel.calls[-1][1])
    assert (sent.sm, sent.dir, sent.data_bytes) == (1, rp1.DIR_TO_SM, 12)
    device.close()


def test_a_full_instruction_memory_is_named(kernel: Kernel) -> None:
    device = rp1.Rp1Pio("/dev/null")
    kernel.fail["ADD_PROGRAM"] = errno.ENOSPC
    with pytest.raises(PhyError, match="32 PIO instruction slots"):
        device.add_program(assemble("nop"))
    device.close()
    assert ctypes.sizeof(rp1.SmInitArgs) == 20
