"""``bus.backend = "auto"``: pio on a Raspberry Pi 5 family board, pigpio elsewhere.

Deliberately tiny and on its own, so a shared board detection can replace it.
"""

from __future__ import annotations

from pathlib import Path

MODEL = Path("/proc/device-tree/model")
#: boards with RP1, whose GPIOs pigpio cannot drive
PI5_FAMILY = ("Raspberry Pi 5", "Raspberry Pi 500", "Raspberry Pi Compute Module 5")


def is_pi5_family(model_path: Path = MODEL) -> bool:
    try:
        model = model_path.read_bytes().rstrip(b"\0").decode(errors="replace")
    except OSError:
        return False
    return model.startswith(PI5_FAMILY)


def resolve_backend(name: str, model_path: Path = MODEL) -> str:
    """The backend to use for a configured name (only "auto" is looked up)."""
    if name != "auto":
        return name
    return "pio" if is_pi5_family(model_path) else "pigpio"
