"""The ``pio`` bus backend: RP1's PIO on the Raspberry Pi 5 family (docs/bus.md).

This package's ``__init__`` imports nothing: the programs and the assembler are
pure and shared with the emulator (``rpilinkd.sim``); the backend itself, with its
kernel and gpiod code, is imported only through the registry in ``rpilinkd.phy``.
"""
