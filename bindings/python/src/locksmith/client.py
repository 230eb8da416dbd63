"""Client: one group's semaphore in etcd (v2 keys API or v3 JSON gateway), changed with
compare-and-swap, with failover between endpoints and etcd's watch for wait()."""
from __future__ import annotations

import ctypes
import datetime
import errno
import math
import os
import threading
import time
from typing import TYPE_CHECKING, Any, Callable, Dict, Iterable, List, NamedTuple, Optional, Tuple, Union

from . import _native
from ._base import Handle, c_int_value, check, decode, encode, take_string
from ._native import lib
from .errors import InvalidArgument, LocksmithError, error_for
from .semaphore import Semaphore

if TYPE_CHECKING:
    from .config import Config

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


class Setting(NamedTuple):
    """One option of a client as it may be shown (a -debug listing): the value with passwords as
    "(hidden)" and credentials in URLs as "***", and where it came from: "" for a value the
    program set (set_option, the constructor's arguments), else the variable, e.g.
    "LOCKSMITHCTL_GROUP" or "LOCKSMITHD_GROUP in /etc/coreos/update.conf". Both are None when
    the option is not set (its default applies)."""
    name: str
    value: Optional[str]
    origin: Optional[str]


class Group(NamedTuple):
    """One group of a listing (Client.groups()): its name ("" for the default group), its etcd
    key, and its semaphore (a copy the caller owns), or None and the reason in error when the
    stored value is not a semaphore document."""
    name: str
    key: str
    semaphore: Optional[Semaphore]
    error: Optional[str]


class HolderRecord(NamedTuple):
    """When a holder took its slot (Unix seconds) and from which host, as this library's clients
    record it (Client.holder_records()); or a queue entry (Client.queue()). `key` is its etcd key,
    `revision` the etcd revision (v3) or index (v2) it was read at (what Client.unlock_record()
    takes), `ignored` why waiters skip a queue entry (QUEUE_NEVER_EXPIRES, QUEUE_UNREADABLE; 0 for
    a waiter's entry and for holder records)."""
    id: str
    since: int
    host: str
    key: str = ""
    revision: int = 0
    ignored: int = 0


#: Why waiters skip a queue entry (HolderRecord.ignored, Client.queue_all()): it can never expire
#: (v3: no lease; v2: no TTL, or one over 1h), or its value is not a queue entry.
QUEUE_NEVER_EXPIRES = _native.QUEUE_NEVER_EXPIRES
QUEUE_UNREADABLE = _native.QUEUE_UNREADABLE


def _records(listing: Any) -> List[HolderRecord]:
    """The records of a locksmith_holder_records list, which it frees."""
    try:
        return [HolderRecord(decode(lib.locksmith_holder_records_id(listing, i)) or "",
                             int(lib.locksmith_holder_records_since(listing, i)),
                             decode(lib.locksmith_holder_records_host(listing, i)) or "",
                             decode(lib.locksmith_holder_records_key(listing, i)) or "",
                             int(lib.locksmith_holder_records_revision(listing, i)),
                             max(int(lib.locksmith_holder_records_ignored(listing, i)), 0))
                for i in range(check(lib.locksmith_holder_records_count(listing)))]
    finally:
        lib.locksmith_holder_records_free(listing)


def option_names() -> List[str]:
    """The client options by their library names, in the order help texts list them
    ("endpoint", "group", ..., "proxy"): what set_option() takes."""
    names = []
    while True:
        name = lib.locksmith_client_option_name(len(names))
        if name is None:
            return names
        names.append(name.decode("utf-8"))


