"""What locksmithd reads from its configuration (DaemonSettings), the reboot-slot record it
keeps in /var/lib/locksmith/reboot-slot (slot_record, record_slot), and the files it keeps under
/run while it runs (daemon_file, daemon_state_text)."""
from __future__ import annotations

import ctypes
import errno
import os
from typing import List, NamedTuple, Optional, Tuple, Union

from . import _native
from ._base import Handle, c_int_value, check, copy_string, decode, encode, encode_optional, encode_path, take_string
from ._native import lib
from .client import Client
from .config import Config
from .window import Window

Root = Optional[Union[str, bytes, "os.PathLike[str]"]]


class DaemonSettings(Handle):
    """The daemon's settings from a Config, checked as locksmithd checks them:

        settings = locksmith.DaemonSettings(locksmith.Config.load())
        settings.strategy           # "etcd-lock", "reboot" (the default) or "off"
        settings.window             # a Window, or None
        with settings.client() as client:   # the daemon's group and etcd settings
            ...

    root is the directory system paths (utmp) are read under: an absolute path; None is "/"
    (as in the C API: pass locksmith.default_root() to follow $LOCKSMITH_ROOT). A bad or
    half-set value raises InvalidArgument naming the variable and the file it came from.
    "best-effort" is read as "etcd-lock", with a warning in .warnings."""

    _free = lib.locksmith_daemon_settings_free
    _kind = "daemon settings"

    def __init__(self, config: Config, root: Root = None) -> None:
        if not isinstance(config, Config):
            raise TypeError("config must be a locksmith.Config, not %s" % type(config).__name__)
        data = encode_path(root, "root")
        pointer = _native.DaemonSettingsP()
        with config._lock:
            check(lib.locksmith_daemon_settings_load(config._live(), data, ctypes.byref(pointer)))
        super().__init__(pointer)

    def _text(self, function) -> str:  # type: ignore[no-untyped-def]
        with self._lock:
            return decode(function(self._live())) or ""

    def get(self, name: str) -> Optional[str]:
        """Setting name (one of DaemonSettings.names()) as text, as locksmith_daemon_settings_get
        gives it (durations as Go durations); None when it is not set."""
        value = ctypes.c_char_p()
        with self._lock:
            r = lib.locksmith_daemon_settings_get(self._live(), encode(name, "name"), ctypes.byref(value))
            if r == -errno.ENOENT:
                return None
            check(r)
            return decode(value.value)

    @staticmethod
    def names() -> List[str]:
        """The names get() takes, in the library's order."""
        names: List[str] = []
        while True:
            name = lib.locksmith_daemon_settings_name(len(names))
            if name is None:
                return names
            names.append(name.decode("utf-8"))

    @property
    def strategy(self) -> str:
        """REBOOT_STRATEGY: "etcd-lock", "reboot" or "off"."""
        return self._text(lib.locksmith_daemon_settings_strategy)

    @property
    def window(self) -> Optional[Window]:
        """The reboot window (a Window of its own, in LOCKSMITHD_REBOOT_WINDOW_TZ's zone if that
        is set), or None when none is set."""
        with self._lock:
            borrowed = lib.locksmith_daemon_settings_window(self._live())
            if not borrowed:
                return None
            start, length = ctypes.c_void_p(), ctypes.c_void_p()
            r = lib.locksmith_window_to_string(borrowed, ctypes.byref(start), ctypes.byref(length))
            zone = lib.locksmith_window_zone(borrowed)
        try:
            check(r)
            texts = copy_string(start), copy_string(length)
        finally:
            lib.locksmith_free(start)
            lib.locksmith_free(length)
        return Window(*texts, zone=None if zone is None else zone.decode("utf-8"))

    @property
    def window_zone_source(self) -> Optional[str]:
        """The setting the window's time zone came from ('LOCKSMITHD_REBOOT_WINDOW_TZ="Europe/Berlin"
        (from ...)'), or None when the window is in local time or there is none."""
        with self._lock:
            text = lib.locksmith_daemon_settings_window_source(self._live(), 2)
        return None if text is None else text.decode("utf-8")

    @property
    def window_sources(self) -> Optional[Tuple[str, str]]:
        """The settings the window's start and length came from, as people read them:
        ('LOCKSMITHD_REBOOT_WINDOW_START="Thu 23:00" (from /etc/coreos/update.conf)', ...);
        None when no window is set."""
        with self._lock:
            pointer = self._live()
            start = lib.locksmith_daemon_settings_window_source(pointer, 0)
            length = lib.locksmith_daemon_settings_window_source(pointer, 1)
        if start is None or length is None:
            return None
        return start.decode("utf-8"), length.decode("utf-8")

    @property
    def broadcast_delay(self) -> int:
        """How long users are warned before a reboot, in nanoseconds (default 5 minutes)."""
        with self._lock:
            return int(lib.locksmith_daemon_settings_broadcast_delay(self._live()))

    @property
    def slot_wait(self) -> str:
        """How the daemon waits for a slot: "watch" (etcd's watch) or "poll"."""
        return self._text(lib.locksmith_daemon_settings_slot_wait)

    @property
    def utmp(self) -> str:
        """The utmp file of logged-in users, under the root."""
        return self._text(lib.locksmith_daemon_settings_utmp)

    @property
    def group(self) -> str:
        """LOCKSMITHD_GROUP ("" for the default group)."""
        return self._text(lib.locksmith_daemon_settings_group)

    @property
    def reboot_source(self) -> str:
        """Where "reboot needed" comes from: "auto", "update-engine", "file" or "command"."""
        return self._text(lib.locksmith_daemon_settings_reboot_source)

    @property
    def reboot_source_argument(self) -> str:
        """The sentinel file under the root (auto, file), the command line (command), or ""."""
        return self._text(lib.locksmith_daemon_settings_reboot_source_argument)

    @property
    def reboot_check_interval(self) -> int:
        """How often a command source runs, in nanoseconds (default 1 hour)."""
        with self._lock:
            return int(lib.locksmith_daemon_settings_reboot_check_interval(self._live()))

    @property
    def hook_timeout(self) -> int:
        """How long one hook may run, in nanoseconds (default 10 minutes)."""
        with self._lock:
            return int(lib.locksmith_daemon_settings_hook_timeout(self._live()))

    @property
    def hooks_directory(self) -> str:
        """The directory of pre-lock.d, pre-reboot.d and post-reboot.d (/etc/locksmith under the root)."""
        return self._text(lib.locksmith_daemon_settings_hooks_directory)

    @property
    def metrics_file(self) -> Optional[str]:
        """The Prometheus text file the daemon keeps, or None."""
        with self._lock:
            text = lib.locksmith_daemon_settings_metrics_file(self._live())
        return None if text is None else text.decode("utf-8")

    @property
    def fleetlock_id(self) -> Optional[str]:
        """With REBOOT_STRATEGY=fleetlock, LOCKSMITHD_FLEETLOCK_ID if set (the id slots are taken
        under); None otherwise (the machine id is used)."""
        with self._lock:
            text = lib.locksmith_daemon_settings_fleetlock_id(self._live())
        return None if text is None else text.decode("utf-8")

    @property
    def warnings(self) -> List[str]:
        """A deprecated strategy, a password in a file every user can read, skipped lines of
        update.conf: what the daemon tells its administrator."""
        with self._lock:
            pointer = self._live()
            count = check(lib.locksmith_daemon_settings_warning_count(pointer))
            texts = [lib.locksmith_daemon_settings_warning(pointer, i) for i in range(count)]
        return [t.decode("utf-8") for t in texts if t is not None]

    def client(self, environment: bool = True) -> Client:
        """A new Client with the daemon's etcd settings (LOCKSMITHD_ENDPOINT, _GROUP, ...);
        environment=False as for Client(environment=False)."""
        if not isinstance(environment, bool):
            raise TypeError("environment must be True or False, not %r" % (environment,))
        pointer = _native.ClientP()
        flags = 0 if environment else _native.NO_ENVIRONMENT
        with self._lock:
            check(lib.locksmith_daemon_settings_new_client(self._live(), flags, ctypes.byref(pointer)))
        return Client._adopt(pointer, environment)

    def __repr__(self) -> str:
        if self.closed:
            return "<locksmith.DaemonSettings (closed)>"
        return "<locksmith.DaemonSettings strategy=%r group=%r>" % (self.strategy, self.group)


