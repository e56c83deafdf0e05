"""How the programs end: one exit-code policy for rpilinkd, rpilink and rpilink-sim."""

from __future__ import annotations

import enum
import sys
from collections.abc import Callable, Sequence

from rpilinkd.errors import ConfigError, RpilinkError, SimError


class ExitCode(enum.IntEnum):
    OK = 0
    FAILED = 1  # it ran, and something failed (a refused request, a port in use)
    BAD_INPUT = 2  # the configuration or the arguments: fix them first (systemd does not retry)
    UNREACHABLE = 3  # the daemon it should talk to is not there
    INTERRUPTED = 130  # Ctrl-C


Hint = tuple[type[BaseException], ExitCode, str]  # a program's own words for an error


def run_main(prog: str, body: Callable[[], int], hints: Sequence[Hint] = ()) -> int:
    """Run ``body``; an expected error becomes one line on stderr and its exit code.

    ``hints`` come first (a message of "" prints the error itself); then
    configuration errors (2), rpilinkd's own errors with their stable code (1)
    and the system's (1). Anything else is a bug and keeps its traceback.
    """
    try:
        return body()
    except KeyboardInterrupt:
        return ExitCode.INTERRUPTED
    except Exception as exc:
        code, text = _classify(exc, hints)
        print(f"{prog}: {text}", file=sys.stderr)
        return code


def _classify(exc: Exception, hints: Sequence[Hint]) -> tuple[ExitCode, str]:
    for kind, code, text in hints:
        if isinstance(exc, kind):
            return code, text or str(exc)
    if isinstance(exc, ConfigError | SimError):
        return ExitCode.BAD_INPUT, exc.message
    if isinstance(exc, RpilinkError):
        return ExitCode.FAILED, f"{exc.code}: {exc.message}"
    if isinstance(exc, OSError):
        return ExitCode.FAILED, str(exc)
    raise exc
