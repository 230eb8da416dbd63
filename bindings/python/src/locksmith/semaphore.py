"""Semaphore: the JSON document stored at a group's key ({"semaphore":1,"max":1,"holders":null}),
changed in memory only. Storing it is the Client's job."""
from __future__ import annotations

import ctypes
from typing import Any, List, Union

from . import _native
from ._base import Handle, c_int_value, check, encode, take_string
from ._native import lib


class Semaphore(Handle):
    """A semaphore document. Semaphore() is the document a fresh key gets (one free slot of one,
    no holders); Semaphore.parse(text) reads a stored one."""

    _free = lib.locksmith_semaphore_free
    _kind = "semaphore"

    def __init__(self, _pointer: Any = None) -> None:
        if _pointer is None:
            _pointer = _native.SemaphoreP()
            check(lib.locksmith_semaphore_new(ctypes.byref(_pointer)), semaphore=True)
        super().__init__(_pointer)

    @classmethod
    def parse(cls, json: Union[str, bytes]) -> "Semaphore":
        """Parses a stored document. Raises CorruptSemaphore (EBADMSG) if it is not one; the
        message says why and quotes the start of the value. Unknown fields are kept."""
        pointer = _native.SemaphoreP()
        check(lib.locksmith_semaphore_parse(encode(json, "json"), ctypes.byref(pointer)), semaphore=True)
        return cls(pointer)

    def to_json(self) -> str:
        """The document as stored: semaphore, max, holders (null or sorted), then unknown
        fields, no spaces; byte-compatible with the original locksmith."""
        out = ctypes.c_void_p()
        with self._lock:
            check(lib.locksmith_semaphore_to_json(self._live(), ctypes.byref(out)), semaphore=True)
        return take_string(out)

    def lock(self, holder: str) -> None:
        """Takes a slot for holder. Busy if none is free, AlreadyHeld if holder has one."""
        data = encode(holder, "holder")
        with self._lock:
            check(lib.locksmith_semaphore_lock(self._live(), data), semaphore=True)

    def unlock(self, holder: str) -> None:
        """Gives back holder's slot. NotHeld if holder has none."""
        data = encode(holder, "holder")
        with self._lock:
            check(lib.locksmith_semaphore_unlock(self._live(), data), semaphore=True)

    def set_max(self, max: int) -> int:
        """Sets the maximum number of holders and returns the previous one. Free slots change by
        the difference; holders are kept (a max below them leaves `available` negative)."""
        old = ctypes.c_int()
        with self._lock:
            check(lib.locksmith_semaphore_set_max(self._live(), c_int_value(max, "max"), ctypes.byref(old)), semaphore=True)
        return old.value

    @property
    def available(self) -> int:
        """Free slots (negative when max was lowered below the number of holders)."""
        value = ctypes.c_int()
        with self._lock:
            check(lib.locksmith_semaphore_get_available(self._live(), ctypes.byref(value)), semaphore=True)
        return value.value

    @property
    def max(self) -> int:
        value = ctypes.c_int()
        with self._lock:
            check(lib.locksmith_semaphore_get_max(self._live(), ctypes.byref(value)), semaphore=True)
        return value.value

    @property
    def holders(self) -> List[str]:
        """The holders, in stored order."""
        with self._lock:
            pointer = self._live()
            count = check(lib.locksmith_semaphore_holder_count(pointer), semaphore=True)
            names = [lib.locksmith_semaphore_holder(pointer, i) for i in range(count)]
        return [n.decode("utf-8") for n in names if n is not None]

    def is_holder(self, holder: str) -> bool:
        data = encode(holder, "holder")
        with self._lock:
            return check(lib.locksmith_semaphore_is_holder(self._live(), data), semaphore=True) == 1

    def __contains__(self, holder: object) -> bool:
        return isinstance(holder, str) and self.is_holder(holder)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Semaphore):
            return NotImplemented
        return self.to_json() == other.to_json()

    __hash__ = None  # type: ignore[assignment]  # mutable

    def __str__(self) -> str:
        return self.to_json()

    def __repr__(self) -> str:
        if self.closed:
            return "<locksmith.Semaphore (closed)>"
        return "<locksmith.Semaphore %s>" % self.to_json()

