"""The bus: frames across GPIO wires, through pigpiod (or a virtual bus).

Backends are found by name and imported only when asked for, so a missing
dependency breaks only its own backend. Third-party backends register under
the entry-point group ``rpilinkd.phy``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from rpilinkd.errors import PhyUnavailableError
from rpilinkd.phy.base import PhyBackend, PhyCapabilities, open_with_retry
from rpilinkd.phy.events import ControlsChanged, FrameReceived, PhyEvent

if TYPE_CHECKING:
    from rpilinkd.config import Config

#: name -> (module, class); each class has ``from_config(config, **options)``
BACKENDS: dict[str, tuple[str, str]] = {
    "pigpio": ("rpilinkd.phy.pigpio", "PigpioPhy"),
    "pio": ("rpilinkd.phy.pio.backend", "PioPhy"),  # Raspberry Pi 5 family (RP1)
    "virtual": ("rpilinkd.phy.virtual", "VirtualPhy"),
}


def backend_class(name: str) -> type[PhyBackend]:
    """The backend class registered under ``name``, imported now."""
    if name in BACKENDS:
        module_name, class_name = BACKENDS[name]
        try:
            cls: type[PhyBackend] = getattr(importlib.import_module(module_name), class_name)
        except ImportError as exc:
            raise PhyUnavailableError(f"bus backend {name!r} cannot load: {exc}") from None
        return cls
    from importlib.metadata import entry_points  # noqa: PLC0415 - heavy, and rarely needed

    for entry in entry_points(group="rpilinkd.phy"):
        if entry.name == name:
            loaded: type[PhyBackend] = entry.load()
            return loaded
    known = ", ".join(sorted(BACKENDS))
    raise PhyUnavailableError(f"no bus backend named {name!r} (known: {known})")


def create_backend(name: str, config: Config, **options: Any) -> PhyBackend:
    """A backend built from the daemon's config (not yet open)."""
    return backend_class(name).from_config(config, **options)


__all__ = [
    "BACKENDS",
    "ControlsChanged",
    "FrameReceived",
    "PhyBackend",
    "PhyCapabilities",
    "PhyEvent",
    "backend_class",
    "create_backend",
    "open_with_retry",
]
