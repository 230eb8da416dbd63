"""The functions of version node LOCKSMITH_2 through the Pythonic API: machine_id(root),
Config.load(root, environment), Client(environment=False), Client(proxy=...), Client.read() and
Client.set_deadline(), against a real etcd and listeners the tests open themselves."""
import datetime
import errno
import json
import math
import os
import select
import socket
import time

import pytest

import locksmith
from locksmith import Client, Config, CorruptSemaphore, InvalidArgument, NotFound, Semaphore, TimedOut

FRESH = '{"semaphore":1,"max":1,"holders":null}'
ROOT_ID = "0123456789abcdef0123456789abcdef"  # the root fixture's machine id
OTHER_ID = "fedcba9876543210fedcba9876543210"
NOWHERE = "http://etcd.invalid:2379"  # not loopback (so a proxy applies), and never resolves


def system_machine_id():
    """/etc/machine-id of this machine if it holds a valid id, else None."""
    try:
        with open("/etc/machine-id") as f:
            text = f.read().strip()
    except OSError:
        return None
    return text if len(text) == 32 and all(c in "0123456789abcdef" for c in text) else None


@pytest.fixture
def silent():
    """A loopback listener that never answers: the kernel completes connections into its
    backlog and nobody reads. Its URL is silent.url; silent.request() is what the first client
    sent (the request line and headers, kept in the socket after the client gave up), or ""."""
    class Silent:
        def __init__(self):
            self.sock = socket.socket()
            self.sock.bind(("127.0.0.1", 0))
            self.sock.listen(16)
            self.url = "http://127.0.0.1:%d" % self.sock.getsockname()[1]

        def request(self, wait=2.0):
            if not select.select([self.sock], [], [], wait)[0]:
                return ""
            conn, _ = self.sock.accept()
            data = b""
            with conn:
                while b"\r\n\r\n" not in data and select.select([conn], [], [], 1.0)[0]:
                    chunk = conn.recv(4096)
                    if not chunk:
                        break
                    data += chunk
            return data.decode("latin-1")

    s = Silent()
    yield s
    s.sock.close()


# ---- machine_id(root) -------------------------------------------------------------------------

def test_machine_id_under_a_root_ignores_locksmith_root(root, tmp_path_factory):
    other = tmp_path_factory.mktemp("other-root")
    with pytest.raises(NotFound) as e:
        locksmith.machine_id(root=str(other))
    assert e.value.errno == errno.ENOENT and str(other) in e.value.strerror
    (other / "etc").mkdir()
    (other / "etc" / "machine-id").write_text(OTHER_ID + "\n")
    assert locksmith.machine_id(root=str(other)) == OTHER_ID
    assert locksmith.machine_id(other) == OTHER_ID  # a pathlib.Path
    assert locksmith.machine_id(os.fsencode(str(other))) == OTHER_ID
    assert locksmith.machine_id() == ROOT_ID  # $LOCKSMITH_ROOT, as before
    (other / "etc" / "machine-id").write_text("nonsense\n")
    with pytest.raises(locksmith.BadData):
        locksmith.machine_id(other)


def test_machine_id_of_the_real_root(root):
    expected = system_machine_id()
    if expected is None:
        with pytest.raises(locksmith.LocksmithError):
            locksmith.machine_id("/")
    else:
        assert locksmith.machine_id("/") == expected


@pytest.mark.parametrize("bad", ["", "relative", "./etc", "/tmp/\0x"])
def test_machine_id_refuses_a_root_that_is_not_absolute(bad):
    with pytest.raises(InvalidArgument) as e:
        locksmith.machine_id(bad)
    assert e.value.errno == errno.EINVAL


def test_machine_id_root_of_the_wrong_type():
    with pytest.raises(TypeError):
        locksmith.machine_id(42)  # type: ignore[arg-type]


# ---- Config.load(root, environment) -----------------------------------------------------------

@pytest.fixture
def conf_root(tmp_path, monkeypatch):
    """A root with an update.conf, an environment that overrides one of its values, and a
    $LOCKSMITH_ROOT that names another root (with a GROUP of its own)."""
    node = tmp_path / "node"
    (node / "etc" / "coreos").mkdir(parents=True)
    (node / "etc" / "coreos" / "update.conf").write_text("LOCKSMITHD_GROUP=from-file\nREBOOT_STRATEGY=etcd-lock\n")
    elsewhere = tmp_path / "elsewhere"
    (elsewhere / "etc" / "flatcar").mkdir(parents=True)
    (elsewhere / "etc" / "flatcar" / "update.conf").write_text("GROUP=elsewhere\n")
    monkeypatch.setenv("LOCKSMITH_ROOT", str(elsewhere))
    monkeypatch.setenv("LOCKSMITHD_GROUP", "from-environment")
    monkeypatch.setenv("LOCKSMITHD_PY_ENV_ONLY", "env")
    return node


