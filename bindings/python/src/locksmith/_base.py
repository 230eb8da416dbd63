"""What every wrapper shares: turning Python text into C strings, negative errno into exceptions,
malloc()ed strings into str (freeing them), and the life of an object handle."""
from __future__ import annotations

import ctypes
import errno
import os
import threading
from types import TracebackType
from typing import Any, Callable, Optional, Type, TypeVar, Union

from ._native import lib
from .errors import InvalidArgument, OutOfRange, error_for


def encode(value: Union[str, bytes], name: str) -> bytes:
    """value as the NUL-terminated UTF-8 the library takes. A NUL inside would silently cut the
    string short in C, so it is refused here, as the library refuses other malformed text."""
    if isinstance(value, str):
        try:
            data = value.encode("utf-8")
        except UnicodeEncodeError as e:
            raise InvalidArgument(errno.EINVAL, "%s is not valid UTF-8: %s" % (name, e)) from None
    elif isinstance(value, bytes):
        data = value
    else:
        raise TypeError("%s must be str, not %s" % (name, type(value).__name__))
    if b"\0" in data:
        raise InvalidArgument(errno.EINVAL, "%s contains a NUL character" % name)
    return data


def encode_optional(value: Optional[Union[str, bytes]], name: str) -> Optional[bytes]:
    return None if value is None else encode(value, name)


def encode_path(value: Optional[Union[str, bytes, "os.PathLike[str]"]], name: str) -> Optional[bytes]:
    """A path (str, bytes or os.PathLike) as the library takes it; None stays None."""
    if value is None:
        return None
    if not isinstance(value, (str, bytes, os.PathLike)):
        raise TypeError("%s must be a path (str, bytes or os.PathLike), not %s" % (name, type(value).__name__))
    return encode(os.fspath(value), name)


def c_int_value(value: int, name: str, bits: int = 32) -> int:
    """value if it fits a C int (or int64_t); ctypes would silently wrap it around."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError("%s must be int, not %s" % (name, type(value).__name__))
    if not -2 ** (bits - 1) <= value < 2 ** (bits - 1):
        raise OutOfRange(errno.ERANGE, "%s does not fit a %d-bit integer: %d" % (name, bits, value))
    return value


def decode(data: Optional[bytes]) -> Optional[str]:
    return None if data is None else data.decode("utf-8")


def check(r: int, semaphore: bool = False) -> int:
    """Returns r if it is >= 0, else raises the exception for -r with the thread's last error."""
    if r < 0:
        raise error_for(-r, decode(lib.locksmith_last_error()) or "", semaphore)
    return r


def copy_string(p: ctypes.c_void_p) -> str:
    """A copy of the C string at p ("" for NULL)."""
    return ctypes.string_at(p.value).decode("utf-8") if p.value else ""


def take_string(p: ctypes.c_void_p) -> str:
    """Copies a string the library malloc()ed, and frees it."""
    try:
        return copy_string(p)
    finally:
        lib.locksmith_free(p)


H = TypeVar("H", bound="Handle")


class Handle:
    """Owns one library object. The object is freed by close(), by leaving a `with` block, or when
    the wrapper is garbage-collected. The library lets an object be used by one thread at a time;
    every call on it here holds the wrapper's lock, so threads that share a wrapper take turns
    instead of corrupting it."""

    _free: Callable[[Any], Any]  # the library's _free function, set by each subclass
    _kind = "object"

    def __init__(self, pointer: Any) -> None:
        self._pointer = pointer
        self._lock = threading.Lock()

    def _live(self) -> Any:
        """The handle, or ValueError if closed (as for a closed file). Call with the lock held."""
        if not self._pointer:
            raise ValueError("I/O operation on a closed %s" % self._kind)
        return self._pointer

    @property
    def closed(self) -> bool:
        return not self._pointer

    def close(self) -> None:
        """Frees the library object. Closing twice is fine."""
        with self._lock:
            pointer, self._pointer = self._pointer, None
            if pointer:
                type(self)._free(pointer)

    def __enter__(self: H) -> H:
        return self

    def __exit__(self, kind: Optional[Type[BaseException]], value: Optional[BaseException],
                 traceback: Optional[TracebackType]) -> None:
        self.close()

    def __del__(self) -> None:
        # No other reference exists, so no other thread can be inside a method: no lock needed.
        pointer = getattr(self, "_pointer", None)
        if pointer:
            self._pointer = None
            try:
                type(self)._free(pointer)
            except Exception:  # interpreter shutdown: the library may be gone already
                pass
