"""Window: a reboot window, "HH:MM" daily or "Day HH:MM" weekly, with a length in Go duration
syntax, evaluated in the process's local time zone (TZ honoured) or in a named IANA zone."""
from __future__ import annotations

import ctypes
import datetime
import math
import time
from typing import NamedTuple, Optional, Tuple, Union

from . import _native
from ._base import Handle, c_int_value, check, copy_string, encode
from ._native import lib

Time = Union[int, float, datetime.datetime]


class Opening(NamedTuple):
    """One opening of a window, in Unix seconds (the closing edge is inside the window)."""
    start: int
    end: int


def unix_seconds(now: Optional[Time]) -> int:
    """now as whole Unix seconds: the current time for None; a naive datetime is local time."""
    if now is None:
        return int(time.time())
    if isinstance(now, datetime.datetime):
        return math.floor(now.timestamp())
    if isinstance(now, float):
        return math.floor(now)
    return c_int_value(now, "now", bits=64)


class Window(Handle):
    """A parsed reboot window: Window("Thu 23:00", "1h30m"), or Window("02:00", "3h",
    zone="Europe/Berlin") to read it in that IANA zone instead of local time. InvalidArgument if it
    does not parse or the zone name is not one; NotFound if there is no such zone."""

    _free = lib.locksmith_window_free
    _kind = "window"

    def __init__(self, start: str, length: str, zone: Optional[str] = None) -> None:
        pointer = _native.WindowP()
        check(lib.locksmith_window_parse(encode(start, "start"), encode(length, "length"), ctypes.byref(pointer)))
        super().__init__(pointer)
        if zone is not None:
            try:
                self.set_zone(zone)
            except BaseException:
                self.close()
                raise

    @classmethod
    def parse(cls, start: str, length: str, zone: Optional[str] = None) -> "Window":
        """The same as Window(start, length, zone)."""
        return cls(start, length, zone)

    def set_zone(self, zone: Optional[str]) -> None:
        """Reads the window in IANA zone `zone` from now on; None or "" for local time."""
        name = None if zone is None else encode(zone, "zone")
        with self._lock:
            check(lib.locksmith_window_set_zone(self._live(), name))

    @property
    def zone(self) -> Optional[str]:
        """The IANA zone the window is read in, or None for local time."""
        with self._lock:
            name = lib.locksmith_window_zone(self._live())
        return None if name is None else name.decode("utf-8")

    def format_time(self, t: Time) -> str:
        """t on the window's clock, for people: "Thu 2026-11-26 23:00 CET"."""
        text = ctypes.c_void_p()
        at = unix_seconds(t)
        with self._lock:
            r = lib.locksmith_window_format_time(self._live(), at, ctypes.byref(text))
        try:
            check(r)
            return copy_string(text)
        finally:
            lib.locksmith_free(text)

    def seconds_to_start(self, now: Optional[Time] = None) -> int:
        """Seconds from now (default: the current time) until the window opens: > 0 before it,
        <= 0 inside it (minus how far in)."""
        seconds = ctypes.c_int64()
        at = unix_seconds(now)
        with self._lock:
            check(lib.locksmith_window_seconds_to_start(self._live(), at, ctypes.byref(seconds)))
        return seconds.value

    def next(self, now: Optional[Time] = None) -> Opening:
        """The opening that contains now (default: the current time), or else the next one."""
        start, end = ctypes.c_int64(), ctypes.c_int64()
        at = unix_seconds(now)
        with self._lock:
            check(lib.locksmith_window_next(self._live(), at, ctypes.byref(start), ctypes.byref(end)))
        return Opening(start.value, end.value)

    def _strings(self) -> Tuple[str, str]:
        start, length = ctypes.c_void_p(), ctypes.c_void_p()
        with self._lock:
            r = lib.locksmith_window_to_string(self._live(), ctypes.byref(start), ctypes.byref(length))
        try:
            check(r)
            return copy_string(start), copy_string(length)
        finally:  # the strings are written only on success; freeing NULL is harmless
            lib.locksmith_free(start)
            lib.locksmith_free(length)

    @property
    def start(self) -> str:
        """The start, normalized: "Thu 23:00" or "02:33"."""
        return self._strings()[0]

    @property
    def length(self) -> str:
        """The length, normalized: "1h30m0s"."""
        return self._strings()[1]

    def __str__(self) -> str:
        """"Thu 23:00 1h30m0s": the start and the length."""
        return "%s %s" % self._strings()

    def __repr__(self) -> str:
        if self.closed:
            return "<locksmith.Window (closed)>"
        zone = self.zone
        return "Window(%r, %r%s)" % (self._strings() + ("" if zone is None else ", zone=%r" % zone,))
