"""Module functions (version, duration_parse, machine_id, group_key, backoff_delay) and Config."""
import errno
import os
import re

import pytest

import locksmith
from locksmith import AccessDenied, BadData, Config, InvalidArgument, NotFound


def test_version():
    v = locksmith.version()
    assert re.fullmatch(r"\d+\.\d+\.\d+", v)
    assert locksmith.__version__ == v  # the binding is released with the library


@pytest.mark.parametrize("text,ns", [("1h30m", 5400 * 10**9), ("300ms", 300 * 10**6), ("-2s", -2 * 10**9),
                                     ("1.5h", 5400 * 10**9), ("1µs", 1000), ("0", 0), ("2562047h", 2562047 * 3600 * 10**9)])
def test_duration_parse(text, ns):
    assert locksmith.duration_parse(text) == ns


@pytest.mark.parametrize("text", ["", "5", "1j", "h", "9999999999h", "1h\0"])
def test_duration_parse_refuses(text):
    with pytest.raises(InvalidArgument) as e:
        locksmith.duration_parse(text)
    assert e.value.errno == errno.EINVAL


def test_group_key():
    assert locksmith.group_key() == locksmith.DEFAULT_KEY == "coreos.com/updateengine/rebootlock/semaphore"
    assert locksmith.group_key("") == locksmith.DEFAULT_KEY
    assert locksmith.group_key("prod/database") == locksmith.KEY_PREFIX + "/groups/prod%2Fdatabase/semaphore"
    assert locksmith.group_key("a b") == locksmith.KEY_PREFIX + "/groups/a+b/semaphore"
    with pytest.raises(InvalidArgument):
        locksmith.group_key("g" * 256)


def test_backoff_delay():
    assert [locksmith.backoff_delay(i) for i in range(8)] == [5, 10, 20, 40, 80, 160, 300, 300]
    assert locksmith.backoff_delay(2**31 - 1) == 300
    with pytest.raises(InvalidArgument):
        locksmith.backoff_delay(-1)


def test_machine_id(root):
    assert locksmith.machine_id() == "0123456789abcdef0123456789abcdef"


def test_machine_id_missing_is_file_not_found(tmp_path, monkeypatch):
    monkeypatch.setenv("LOCKSMITH_ROOT", str(tmp_path))
    with pytest.raises(FileNotFoundError) as e:
        locksmith.machine_id()
    assert isinstance(e.value, NotFound) and e.value.errno == errno.ENOENT
    assert "machine-id" in e.value.strerror


def test_machine_id_invalid_is_bad_data(root):
    (root / "etc" / "machine-id").write_text("not an id\n")
    with pytest.raises(BadData) as e:
        locksmith.machine_id()
    assert e.value.errno == errno.EBADMSG and not isinstance(e.value, locksmith.CorruptSemaphore)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_machine_id_unreadable(root):
    (root / "etc" / "machine-id").chmod(0)
    with pytest.raises(PermissionError):
        locksmith.machine_id()


def test_config_parse_and_get():
    text = '# comment\nA=1\nB="two words"\nC=\'single\'\\\n  more\nnot an assignment\nA=3\n'
    with Config.parse(text, "/etc/test.conf") as c:
        assert c.get("A") == "3"  # a later line wins
        assert c["B"] == "two words"
        assert c.origin("B") == "/etc/test.conf"
        assert c.lookup("B") == ("two words", "/etc/test.conf")
        assert "C" in c and "D" not in c and 7 not in c
        assert c.get("D") is None and c.get("D", "default") == "default" and c.origin("D") is None
        with pytest.raises(KeyError):
            c["D"]
    with Config.parse("X=1") as c:
        assert c.origin("X") == "<text>"