def option_help() -> Dict[str, Tuple[str, str]]:
    """Each client option's help: {name: (what it takes, e.g. "URL", what it does)}."""
    out = {}
    for i, name in enumerate(option_names()):
        value_name, description = ctypes.c_char_p(), ctypes.c_char_p()
        if lib.locksmith_client_option_help(i, ctypes.byref(value_name), ctypes.byref(description)) == 0:
            out[name] = (value_name.value.decode("utf-8"), description.value.decode("utf-8"))
    return out


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
    whole length); for parallel work give each thread its own Client. The exception is cancel(),
    which any thread may call at any time, also while another thread waits.

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
        self._setup(pointer, environment)
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

    def _setup(self, pointer: Any, environment: bool) -> None:
        super().__init__(pointer)
        self._environment = environment
        # Guards the pointer's life for cancel(), which does not take the client's lock (a
        # wait holds it). Reentrant: a signal handler may run cancel() in the middle of close().
        self._lifetime = threading.RLock()
        # The trace callback the library holds: kept alive as long as the library may call it.
        self._trace: Any = None

    @classmethod
    def _adopt(cls, pointer: Any, environment: bool) -> "Client":
        """A Client owning a locksmith_client the library made (locksmith_daemon_settings_new_client)."""
        client = cls.__new__(cls)
        client._setup(pointer, environment)
        return client

    def _check(self, pointer: Any, r: int) -> int:
        """r, or the exception for it with the client's message and the option at fault. Call
        with the lock held."""
        if r < 0:
            message = decode(lib.locksmith_client_last_error(pointer)) or ""
            option = decode(lib.locksmith_client_last_error_option(pointer))
            raise error_for(-r, message, semaphore=True, option=option)
        return r

    def close(self) -> None:
        """Frees the library object (after a wait in another thread has returned). Closing twice
        is fine."""
        with self._lock:
            with self._lifetime:
                pointer, self._pointer = self._pointer, None
                if pointer:
                    lib.locksmith_client_free(pointer)
            self._trace = None

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

    def unlock_record(self, id: str, revision: int) -> None:
        """Gives back id's slot only if its holder record is still the one read at `revision`
        (HolderRecord.revision from holder_records()): a holder that gave its slot back and took
        one again since keeps the new one (Changed). NotHeld if id holds no slot."""
        with self._lock:
            pointer = self._live()
            self._check(pointer, lib.locksmith_client_unlock_record(pointer, encode(id, "id"), c_int_value(revision, "revision", 64)))

    def apply(self, changes: List[Tuple[str, bool]]) -> List[Optional[LocksmithError]]:
        """Takes (True) and gives back (False) slots for several holders in one write of the
        semaphore: [(id, take), ...] (1 to 1024). Each change is applied in order to the document
        as the ones before it left it; the result for each is None if it was made, or the error it
        alone would have raised (Busy, AlreadyHeld, NotHeld, InvalidArgument). The document is
        written once if any change was made, not at all if none was. Errors of the whole batch
        (etcd unreachable, a corrupt semaphore) are raised."""
        n = len(changes)
        if not 1 <= n <= 1024:
            raise error_for(errno.EINVAL, "apply takes 1 to 1024 changes, got %d" % n, semaphore=True)
        holders = (ctypes.c_char_p * n)(*[encode(holder, "id") for holder, _ in changes])
        give_back = (ctypes.c_int * n)(*[0 if take else 1 for _, take in changes])
        results = (ctypes.c_int * n)()
        with self._lock:
            pointer = self._live()
            self._check(pointer, lib.locksmith_client_apply(pointer, n, holders, give_back, results))
        return [None if r == 0 else error_for(-r, os.strerror(-r), semaphore=True) for r in results]

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

    def load_settings(self, prefix: str, config: Optional["Config"] = None) -> int:
        """Resolves every option this program has not set itself (set_option, the constructor's
        arguments) the way every locksmith program does: from the variable <prefix>_<OPTION> of
        the environment (e.g. prefix "LOCKSMITHCTL": LOCKSMITHCTL_GROUP; not for a client made
        with environment=False), else from the daemon's setting LOCKSMITHD_<OPTION> in config
        (a Config: the update.conf files, and the environment if it was loaded with it), so
        that on a node the program looks at the semaphore its daemon uses. Returns how many
        options were set from there. A bad value raises InvalidArgument naming the variable and
        where it came from (.option names the option); a prefix that is not an upper-case
        variable prefix, InvalidArgument."""
        data = encode(prefix, "prefix")
        if config is None:
            with self._lock:
                pointer = self._live()
                return self._check(pointer, lib.locksmith_client_load_settings(pointer, data, None))
        from .config import Config
        if not isinstance(config, Config):
            raise TypeError("config must be a locksmith.Config or None, not %s" % type(config).__name__)
        with config._lock:
            conf = config._live()
            with self._lock:
                pointer = self._live()
                return self._check(pointer, lib.locksmith_client_load_settings(pointer, data, conf))

    def settings(self) -> List[Setting]:
        """Every option (in option_names() order) as the client has it, for a -debug listing:
        Setting(name, value, origin), value and origin None for an option that is not set.
        Passwords never appear: "(hidden)"."""
        out = []
        value, origin = ctypes.c_char_p(), ctypes.c_char_p()
        with self._lock:
            pointer = self._live()
            for i, name in enumerate(option_names()):
                r = lib.locksmith_client_setting(pointer, i, ctypes.byref(value), ctypes.byref(origin))
                if r == -errno.ENOENT:
                    out.append(Setting(name, None, None))
                    continue
                check(r)
                out.append(Setting(name, decode(value.value) or "", decode(origin.value) or ""))
        return out

    def environment(self, prefix: str = "LOCKSMITHCTL") -> List[str]:
        """The options set, as the environment of a program that is to use the same ones:
        "PREFIX_OPTION=value" strings with the real values (a password file rather than the
        password read from it), for a child such as a hook's locksmithctl."""
        strv = ctypes.POINTER(ctypes.c_void_p)()
        with self._lock:
            pointer = self._live()
            n = self._check(pointer, lib.locksmith_client_environment(pointer, prefix.encode(), ctypes.byref(strv)))
        try:
            return [decode(ctypes.string_at(strv[i])) for i in range(n)]
        finally:
            lib.locksmith_strv_free(strv)

    @property
    def warnings(self) -> List[str]:
        """What the program should tell its user about the client's settings (a password file
        every user can read, a password in a world-readable update.conf). The library never logs."""
        with self._lock:
            pointer = self._live()
            count = check(lib.locksmith_client_warning_count(pointer))
            texts = [lib.locksmith_client_warning(pointer, i) for i in range(count)]
        return [t.decode("utf-8") for t in texts if t is not None]

    @property
    def key(self) -> str:
        """The etcd key of the client's group's semaphore."""
        with self._lock:
            key = lib.locksmith_client_key(self._live())
        if key is None:
            raise InvalidArgument(errno.EINVAL, "the client's group has no valid key")
        return key.decode("utf-8")

    def set_trace(self, function: Optional[Callable[[str], Any]]) -> None:
        """Calls function(line) once per HTTP request of the client, with the method, URL, status
        or error and the time taken (never a password), on the thread making the request (which
        holds the client: the function must not call the client). None turns tracing off.
        An exception in function is reported through sys.unraisablehook and otherwise ignored."""
        if function is not None and not callable(function):
            raise TypeError("the trace function must be callable or None, not %s" % type(function).__name__)
        callback: Any = _native.TraceFunction()  # NULL: ctypes takes no None for a function pointer
        if function is not None:
            def call(line: Optional[bytes], userdata: Any) -> None:
                function("" if line is None else line.decode("utf-8", "replace"))
            callback = _native.TraceFunction(call)
        with self._lock:
            pointer = self._live()
            self._check(pointer, lib.locksmith_client_set_trace(pointer, callback, None))
            # Replaced only once the library has let go of the previous one.
            self._trace = callback if function is not None else None

    def prepare(self) -> None:
        """Makes the client ready now, as its first request would, without sending anything:
        loads libcurl and applies the options. Raises what the first request would have (a
        LocksmithError with errno ELIBACC if libcurl cannot be loaded, naming the reason)."""
        with self._lock:
            pointer = self._live()
            self._check(pointer, lib.locksmith_client_prepare(pointer))

    def cancel(self, cancel: bool = True) -> None:
        """cancel(): a wait() in progress in another thread raises Cancelled within about a
        second, and every later call raises Cancelled before sending anything; cancel(False)
        makes the client usable again. Thread-safe: any thread may call it at any time (it does
        not wait for the client's lock, which a waiting thread holds). A request other than a
        wait runs to its answer or timeout. (A Python signal handler runs in the main thread
        only between bytecodes, so it can cancel a wait of another thread, not one of its own.)"""
        if not isinstance(cancel, bool):
            raise TypeError("cancel must be True or False, not %r" % (cancel,))
        with self._lifetime:
            pointer = self._pointer
            if not pointer:
                raise ValueError("I/O operation on a closed client")
            r = lib.locksmith_client_cancel(pointer, 1 if cancel else 0)
        if r < 0:
            raise error_for(-r, decode(lib.locksmith_last_error()) or "")

    def last_seen(self) -> Optional[Semaphore]:
        """The newest semaphore the client has seen (its last read, write, refused change or
        watch event), without asking etcd; None if it has seen none. CorruptSemaphore if what it
        saw is not a semaphore document."""
        semaphore = _native.SemaphoreP()
        with self._lock:
            pointer = self._live()
            r = lib.locksmith_client_last_seen(pointer, ctypes.byref(semaphore))
            if r == -errno.ENOENT:
                return None
            self._check(pointer, r)
        return Semaphore(semaphore)

    def groups(self) -> List[Group]:
        """Every group that has a semaphore in etcd, sorted by name (the default group, "",
        first), each with a copy of its document or, for a stored value that is not one, the
        reason. Creates nothing; one request."""
        listing = _native.GroupsP()
        with self._lock:
            pointer = self._live()
            self._check(pointer, lib.locksmith_client_groups(pointer, ctypes.byref(listing)))
        try:
            out = []
            for i in range(check(lib.locksmith_groups_count(listing))):
                name = decode(lib.locksmith_groups_name(listing, i)) or ""
                key = decode(lib.locksmith_groups_key(listing, i)) or ""
                borrowed = lib.locksmith_groups_semaphore(listing, i)
                semaphore = None
                if borrowed:
                    # A copy of our own: the borrowed one dies with the listing.
                    json = ctypes.c_void_p()
                    check(lib.locksmith_semaphore_to_json(borrowed, ctypes.byref(json)), semaphore=True)
                    semaphore = Semaphore.parse(take_string(json))
                out.append(Group(name, key, semaphore, decode(lib.locksmith_groups_error(listing, i))))
            return out
        finally:
            lib.locksmith_groups_free(listing)

    def acquire(self, holder: str, timeout: Optional[float] = None,
                progress: Optional[Callable[[int], Any]] = None) -> bool:
        """Waits in the group's queue and takes a slot for holder when its turn comes: waiters get
        their slots in the order they joined, and a release wakes one waiter, not all. progress
        hears the number of waiters ahead each time it changes, and 0 before each attempt to
        take a slot; if it returns False (exactly), the slot is declined and the wait ends. timeout in
        seconds (None: no limit). True once the slot is taken, False when the timeout passed
        first or progress declined. cancel() from another thread ends the wait (Cancelled).
        AlreadyHeld if holder holds a slot already."""
        if timeout is not None:
            if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or math.isnan(timeout):
                raise TypeError("timeout must be seconds (int or float) or None, not %r" % (timeout,))
            if timeout < 0:
                raise InvalidArgument(errno.EINVAL, "timeout is negative: %r" % (timeout,))
        ms = -1 if timeout is None else min(math.ceil(timeout * 1000), 2**31 - 1)
        callback = _native.ProgressFunction(lambda ahead, _: 1 if progress(ahead) is False else 0) if progress else _native.ProgressFunction()
        name = encode(holder, "holder")
        with self._lock:
            pointer = self._live()
            return self._check(pointer, lib.locksmith_client_acquire(pointer, name, ms, callback, None)) == 0

    def queue(self) -> List[HolderRecord]:
        """The waiters of the group's queue, first in line first: the id each waits for, when it
        joined (Unix seconds) and from which host. Creates nothing; one request."""
        return self._records(lib.locksmith_client_queue)

    def queue_all(self) -> List[HolderRecord]:
        """Every entry of the group's queue, first in line first: the waiters, and the entries
        they skip (HolderRecord.ignored: QUEUE_NEVER_EXPIRES or QUEUE_UNREADABLE, whose id is "").
        Creates nothing; one request."""
        return self._records(lib.locksmith_client_queue_all)

    def holder_records(self) -> List[HolderRecord]:
        """When each holder of the group took its slot and from which host, sorted by id. Only
        this library's clients record it (a holder that locked with the original has none), and
        a record may outlive a slot the original gave back: match them against the holders.
        Creates nothing; one request."""
        return self._records(lib.locksmith_client_holder_records)

    def get_all(self) -> Tuple[Semaphore, List[HolderRecord], List[HolderRecord]]:
        """The semaphore (created if missing, as status()), holder_records() and queue_all(),
        read together: one request (one transaction) over etcd v3, three over v2."""
        semaphore, records, queue = _native.SemaphoreP(), _native.HolderRecordsP(), _native.HolderRecordsP()
        with self._lock:
            pointer = self._live()
            self._check(pointer, lib.locksmith_client_get_all(pointer, ctypes.byref(semaphore), ctypes.byref(records),
                                                              ctypes.byref(queue)))
        return Semaphore(semaphore), _records(records), _records(queue)

    def _records(self, function: Any) -> List[HolderRecord]:
        """The list a locksmith_client_* function that fills a locksmith_holder_records makes."""
        listing = _native.HolderRecordsP()
        with self._lock:
            pointer = self._live()
            self._check(pointer, function(pointer, ctypes.byref(listing)))
        return _records(listing)

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
