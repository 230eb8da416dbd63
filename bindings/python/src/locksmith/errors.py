"""The exceptions of the binding. Every failure of the library is a LocksmithError, an OSError
whose errno is the library's (positive) errno and whose strerror is the library's message (from
locksmith_client_last_error() for client calls, locksmith_last_error() otherwise).

The errno picks the subclass. Where a builtin exception means the same thing the subclass
inherits it too, so code that knows nothing of locksmith still catches what it expects:

    errno         class               also a
    EINVAL        InvalidArgument     ValueError
    EBUSY         Busy                -
    EEXIST        AlreadyHeld         -
    ENOENT        NotHeld             -                  (lock/unlock: not a holder)
    ENOENT        NotFound            FileNotFoundError  (elsewhere: /etc/machine-id missing)
    EBADMSG       CorruptSemaphore    -                  (a stored value that is not a semaphore)
    EBADMSG       BadData             -                  (elsewhere: a machine id or file that is not valid)
    ERANGE        OutOfRange          OverflowError
    ETIMEDOUT     TimedOut            TimeoutError
    ECONNREFUSED  Unreachable         ConnectionRefusedError
    EACCES/EPERM  AccessDenied        PermissionError
    EAGAIN        Contention          -
    EPROTO        ProtocolError       -
    ECANCELED     Cancelled           -                  (the client was cancelled: Client.cancel())
    ESTALE        Changed             -                  (Client.unlock_record: the record read is gone)
    other         LocksmithError      -

CorruptSemaphore is a BadData, so `except BadData` catches both. A client's failure caused by one
of its options (a bad value given to set_option() or found by load_settings()) names the option
in .option ("etcd-api", "timeout", ...); it is None otherwise."""
from __future__ import annotations

import errno as _errno
import os
from typing import Dict, Optional, Type


class LocksmithError(OSError):
    """A failure reported by liblocksmith: .errno is the errno, .strerror the library's message,
    .option the client option whose value caused it (locksmith_client_last_error_option), or
    None."""

    option: Optional[str] = None


class InvalidArgument(LocksmithError, ValueError):
    """EINVAL: a bad argument (out of range, malformed, not valid UTF-8, too long, a NUL inside)."""


class Busy(LocksmithError):
    """EBUSY: the semaphore has no free slot."""


class AlreadyHeld(LocksmithError):
    """EEXIST: the holder already holds a slot."""


class NotHeld(LocksmithError):
    """ENOENT from unlock: the holder holds no slot."""


class NotFound(LocksmithError, FileNotFoundError):
    """ENOENT elsewhere: a file that does not exist (/etc/machine-id)."""


class BadData(LocksmithError):
    """EBADMSG: data that does not have the form it must have."""


class CorruptSemaphore(BadData):
    """EBADMSG from the semaphore and client functions: the stored value is not a semaphore
    document. The client never overwrites it."""


class OutOfRange(LocksmithError, OverflowError):
    """ERANGE: a count that would not fit a C int, or a time outside the years 1 to 9999."""


class TimedOut(LocksmithError, TimeoutError):
    """ETIMEDOUT: every etcd endpoint timed out."""


class Unreachable(LocksmithError, ConnectionRefusedError):
    """ECONNREFUSED: no etcd endpoint could be reached (the message names each and why)."""


class AccessDenied(LocksmithError, PermissionError):
    """EACCES: etcd refused the credentials, or a file cannot be read."""


class Contention(LocksmithError):
    """EAGAIN: compare-and-swap lost to other writers too many times."""


class ProtocolError(LocksmithError):
    """EPROTO: etcd answered something its protocol does not allow."""


class Cancelled(LocksmithError):
    """ECANCELED: the client was cancelled (Client.cancel()), during a wait or before the call."""


class Changed(LocksmithError):
    """ESTALE: Client.unlock_record() found another record than the one read: the holder gave its
    slot back, and perhaps took one again, since. Nothing was given back."""


_BY_ERRNO: Dict[int, Type[LocksmithError]] = {
    _errno.EINVAL: InvalidArgument,
    _errno.EBUSY: Busy,
    _errno.EEXIST: AlreadyHeld,
    _errno.ENOENT: NotFound,
    _errno.EBADMSG: BadData,
    _errno.ERANGE: OutOfRange,
    _errno.ETIMEDOUT: TimedOut,
    _errno.ECONNREFUSED: Unreachable,
    _errno.EACCES: AccessDenied,
    _errno.EPERM: AccessDenied,
    _errno.EAGAIN: Contention,
    _errno.EPROTO: ProtocolError,
    _errno.ECANCELED: Cancelled,
    _errno.ESTALE: Changed,
}

# Meanings that depend on the function: the semaphore and client functions use ENOENT for "not a
# holder" and EBADMSG for a stored value that is not a semaphore.
_SEMAPHORE_CONTEXT: Dict[int, Type[LocksmithError]] = {
    _errno.ENOENT: NotHeld,
    _errno.EBADMSG: CorruptSemaphore,
}


def error_for(code: int, message: str, semaphore: bool = False, option: Optional[str] = None) -> LocksmithError:
    """The exception for errno `code` (positive) with the library's message. `semaphore` selects
    the meanings of the semaphore and client functions; `option` is the client option at fault."""
    cls: Optional[Type[LocksmithError]] = _SEMAPHORE_CONTEXT.get(code) if semaphore else None
    if cls is None:
        cls = _BY_ERRNO.get(code, LocksmithError)
    error = cls(code, message or os.strerror(code))
    error.option = option
    return error
