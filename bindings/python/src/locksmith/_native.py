"""Finding and loading liblocksmith.so.1, and the ctypes prototype of every function of
include/locksmith.h (version nodes LOCKSMITH_1 to LOCKSMITH_5). Nothing else in the package
touches ctypes' loader; every call goes through `lib`, whose functions all have argtypes and
restype set from PROTOTYPES."""
from __future__ import annotations

import ctypes
import ctypes.util
import os
from typing import Dict, List, Optional, Tuple

SONAME = "liblocksmith.so.1"
ENVIRONMENT_VARIABLE = "LOCKSMITH_LIBRARY"


class Semaphore(ctypes.Structure):
    """struct locksmith_semaphore (opaque)."""


class Window(ctypes.Structure):
    """struct locksmith_window (opaque)."""


class Config(ctypes.Structure):
    """struct locksmith_config (opaque)."""


class Client(ctypes.Structure):
    """struct locksmith_client (opaque)."""


class Groups(ctypes.Structure):
    """struct locksmith_groups (opaque)."""


class DaemonSettings(ctypes.Structure):
    """struct locksmith_daemon_settings (opaque)."""


class HolderRecords(ctypes.Structure):
    """struct locksmith_holder_records (opaque)."""


# Distinct pointer types for the objects, so that ctypes refuses a window where a semaphore is
# expected instead of handing the library the wrong object. (A const pointer the library
# returns, such as locksmith_groups_semaphore()'s, is the same type: ctypes has no const.)
SemaphoreP = ctypes.POINTER(Semaphore)
WindowP = ctypes.POINTER(Window)
ConfigP = ctypes.POINTER(Config)
ClientP = ctypes.POINTER(Client)
GroupsP = ctypes.POINTER(Groups)
DaemonSettingsP = ctypes.POINTER(DaemonSettings)
HolderRecordsP = ctypes.POINTER(HolderRecords)

c_int = ctypes.c_int
c_int64 = ctypes.c_int64
c_uint64 = ctypes.c_uint64
c_char_p = ctypes.c_char_p  # const char *: ctypes copies a result into bytes at once (borrowed)
c_void_p = ctypes.c_void_p
P = ctypes.POINTER

# char **ret_*: the library malloc()s the string; it arrives as a bare address (c_void_p) so
# that it can be copied and then handed back to locksmith_free().
OwnedStringOut = P(c_void_p)
# const char **ret_*: borrowed, copied into bytes on reading.
BorrowedStringOut = P(c_char_p)

Prototype = Tuple[Optional[type], List[type]]

#: locksmith_trace_function: void (*)(const char *line, void *userdata). The line arrives as
#: bytes (a copy); it is valid only during the call in C.
TraceFunction = ctypes.CFUNCTYPE(None, c_char_p, c_void_p)
ProgressFunction = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_int, c_void_p)

#: LOCKSMITH_NO_ENVIRONMENT, the flag of the LOCKSMITH_2 functions: read nothing from the
#: process environment.
NO_ENVIRONMENT = 1 << 0
#: LOCKSMITH_QUEUE_NEVER_EXPIRES and LOCKSMITH_QUEUE_UNREADABLE: why waiters skip a queue entry
#: (locksmith_holder_records_ignored).
QUEUE_NEVER_EXPIRES = 1
QUEUE_UNREADABLE = 2

