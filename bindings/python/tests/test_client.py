"""Client against a real etcd, through the v2 keys API and the v3 gateway: every method, what etcd
stores afterwards, and the failures (unreachable, timed out, corrupt value, busy, not held, bad
arguments)."""
import errno
import json
import socket
import threading
import time

import pytest

import locksmith
from locksmith import (AlreadyHeld, Busy, Client, CorruptSemaphore, InvalidArgument, NotHeld, Semaphore,
                       TimedOut, Unreachable)

FRESH = '{"semaphore":1,"max":1,"holders":null}'
MACHINE = "0123456789abcdef0123456789abcdef"  # the root fixture's machine id


@pytest.fixture
def client(etcd, group, api):
    with Client(endpoints=etcd.endpoint, group=group, api=api) as c:
        yield c


def stored(etcd, api, group):
    return etcd.get(api, locksmith.group_key(group))


def test_status_creates_the_fresh_document(client, etcd, api, group):
    assert client.api is None and client.endpoint is None and client.stats == (0, 0)
    with client.status() as s:
        assert isinstance(s, Semaphore)
        assert s.to_json() == FRESH
    assert stored(etcd, api, group) == FRESH
    assert client.api == api
    assert client.endpoint.rstrip("/") == etcd.endpoint
    assert client.stats.requests >= 1 and client.stats.conflicts == 0


def test_lock_set_max_unlock_round_trip(client, etcd, api, group):
    client.lock("node-1")
    assert json.loads(stored(etcd, api, group)) == {"semaphore": 0, "max": 1, "holders": ["node-1"]}
    assert client.set_max(2) == 1
    client.lock("node-0")
    with client.status() as s:
        assert (s.available, s.max, s.holders) == (0, 2, ["node-0", "node-1"])
        assert s.is_holder("node-0")
    client.unlock("node-1")
    client.unlock("node-0")
    assert stored(etcd, api, group) == '{"semaphore":2,"max":2,"holders":[]}'
    assert client.set_max(1) == 2


def test_refusals_leave_the_stored_value_unchanged(client, etcd, api, group):
    client.lock("a")
    before = stored(etcd, api, group)
    with pytest.raises(Busy) as e:
        client.lock("b")
    assert e.value.errno == errno.EBUSY and e.value.strerror == "semaphore is at 0"
    with pytest.raises(NotHeld) as e:
        client.unlock("b")
    assert e.value.errno == errno.ENOENT and e.value.strerror == "holder does not exist"
    assert not isinstance(e.value, FileNotFoundError)
    client.set_max(2)
    with pytest.raises(AlreadyHeld) as e:
        client.lock("a")
    assert e.value.errno == errno.EEXIST and e.value.strerror == "holder exists"
    assert json.loads(stored(etcd, api, group))["holders"] == json.loads(before)["holders"] == ["a"]


def test_lock_and_unlock_default_to_the_machine_id(client, etcd, api, group, root):
    client.lock()
    assert etcd.holders(api, locksmith.group_key(group)) == [MACHINE]
    assert client.set_max(2) == 1
    with pytest.raises(AlreadyHeld):
        client.lock()
    client.unlock()
    assert etcd.holders(api, locksmith.group_key(group)) == []


def test_lock_without_a_machine_id(client, tmp_path, monkeypatch):
    monkeypatch.setenv("LOCKSMITH_ROOT", str(tmp_path))
    for call in (client.lock, client.unlock):
        with pytest.raises(FileNotFoundError) as e:
            call()
        assert type(e.value) is locksmith.NotFound and "machine-id" in e.value.strerror
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "machine-id").write_text("nonsense\n")
    with pytest.raises(locksmith.BadData) as e:
        client.lock()
    assert type(e.value) is locksmith.BadData  # not CorruptSemaphore: the semaphore is fine


@pytest.mark.parametrize("value", ["garbage", "[1,2]", '{"semaphore":"x"}', '{"holders":["a","a"]}'])
def test_a_corrupt_stored_value_is_reported_and_never_overwritten(client, etcd, api, group, value):
    key = locksmith.group_key(group)
    etcd.put(api, key, value)
    for call in (client.status, lambda: client.lock("a"), lambda: client.unlock("a"), lambda: client.set_max(3)):
        with pytest.raises(CorruptSemaphore) as e:
            call()
        assert e.value.errno == errno.EBADMSG
        assert key in e.value.strerror  # names the key
        assert etcd.get(api, key) == value


