"""A precise wake-up for the event loop: Linux's timerfd, or a thread where there is none.

asyncio's own timers end on whole milliseconds (epoll's timeout), far coarser than
pigpiod's. A timerfd is one of the loop's file descriptors: the kernel's hrtimer
makes it readable at the instant asked for, and the loop wakes as soon as the
system lets it (0.12 ms at the median on the 2-core VM this was measured on, a
thread 0.2-0.3 ms), with no thread to hand over to and no GIL to wait for.
Python has ``os.timerfd_*`` only from 3.13, so it is reached through ctypes (``timerfd_create`` and
``timerfd_settime`` of glibc, on CLOCK_MONOTONIC: ``time.monotonic``'s clock).
Elsewhere (not Linux, no glibc) a worker thread sleeps instead.
"""

from __future__ import annotations

import abc
import asyncio
import concurrent.futures
import contextlib
import ctypes
import os
import sys
import threading
import time

CLOCK_MONOTONIC = 1
TFD_NONBLOCK = os.O_NONBLOCK
TFD_CLOEXEC = os.O_CLOEXEC
TFD_TIMER_ABSTIME = 1


class _Timespec(ctypes.Structure):
    # time_t is a C long on every Linux ABI glibc's plain timerfd_settime serves
    _fields_ = (("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long))


class _Itimerspec(ctypes.Structure):
    _fields_ = (("it_interval", _Timespec), ("it_value", _Timespec))


class Alarm(abc.ABC):
    """Wait until an instant of ``time.monotonic``, or until :meth:`ring`."""

    @abc.abstractmethod
    def ring(self) -> None:
        """End the current wait now (something came that the waiter must see)."""

    @abc.abstractmethod
    async def wait_until(self, when: float) -> None: ...

    @abc.abstractmethod
    def close(self) -> None:
        """Release what the alarm holds."""


class TimerFdAlarm(Alarm):
    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._rung = asyncio.Event()
        libc = ctypes.CDLL(None, use_errno=True)
        self._settime = libc.timerfd_settime
        self._settime.argtypes = (
            ctypes.c_int,
            ctypes.c_int,
            ctypes.POINTER(_Itimerspec),
            ctypes.c_void_p,
        )
        fd = libc.timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC)
        if fd < 0:
            raise OSError(ctypes.get_errno(), "timerfd_create failed")
        self._fd, self._loop = fd, loop
        loop.add_reader(fd, self._fired)

    def ring(self) -> None:
        self._rung.set()

    def _fired(self) -> None:
        with contextlib.suppress(BlockingIOError):
            os.read(self._fd, 8)  # the expiry count: the fd is no longer readable
        self._rung.set()

    async def wait_until(self, when: float) -> None:
        self._rung.clear()
        seconds = int(when)
        spec = _Itimerspec(_Timespec(0, 0), _Timespec(seconds, int((when - seconds) * 1e9)))
        if self._settime(self._fd, TFD_TIMER_ABSTIME, ctypes.byref(spec), None) < 0:
            raise OSError(ctypes.get_errno(), "timerfd_settime failed")
        await self._rung.wait()

    def close(self) -> None:
        self._loop.remove_reader(self._fd)
        os.close(self._fd)


class ThreadAlarm(Alarm):
    """The fallback: a worker thread sleeps, then hands the wake to the loop."""

    def __init__(self) -> None:
        super().__init__()
        self._thread = concurrent.futures.ThreadPoolExecutor(1, "rpilink-sim alarm")
        self._rang = threading.Event()

    def ring(self) -> None:
        self._rang.set()

    async def wait_until(self, when: float) -> None:
        self._rang.clear()
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._thread, self._rang.wait, max(0.0, when - time.monotonic()))

    def close(self) -> None:
        self._rang.set()
        self._thread.shutdown(wait=False)


def make_alarm(loop: asyncio.AbstractEventLoop, *, prefer_timerfd: bool = True) -> Alarm:
    if prefer_timerfd and sys.platform == "linux":
        with contextlib.suppress(OSError, AttributeError):
            return TimerFdAlarm(loop)
    return ThreadAlarm()