def test_config_load_files_then_environment(tmp_path, monkeypatch):
    for d, text in [("usr/share/coreos", "GROUP=a\nSTRATEGY=reboot\n"), ("etc/flatcar", "GROUP=b\n")]:
        (tmp_path / d).mkdir(parents=True)
        (tmp_path / d / "update.conf").write_text(text)
    monkeypatch.setenv("LOCKSMITH_ROOT", str(tmp_path))
    monkeypatch.delenv("GROUP", raising=False)
    monkeypatch.setenv("PY_BINDING_TEST_SETTING", "from env")
    with Config.load() as c:
        assert c.lookup("GROUP") == ("b", str(tmp_path / "etc/flatcar/update.conf"))
        assert c.lookup("STRATEGY") == ("reboot", str(tmp_path / "usr/share/coreos/update.conf"))
        assert c.lookup("PY_BINDING_TEST_SETTING") == ("from env", "environment")
    monkeypatch.setenv("GROUP", "c")
    with Config.load() as c:
        assert c.lookup("GROUP") == ("c", "environment")


def test_config_load_refuses_a_file_that_is_not_utf8(tmp_path, monkeypatch):
    (tmp_path / "etc/coreos").mkdir(parents=True)
    (tmp_path / "etc/coreos/update.conf").write_bytes(b"GROUP=\xff\xfe\n")
    monkeypatch.setenv("LOCKSMITH_ROOT", str(tmp_path))
    with pytest.raises(BadData) as e:
        Config.load()
    assert e.value.errno == errno.EBADMSG and "update.conf" in e.value.strerror


def test_config_load_names_an_unreadable_file(tmp_path, monkeypatch):
    (tmp_path / "etc/coreos/update.conf").mkdir(parents=True)  # a directory where a file belongs
    monkeypatch.setenv("LOCKSMITH_ROOT", str(tmp_path))
    with pytest.raises(locksmith.LocksmithError) as e:
        Config.load()
    assert "update.conf" in e.value.strerror


@pytest.mark.parametrize("code,cls,builtin", [
    (errno.EINVAL, locksmith.InvalidArgument, ValueError), (errno.EBUSY, locksmith.Busy, None),
    (errno.EEXIST, locksmith.AlreadyHeld, None), (errno.ENOENT, locksmith.NotFound, FileNotFoundError),
    (errno.EBADMSG, locksmith.BadData, None), (errno.ERANGE, locksmith.OutOfRange, OverflowError),
    (errno.ETIMEDOUT, locksmith.TimedOut, TimeoutError), (errno.ECONNREFUSED, locksmith.Unreachable, ConnectionRefusedError),
    (errno.EACCES, AccessDenied, PermissionError), (errno.EAGAIN, locksmith.Contention, None),
    (errno.EPROTO, locksmith.ProtocolError, None), (errno.ENOMEM, locksmith.LocksmithError, None),
])
def test_errno_to_class(code, cls, builtin):
    from locksmith.errors import error_for
    e = error_for(code, "the message")
    assert type(e) is cls and e.errno == code and e.strerror == "the message"
    if builtin:
        assert isinstance(e, builtin)
    assert error_for(code, "").strerror == os.strerror(code)  # no message: the system's


def test_semaphore_context_meanings():
    from locksmith.errors import error_for
    assert type(error_for(errno.ENOENT, "m", semaphore=True)) is locksmith.NotHeld
    assert type(error_for(errno.EBADMSG, "m", semaphore=True)) is locksmith.CorruptSemaphore
    assert type(error_for(errno.EBUSY, "m", semaphore=True)) is locksmith.Busy


def test_errors_are_oserrors_with_the_library_message():
    with pytest.raises(OSError) as e:
        locksmith.duration_parse("soon")
    assert type(e.value) is InvalidArgument
    assert e.value.args == (errno.EINVAL, e.value.strerror)
    assert "soon" in e.value.strerror


def test_every_error_class_is_an_oserror():
    for name in locksmith.__all__:
        thing = getattr(locksmith, name)
        if isinstance(thing, type) and issubclass(thing, BaseException):
            assert issubclass(thing, locksmith.LocksmithError) and issubclass(thing, OSError), name
    assert issubclass(locksmith.TimedOut, TimeoutError)
    assert issubclass(locksmith.Unreachable, ConnectionRefusedError)
    assert issubclass(locksmith.AccessDenied, PermissionError)
    assert issubclass(locksmith.NotFound, FileNotFoundError)
    assert issubclass(locksmith.CorruptSemaphore, locksmith.BadData)
    assert not issubclass(locksmith.NotHeld, FileNotFoundError)
