"""The package's import rules: no cycles, and no layer imports one above it.

The layers, lowest first (docs/architecture.md draws them). A module may import
its own package and anything lower; an upward need is met with a Protocol
that the lower module declares and the higher one satisfies. (That the link
layer does no I/O at all is tests/link/test_sans_io.py.)
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "rpilinkd"
LAYERS = [
    {
        "errors",
        "pins",
        "pigpio_protocol",
        "stats",
        "streams",
        "events",
        "loopthread",
        "exits",
        "platform",
    },
    {"config"},
    {"link"},
    {"phy"},
    {"sim", "api", "telemetry", "wiring"},
    {"service", "client"},
    {"cli", "testbed"},
    {"__main__"},
]
RANK = {name: rank for rank, names in enumerate(LAYERS) for name in names}


def unit(module: str) -> str:
    """The layer unit of a dotted module name: ``rpilinkd.link.frames`` -> ``link``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


def imports_of(path: Path, name: str) -> set[str]:
    """Every rpilinkd module this file imports, wherever the import is (TYPE_CHECKING too)."""
    found = set()
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("rpilinkd")}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(
                    package.split(".")[: len(package.split(".")) - node.level + 1]
                    + ([base] if base else [])
                )
            if base.startswith("rpilinkd"):
                found |= {f"{base}.{a.name}" for a in node.names} | {base}
    return found


def graph() -> dict[str, set[str]]:
    mods = modules()
    return {
        name: {m for m in imports_of(path, name) if m in mods and m != name}
        for name, path in mods.items()
    }


def test_every_part_of_the_package_has_a_layer() -> None:
    units = {unit(name) for name in modules()} - {"__init__"}
    assert units <= set(RANK), f"give these a layer in LAYERS: {sorted(units - set(RANK))}"


def test_no_module_imports_a_higher_layer() -> None:
    upward = sorted(
        f"{name} -> {target}"
        for name, targets in graph().items()
        if unit(name) != "__init__"
        for target in targets
        if unit(target) != "__init__" and RANK[unit(target)] > RANK[unit(name)]
    )
    assert not upward, "imports against the layers:\n" + "\n".join(upward)


def test_no_import_cycles() -> None:
    edges = graph()
    state: dict[str, int] = {}  # 1: on the stack, 2: done
    cycles: list[list[str]] = []

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        for target in sorted(edges[node]):
            if state.get(target) == 1:
                cycles.append([*stack[stack.index(target) :], target])
            elif target not in state:
                visit(target, [*stack, target])
        state[node] = 2

    for node in sorted(edges):
        if node not in state:
            visit(node, [node])
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)