def test_the_v2_and_v3_stores_are_separate(etcd, group):
    with Client(etcd.endpoint, group, api="v2") as v2, Client(etcd.endpoint, group, api="v3") as v3:
        v2.lock("old")
        with v3.status() as s:
            assert s.holders == []
        assert v2.api == "v2" and v3.api == "v3"


def test_auto_picks_v2_when_the_cluster_serves_it(etcd, group):
    with Client(etcd.endpoint, group) as c:
        c.status()
        assert c.api == "v2"


def test_failover_to_the_endpoint_that_answers(etcd, group):
    with Client([("http://127.0.0.1:%d" % _closed_port()), etcd.endpoint], group, timeout=2) as c:
        with c.status() as s:
            assert s.to_json() == FRESH
        assert c.endpoint.rstrip("/") == etcd.endpoint
    with Client("http://127.0.0.1:%d,%s" % (_closed_port(), etcd.endpoint), group) as c:  # a comma list
        c.lock("x")


def _closed_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def test_unreachable_names_every_endpoint():
    ports = [_closed_port(), _closed_port()]
    with Client(["http://127.0.0.1:%d" % p for p in ports]) as c:
        with pytest.raises(ConnectionRefusedError) as e:
            c.status()
    assert isinstance(e.value, Unreachable) and e.value.errno == errno.ECONNREFUSED
    for p in ports:
        assert "127.0.0.1:%d" % p in e.value.strerror
    assert c.closed


def test_an_endpoint_that_never_answers_times_out():
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)  # accepts connections (the kernel does) and never answers
    try:
        with Client("http://127.0.0.1:%d" % silent.getsockname()[1], timeout=0.25) as c:
            start = time.monotonic()
            with pytest.raises(TimeoutError) as e:
                c.lock("a")
            took = time.monotonic() - start
        assert isinstance(e.value, TimedOut) and e.value.errno == errno.ETIMEDOUT
        assert 0.2 <= took < 3
    finally:
        silent.close()


@pytest.mark.parametrize("options,names", [
    ({"api": "v4"}, "etcd-api"),
    ({"endpoints": "ftp://host"}, "ftp://host"),
    ({"endpoints": []}, "endpoints"),
    ({"timeout": "soon"}, "timeout"),
    ({"timeout": 0}, "timeout"),
    ({"timeout": 7200}, "timeout"),
    ({"cafile": "/nonexistent/ca.pem"}, "etcd-cafile"),
    ({"password_file": "/nonexistent/pw"}, "etcd-password-file"),
    ({"group": "g" * 256}, "group"),
    ({"endpoints": "http://h\0"}, "endpoint"),
])
def test_bad_options_name_the_option(options, names):
    with pytest.raises(InvalidArgument) as e:
        Client(**options)
    assert e.value.errno == errno.EINVAL and isinstance(e.value, ValueError)
    assert names in e.value.strerror


def test_a_password_never_appears_in_messages(etcd):
    with Client("http://127.0.0.1:%d" % _closed_port(), username="root", password="s3cret-pw") as c:
        with pytest.raises(Unreachable) as e:
            c.status()
        assert "s3cret-pw" not in str(e.value)


def test_timeouts_in_every_form(etcd, group):
    import datetime
    for timeout in (2, 2.5, "750ms", datetime.timedelta(seconds=3), 0.0015):
        with Client(etcd.endpoint, group, timeout=timeout) as c:
            c.status().close()
    with pytest.raises(TypeError):
        Client(timeout=True)  # type: ignore[arg-type]


def test_bad_arguments_of_the_methods(client):
    with pytest.raises(InvalidArgument):
        client.lock("")
    with pytest.raises(InvalidArgument):
        client.unlock("a\nb")
    with pytest.raises(InvalidArgument) as e:
        client.set_max(-1)
    assert "max" in e.value.strerror
    with pytest.raises(locksmith.OutOfRange):
        client.set_max(2**40)
    with pytest.raises(InvalidArgument, match="negative"):
        client.wait(-1)
    with pytest.raises(TypeError):
        client.wait("1")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        client.lock(42)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument):
        client.set_option("no-such-option", "x")


