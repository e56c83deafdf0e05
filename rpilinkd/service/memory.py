"""Give memory back: large buffers are mapped, so freeing them returns them to the system.

glibc serves allocations of 128 KiB and more with mmap (given back when freed),
but after the first such block is freed it raises that threshold to the freed
size, so the next 2 MiB request buffer or 1 MiB message comes from the heap and
stays part of the daemon's RSS for good. Fixing the threshold keeps RSS flat
after a burst of large requests (docs/api.md, "Limits"). On a libc without
``mallopt`` nothing changes.

The threshold sits above asyncio's 256 KiB socket reads: each read asks for that much
and keeps what came, and from mmap that cost an mmap, an mremap, a munmap and fresh
pages, 5 to 7 times per 64-byte round trip in each daemon (seen with strace). The
heap's top is given back only past 1 MiB, for the same reason.
"""

from __future__ import annotations

import ctypes
import logging

_LOGGER = logging.getLogger(__name__)
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
MMAP_THRESHOLD_BYTES = 512 * 1024  # above asyncio's reads (256 KiB), below a 1 MiB message
TRIM_THRESHOLD_BYTES = 1024 * 1024


def map_large_buffers() -> bool:
    """Fix glibc's mmap threshold; whether it took effect."""
    try:
        libc = ctypes.CDLL(None)
        done = bool(libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES))
        done = done and bool(libc.mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES))
    except (OSError, AttributeError):
        done = False
    if not done:
        _LOGGER.debug("mallopt unavailable: large buffers may stay in the heap after use")
    return done
