"""Semaphore: the document in memory (no etcd)."""
import errno

import pytest

import locksmith
from locksmith import AlreadyHeld, Busy, CorruptSemaphore, InvalidArgument, NotHeld, OutOfRange, Semaphore


def test_a_new_semaphore_is_the_fresh_document():
    with Semaphore() as s:
        assert s.to_json() == '{"semaphore":1,"max":1,"holders":null}'
        assert (s.available, s.max, s.holders) == (1, 1, [])


def test_lock_unlock_and_the_stored_form():
    with Semaphore() as s:
        s.lock("node-b")
        assert s.to_json() == '{"semaphore":0,"max":1,"holders":["node-b"]}'
        assert s.is_holder("node-b") and "node-b" in s and "node-a" not in s
        assert s.set_max(3) == 1
        s.lock("node-a")
        assert s.holders == ["node-a", "node-b"]  # sorted on every lock
        assert (s.available, s.max) == (1, 3)
        s.unlock("node-a")
        s.unlock("node-b")
        assert s.to_json() == '{"semaphore":3,"max":3,"holders":[]}'  # [] after the last unlock


def test_busy_already_held_and_not_held_leave_the_document_unchanged():
    with Semaphore() as s:
        s.lock("a")
        before = s.to_json()
        with pytest.raises(Busy) as e:
            s.lock("b")
        assert e.value.errno == errno.EBUSY and "semaphore is at 0" in e.value.strerror
        s.set_max(2)
        with pytest.raises(AlreadyHeld) as e:
            s.lock("a")
        assert e.value.errno == errno.EEXIST and e.value.strerror == "holder exists"
        with pytest.raises(NotHeld) as e:
            s.unlock("b")
        assert e.value.errno == errno.ENOENT and e.value.strerror == "holder does not exist"
        assert s.to_json() == before.replace('"semaphore":0,"max":1', '"semaphore":1,"max":2')


def test_busy_is_checked_before_already_held():
    with Semaphore.parse('{"semaphore":0,"max":1,"holders":["a"]}') as s:
        with pytest.raises(Busy):
            s.lock("a")


def test_max_below_the_holders_leaves_available_negative_and_zero_pauses():
    with Semaphore.parse('{"semaphore":0,"max":3,"holders":["a","b","c"]}') as s:
        assert s.set_max(1) == 3
        assert s.available == -2 and s.holders == ["a", "b", "c"]
        assert s.set_max(0) == 1
        assert s.available == -3


def test_set_max_rejects_negative_and_out_of_range():
    with Semaphore() as s:
        with pytest.raises(InvalidArgument) as e:
            s.set_max(-1)
        assert isinstance(e.value, ValueError) and e.value.errno == errno.EINVAL
        with pytest.raises(OutOfRange):
            s.set_max(2**31)
        s.lock("a")
        s.unlock("a")
        s.set_max(2**31 - 1)
        assert s.available == 2**31 - 1
        with pytest.raises(TypeError):
            s.set_max("3")  # type: ignore[arg-type]


def test_parse_keeps_order_and_unknown_fields():
    text = '{"semaphore":-1,"max":1,"holders":["z","a"],"note":{"by":"ops"}}'
    with Semaphore.parse(text) as s:
        assert s.holders == ["z", "a"]  # stored order
        assert s.to_json() == text
        assert (s.available, s.max) == (-1, 1)
    with Semaphore.parse(b'{"Semaphore":2,"MAX":2}') as s:  # bytes, and Go's case-insensitive names
        assert s.to_json() == '{"semaphore":2,"max":2,"holders":null}'


def test_go_escaping_of_html_characters():
    with Semaphore() as s:
        s.lock("<a&b>")
        assert s.to_json() == '{"semaphore":0,"max":1,"holders":["\\u003ca\\u0026b\\u003e"]}'
        assert s.holders == ["<a&b>"]


@pytest.mark.parametrize("text", [
    "", "{", "not json", "[]", "42", "{'semaphore':1}", '{"semaphore":"1"}', '{"max":1.5}',
    '{"semaphore":99999999999}', '{"holders":["a","a"]}', '{"holders":[1]}', '{"holders":{}}',
])
def test_corrupt_documents(text):
    with pytest.raises(CorruptSemaphore) as e:
        Semaphore.parse(text)
    assert e.value.errno == errno.EBADMSG
    assert isinstance(e.value, locksmith.BadData) and isinstance(e.value, OSError)
    assert e.value.strerror and e.value.strerror != "Bad message"  # the library's own message


def test_corrupt_message_quotes_the_value():
    with pytest.raises(CorruptSemaphore) as e:
        Semaphore.parse('{"semaphore":true}')
    assert e.value.strerror == '"semaphore" is not an integer but a boolean (value: "{\\"semaphore\\":true}")'
    assert str(e.value).startswith("[Errno %d] " % errno.EBADMSG)


@pytest.mark.parametrize("holder", ["", "a\nb", "x" * 256, "a\0b", "\udc80"])
def test_bad_holders(holder):
    with Semaphore() as s:
        with pytest.raises(InvalidArgument) as e:
            s.lock(holder)
        assert e.value.errno == errno.EINVAL and "holder" in e.value.strerror
        assert s.to_json() == '{"semaphore":1,"max":1,"holders":null}'


def test_a_holder_of_255_bytes_and_non_ascii():
    with Semaphore() as s:
        s.set_max(2)
        s.lock("x" * 255)
        s.lock("nœud-é")
        assert s.holders == ["nœud-é", "x" * 255]  # byte-wise order
        assert s.is_holder("nœud-é")


def test_wrong_types():
    with Semaphore() as s:
        with pytest.raises(TypeError):
            s.lock(None)  # type: ignore[arg-type]
        with pytest.raises(TypeError):
            Semaphore.parse(None)  # type: ignore[arg-type]
        assert 5 not in s


def test_close_and_use_after_close():
    s = Semaphore()
    assert not s.closed
    s.close()
    s.close()  # twice is fine
    assert s.closed
    with pytest.raises(ValueError, match="closed semaphore"):
        s.to_json()
    with pytest.raises(ValueError):
        s.lock("a")
    assert "closed" in repr(s)


def test_equality_and_text():
    a = Semaphore.parse('{"semaphore":1,"max":1,"holders":null}')
    b = Semaphore()
    assert a == b and str(a) == a.to_json()
    b.lock("x")
    assert a != b
    assert repr(b) == '<locksmith.Semaphore {"semaphore":0,"max":1,"holders":["x"]}>'
    with pytest.raises(TypeError):
        hash(a)