def test_options_from_the_environment(etcd, group, monkeypatch):
    monkeypatch.setenv("PYLOCKTEST_ENDPOINT", etcd.endpoint)
    monkeypatch.setenv("PYLOCKTEST_GROUP", group)
    monkeypatch.setenv("PYLOCKTEST_ETCD_API", "v3")
    with Client(env_prefix="PYLOCKTEST") as c:
        c.lock("env")
        assert c.api == "v3"
    assert etcd.holders("v3", locksmith.group_key(group)) == ["env"]
    # Arguments win over the environment.
    monkeypatch.setenv("PYLOCKTEST_ENDPOINT", "http://127.0.0.1:%d" % _closed_port())
    with Client(etcd.endpoint, env_prefix="PYLOCKTEST", api="v2") as c:
        c.status().close()
        assert c.api == "v2" and c.endpoint.rstrip("/") == etcd.endpoint
    monkeypatch.setenv("PYLOCKTEST_TIMEOUT", "forever")
    with pytest.raises(InvalidArgument) as e:
        Client(env_prefix="PYLOCKTEST")
    assert "PYLOCKTEST_TIMEOUT" in e.value.strerror
    with Client() as c:
        monkeypatch.delenv("PYLOCKTEST_TIMEOUT")
        assert c.load_env("PYLOCKTEST") == 3


def test_set_option_adds_endpoints(etcd, group):
    with Client("http://127.0.0.1:%d" % _closed_port(), group) as c:
        c.set_option("endpoint", etcd.endpoint)
        c.status().close()
        assert c.endpoint.rstrip("/") == etcd.endpoint


def test_wait_times_out_without_a_change(client):
    client.status().close()
    start = time.monotonic()
    assert client.wait(0.3) is False
    assert 0.28 <= time.monotonic() - start < 2
    assert client.wait(0) is False


def test_wait_is_woken_by_another_clients_unlock(etcd, group, api):
    with Client(etcd.endpoint, group, api=api) as holder, Client(etcd.endpoint, group, api=api) as waiter:
        holder.lock("holder")
        with pytest.raises(Busy):
            waiter.lock("waiter")
        woke = {}

        def release():
            time.sleep(0.3)
            woke["released"] = time.monotonic()
            holder.unlock("holder")

        t = threading.Thread(target=release)
        t.start()
        assert waiter.wait(10) is True
        latency = time.monotonic() - woke["released"]
        t.join()
        assert latency < 1.0, "woken %.3f s after the unlock" % latency
        waiter.lock("waiter")
        assert etcd.holders(api, locksmith.group_key(group)) == ["waiter"]


def test_wait_without_a_limit_returns_on_a_change(etcd, group, api):
    with Client(etcd.endpoint, group, api=api) as a, Client(etcd.endpoint, group, api=api) as b:
        a.status().close()
        t = threading.Timer(0.2, lambda: b.set_max(5))
        t.start()
        assert a.wait() is True
        t.join()
        with a.status() as s:
            assert s.max == 5


def test_closed_client(etcd):
    c = Client(etcd.endpoint)
    c.close()
    c.close()
    for call in (c.status, c.lock, c.unlock, lambda: c.set_max(1), c.wait, lambda: c.api, lambda: c.stats):
        with pytest.raises(ValueError, match="closed client"):
            call()
    assert repr(c) == "<locksmith.Client (closed)>"


def test_a_semaphore_outlives_its_client(etcd, group):
    with Client(etcd.endpoint, group) as c:
        s = c.status()
    assert s.to_json() == FRESH
    s.close()


def test_repr(client, api):
    client.status().close()
    assert repr(client).startswith("<locksmith.Client api=%r endpoint='http://127.0.0.1:" % api)


def test_apply_makes_many_changes_in_one_write(client, etcd, api, group):
    client.set_max(2)
    results = client.apply([("a", True), ("b", True), ("c", True), ("x", False), ("a", True)])
    assert [type(r).__name__ if r else None for r in results] == [None, None, "Busy", "NotHeld", "Busy"]
    with client.status() as s:
        assert s.holders == ["a", "b"]
    # A give-back and a take in one write: c gets a's slot.
    assert client.apply([("a", False), ("c", True)]) == [None, None]
    with client.status() as s:
        assert s.holders == ["b", "c"]
    # Nothing to change: refused each, nothing written.
    before = client.status().holders
    assert isinstance(client.apply([("d", True)])[0], locksmith.Busy)
    assert client.status().holders == before
    # Bad ids are refused each, the rest made.
    results = client.apply([("", True), ("b", False)])
    assert isinstance(results[0], locksmith.InvalidArgument) and results[1] is None
    with pytest.raises(locksmith.InvalidArgument):
        client.apply([])