def test_config_load_under_a_root_with_the_environment(conf_root):
    with Config.load(root=str(conf_root)) as c:
        assert c.lookup("LOCKSMITHD_GROUP") == ("from-environment", "environment")
        assert c.lookup("REBOOT_STRATEGY") == ("etcd-lock", str(conf_root / "etc" / "coreos" / "update.conf"))
        assert c.get("LOCKSMITHD_PY_ENV_ONLY") == "env"
        assert "GROUP" not in c  # $LOCKSMITH_ROOT's file is not read


def test_config_load_under_a_root_without_the_environment(conf_root):
    with Config.load(root=conf_root, environment=False) as c:
        assert c.lookup("LOCKSMITHD_GROUP") == ("from-file", str(conf_root / "etc" / "coreos" / "update.conf"))
        assert c["REBOOT_STRATEGY"] == "etcd-lock"
        assert "LOCKSMITHD_PY_ENV_ONLY" not in c and "PATH" not in c and "GROUP" not in c


def test_config_load_without_the_environment_reads_the_real_root(conf_root):
    # $LOCKSMITH_ROOT is part of the environment: without it, the files under "/".
    with Config.load(environment=False) as c:
        assert c.get("GROUP") != "elsewhere"
        assert "LOCKSMITHD_PY_ENV_ONLY" not in c


def test_config_load_by_default_is_unchanged(conf_root):
    with Config.load() as c:
        assert c["GROUP"] == "elsewhere"  # under $LOCKSMITH_ROOT
        assert c.origin("LOCKSMITHD_GROUP") == "environment"


def test_config_load_at_a_root_that_does_not_exist_is_empty(tmp_path):
    with Config.load(root=tmp_path / "missing", environment=False) as c:
        assert "REBOOT_STRATEGY" not in c


@pytest.mark.parametrize("bad", ["", "relative/root", "."])
def test_config_load_refuses_a_root_that_is_not_absolute(bad):
    with pytest.raises(InvalidArgument) as e:
        Config.load(root=bad)
    assert e.value.errno == errno.EINVAL
    with pytest.raises(InvalidArgument):
        Config.load(root=bad, environment=False)


def test_config_load_under_a_root_reports_a_bad_file(conf_root):
    (conf_root / "etc" / "flatcar").mkdir()
    (conf_root / "etc" / "flatcar" / "update.conf").write_bytes(b"GROUP=\xff\n")
    with pytest.raises(locksmith.BadData) as e:
        Config.load(root=conf_root, environment=False)
    assert e.value.errno == errno.EBADMSG and "flatcar/update.conf" in e.value.strerror


def test_config_load_arguments_of_the_wrong_type():
    with pytest.raises(TypeError):
        Config.load(environment=0)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        Config.load(root=3)  # type: ignore[arg-type]


# ---- Client.read() ----------------------------------------------------------------------------

def test_read_a_missing_key_is_none_and_creates_nothing(etcd, group, api):
    key = locksmith.group_key(group)
    with Client(etcd.endpoint, group, api=api) as c:
        assert c.read() is None
        assert c.read() is None
        assert etcd.get(api, key) is None
        assert c.api == api


def test_read_an_existing_key(etcd, group, api):
    with Client(etcd.endpoint, group, api=api) as c, Client(etcd.endpoint, group, api=api) as other:
        c.status().close()  # creates it
        with c.read() as s:
            assert isinstance(s, Semaphore) and s.to_json() == FRESH
        other.lock("someone")
        with c.read() as s:  # always a fresh read: another client's write shows
            assert s.holders == ["someone"]
        other.unlock("someone")
        with c.read() as s:
            assert s.holders == []


def test_read_a_corrupt_value(etcd, group, api):
    key = locksmith.group_key(group)
    etcd.put(api, key, "not json")
    with Client(etcd.endpoint, group, api=api) as c:
        with pytest.raises(CorruptSemaphore) as e:
            c.read()
        assert key in e.value.strerror
    assert etcd.get(api, key) == "not json"


def test_read_unreachable():
    with Client("http://127.0.0.1:9") as c:
        with pytest.raises(locksmith.Unreachable):
            c.read()


# ---- Client.set_deadline() --------------------------------------------------------------------

def test_a_passed_deadline_fails_every_call_without_a_request(etcd, group):
    with Client(etcd.endpoint, group) as c:
        c.status().close()
        before = c.stats.requests
        for passed in (-0.01, -1, datetime.timedelta(seconds=-5)):
            c.set_deadline(passed)
            for call in (c.status, c.read, lambda: c.lock("late"), lambda: c.unlock("late"), lambda: c.set_max(4)):
                with pytest.raises(TimeoutError) as e:
                    call()
                assert isinstance(e.value, TimedOut) and e.value.errno == errno.ETIMEDOUT
            assert c.stats.requests == before
        c.set_deadline(None)
        with c.read() as s:
            assert s.to_json() == FRESH
        assert c.stats.requests == before + 1


def test_a_passed_deadline_fails_wait_too(etcd, group):
    # The header: "once the deadline has passed, calls fail with -ETIMEDOUT without sending
    # anything". A wait() that said "no change yet" instead would be called again and again:
    # wait(None) would spin for ever.
    with Client(etcd.endpoint, group) as c:
        c.status().close()
        before = c.stats.requests
        c.set_deadline(-1)
        start = time.monotonic()
        with pytest.raises(TimedOut):
            c.wait(0.5)
        assert time.monotonic() - start < 0.4
        assert c.stats.requests == before