# name: (restype, argtypes), in the order of the header.
PROTOTYPES: Dict[str, Prototype] = {
    # The library
    "locksmith_version": (c_char_p, []),
    "locksmith_free": (None, [c_void_p]),
    "locksmith_strv_free": (P(c_void_p), [P(c_void_p)]),
    "locksmith_last_error": (c_char_p, []),
    # Values: durations, backoff, JSON
    "locksmith_duration_parse": (c_int, [c_char_p, P(c_int64)]),
    "locksmith_duration_format": (c_int, [c_int64, OwnedStringOut]),
    "locksmith_backoff_delay": (c_int, [c_int, P(c_int64)]),
    "locksmith_json_quote": (c_int, [c_char_p, OwnedStringOut]),
    "locksmith_time_format": (c_int, [c_int64, c_char_p, c_int, OwnedStringOut]),
    # This node and its groups
    "locksmith_root": (c_int, [OwnedStringOut]),
    "locksmith_root_path": (c_int, [c_char_p, c_char_p, OwnedStringOut]),
    "locksmith_machine_id": (c_int, [OwnedStringOut]),
    "locksmith_machine_id_at": (c_int, [c_char_p, OwnedStringOut]),
    "locksmith_group_key": (c_int, [c_char_p, OwnedStringOut]),
    "locksmith_key_group": (c_int, [c_char_p, OwnedStringOut]),
    "locksmith_fleetlock_group_check": (c_int, [c_char_p]),
    # The semaphore document
    "locksmith_semaphore_new": (c_int, [P(SemaphoreP)]),
    "locksmith_semaphore_parse": (c_int, [c_char_p, P(SemaphoreP)]),
    "locksmith_semaphore_to_json": (c_int, [SemaphoreP, OwnedStringOut]),
    "locksmith_semaphore_lock": (c_int, [SemaphoreP, c_char_p]),
    "locksmith_semaphore_unlock": (c_int, [SemaphoreP, c_char_p]),
    "locksmith_semaphore_set_max": (c_int, [SemaphoreP, c_int, P(c_int)]),
    "locksmith_semaphore_get_available": (c_int, [SemaphoreP, P(c_int)]),
    "locksmith_semaphore_get_max": (c_int, [SemaphoreP, P(c_int)]),
    "locksmith_semaphore_holder_count": (c_int, [SemaphoreP]),
    "locksmith_semaphore_holder": (c_char_p, [SemaphoreP, c_int]),
    "locksmith_semaphore_is_holder": (c_int, [SemaphoreP, c_char_p]),
    "locksmith_semaphore_free": (SemaphoreP, [SemaphoreP]),
    # Reboot windows
    "locksmith_window_parse": (c_int, [c_char_p, c_char_p, P(WindowP)]),
    "locksmith_window_set_zone": (c_int, [WindowP, c_char_p]),
    "locksmith_window_zone": (c_char_p, [WindowP]),
    "locksmith_window_seconds_to_start": (c_int, [WindowP, c_int64, P(c_int64)]),
    "locksmith_window_next": (c_int, [WindowP, c_int64, P(c_int64), P(c_int64)]),
    "locksmith_window_to_string": (c_int, [WindowP, OwnedStringOut, OwnedStringOut]),
    "locksmith_window_format_time": (c_int, [WindowP, c_int64, OwnedStringOut]),
    "locksmith_window_free": (WindowP, [WindowP]),
    # Configuration
    "locksmith_config_load": (c_int, [P(ConfigP)]),
    "locksmith_config_file": (c_char_p, [c_int]),
    "locksmith_config_load_at": (c_int, [c_char_p, c_uint64, P(ConfigP)]),
    "locksmith_config_parse": (c_int, [c_char_p, c_char_p, P(ConfigP)]),
    "locksmith_config_get": (c_int, [ConfigP, c_char_p, BorrowedStringOut, BorrowedStringOut]),
    "locksmith_config_line": (c_int, [ConfigP, c_char_p]),
    "locksmith_config_warning_count": (c_int, [ConfigP]),
    "locksmith_config_warning": (c_char_p, [ConfigP, c_int]),
    "locksmith_config_free": (ConfigP, [ConfigP]),
    # The etcd lock client
    "locksmith_client_new": (c_int, [P(ClientP)]),
    "locksmith_client_new_with_flags": (c_int, [c_uint64, P(ClientP)]),
    "locksmith_client_set": (c_int, [ClientP, c_char_p, c_char_p]),
    "locksmith_client_load_env": (c_int, [ClientP, c_char_p]),
    "locksmith_client_load_settings": (c_int, [ClientP, c_char_p, ConfigP]),
    "locksmith_client_option_name": (c_char_p, [c_int]),
    "locksmith_client_option_help": (c_int, [c_int, BorrowedStringOut, BorrowedStringOut]),
    "locksmith_client_option_variable": (c_int, [c_char_p, c_char_p, OwnedStringOut]),
    "locksmith_client_setting": (c_int, [ClientP, c_int, BorrowedStringOut, BorrowedStringOut]),
    "locksmith_client_environment": (c_int, [ClientP, c_char_p, P(P(c_void_p))]),
    "locksmith_client_warning_count": (c_int, [ClientP]),
    "locksmith_client_warning": (c_char_p, [ClientP, c_int]),
    "locksmith_client_set_deadline": (c_int, [ClientP, c_uint64]),
    "locksmith_client_set_trace": (c_int, [ClientP, TraceFunction, c_void_p]),
    "locksmith_client_prepare": (c_int, [ClientP]),
    "locksmith_client_cancel": (c_int, [ClientP, c_int]),
    "locksmith_client_key": (c_char_p, [ClientP]),
    "locksmith_client_get": (c_int, [ClientP, P(SemaphoreP)]),
    "locksmith_client_read": (c_int, [ClientP, P(SemaphoreP)]),
    "locksmith_client_last_seen": (c_int, [ClientP, P(SemaphoreP)]),
    "locksmith_client_lock": (c_int, [ClientP, c_char_p]),
    "locksmith_client_unlock": (c_int, [ClientP, c_char_p]),
    "locksmith_client_unlock_record": (c_int, [ClientP, c_char_p, c_int64]),
    "locksmith_client_apply": (c_int, [ClientP, c_int, P(c_char_p), P(c_int), P(c_int)]),
    "locksmith_client_set_max": (c_int, [ClientP, c_int, P(c_int)]),
    "locksmith_client_wait": (c_int, [ClientP, c_int64]),
    "locksmith_client_acquire": (c_int, [ClientP, c_char_p, c_int64, ProgressFunction, c_void_p]),
    "locksmith_client_queue": (c_int, [ClientP, P(HolderRecordsP)]),
    "locksmith_client_queue_all": (c_int, [ClientP, P(HolderRecordsP)]),
    "locksmith_client_holder_records": (c_int, [ClientP, P(HolderRecordsP)]),
    "locksmith_client_get_all": (c_int, [ClientP, P(SemaphoreP), P(HolderRecordsP), P(HolderRecordsP)]),
    "locksmith_client_groups": (c_int, [ClientP, P(GroupsP)]),
    "locksmith_client_last_error": (c_char_p, [ClientP]),
    "locksmith_client_last_error_option": (c_char_p, [ClientP]),
    "locksmith_client_api": (c_char_p, [ClientP]),
    "locksmith_client_endpoint": (c_char_p, [ClientP]),
    "locksmith_client_stats": (c_int, [ClientP, P(c_int64), P(c_int64)]),
    "locksmith_client_free": (ClientP, [ClientP]),
    # Groups and their semaphores
    "locksmith_groups_count": (c_int, [GroupsP]),
    "locksmith_groups_name": (c_char_p, [GroupsP, c_int]),
    "locksmith_groups_key": (c_char_p, [GroupsP, c_int]),
    "locksmith_groups_semaphore": (SemaphoreP, [GroupsP, c_int]),  # borrowed: never freed here
    "locksmith_groups_error": (c_char_p, [GroupsP, c_int]),
    "locksmith_groups_free": (GroupsP, [GroupsP]),
    # Holder records and queue entries
    "locksmith_holder_records_count": (c_int, [HolderRecordsP]),
    "locksmith_holder_records_id": (c_char_p, [HolderRecordsP, c_int]),
    "locksmith_holder_records_since": (c_int64, [HolderRecordsP, c_int]),
    "locksmith_holder_records_host": (c_char_p, [HolderRecordsP, c_int]),
    "locksmith_holder_records_key": (c_char_p, [HolderRecordsP, c_int]),
    "locksmith_holder_records_revision": (c_int64, [HolderRecordsP, c_int]),
    "locksmith_holder_records_ignored": (c_int, [HolderRecordsP, c_int]),
    "locksmith_holder_records_free": (HolderRecordsP, [HolderRecordsP]),
    # The daemon's settings
    "locksmith_daemon_settings_load": (c_int, [ConfigP, c_char_p, P(DaemonSettingsP)]),
    "locksmith_daemon_settings_name": (c_char_p, [c_int]),
    "locksmith_daemon_settings_get": (c_int, [DaemonSettingsP, c_char_p, BorrowedStringOut]),
    "locksmith_daemon_settings_warning_count": (c_int, [DaemonSettingsP]),
    "locksmith_daemon_settings_warning": (c_char_p, [DaemonSettingsP, c_int]),
    "locksmith_daemon_settings_window": (WindowP, [DaemonSettingsP]),  # borrowed: never freed here
    "locksmith_daemon_settings_window_source": (c_char_p, [DaemonSettingsP, c_int]),
    "locksmith_daemon_settings_new_client": (c_int, [DaemonSettingsP, c_uint64, P(ClientP)]),
    "locksmith_daemon_settings_strategy": (c_char_p, [DaemonSettingsP]),
    "locksmith_daemon_settings_broadcast_delay": (c_int64, [DaemonSettingsP]),
    "locksmith_daemon_settings_slot_wait": (c_char_p, [DaemonSettingsP]),
    "locksmith_daemon_settings_utmp": (c_char_p, [DaemonSettingsP]),
    "locksmith_daemon_settings_group": (c_char_p, [DaemonSettingsP]),
    "locksmith_daemon_settings_reboot_source": (c_char_p, [DaemonSettingsP]),
    "locksmith_daemon_settings_reboot_source_argument": (c_char_p, [DaemonSettingsP]),
    "locksmith_daemon_settings_reboot_check_interval": (c_int64, [DaemonSettingsP]),
    "locksmith_daemon_settings_hook_timeout": (c_int64, [DaemonSettingsP]),
    "locksmith_daemon_settings_hooks_directory": (c_char_p, [DaemonSettingsP]),
    "locksmith_daemon_settings_metrics_file": (c_char_p, [DaemonSettingsP]),
    "locksmith_daemon_settings_fleetlock_id": (c_char_p, [DaemonSettingsP]),
    "locksmith_daemon_settings_free": (DaemonSettingsP, [DaemonSettingsP]),
    # The reboot-slot record
    "locksmith_slot_record_write": (c_int, [c_char_p, c_char_p, c_char_p]),
    "locksmith_slot_record_read": (c_int, [c_char_p, OwnedStringOut, OwnedStringOut]),
    # locksmithd's files under /run
    "locksmith_daemon_file_read": (c_int, [c_char_p, c_char_p, P(ConfigP), P(c_int64)]),
    "locksmith_daemon_state_text": (c_int, [c_char_p, c_char_p, c_int64, c_char_p, c_char_p, c_int64, OwnedStringOut]),
}