class SlotRecord(NamedTuple):
    """The reboot-slot record: the slot (key, id) this machine's daemon took and has not given
    back, or key and id None when it holds none."""
    key: Optional[str]
    id: Optional[str]

    @property
    def held(self) -> bool:
        return self.key is not None


def slot_record(root: Root = None) -> Optional[SlotRecord]:
    """Reads /var/lib/locksmith/reboot-slot under root (an absolute directory; None is "/"):
    SlotRecord(key, id) when a slot is recorded as held, SlotRecord(None, None) when none is,
    None when there is no record (the daemon never ran here). BadData if the file is not a
    record (a symbolic link in its place is never followed)."""
    key, id = ctypes.c_void_p(), ctypes.c_void_p()
    r = lib.locksmith_slot_record_read(encode_path(root, "root"), ctypes.byref(key), ctypes.byref(id))
    if r == -errno.ENOENT:
        return None
    check(r)
    if r == 0:
        return SlotRecord(None, None)
    return SlotRecord(take_string(key), take_string(id))


def record_slot(key: Optional[str], id: Optional[str], root: Root = None) -> None:
    """Records that id holds a slot of the semaphore at key (an etcd key, as group_key()
    makes), or with key and id None that no slot is held, in /var/lib/locksmith/reboot-slot under
    root (an absolute directory; None is "/"). Written atomically, never through a symbolic
    link. InvalidArgument for a bad key or id, or only one of the two."""
    check(lib.locksmith_slot_record_write(encode_path(root, "root"), encode_optional(key, "key"),
                                          encode_optional(id, "id")))


