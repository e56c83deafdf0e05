"""Where the source tree is, for tests that run its scripts (processes: rpilinkd.testbed)."""

from __future__ import annotations

from rpilinkd.testbed.processes import SOURCE_ROOT

REPO = SOURCE_ROOT
