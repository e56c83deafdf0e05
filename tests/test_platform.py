"""rpilinkd.platform: the board, OS and architecture from captured kernel and OS texts."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest

from rpilinkd import platform
from rpilinkd.platform import (
    SUPPORTED,
    UNKNOWN,
    UNSUPPORTED,
    decode_revision,
    describe_board,
    detect_board,
    parse_cpuinfo,
    parse_os_release,
    uses_debian_python_packages,
)

# /proc/cpuinfo tails as Raspberry Pi OS kernels print them (64-bit: no Hardware line).
PI4_ARM64 = """processor\t: 3
BogoMIPS\t: 108.00
CPU revision\t: 3

Revision\t: c03114
Serial\t\t: 10000000abcdef01
Model\t\t: Raspberry Pi 4 Model B Rev 1.4
"""
PI3_ARMHF = """processor\t: 0
model name\t: ARMv7 Processor rev 4 (v7l)
Hardware\t: BCM2835
Revision\t: a02082
Serial\t\t: 00000000765fc593
Model\t\t: Raspberry Pi 3 Model B Rev 1.2
"""
X86 = """processor\t: 0
vendor_id\t: AuthenticAMD
model\t\t: 1
model name\t: AMD EPYC 7B13
"""


def cpuinfo(revision: str, model: str = "") -> str:
    return f"processor\t: 0\nRevision\t: {revision}\n" + (f"Model\t\t: {model}\n" if model else "")


def test_a_pi_4_is_supported() -> None:
    board = detect_board("Raspberry Pi 4 Model B Rev 1.4\0", PI4_ARM64)
    assert board.name == "Raspberry Pi 4 Model B Rev 1.4"
    assert (board.revision, board.processor) == ("c03114", "BCM2711")
    assert board.is_raspberry_pi
    assert board.pigpio_ok
    assert not board.pi5_family
    assert (board.support, board.reason) == (SUPPORTED, "")
    assert describe_board(board) == "Raspberry Pi 4 Model B Rev 1.4 (revision c03114, BCM2711)"


def test_a_pi_3_on_32_bit_is_supported_from_cpuinfo_alone() -> None:
    board = detect_board("", PI3_ARMHF)  # no device tree readable: the Model line names it
    assert board.name == "Raspberry Pi 3 Model B Rev 1.2"
    assert board.processor == "BCM2837"
    assert board.support == SUPPORTED


@pytest.mark.parametrize(
    ("model", "revision"),
    [
        ("Raspberry Pi 5 Model B Rev 1.0", "d04170"),
        ("Raspberry Pi 5 Model B Rev 1.1", "e04171"),
        ("Raspberry Pi 500 Rev 1.0", "d04190"),
        ("Raspberry Pi Compute Module 5 Rev 1.0", "b04180"),
        ("Raspberry Pi Compute Module 5 Lite Rev 1.0", "c041a0"),
    ],
)
def test_the_pi_5_family_is_refused_with_one_clear_reason(model: str, revision: str) -> None:
    for board in (
        detect_board(model, cpuinfo(revision)),  # both sources
        detect_board("", cpuinfo(revision)),  # the revision code alone
        detect_board(model, ""),
    ):  # the model string alone
        assert board.pi5_family
        assert not board.pigpio_ok
        assert board.support == UNSUPPORTED
        assert board.processor == "BCM2712"
        assert "does not support the Raspberry Pi" in board.reason
        assert "RP1" in board.reason
        assert "pigpio cannot drive" in board.reason
        assert "Pi 4" in board.reason  # what the user can do instead
    assert model in detect_board(model, cpuinfo(revision)).reason  # names the board


def test_the_compute_module_0_is_not_taken_for_a_pi_5() -> None:
    """Type 0x1b (CM0) comes after the Pi 5 types but carries a BCM2837."""
    code = (1 << 23) | (1 << 20) | (2 << 12) | (0x1B << 4)  # new, 512 MB, BCM2837, CM0
    board = detect_board("", cpuinfo(f"{code:06x}"))
    assert board.name == "Raspberry Pi CM0"
    assert board.support == SUPPORTED
    assert not board.pi5_family


def test_an_unknown_processor_is_refused() -> None:
    code = (1 << 23) | (5 << 20) | (5 << 12) | (0x1C << 4)
    board = detect_board("Raspberry Pi 6 Model B Rev 1.0", cpuinfo(f"{code:06x}"))
    assert not board.pi5_family
    assert not board.pigpio_ok
    assert board.support == UNSUPPORTED
    assert "BCM2711" in board.reason  # says what pigpio does know


def test_old_style_codes_and_the_warranty_bit() -> None:
    assert detect_board("", cpuinfo("000e")).support == SUPPORTED  # a Model B, 2012
    assert detect_board("", cpuinfo("1000002")).support == SUPPORTED  # warranty bit set
    overclocked = detect_board("", cpuinfo("2a02082"))  # warranty bit on a new-style code
    assert overclocked.processor == "BCM2837"
    assert overclocked.support == SUPPORTED


def test_the_device_tree_revision_is_the_fallback() -> None:
    """Some arm64 kernels have no Revision line; pigpio then reads linux,revision."""
    board = detect_board("Raspberry Pi 4 Model B Rev 1.5", X86, bytes.fromhex("00d03115"))
    assert (board.revision, board.support) == ("d03115", SUPPORTED)


def test_a_pi_without_any_revision_code_is_a_warning_not_a_refusal() -> None:
    board = detect_board("Raspberry Pi 4 Model B Rev 1.4", "")
    assert board.is_raspberry_pi
    assert board.support == UNKNOWN
    assert "no revision code" in board.reason


def test_a_pc_or_a_build_root_is_not_a_pi() -> None:
    for board in (detect_board("", X86), detect_board("", "")):
        assert not board.is_raspberry_pi
        assert not board.pigpio_ok
        assert board.support == UNKNOWN
        assert board.name == "unknown board"
        assert "not a Raspberry Pi" in board.reason


def test_decode_revision_fields() -> None:
    rev = decode_revision(0xC03114)
    assert rev.new_style
    assert rev.type_code == 0x11
    assert rev.type_name == "4B"
    assert rev.processor_name == "BCM2711"
    assert decode_revision(0x0010).new_style is False
    assert decode_revision(0x9000F0).type_name == "type 0x0f"  # internal use: no name


def test_parse_cpuinfo_takes_the_first_of_each_line() -> None:
    assert parse_cpuinfo(PI3_ARMHF) == {
        "hardware": "BCM2835",
        "revision": "a02082",
        "model": "Raspberry Pi 3 Model B Rev 1.2",
    }
    assert "revision" not in parse_cpuinfo(PI4_ARM64.replace("Revision", "Rev"))


BOOKWORM = """PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"
NAME="Debian GNU/Linux"
VERSION_ID="12"
VERSION="12 (bookworm)"
VERSION_CODENAME=bookworm
ID=debian
"""
RASPIOS_32 = """PRETTY_NAME="Raspbian GNU/Linux 12 (bookworm)"
NAME="Raspbian GNU/Linux"
VERSION_ID="12"
VERSION_CODENAME=bookworm
ID=raspbian
ID_LIKE=debian
"""
TRIXIE_SID = 'PRETTY_NAME="Debian GNU/Linux trixie/sid"\nNAME="Debian GNU/Linux"\nID=debian\n'


def test_os_release() -> None:
    bookworm = parse_os_release(BOOKWORM)
    assert (bookworm.id, bookworm.version_id, bookworm.codename) == ("debian", "12", "bookworm")
    assert bookworm.pretty_name == "Debian GNU/Linux 12 (bookworm)"
    assert bookworm.debian_based
    raspios = parse_os_release(RASPIOS_32)
    assert (raspios.id, raspios.codename, raspios.debian_based) == ("raspbian", "bookworm", True)
    sid = parse_os_release(TRIXIE_SID + 'VERSION="trixie/sid"\n')
    assert sid.codename == "trixie"
    fedora = parse_os_release('ID=fedora\nVERSION_ID=40\nID_LIKE="rhel centos"\n')
    assert not fedora.debian_based
    assert fedora.codename == ""
    assert parse_os_release("").id == "linux"


def test_python_packages_come_from_debian_on_arm_only() -> None:
    assert uses_debian_python_packages("armhf")
    assert uses_debian_python_packages("arm64")
    assert not uses_debian_python_packages("amd64")
    assert not uses_debian_python_packages("")


def test_python_version_gate() -> None:
    assert platform.python_ok((3, 11, 2))
    assert platform.python_ok((3, 13, 5))
    assert not platform.python_ok((3, 9, 2))  # Bullseye


def write(path: Path, text: str | bytes) -> str:
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    return str(path)


def test_main_prints_json_and_shell_assignments(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = [
        "--model-file",
        write(tmp_path / "model", "Raspberry Pi 500 Rev 1.0\0"),
        "--cpuinfo",
        write(tmp_path / "cpuinfo", cpuinfo("d04190")),
        "--dt-revision",
        str(tmp_path / "absent"),
        "--os-release",
        write(tmp_path / "os-release", RASPIOS_32),
        "--arch",
        "arm64",
    ]
    assert platform.main(args) == 0
    found = json.loads(capsys.readouterr().out)
    assert found["support"] == UNSUPPORTED
    assert found["pi5_family"] is True
    assert found["os_codename"] == "bookworm"
    assert found["debian_python_packages"] is True
    assert platform.main([*args, "--shell"]) == 0
    lines = capsys.readouterr().out.splitlines()
    shell = dict(shlex.split(line)[0].split("=", 1) for line in lines)
    assert shell["PLATFORM_SUPPORT"] == "unsupported"
    assert shell["PLATFORM_PI5_FAMILY"] == "1"
    assert shell["PLATFORM_PIGPIO_OK"] == "0"
    assert shell["PLATFORM_REASON"] == found["reason"]
    assert all(key.startswith("PLATFORM_") for key in shell)


def test_read_board_reads_the_files_and_tolerates_missing_ones(tmp_path: Path) -> None:
    model = write(tmp_path / "model", "Raspberry Pi 5 Model B Rev 1.0\0")
    board = platform.read_board(model, str(tmp_path / "absent"), str(tmp_path / "absent"))
    assert board.support == UNSUPPORTED
    assert "Raspberry Pi 5 Model B Rev 1.0" in board.reason
    nothing = platform.read_board(*(str(tmp_path / name) for name in ("a", "b", "c")))
    assert nothing.support == UNKNOWN


def test_it_imports_only_the_standard_library() -> None:
    source = Path(platform.__file__).read_text()
    imports = {
        line.split()[1].split(".")[0]
        for line in source.splitlines()
        if line.startswith(("import ", "from "))
    }
    assert imports <= {"__future__", "argparse", "json", "re", "shlex", "sys", "dataclasses"}