#: The files a running locksmithd keeps under /run (locksmith.h's LOCKSMITH_*_PATH).
COORDINATOR_PATH = "/run/update-engine/coordinator.conf"
STATE_PATH = "/run/locksmith/state"


class DaemonFile(NamedTuple):
    """One of locksmithd's files under /run: its values, whether a running daemon holds it
    (True), it is left over from one that stopped (False) or that cannot be told (None), and when
    it was last replaced (Unix seconds)."""
    values: Config
    running: Optional[bool]
    modified: int


def daemon_file(path: str = STATE_PATH, root: Root = None) -> Optional[DaemonFile]:
    """Reads path (STATE_PATH or COORDINATOR_PATH) under root (an absolute directory; None is
    "/") with the library's checks: None when there is no file; AccessDenied for a symbolic link
    or a file others could have written; BadData if it is not text."""
    pointer = _native.ConfigP()
    modified = ctypes.c_int64()
    r = lib.locksmith_daemon_file_read(encode_path(root, "root"), encode_path(path, "path"), ctypes.byref(pointer),
                                       ctypes.byref(modified))
    if r == -errno.ENOENT:
        return None
    check(r)
    return DaemonFile(Config(pointer), None if r == 2 else r == 1, modified.value)


def daemon_state_text(strategy: str, state: str, state_since: int, slot: Optional[Tuple[str, str]] = None,
                      slot_since: Optional[int] = None) -> str:
    """The text of the state file as locksmithd writes it; slot is (key, id) of the slot held."""
    key, id = slot if slot is not None else (None, None)
    text = ctypes.c_void_p()
    check(lib.locksmith_daemon_state_text(encode(strategy, "strategy"), encode(state, "state"),
                                          c_int_value(state_since, "state_since", 64), encode_optional(key, "key"),
                                          encode_optional(id, "id"),
                                          -1 if slot_since is None else c_int_value(slot_since, "slot_since", 64),
                                          ctypes.byref(text)))
    return take_string(text)
