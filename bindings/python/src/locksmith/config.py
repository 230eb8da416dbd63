"""Config: KEY=VALUE settings in systemd EnvironmentFile= syntax, either this node's (the
update.conf files under a root, then the environment unless left out) or one parsed text."""
from __future__ import annotations

import ctypes
import errno
import os
from typing import List, Optional, Tuple, Union, overload

from . import _native
from ._base import Handle, check, decode, encode, encode_optional, encode_path
from ._native import lib


class Config(Handle):
    """Settings by name. Config.load() reads this node's; Config.parse(text) one text.
    config.get(key) is the value or a default, config[key] raises KeyError, key in config tests,
    config.origin(key) says where the value came from (a file path, or "environment")."""

    _free = lib.locksmith_config_free
    _kind = "config"

    def __init__(self, _pointer: object) -> None:
        super().__init__(_pointer)

    @classmethod
    def load(cls, root: Optional[Union[str, bytes, "os.PathLike[str]"]] = None, environment: bool = True) -> "Config":
        """This node's configuration: /usr/share/coreos/update.conf, /usr/share/flatcar/update.conf,
        /etc/coreos/update.conf, /etc/flatcar/update.conf, /etc/default/locksmithd (later files
        win), then the process
        environment, which wins over every file.

        The files are read under root, an absolute directory; by default under $LOCKSMITH_ROOT
        (or "/"). environment=False leaves the process environment out: the settings come from
        the files alone, and without a root they are read under "/" ($LOCKSMITH_ROOT is part of
        the environment). With a root or environment=False this is locksmith_config_load_at.

        InvalidArgument if root is not absolute; BadData if a file is not UTF-8 text;
        AccessDenied or another LocksmithError if one cannot be read."""
        if not isinstance(environment, bool):
            raise TypeError("environment must be True or False, not %r" % (environment,))
        pointer = _native.ConfigP()
        if root is None and environment:
            check(lib.locksmith_config_load(ctypes.byref(pointer)))
        else:
            flags = 0 if environment else _native.NO_ENVIRONMENT
            check(lib.locksmith_config_load_at(encode_path(root, "root"), flags, ctypes.byref(pointer)))
        return cls(pointer)

    @classmethod
    def parse(cls, text: Union[str, bytes], origin: Optional[str] = None) -> "Config":
        """Parses one text; origin (default "<text>") is what origin() reports for its keys."""
        pointer = _native.ConfigP()
        check(lib.locksmith_config_parse(encode(text, "text"), encode_optional(origin, "origin"), ctypes.byref(pointer)))
        return cls(pointer)

    def lookup(self, key: str) -> Optional[Tuple[str, str]]:
        """(value, origin) of key, or None if nothing sets it."""
        name = encode(key, "key")
        value, origin = ctypes.c_char_p(), ctypes.c_char_p()
        with self._lock:
            r = lib.locksmith_config_get(self._live(), name, ctypes.byref(value), ctypes.byref(origin))
            if r == -errno.ENOENT:
                return None
            check(r)
            # Borrowed from the object: copied here, under the lock, before anything changes it.
            return decode(value.value) or "", decode(origin.value) or ""

    @overload
    def get(self, key: str) -> Optional[str]: ...

    @overload
    def get(self, key: str, default: str) -> str: ...

    def get(self, key: str, default: Optional[str] = None) -> Optional[str]:
        """The value of key, or default if nothing sets it."""
        found = self.lookup(key)
        return default if found is None else found[0]

    def origin(self, key: str) -> Optional[str]:
        """Where key's value came from: a file path, "environment", or the origin given to
        parse(); None if nothing sets key."""
        found = self.lookup(key)
        return None if found is None else found[1]

    def line(self, key: str) -> Optional[int]:
        """The line of its file on which key's assignment starts; None when nothing sets key or
        it came from the environment."""
        name = encode(key, "key")
        with self._lock:
            r = lib.locksmith_config_line(self._live(), name)
        if r == -errno.ENOENT or r == 0:
            return None
        return check(r)

    @property
    def warnings(self) -> List[str]:
        """The lines that were skipped (not assignments), each naming its file and line:
        "/etc/coreos/update.conf: line 3: ...". The library never logs: show them."""
        with self._lock:
            pointer = self._live()
            count = check(lib.locksmith_config_warning_count(pointer))
            texts = [lib.locksmith_config_warning(pointer, i) for i in range(count)]
        return [t.decode("utf-8") for t in texts if t is not None]

    def __getitem__(self, key: str) -> str:
        found = self.lookup(key)
        if found is None:
            raise KeyError(key)
        return found[0]

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and self.lookup(key) is not None

    def __repr__(self) -> str:
        return "<locksmith.Config%s>" % (" (closed)" if self.closed else "")