HOW_TO_FIX = ("install liblocksmith (`make install` in locksmith-swift, then `ldconfig`), or set "
              "%s to the path of liblocksmith.so.1" % ENVIRONMENT_VARIABLE)


def _open() -> Tuple[ctypes.CDLL, str]:
    """Loads the library: the path in $LOCKSMITH_LIBRARY if it is set, else the soname through the
    dynamic loader (LD_LIBRARY_PATH, the ld.so cache), else what ctypes.util.find_library finds.
    Only ABI 1 (liblocksmith.so.1) is accepted: these prototypes are that ABI's. A library
    without LOCKSMITH_2's functions is older than this binding (_configure says so)."""
    path = os.environ.get(ENVIRONMENT_VARIABLE, "")
    if path:
        try:
            return ctypes.CDLL(path), path
        except OSError as e:
            raise ImportError("cannot load liblocksmith from %s=%s: %s (point it at liblocksmith.so.1, "
                              "or unset it to use the installed library)" % (ENVIRONMENT_VARIABLE, path, e)) from e
    try:
        return ctypes.CDLL(SONAME), SONAME
    except OSError as first:
        found = ctypes.util.find_library("locksmith")
        if found and os.path.basename(found) == SONAME:
            try:
                return ctypes.CDLL(found), found
            except OSError:
                pass
        elif found:
            raise ImportError("found %s, but this binding needs %s (ABI 1); %s" % (found, SONAME, HOW_TO_FIX)) from first
        raise ImportError("cannot find %s: %s" % (SONAME, HOW_TO_FIX)) from first


def _configure(library: ctypes.CDLL, where: str) -> ctypes.CDLL:
    for name, (restype, argtypes) in PROTOTYPES.items():
        try:
            function = getattr(library, name)
        except AttributeError as e:
            raise ImportError("%s has no function %s: it is older than this binding; %s" % (where, name, HOW_TO_FIX)) from e
        function.restype = restype
        function.argtypes = argtypes
    return library


lib, path = _open()
lib = _configure(lib, path)

