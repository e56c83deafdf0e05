"""The link layer does no I/O: no asyncio, sockets, pigpio, numpy or clocks (must-show 5)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from rpilinkd.testbed.processes import child_env

LINK = Path(__file__).resolve().parents[2] / "rpilinkd" / "link"
BANNED = {
    "asyncio",
    "socket",
    "pigpio",
    "numpy",
    "msgpack",
    "select",
    "selectors",
    "threading",
    "time",
    "subprocess",
}


def test_no_module_in_the_package_imports_io() -> None:
    found = []
    for path in sorted(LINK.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            found += [f"{path.name}: {n}" for n in names if n.split(".")[0] in BANNED]
    assert not found


def test_importing_the_package_pulls_in_no_io_either() -> None:
    code = (
        "import sys\n"
        "before = set(sys.modules)\n"
        "import rpilinkd.link\n"
        f"banned = {sorted(BANNED)!r}\n"
        "print(sorted(m for m in set(sys.modules) - before if m.split('.')[0] in banned))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], env=child_env(), capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == "[]", done.stdout
