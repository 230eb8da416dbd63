"""Client: one group's semaphore in etcd (v2 keys API or v3 JSON gateway), changed with
compare-and-swap, with failover between endpoints and etcd's watch for wait()."""
from __future__ import annotations

import ctypes
import datetime
import errno
import math
import time
from typing import Any, Iterable, NamedTuple, Optional, Union

from . import _native
from ._base import Handle, c_int_value, check, decode, encode, take_string
from ._native import lib
from .errors import InvalidArgument, error_for
from .semaphore import Semaphore

Duration = Union[str, int, float, datetime.timedelta]

# The library waits at most this long per call (it clamps timeout_ms to a C int).
_LONGEST_WAIT_MS = 2**31 - 1
# The latest deadline set_deadline() passes (INT64_MAX microseconds of CLOCK_MONOTONIC: some
# 292,000 years after boot), so that no sum can overflow on either side.
_LATEST_DEADLINE_US = 2**63 - 1


class Stats(NamedTuple):
    """Counters since the client was made (or last reconfigured)."""
    requests: int   # HTTP requests sent
    conflicts: int  # compare-and-swap attempts lost to other writers, and retried


def _go_duration(value: Duration, name: str) -> str:
    """A timeout as the Go duration the library takes: a str as it is, a number as seconds."""
    if isinstance(value, str):
        return value
    if isinstance(value, datetime.timedelta):
        value = value.total_seconds()
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError("%s must be seconds (int or float), a timedelta or a Go duration string, not %s"
                        % (name, type(value).__name__))
    if not math.isfinite(value):
        raise InvalidArgument(errno.EINVAL, "%s is not finite: %r" % (name, value))
    nanoseconds = round(value * 1e9)
    for unit, size in (("s", 10**9), ("ms", 10**6)):  # the shortest exact form, for messages
        if nanoseconds % size == 0:
            return "%d%s" % (nanoseconds // size, unit)
    return "%dns" % nanoseconds


def _holder(id: Optional[str], environment: bool = True) -> bytes:
    """The holder id to send. The machine id is read here rather than by the library (which reads
    it for a NULL id) so that its failures keep their own meaning: ENOENT for a missing
    /etc/machine-id would otherwise read as NotHeld, and EBADMSG as CorruptSemaphore. It is read
    where the library would read it: under $LOCKSMITH_ROOT, or under "/" for a client made
    with environment=False."""
    if id is None:
        out = ctypes.c_void_p()
        if environment:
            check(lib.locksmith_machine_id(ctypes.byref(out)))
        else:
            check(lib.locksmith_machine_id_at(None, ctypes.byref(out)))
        return take_string(out).encode("utf-8")
    return encode(id, "id")


def _seconds(value: Union[int, float, datetime.timedelta], name: str) -> float:
    """A number of seconds from an int, a float or a timedelta; finite."""
    if isinstance(value, datetime.timedelta):
        value = value.total_seconds()
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError("%s must be seconds (int or float), a timedelta or None, not %s" % (name, type(value).__name__))
    if not math.isfinite(value):
        raise InvalidArgument(errno.EINVAL, "%s is not finite: %r" % (name, value))
    return float(value)


class Client(Handle):
    """A client of one group's semaphore in etcd.

        with locksmith.Client(endpoints="http://10.0.0.1:2379", group="web") as c:
            c.lock()            # this machine's id (/etc/machine-id)
            ...
            c.unlock()

    Options (None keeps the library's default):
      endpoints      a URL (http:// or https://), a comma-separated list, or a list of URLs
                     (default http://127.0.0.1:2379 and http://127.0.0.1:4001)
      group          the group ("" or None: the default group)
      api            "v2", "v3" or "auto" (default: v2 if the cluster serves it, else v3)
      cafile, certfile, keyfile   TLS: CA to verify the server, client certificate and key
      username, password, password_file   etcd authentication (password_file: its first line)
      timeout        per request: seconds, a timedelta or a Go duration ("500ms"); default 5 s
      proxy          an http:// or https:// proxy for requests to etcd; "" for none. Unset, the
                     proxy variables of the environment apply (http_proxy, https_proxy,
                     all_proxy, no_proxy), unless environment is False. Loopback endpoints
                     never go through a proxy.
      env_prefix     first take every option from <PREFIX>_<OPTION> in the environment (e.g.
                     "LOCKSMITHCTL": LOCKSMITHCTL_ENDPOINT, LOCKSMITHCTL_ETCD_CAFILE, ...); the
                     arguments above win over it
      environment    False: the client reads nothing from the process environment on its own
                     (locksmith_client_new_with_flags with LOCKSMITH_NO_ENVIRONMENT): no proxy
                     variables, and lock()/unlock() without an id use /etc/machine-id under
                     "/", not under $LOCKSMITH_ROOT. For code that runs with someone else's
                     environment (a PAM module, a setuid helper). env_prefix and load_env() are
                     explicit requests and still read their variables.

    Bad options raise InvalidArgument (a ValueError) naming the option (also for a TLS or
    password file that does not exist); a file that may not be read, AccessDenied. The
    connection is made by the first request.

    Threads: a client belongs to one thread at a time (the library's rule). Each method holds the
    client's lock, so threads that share a client take turns (a wait() blocks the others for its
    whole length); for parallel work give each thread its own Client.

    Close it (close(), or a `with` block) to free it and its connection; garbage collection
    frees it too."""

    _free = lib.locksmith_client_free
    _kind = "client"

    def __init__(self, endpoints: Optional[Union[str, Iterable[str]]] = None, group: Optional[str] = None, *,
                 api: Optional[str] = None, cafile: Optional[str] = None, certfile: Optional[str] = None,
                 keyfile: Optional[str] = None, username: Optional[str] = None, password: Optional[str] = None,
                 password_file: Optional[str] = None, timeout: Optional[Duration] = None,
                 env_prefix: Optional[str] = None, proxy: Optional[str] = None,
                 environment: bool = True) -> None:
        if not isinstance(environment, bool):
            raise TypeError("environment must be True or False, not %r" % (environment,))
        pointer = _native.ClientP()
        if environment:
            r = lib.locksmith_client_new(ctypes.byref(pointer))
        else:
            r = lib.locksmith_client_new_with_flags(_native.NO_ENVIRONMENT, ctypes.byref(pointer))
        if r < 0:
            raise error_for(-r, decode(lib.locksmith_last_error()) or "")
        super().__init__(pointer)
        self._environment = environment
        try:
            if env_prefix is not None:
                self.load_env(env_prefix)
            if endpoints is not None:
                urls = [endpoints] if isinstance(endpoints, (str, bytes)) else list(endpoints)
                if not urls:
                    raise InvalidArgument(errno.EINVAL, "endpoints is empty")
                self.set_option("endpoint", "")  # drop the defaults and any from the environment
                for url in urls:
                    self.set_option("endpoint", url)
            options = [("group", group), ("etcd-api", api), ("etcd-cafile", cafile),
                       ("etcd-certfile", certfile), ("etcd-keyfile", keyfile),
                       ("etcd-username", username), ("etcd-password", password),
                       ("etcd-password-file", password_file),
                       ("timeout", None if timeout is None else _go_duration(timeout, "timeout")),
                       ("proxy", proxy)]
            for option, value in options:
                if value is not None:
                    self.set_option(option, value)
        except BaseException:
            self.close()
            raise

    def _check(self, pointer: Any, r: int) -> int:
        """r, or the exception for it with the client's message. Call with the lock held."""
        if r < 0:
            raise error_for(-r, decode(lib.locksmith_client_last_error(pointer)) or "", semaphore=True)
        return r

    def set_option(self, option: str, value: str) -> None:
        """Sets one option by the library's name ("endpoint", "group", "etcd-api", "etcd-cafile",
        "timeout", "proxy", ...; see locksmith_client_set in locksmith.h). "endpoint" adds to the
        list."""
        name, data = encode(option, "option"), encode(value, option)
        with self._lock:
            pointer = self._live()
            self._check(pointer, lib.locksmith_client_set(pointer, name, data))

    def load_env(self, prefix: str) -> int:
        """Sets every option whose <prefix>_<OPTION> variable is set and not empty; returns how
        many were set."""
        data = encode(prefix, "prefix")
        with self._lock:
            pointer = self._live()
            return self._check(pointer, lib.locksmith_client_load_env(pointer, data))

    def status(self) -> Semaphore:
        """Reads the group's semaphore, creating the key with a fresh document if it is missing.
        CorruptSemaphore if the stored value is not a semaphore (it is left as it is)."""
        semaphore = _native.SemaphoreP()
        with self._lock:
            pointer = self._live()
            self._check(pointer, lib.locksmith_client_get(pointer, ctypes.byref(semaphore)))
        return Semaphore(semaphore)

    def read(self) -> Optional[Semaphore]:
        """Reads the group's semaphore without ever writing: None if etcd has no value at the key
        (status() would create it). CorruptSemaphore if the stored value is not a semaphore."""
        semaphore = _native.SemaphoreP()
        with self._lock:
            pointer = self._live()
            r = lib.locksmith_client_read(pointer, ctypes.byref(semaphore))
            if r == -errno.ENOENT:
                return None
            self._check(pointer, r)
        return Semaphore(semaphore)

    def set_deadline(self, seconds: Optional[Union[int, float, datetime.timedelta]]) -> None:
        """Ends every request of the client `seconds` from now (None: no deadline, the default).
        Each request's timeout is cut to what is left; once the deadline has passed (at once
        for a negative number), calls raise TimedOut without sending anything. Retries and
        failover stop there too, so the deadline bounds all the work of the calls that follow,
        whatever the servers answer. The clock is time.monotonic() (CLOCK_MONOTONIC)."""
        if seconds is None:
            usec = 0
        else:
            at = time.monotonic() + _seconds(seconds, "seconds")
            # Rounded up, so that the deadline never comes early; 0 would mean none.
            usec = min(_LATEST_DEADLINE_US, max(1, math.ceil(at * 1e6)))
        with self._lock:
            pointer = self._live()
            self._check(pointer, lib.locksmith_client_set_deadline(pointer, usec))

    def lock(self, id: Optional[str] = None) -> None:
        """Takes a slot for id (default: this machine's id, see machine_id()). Busy if no slot is
        free, AlreadyHeld if id holds one already."""
        with self._lock:
            pointer = self._live()
            data = _holder(id, self._environment)
            self._check(pointer, lib.locksmith_client_lock(pointer, data))

    def unlock(self, id: Optional[str] = None) -> None:
        """Gives back id's slot (default: this machine's id, see machine_id()). NotHeld if id holds
        none."""
        with self._lock:
            pointer = self._live()
            data = _holder(id, self._environment)
            self._check(pointer, lib.locksmith_client_unlock(pointer, data))

    def set_max(self, max: int) -> int:
        """Sets the group's maximum number of holders; returns the previous one."""
        old = ctypes.c_int()
        value = c_int_value(max, "max")
        with self._lock:
            pointer = self._live()
            self._check(pointer, lib.locksmith_client_set_max(pointer, value, ctypes.byref(old)))
        return old.value

    def wait(self, timeout: Optional[float] = None) -> bool:
        """Blocks until the semaphore changes after this client's last read or write (or, if it
        made none, after a read made now), or timeout seconds pass (None: no limit). True if it
        changed (read it again with status()), False on timeout. Uses etcd's watch, so a freed
        slot is seen at once."""
        if timeout is not None:
            if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or math.isnan(timeout):
                raise TypeError("timeout must be seconds (int or float) or None, not %r" % (timeout,))
            if timeout < 0:
                raise InvalidArgument(errno.EINVAL, "timeout is negative: %r" % (timeout,))
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._lock:
            pointer = self._live()
            while True:
                if deadline is None:
                    ms = _LONGEST_WAIT_MS
                else:
                    ms = min(_LONGEST_WAIT_MS, max(0, math.ceil((deadline - time.monotonic()) * 1000)))
                if self._check(pointer, lib.locksmith_client_wait(pointer, ms)) == 1:
                    return True
                if deadline is not None and time.monotonic() >= deadline:
                    return False

    @property
    def api(self) -> Optional[str]:
        """The API the client used, "v2" or "v3"; None before its first request."""
        with self._lock:
            return decode(lib.locksmith_client_api(self._live()))

    @property
    def endpoint(self) -> Optional[str]:
        """The endpoint that answered last; None before the first answer."""
        with self._lock:
            return decode(lib.locksmith_client_endpoint(self._live()))

    @property
    def stats(self) -> Stats:
        requests, conflicts = ctypes.c_int64(), ctypes.c_int64()
        with self._lock:
            r = lib.locksmith_client_stats(self._live(), ctypes.byref(requests), ctypes.byref(conflicts))
            if r < 0:
                raise error_for(-r, decode(lib.locksmith_last_error()) or "")
        return Stats(requests.value, conflicts.value)

    def __repr__(self) -> str:
        if self.closed:
            return "<locksmith.Client (closed)>"
        return "<locksmith.Client api=%r endpoint=%r>" % (self.api, self.endpoint)
