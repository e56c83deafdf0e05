"""The pio backend off a Pi 5: one clear error at open; nothing imports it but the registry;
the RP1 ioctl layout; ``bus.backend = "auto"``."""

from __future__ import annotations

import ast
import ctypes
import subprocess
import sys
from pathlib import Path

import pytest

from rpilinkd.config import BusConfig, Config
from rpilinkd.errors import ConfigError, PhyUnavailableError
from rpilinkd.phy import BACKENDS, backend_class, create_backend
from rpilinkd.phy.autodetect import is_pi5_family, resolve_backend

PACKAGE = Path(__file__).resolve().parents[2] / "rpilinkd"
PRIVATE = {"rpilinkd.phy.pio.backend", "rpilinkd.phy.pio.rp1", "rpilinkd.phy.pio.lines"}


async def test_open_fails_with_one_clear_message_without_rp1() -> None:
    phy = create_backend("pio", Config())
    with pytest.raises(PhyUnavailableError) as caught:
        await phy.open()
    assert str(caught.value) == (
        "no RP1 PIO here (/dev/pio0 missing): the pio backend needs a Raspberry Pi 5, Pi 500 "
        "or CM5 (kernel with the rp1-pio driver); on a Pi 1-4 use backend pigpio"
    )
    assert not phy.is_open
    await phy.aclose()  # harmless


async def test_open_without_gpiod_says_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = tmp_path / "pio0"
    fake.touch()
    monkeypatch.setitem(sys.modules, "gpiod", None)  # an import of it now fails
    monkeypatch.delitem(sys.modules, "rpilinkd.phy.pio.lines", raising=False)
    cls = backend_class("pio")
    phy = cls.from_config(Config())
    phy.device_path = str(fake)  # type: ignore[attr-defined]
    with pytest.raises(PhyUnavailableError, match=r"needs the gpiod package.*rpilinkd\[pio\]"):
        await phy.open()


def test_nothing_imports_the_backend_but_the_registry() -> None:
    assert BACKENDS["pio"] == ("rpilinkd.phy.pio.backend", "PioPhy")
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        module = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        for node in ast.walk(ast.parse(path.read_text())):
            names: list[str] = []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            for name in names:
                if name in PRIVATE and not module.startswith("rpilinkd.phy.pio."):
                    offenders.append(f"{module} imports {name}")
    assert not offenders


def test_the_daemon_and_the_programs_load_no_backend_code() -> None:
    code = (
        "import sys, rpilinkd.service.daemon, rpilinkd.phy.pio.programs, rpilinkd.sim.pioemu; "
        f"print(sorted(m for m in sys.modules if m in {sorted(PRIVATE)!r} or m == 'gpiod'))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_rp1_ioctl_numbers_match_the_kernel_header() -> None:
    """Numbers from compiling rp1_pio_if.h (LP64); the layout follows ctypes' C rules."""
    from rpilinkd.phy.pio import rp1  # noqa: PLC0415

    if ctypes.sizeof(ctypes.c_void_p) != 8:
        pytest.skip("the reference numbers are for 64-bit userland")
    assert {name: hex(number) for name, number in rp1.IOC.items()} == {
        "SM_CONFIG_XFER32": "0x400c6603",
        "SM_XFER_DATA32": "0x40106602",
        "ADD_PROGRAM": "0x4044660b",
        "REMOVE_PROGRAM": "0x4004660c",
        "SM_CLAIM": "0x40026614",
        "SM_UNCLAIM": "0x40026615",
        "SM_INIT": "0x4014661e",
        "SM_CLEAR_FIFOS": "0x40026621",
        "SM_SET_PINS": "0x400c6623",
        "SM_SET_PINDIRS": "0x400c6624",
        "SM_SET_ENABLED": "0x40046625",
        "SM_FIFO_STATE": "0x4008662c",
        "GPIO_SET_FUNCTION": "0x40046633",
        "GPIO_SET_PULLS": "0x40046634",
    }


def test_auto_picks_pio_on_a_pi5_family_board(tmp_path: Path) -> None:
    model = tmp_path / "model"
    for text, expected in (
        (b"Raspberry Pi 5 Model B Rev 1.0\0", "pio"),
        (b"Raspberry Pi 500 Rev 1.0\0", "pio"),
        (b"Raspberry Pi Compute Module 5 Rev 1.0\0", "pio"),
        (b"Raspberry Pi 4 Model B Rev 1.4\0", "pigpio"),
    ):
        model.write_bytes(text)
        assert resolve_backend("auto", model) == expected
    assert not is_pi5_family(tmp_path / "absent")  # not a Pi at all
    assert resolve_backend("auto", tmp_path / "absent") == "pigpio"
    assert resolve_backend("pio", tmp_path / "absent") == "pio"


def test_backend_key_in_the_config() -> None:
    assert BusConfig().backend == "auto"
    assert BusConfig(backend="pio").backend == "pio"
    with pytest.raises(ConfigError, match=r"bus\.backend"):
        BusConfig(backend="wiringpi")


def test_non_consecutive_data_pins_are_refused() -> None:
    from rpilinkd.errors import PhyError  # noqa: PLC0415
    from rpilinkd.pins import PinMap  # noqa: PLC0415

    pins = PinMap(data=(16, 17, 18, 19, 20, 21, 23, 22))
    with pytest.raises(PhyError, match="consecutive GPIOs"):
        create_backend("pio", Config(pins=pins))