def test_a_deadline_ahead_lets_calls_through(etcd, group):
    with Client(etcd.endpoint, group) as c:
        c.set_deadline(60)
        c.lock("in-time")
        c.set_deadline(1e12)  # far beyond any clock: clamped, not wrapped around
        c.unlock("in-time")


@pytest.mark.parametrize("endpoints", [1, 2])
def test_a_deadline_ends_a_call_to_servers_that_never_answer(endpoints, silent):
    # A per-request timeout of 10 s, and (with 2) failover to a second endpoint that never
    # answers either: the deadline, 0.3 s ahead, ends it all.
    urls = [silent.url] * endpoints
    with Client(urls, timeout=10) as c:
        start = time.monotonic()
        c.set_deadline(0.3)
        with pytest.raises(TimedOut):
            c.lock("node")
        took = time.monotonic() - start
        assert 0.29 <= took < 2.0, "took %.3f s" % took
        with pytest.raises(TimedOut):
            c.status()  # the deadline has passed now
        assert time.monotonic() - start < 2.0


@pytest.mark.parametrize("bad,error", [("1", TypeError), (True, TypeError), (math.nan, InvalidArgument),
                                       (math.inf, InvalidArgument)])
def test_set_deadline_refuses(bad, error):
    with Client() as c:
        with pytest.raises(error):
            c.set_deadline(bad)


def test_set_deadline_on_a_closed_client():
    c = Client()
    c.close()
    with pytest.raises(ValueError, match="closed client"):
        c.set_deadline(1)
    with pytest.raises(ValueError, match="closed client"):
        c.read()


# ---- proxy= -----------------------------------------------------------------------------------

@pytest.mark.parametrize("proxy", ["", "http://127.0.0.1:1", "https://proxy.example:3128"])
def test_proxy_values_accepted(proxy):
    Client(proxy=proxy).close()
    with Client() as c:
        c.set_option("proxy", proxy)


@pytest.mark.parametrize("proxy", ["ftp://x", "proxy.example:3128", "http://a b", "http://a\nb"])
def test_proxy_values_refused(proxy):
    with pytest.raises(InvalidArgument) as e:
        Client(proxy=proxy)
    assert e.value.errno == errno.EINVAL and "proxy" in e.value.strerror


@pytest.mark.parametrize("environment", [True, False])
def test_requests_go_through_the_proxy(silent, environment):
    with Client(NOWHERE, proxy=silent.url, timeout=0.5, environment=environment) as c:
        with pytest.raises(TimedOut):
            c.status()
    assert silent.request().startswith("GET " + NOWHERE + "/v2/keys/" + locksmith.DEFAULT_KEY)


def test_loopback_endpoints_never_go_through_a_proxy(etcd, group, silent):
    with Client(etcd.endpoint, group, proxy=silent.url) as c:
        assert c.read() is None
    assert silent.request(wait=0) == ""


def test_proxy_variables_apply_unless_environment_is_false(silent, monkeypatch):
    monkeypatch.setenv("http_proxy", silent.url)
    with Client(NOWHERE, timeout=0.5) as c:
        with pytest.raises(TimedOut):
            c.status()
    assert silent.request().startswith("GET " + NOWHERE + "/")
    with Client(NOWHERE, timeout=0.5, proxy="") as c:  # "" turns them off
        with pytest.raises(locksmith.LocksmithError):
            c.status()
    assert silent.request(wait=0.2) == ""
    with Client(NOWHERE, timeout=0.5, environment=False) as c:
        with pytest.raises((locksmith.Unreachable, TimedOut)) as e:
            c.status()
        assert "etcd.invalid" in e.value.strerror
    assert silent.request(wait=0.2) == ""


# ---- Client(environment=False) ----------------------------------------------------------------

def test_environment_false_takes_the_machine_id_under_the_real_root(etcd, group, root):
    expected = system_machine_id()
    with Client(etcd.endpoint, group, environment=False) as c, Client(etcd.endpoint, group) as plain:
        c.set_max(2)
        plain.lock()  # $LOCKSMITH_ROOT's id
        if expected is None:
            with pytest.raises(locksmith.LocksmithError):
                c.lock()
        else:
            c.lock()
            assert sorted(json.loads(etcd.get("v2", locksmith.group_key(group)))["holders"]) == sorted([ROOT_ID, expected])
            c.unlock()
        plain.unlock()
        with c.read() as s:
            assert s.holders == []


def test_environment_must_be_a_bool():
    with pytest.raises(TypeError):
        Client(environment=0)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        Client(environment="no")  # type: ignore[arg-type]


def test_environment_false_with_options(etcd, group):
    with Client(etcd.endpoint, group, environment=False, timeout=2) as c:
        c.lock("no-env")
        assert c.api == "v2"
        with c.read() as s:
            assert s.holders == ["no-env"]
        c.unlock("no-env")
