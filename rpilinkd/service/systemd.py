"""systemd integration: readiness and watchdog notifications, socket activation, journald.

All through systemd-python (``systemd.daemon``, ``systemd.journal``), imported
only when systemd is actually involved, so the daemon runs the same from a
terminal, in tests, and on a box without systemd.
"""

from __future__ import annotations

import logging
import os
import socket
import sys
from typing import Any

_LOGGER = logging.getLogger(__name__)
SOCKET_NAME = "rpilink"  # FileDescriptorName= in rpilinkd.socket


def _daemon_module() -> Any:
    try:
        import systemd.daemon  # noqa: PLC0415 - only when systemd is involved
    except ImportError:
        return None
    return systemd.daemon


class Notifier:
    """sd_notify: READY, STATUS, WATCHDOG, STOPPING, when NOTIFY_SOCKET is set."""

    def __init__(self) -> None:
        self.enabled = bool(os.environ.get("NOTIFY_SOCKET"))
        self._daemon = _daemon_module() if self.enabled else None
        if self.enabled and self._daemon is None:
            _LOGGER.error(
                "NOTIFY_SOCKET is set but systemd-python is missing "
                "(install python3-systemd or rpilinkd[systemd]); not notifying"
            )
            self.enabled = False

    def notify(self, state: str) -> None:
        if not self.enabled:
            return
        try:
            self._daemon.notify(state)  # type: ignore[union-attr]
        except OSError as exc:  # a broken notify socket must not kill the daemon
            _LOGGER.warning("sd_notify(%s) failed: %s", state.split("=", maxsplit=1)[0], exc)

    def ready(self, status: str) -> None:
        self.notify(f"READY=1\nSTATUS={status}")

    def status(self, status: str) -> None:
        self.notify(f"STATUS={status}")

    def watchdog(self) -> None:
        self.notify("WATCHDOG=1")

    def stopping(self) -> None:
        self.notify("STOPPING=1")


def watchdog_interval() -> float | None:
    """Seconds between WATCHDOG=1 pings (half of WatchdogSec), or None."""
    usec = os.environ.get("WATCHDOG_USEC")
    pid = os.environ.get("WATCHDOG_PID")
    if not usec or (pid and pid != str(os.getpid())):
        return None
    try:
        return int(usec) / 2e6
    except ValueError:
        _LOGGER.warning("ignoring WATCHDOG_USEC=%r: not a number", usec)
        return None


def inherited_socket() -> socket.socket | None:
    """The API socket systemd passed (socket activation), if any.

    Only sockets meant for this process count (LISTEN_PID); the LISTEN_*
    variables are removed so children do not inherit them.
    """
    if not os.environ.get("LISTEN_FDS"):
        return None
    daemon = _daemon_module()
    if daemon is None:
        fds = _listen_fds_by_hand()
    else:
        fds = list(daemon.listen_fds_with_names(True).items())
    for name in ("LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES"):
        os.environ.pop(name, None)
    for fd, name in fds:
        if name in (SOCKET_NAME, "unknown", "") or len(fds) == 1:
            _LOGGER.info("serving on the socket systemd passed (fd %d, %s)", fd, name)
            return socket.socket(fileno=fd)
    return None


def _listen_fds_by_hand() -> list[tuple[int, str]]:
    """sd_listen_fds without systemd-python: fds from 3, named by LISTEN_FDNAMES."""
    if os.environ.get("LISTEN_PID") != str(os.getpid()):
        return []
    count = int(os.environ.get("LISTEN_FDS", "0"))
    names = os.environ.get("LISTEN_FDNAMES", "").split(":")
    return [(3 + i, names[i] if i < len(names) else "unknown") for i in range(count)]


def setup_logging(level: str) -> None:
    """journald when systemd started us (JOURNAL_STREAM), stderr otherwise."""
    root = logging.getLogger()
    root.setLevel(level.upper())
    for handler in list(root.handlers):
        root.removeHandler(handler)
    root.addHandler(_journal_handler() or _stderr_handler())


def _journal_handler() -> logging.Handler | None:
    if not os.environ.get("JOURNAL_STREAM"):
        return None
    try:
        from systemd.journal import JournalHandler  # noqa: PLC0415
    except ImportError:
        return None  # stderr still reaches the journal, without levels
    handler: logging.Handler = JournalHandler(SYSLOG_IDENTIFIER="rpilinkd")
    handler.setFormatter(logging.Formatter("%(name)s: %(message)s"))
    return handler


def _stderr_handler() -> logging.Handler:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        logging.Formatter("%(asctime)s rpilinkd %(levelname)s %(name)s: %(message)s")
    )
    return handler
