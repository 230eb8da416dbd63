"""Python binding of liblocksmith, the cluster reboot lock of locksmith-swift (over ctypes).

    import locksmith
    with locksmith.Client(endpoints="http://127.0.0.1:2379", group="web") as client:
        client.lock("node-1")           # locksmith.Busy if no slot is free
        with client.status() as semaphore:
            print(semaphore.available, semaphore.max, semaphore.holders)
        client.unlock("node-1")

The library is found through $LOCKSMITH_LIBRARY (a path) if set, else as liblocksmith.so.1
through the dynamic loader. Errors are OSError subclasses (see locksmith.errors)."""
from __future__ import annotations

import ctypes
import os
from typing import Optional, Union

from . import _native
from ._base import c_int_value, check, encode, encode_optional, encode_path, take_string
from ._native import lib
from .client import (QUEUE_NEVER_EXPIRES, QUEUE_UNREADABLE, Client, Group, HolderRecord, Setting, Stats, option_help,
                     option_names)
from .config import Config
from .daemon import DaemonFile, DaemonSettings, SlotRecord, daemon_file, daemon_state_text, record_slot, slot_record
from .errors import (AccessDenied, AlreadyHeld, BadData, Busy, Cancelled, Changed, Contention, CorruptSemaphore,
                     InvalidArgument, LocksmithError, NotFound, NotHeld, OutOfRange, ProtocolError, TimedOut,
                     Unreachable)
from .semaphore import Semaphore
from .window import Opening, Window

__version__ = "0.11.0"

#: The etcd key of the default group's semaphore; other groups live under KEY_PREFIX + "/groups/".
KEY_PREFIX = "coreos.com/updateengine/rebootlock"
DEFAULT_KEY = KEY_PREFIX + "/semaphore"

#: Where the library was loaded from.
library_path: str = _native.path


def version() -> str:
    """The library's version, e.g. "0.11.0"."""
    text: bytes = lib.locksmith_version()
    return text.decode("utf-8")


def duration_parse(text: str) -> int:
    """A Go duration ("1h30m", "300ms", "-2s") in nanoseconds. InvalidArgument if it is not one."""
    nanoseconds = ctypes.c_int64()
    check(lib.locksmith_duration_parse(encode(text, "text"), ctypes.byref(nanoseconds)))
    return nanoseconds.value


def machine_id(root: Optional[Union[str, bytes, "os.PathLike[str]"]] = None) -> str:
    """This machine's id from /etc/machine-id: under root (an absolute directory; $LOCKSMITH_ROOT
    is then not consulted) if given, else under $LOCKSMITH_ROOT if set, else under "/".
    NotFound (a FileNotFoundError) if the file is missing, BadData if it holds no valid id,
    InvalidArgument if root is not absolute."""
    out = ctypes.c_void_p()
    if root is None:
        check(lib.locksmith_machine_id(ctypes.byref(out)))
    else:
        check(lib.locksmith_machine_id_at(encode_path(root, "root"), ctypes.byref(out)))
    return take_string(out)


def group_key(group: Optional[str] = None) -> str:
    """The etcd key of group's semaphore (DEFAULT_KEY for None or "")."""
    out = ctypes.c_void_p()
    check(lib.locksmith_group_key(encode_optional(group, "group"), ctypes.byref(out)))
    return take_string(out)


def key_group(key: str) -> str:
    """The group whose semaphore lives at key: the inverse of group_key() ("" for DEFAULT_KEY).
    InvalidArgument if key is not a semaphore key of the reboot lock."""
    out = ctypes.c_void_p()
    check(lib.locksmith_key_group(encode(key, "key"), ctypes.byref(out)))
    return take_string(out)


def default_root() -> str:
    """The root system paths are read under by default: $LOCKSMITH_ROOT when it is set and not
    empty (never under secure execution), else "/"."""
    out = ctypes.c_void_p()
    check(lib.locksmith_root(ctypes.byref(out)))
    return take_string(out)


def duration_format(nanoseconds: int) -> str:
    """nanoseconds as Go's time.Duration prints them: "1h30m0s", "1.5s", "300ms", "0s"."""
    out = ctypes.c_void_p()
    check(lib.locksmith_duration_format(c_int_value(nanoseconds, "nanoseconds", bits=64), ctypes.byref(out)))
    return take_string(out)


def json_quote(text: Union[str, bytes]) -> str:
    """text as a JSON string, quotes included, escaped as the original's Go encoder escaped it
    (", \\, control characters, and <, >, & as \\u003c, \\u003e, \\u0026): for output that must
    match the original byte for byte. bytes that are not UTF-8 are taken too."""
    out = ctypes.c_void_p()
    check(lib.locksmith_json_quote(encode(text, "text"), ctypes.byref(out)))
    return take_string(out)


def backoff_delay(attempt: int) -> int:
    """Seconds to wait before retry number attempt (0 for the first): 5 doubling to at most 300."""
    seconds = ctypes.c_int64()
    check(lib.locksmith_backoff_delay(c_int_value(attempt, "attempt"), ctypes.byref(seconds)))
    return seconds.value


def fleetlock_group_check(group: str) -> None:
    """Raises InvalidArgument unless group can be named to a FleetLock server: the one rule of
    the FleetLock client and locksmith-fleetlockd (1 to 128 of a-z A-Z 0-9 . -, not . or ..)."""
    check(lib.locksmith_fleetlock_group_check(encode(group, "group")))


__all__ = [
    "AccessDenied", "AlreadyHeld", "BadData", "Busy", "Cancelled", "Changed", "Client", "Config", "Contention",
    "CorruptSemaphore", "DEFAULT_KEY", "DaemonFile", "DaemonSettings", "Group", "HolderRecord", "InvalidArgument", "KEY_PREFIX",
    "LocksmithError", "NotFound", "NotHeld", "Opening", "OutOfRange", "ProtocolError", "Semaphore", "Setting",
    "QUEUE_NEVER_EXPIRES", "QUEUE_UNREADABLE", "SlotRecord", "Stats", "TimedOut", "Unreachable", "Window",
    "backoff_delay", "daemon_file", "daemon_state_text", "default_root", "duration_format", "duration_parse", "fleetlock_group_check", "group_key", "json_quote",
    "key_group", "library_path", "machine_id", "option_help", "option_names", "record_slot", "slot_record", "version",
]
