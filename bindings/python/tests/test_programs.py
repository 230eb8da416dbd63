"""What a program built on the library needs (the second part of LOCKSMITH_2), through the
Pythonic API: duration_format, json_quote, default_root, key_group, option_names, Config.warnings,
Client.load_settings/settings/warnings/key/set_trace/prepare/cancel/last_seen/groups, errors'
.option, DaemonSettings, and the reboot-slot record, against a real etcd."""
import errno
import gc
import json
import os
import signal
import stat
import sys
import threading
import time

import pytest

import locksmith
from locksmith import (BadData, Cancelled, Client, Config, CorruptSemaphore, DaemonSettings, InvalidArgument,
                       LocksmithError, Semaphore, Setting, SlotRecord, Window)

FRESH = '{"semaphore":1,"max":1,"holders":null}'
OPTIONS = ["endpoint", "group", "etcd-cafile", "etcd-certfile", "etcd-keyfile", "etcd-username", "etcd-password",
           "etcd-password-file", "etcd-api", "timeout", "proxy", "queue-ttl", "fleetlock-url"]
CONF = "/etc/coreos/update.conf"


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch):
    """No LOCKSMITHCTL_*/LOCKSMITHD_* variable of the caller's shell reaches these tests."""
    for name in list(os.environ):
        if name.startswith(("LOCKSMITHCTL_", "LOCKSMITHD_", "LOCKSMITHPY_")):
            monkeypatch.delenv(name)


def by_name(client):
    return {s.name: s for s in client.settings()}


# ---- module functions -------------------------------------------------------------------------

@pytest.mark.parametrize("nanoseconds, text", [
    (0, "0s"), (1, "1ns"), (1500, "1.5µs"), (1500000, "1.5ms"), (300000000, "300ms"), (1500000000, "1.5s"),
    (60 * 10**9, "1m0s"), (5400 * 10**9, "1h30m0s"), (-2 * 10**9, "-2s"), (2**63 - 1, "2562047h47m16.854775807s"),
    (-2**63, "-2562047h47m16.854775808s"),
])
def test_duration_format_prints_as_go_does(nanoseconds, text):
    assert locksmith.duration_format(nanoseconds) == text
    if nanoseconds != -2**63:
        assert locksmith.duration_parse(text) == nanoseconds


def test_duration_format_bad_arguments():
    with pytest.raises(locksmith.OutOfRange):
        locksmith.duration_format(2**63)
    with pytest.raises(TypeError):
        locksmith.duration_format(1.5)
    with pytest.raises(TypeError):
        locksmith.duration_format("1s")


@pytest.mark.parametrize("text, quoted", [
    ("", '""'),
    ('a"b\\c', '"a\\"b\\\\c"'),
    ("<a>&", '"\\u003ca\\u003e\\u0026"'),
    ("\n\t\x01", '"\\n\\t\\u0001"'),
    ("é", '"é"'),
    ("\u2028", '"\\u2028"'),
    (b"bytes", '"bytes"'),
])
def test_json_quote_escapes_as_go_does(text, quoted):
    assert locksmith.json_quote(text) == quoted
    assert json.loads(locksmith.json_quote(text)) == (text.decode() if isinstance(text, bytes) else text)


def test_json_quote_writes_invalid_utf8_as_the_escape():
    # Go's encoder writes each byte that is not UTF-8 as the six characters \ufffd.
    assert locksmith.json_quote(b"a\xffb") == '"a\\ufffdb"'


def test_json_quote_refuses_a_nul():
    with pytest.raises(InvalidArgument):
        locksmith.json_quote("a\0b")


def test_default_root(monkeypatch, tmp_path):
    monkeypatch.delenv("LOCKSMITH_ROOT", raising=False)
    assert locksmith.default_root() == "/"
    monkeypatch.setenv("LOCKSMITH_ROOT", "")
    assert locksmith.default_root() == "/"
    monkeypatch.setenv("LOCKSMITH_ROOT", str(tmp_path))
    assert locksmith.default_root() == str(tmp_path)


@pytest.mark.parametrize("group", ["", "web", "prod/database", "a b", "é"])
def test_key_group_is_the_inverse_of_group_key(group):
    assert locksmith.key_group(locksmith.group_key(group)) == group


def test_key_group_refuses_other_keys():
    for key in ["", "semaphore", locksmith.KEY_PREFIX, locksmith.KEY_PREFIX + "/groups/%zz/semaphore"]:
        with pytest.raises(InvalidArgument):
            locksmith.key_group(key)


def test_every_option_has_help():
    helps = locksmith.option_help()
    assert list(helps) == locksmith.option_names()
    assert helps["etcd-cafile"][0] == "FILE"
    assert all(value_name and len(description) > 10 for value_name, description in helps.values())


def test_option_names_are_what_set_option_takes():
    assert locksmith.option_names() == OPTIONS
    with Client() as c:
        for name in OPTIONS:
            c.set_option(name, {"etcd-api": "v3", "timeout": "3s", "queue-ttl": "30s"}.get(name, ""))


def test_config_warnings_name_file_and_line(tmp_path):
    with Config.parse("A=1\nnot an assignment\nB=2\n", CONF) as c:
        assert len(c.warnings) == 1
        assert c.warnings[0].startswith(CONF + ": line 2")
        assert "not an assignment" in c.warnings[0]
    with Config.parse("A=1\n") as c:
        assert c.warnings == []
    (tmp_path / "etc" / "flatcar").mkdir(parents=True)
    (tmp_path / "etc" / "flatcar" / "update.conf").write_text("GROUP=x\n}{\n")
    with Config.load(root=tmp_path, environment=False) as c:
        assert [w.split(": line")[0] for w in c.warnings] == [str(tmp_path / "etc" / "flatcar" / "update.conf")]


# ---- Client.load_settings and settings ---------------------------------------------------------

@pytest.fixture
def daemon_conf(etcd):
    text = ("LOCKSMITHD_ENDPOINT=%s\nLOCKSMITHD_GROUP=from-conf\nLOCKSMITHD_TIMEOUT=3s\nLOCKSMITHD_ETCD_API=v2\n"
            "LOCKSMITHD_ETCD_USERNAME=root\nLOCKSMITHD_ETCD_PASSWORD=conf-s3cret\n" % etcd.endpoint)
    with Config.parse(text, CONF) as c:
        yield c


def test_load_settings_order(etcd, group, daemon_conf, monkeypatch):
    monkeypatch.setenv("LOCKSMITHCTL_GROUP", "from-environment")
    monkeypatch.setenv("LOCKSMITHCTL_TIMEOUT", "4s")
    with Client(group=group) as c:
        assert c.load_settings("LOCKSMITHCTL", daemon_conf) == 5
        s = by_name(c)
        assert s["group"] == Setting("group", group, "")                        # set by the program
        assert s["timeout"] == Setting("timeout", "4s", "LOCKSMITHCTL_TIMEOUT")  # the environment
        assert s["etcd-api"] == Setting("etcd-api", "v2", "LOCKSMITHD_ETCD_API in " + CONF)  # the config
        assert s["endpoint"] == Setting("endpoint", etcd.endpoint, "LOCKSMITHD_ENDPOINT in " + CONF)
        assert s["etcd-password"] == Setting("etcd-password", "(hidden)", "LOCKSMITHD_ETCD_PASSWORD in " + CONF)
        assert s["proxy"] == Setting("proxy", None, None)
        assert [x.name for x in c.settings()] == OPTIONS
        assert "s3cret" not in repr(c.settings())
        assert c.key == locksmith.group_key(group)
        with c.status() as semaphore:  # the settings are the client's
            assert semaphore.to_json() == FRESH
        assert c.endpoint.rstrip("/") == etcd.endpoint and c.api == "v2"
    with Client() as c:  # nothing set by the program: the environment wins over the config
        assert c.load_settings("LOCKSMITHCTL", daemon_conf) == 6
        assert by_name(c)["group"] == Setting("group", "from-environment", "LOCKSMITHCTL_GROUP")


def test_load_settings_without_the_environment(daemon_conf, monkeypatch):
    monkeypatch.setenv("LOCKSMITHCTL_GROUP", "from-environment")
    with Client(environment=False) as c:
        assert c.load_settings("LOCKSMITHCTL", daemon_conf) == 6
        assert by_name(c)["group"] == Setting("group", "from-conf", "LOCKSMITHD_GROUP in " + CONF)
    with Client(environment=False) as c:
        assert c.load_settings("LOCKSMITHCTL") == 0
        assert all(s.value is None and s.origin is None for s in c.settings())
    with Client() as c:
        assert c.load_settings("LOCKSMITHCTL", None) == 1


def test_load_settings_from_a_config_with_the_environment(tmp_path, monkeypatch):
    conf = tmp_path / "etc" / "coreos" / "update.conf"
    conf.parent.mkdir(parents=True)
    conf.write_text("LOCKSMITHD_GROUP=file-group\nLOCKSMITHD_ETCD_API=v3\n")
    monkeypatch.setenv("LOCKSMITHD_GROUP", "daemon-environment")
    with Config.load(root=tmp_path) as config, Client(environment=False) as c:
        assert c.load_settings("LOCKSMITHCTL", config) == 2
        s = by_name(c)
        assert s["group"] == Setting("group", "daemon-environment", "LOCKSMITHD_GROUP in the environment")
        assert s["etcd-api"].origin == "LOCKSMITHD_ETCD_API in %s" % conf


def test_a_bad_value_names_the_variable_the_file_and_the_option(monkeypatch):
    monkeypatch.setenv("LOCKSMITHCTL_TIMEOUT", "forever")
    with Client() as c:
        with pytest.raises(InvalidArgument) as e:
            c.load_settings("LOCKSMITHCTL")
        assert "LOCKSMITHCTL_TIMEOUT" in e.value.strerror and "forever" in e.value.strerror
        assert e.value.option == "timeout"
    monkeypatch.delenv("LOCKSMITHCTL_TIMEOUT")
    with Config.parse("LOCKSMITHD_ETCD_API=v9\n", "/etc/flatcar/update.conf") as conf, Client() as c:
        with pytest.raises(InvalidArgument) as e:
            c.load_settings("LOCKSMITHCTL", conf)
        assert "LOCKSMITHD_ETCD_API" in e.value.strerror and "/etc/flatcar/update.conf" in e.value.strerror
        assert e.value.option == "etcd-api"
        c.set_option("etcd-api", "v2")  # the program's own value wins: the bad one is not read
        assert c.load_settings("LOCKSMITHCTL", conf) == 0


def test_load_settings_bad_arguments(daemon_conf):
    with Client() as c:
        for prefix in ["", "lockmithctl", "A-B", "A B", "\xe9"]:
            with pytest.raises(InvalidArgument) as e:
                c.load_settings(prefix, daemon_conf)
            assert "prefix" in e.value.strerror and e.value.option is None
        with pytest.raises(InvalidArgument):
            c.load_settings("A\0B")
        with pytest.raises(TypeError):
            c.load_settings("LOCKSMITHCTL", {"LOCKSMITHD_GROUP": "x"})
        assert all(s.value is None for s in c.settings())
    daemon_conf.close()
    with Client() as c, pytest.raises(ValueError, match="closed config"):
        c.load_settings("LOCKSMITHCTL", daemon_conf)


def test_settings_hide_passwords_and_credentials(tmp_path):
    with Client(proxy="http://user:s3cret@proxy.example:3128", password="s3cret", group="tab\there",
                timeout="1500ms", endpoints=["http://127.0.0.1:1", "https://10.0.0.1:2379/"]) as c:
        s = by_name(c)
        assert s["proxy"] == Setting("proxy", "http://***@proxy.example:3128", "")
        assert s["etcd-password"].value == "(hidden)"
        assert s["group"].value == '"tab\\there"'
        assert s["timeout"].value == "1.5s"
        assert s["endpoint"].value == "http://127.0.0.1:1,https://10.0.0.1:2379"
        assert "s3cret" not in repr(c.settings())


def test_environment_passes_the_real_settings(tmp_path):
    # Issue 25: a hook's locksmithctl got LOCKSMITHCTL_ETCD_PASSWORD=(hidden) from the display
    # values; the environment carries the real ones, and a password file rather than its password.
    with Client(proxy="http://user:s3cret@proxy.example:3128", password="s3cret", group="web",
                endpoints=["http://127.0.0.1:1"]) as c:
        env = c.environment()
        assert "LOCKSMITHCTL_ETCD_PASSWORD=s3cret" in env
        assert "LOCKSMITHCTL_PROXY=http://user:s3cret@proxy.example:3128" in env
        assert "LOCKSMITHCTL_GROUP=web" in env and "LOCKSMITHCTL_ENDPOINT=http://127.0.0.1:1" in env
        assert "LOCKSMITHD_GROUP=web" in c.environment("LOCKSMITHD")
        with pytest.raises(InvalidArgument, match="prefix"):
            c.environment("lower")
    password = tmp_path / "password"
    password.write_text("file-s3cret\n")
    password.chmod(0o600)
    with Client(password_file=str(password)) as c:
        env = c.environment()
        assert "LOCKSMITHCTL_ETCD_PASSWORD_FILE=%s" % password in env
        assert not any("file-s3cret" in e or e.startswith("LOCKSMITHCTL_ETCD_PASSWORD=") for e in env)


def test_options_of_a_failure(etcd):
    with Client() as c:
        with pytest.raises(InvalidArgument) as e:
            c.set_option("etcd-api", "v9")
        assert e.value.option == "etcd-api"
        with pytest.raises(InvalidArgument) as e:
            c.set_option("no-such-option", "x")
        assert e.value.option is None
    with Client("http://127.0.0.1:9", timeout=0.2) as c:
        with pytest.raises(locksmith.Unreachable) as e:
            c.status()
        assert e.value.option is None


def test_client_warnings(tmp_path):
    password = tmp_path / "password"
    password.write_text("file-s3cret\n")
    password.chmod(0o644)
    with Client(password_file=str(password)) as c:
        assert len(c.warnings) == 1
        assert str(password) in c.warnings[0] and "s3cret" not in c.warnings[0]
        assert by_name(c)["etcd-password-file"].value == str(password)
    password.chmod(0o600)
    with Client(password_file=str(password)) as c:
        assert c.warnings == []
    conf = tmp_path / "etc" / "coreos" / "update.conf"
    conf.parent.mkdir(parents=True)
    conf.write_text("LOCKSMITHD_ETCD_PASSWORD=conf-s3cret\n")
    conf.chmod(0o644)
    with Config.load(root=tmp_path, environment=False) as config, Client(environment=False) as c:
        c.load_settings("LOCKSMITHCTL", config)
        assert len(c.warnings) == 1 and str(conf) in c.warnings[0] and "s3cret" not in c.warnings[0]


def test_key_follows_the_group():
    with Client() as c:
        assert c.key == locksmith.DEFAULT_KEY
        c.set_option("group", "prod/database")
        assert c.key == locksmith.group_key("prod/database")
    c.close()
    with pytest.raises(ValueError, match="closed client"):
        c.key


# ---- tracing, prepare -------------------------------------------------------------------------

def test_trace_sees_one_line_per_request_and_no_password(etcd, group, api):
    lines = []
    with Client(etcd.endpoint, group, api=api) as c:
        if api == "v2":  # etcd has no authentication on: v2 sends it, and etcd ignores it
            c.set_option("etcd-username", "root")
            c.set_option("etcd-password", "s3cret")
        c.set_trace(lines.append)
        c.status().close()
        c.lock("tracer")
        with pytest.raises(locksmith.Busy):
            c.lock("tracer2")
        c.unlock("tracer")
        assert len(lines) == c.stats.requests >= 4
        assert all(line.split()[0] in ("GET", "PUT", "POST", "DELETE") for line in lines), lines
        assert all(etcd.endpoint in line and "s3cret" not in line for line in lines), lines
        c.set_trace(None)
        c.status().close()
        assert len(lines) == c.stats.requests - 1


def test_the_trace_callback_is_kept_alive(etcd, group):
    seen = []
    with Client(etcd.endpoint, group) as c:
        c.set_trace(lambda line: seen.append(line))  # no other reference to the callable
        gc.collect()
        c.status().close()
        c.set_option("timeout", "2s")  # a new connection keeps the trace
        c.status().close()
        assert len(seen) >= 2


def test_an_exception_in_the_trace_callback_does_not_break_the_request(etcd, group):
    def broken(line):
        raise RuntimeError("trace failed")
    hook_calls = []
    old_hook = sys.unraisablehook
    sys.unraisablehook = hook_calls.append
    try:
        with Client(etcd.endpoint, group) as c:
            c.set_trace(broken)
            with c.status() as s:
                assert s.to_json() == FRESH
    finally:
        sys.unraisablehook = old_hook
    assert hook_calls and isinstance(hook_calls[0].exc_value, RuntimeError)


def test_set_trace_bad_arguments():
    with Client() as c:
        with pytest.raises(TypeError):
            c.set_trace("not callable")


def test_prepare_sends_nothing():
    with Client("http://127.0.0.1:9", timeout=0.2) as c:
        c.prepare()
        assert c.stats.requests == 0
        with pytest.raises(locksmith.Unreachable):
            c.status()


# ---- cancel -----------------------------------------------------------------------------------

def test_cancel_from_another_thread_ends_a_wait(etcd, group, api):
    with Client(etcd.endpoint, group, api=api) as c:
        c.status().close()
        cancelled_at = []

        def cancel_later():
            time.sleep(0.3)
            cancelled_at.append(time.monotonic())
            c.cancel()  # the waiting thread holds the client: cancel() must not wait for it

        t = threading.Thread(target=cancel_later)
        t.start()
        with pytest.raises(Cancelled) as e:
            c.wait(30)
        ended = time.monotonic()
        t.join()
        assert e.value.errno == errno.ECANCELED and isinstance(e.value, LocksmithError)
        assert ended - cancelled_at[0] < 1.5
        # Every later call fails at once, sending nothing.
        before = c.stats.requests
        start = time.monotonic()
        for call in (c.status, c.read, lambda: c.lock("x"), lambda: c.unlock("x"), lambda: c.set_max(2),
                     lambda: c.wait(30), c.groups):
            with pytest.raises(Cancelled):
                call()
        assert time.monotonic() - start < 1.0
        assert c.stats.requests == before
        c.cancel(False)
        with c.status() as s:
            assert s.to_json() == FRESH
        c.lock("after-cancel")
        c.unlock("after-cancel")
        assert c.wait(0.1) is False


def test_cancel_from_a_signal_handler_while_another_thread_waits(etcd, group):
    with Client(etcd.endpoint, group) as c:
        c.status().close()
        outcome = []

        def waiter():
            try:
                c.wait(30)
                outcome.append("returned")
            except Cancelled:
                outcome.append("cancelled")

        old = signal.signal(signal.SIGALRM, lambda signum, frame: c.cancel())
        try:
            t = threading.Thread(target=waiter)
            start = time.monotonic()
            t.start()
            signal.setitimer(signal.ITIMER_REAL, 0.5)
            t.join(10)  # the handler runs in this (the main) thread, during the join
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, old)
        assert outcome == ["cancelled"]
        assert time.monotonic() - start < 3
        c.cancel(False)
        assert c.read() is not None


def test_cancel_bad_arguments_and_closed(etcd):
    c = Client(etcd.endpoint)
    with pytest.raises(TypeError):
        c.cancel(1)
    c.close()
    with pytest.raises(ValueError, match="closed client"):
        c.cancel()


def test_close_waits_for_a_wait_that_is_cancelled(etcd, group):
    c = Client(etcd.endpoint, group)
    c.status().close()
    errors = []

    def waiter():
        try:
            c.wait(30)
        except Cancelled:
            errors.append("cancelled")

    t = threading.Thread(target=waiter)
    t.start()
    time.sleep(0.2)
    c.cancel()
    c.close()  # takes the client once the wait has ended
    t.join(5)
    assert errors == ["cancelled"] and c.closed


# ---- last_seen, groups ------------------------------------------------------------------------

def test_last_seen(etcd, group, api):
    with Client(etcd.endpoint, group, api=api) as c:
        assert c.last_seen() is None
        assert c.stats.requests == 0
        assert c.read() is None
        assert c.last_seen() is None
        c.status().close()
        requests = c.stats.requests
        with c.last_seen() as s:
            assert s.to_json() == FRESH
            s.lock("local-only")  # a copy of the caller's
        with c.last_seen() as s:
            assert s.holders == []
        assert c.stats.requests == requests
        c.lock("seen")
        with c.last_seen() as s:
            assert s.holders == ["seen"]
        etcd.put(api, c.key, "not-a-semaphore")
        with pytest.raises(CorruptSemaphore):
            c.status()
        with pytest.raises(CorruptSemaphore):
            c.last_seen()


def test_groups(etcd, group, api):
    names = [group + "-b", group + "-a/slash", group + "-sp ace"]
    with Client(etcd.endpoint, api=api) as c:
        c.status().close()  # the default group
        c.set_option("group", names[0])
        c.set_max(3)
        c.set_option("group", names[1])
        c.lock("holder-1")
        etcd.put(api, locksmith.group_key(names[2]), "not-a-semaphore")
        before = c.stats.requests
        groups = c.groups()
        assert c.stats.requests == before + 1
    assert groups[0].name == "" and groups[0].key == locksmith.DEFAULT_KEY
    assert [g.name for g in groups] == sorted(g.name for g in groups)
    found = {g.name: g for g in groups if g.name in names}
    assert sorted(found) == sorted(names)
    b, a, bad = (found[n] for n in names)
    assert isinstance(b.semaphore, Semaphore) and b.semaphore.max == 3 and b.error is None
    assert a.semaphore.holders == ["holder-1"] and a.key == locksmith.group_key(names[1])
    assert bad.semaphore is None and locksmith.group_key(names[2]) in bad.error
    # the copies outlive the listing and the client
    del groups
    gc.collect()
    assert b.semaphore.to_json() == '{"semaphore":3,"max":3,"holders":null}'
    # listing created nothing
    with Client(etcd.endpoint, group + "-never", api=api) as c:
        assert c.read() is None
        assert (group + "-never") not in [g.name for g in c.groups()]


# ---- DaemonSettings ---------------------------------------------------------------------------

def test_daemon_settings_defaults():
    with Config.parse("", CONF) as conf, DaemonSettings(conf) as d:
        assert d.strategy == "reboot"
        assert d.window is None and d.window_sources is None
        assert d.broadcast_delay == 300 * 10**9
        assert d.slot_wait == "watch"
        assert d.utmp == "/var/run/utmp"
        assert d.group == ""
        assert d.warnings == []
        assert repr(d) == "<locksmith.DaemonSettings strategy='reboot' group=''>"
        assert d.reboot_source == "auto" and d.reboot_source_argument == "/run/reboot-required"
        assert d.reboot_check_interval == 3600 * 10**9
        assert d.hook_timeout == 600 * 10**9
        assert d.hooks_directory == "/etc/locksmith"
        assert d.metrics_file is None
        assert d.fleetlock_id is None


def test_daemon_settings_fleetlock(tmp_path):
    text = "REBOOT_STRATEGY=fleetlock\nLOCKSMITHD_FLEETLOCK_URL=http://fleetlock.example:3333\n" \
           "LOCKSMITHD_FLEETLOCK_ID=node-7\nLOCKSMITHD_GROUP=web\n"
    with Config.parse(text) as conf, DaemonSettings(conf, tmp_path) as d:
        assert d.strategy == "fleetlock"
        assert d.fleetlock_id == "node-7"
        assert d.slot_wait == "poll"
        with d.client(environment=False) as c:
            assert [s.value for s in c.settings() if s.name == "fleetlock-url"] == ["http://fleetlock.example:3333"]
    with Config.parse("REBOOT_STRATEGY=fleetlock\n") as conf:
        with pytest.raises(locksmith.InvalidArgument, match="needs LOCKSMITHD_FLEETLOCK_URL"):
            DaemonSettings(conf, tmp_path)
    # Another strategy: the FleetLock settings are warned about and not used.
    with Config.parse("REBOOT_STRATEGY=etcd-lock\nLOCKSMITHD_FLEETLOCK_URL=http://h/\n") as conf, DaemonSettings(conf, tmp_path) as d:
        assert d.fleetlock_id is None
        assert any("has no effect: REBOOT_STRATEGY is etcd-lock" in w for w in d.warnings)
        with d.client(environment=False) as c:
            assert [s.value for s in c.settings() if s.name == "fleetlock-url"] == [None]


@pytest.mark.parametrize("value, kind, argument", [
    ("auto", "auto", "{root}/run/reboot-required"),
    ("update-engine", "update-engine", ""),
    ("file", "file", "{root}/run/reboot-required"),
    ("file:/var/lib/needed", "file", "{root}/var/lib/needed"),
    ("command:needs-restarting -r", "command", "needs-restarting -r"),
])
def test_daemon_settings_reboot_sources(value, kind, argument, tmp_path):
    text = "LOCKSMITHD_REBOOT_SOURCE=%s\nLOCKSMITHD_HOOK_TIMEOUT=30s\nLOCKSMITHD_REBOOT_CHECK_INTERVAL=5m\n" \
           "LOCKSMITHD_METRICS_FILE=/run/locksmith.prom\n" % value
    with Config.parse(text) as conf, DaemonSettings(conf, tmp_path) as d:
        assert d.reboot_source == kind
        assert d.reboot_source_argument == argument.format(root=tmp_path)
        assert d.hook_timeout == 30 * 10**9 and d.reboot_check_interval == 300 * 10**9
        assert d.hooks_directory == str(tmp_path / "etc" / "locksmith")
        assert d.metrics_file == str(tmp_path / "run" / "locksmith.prom")


def test_daemon_settings_window_in_a_zone():
    text = "REBOOT_WINDOW_START=02:30\nREBOOT_WINDOW_LENGTH=1h\nLOCKSMITHD_REBOOT_WINDOW_TZ=Europe/Berlin\n"
    with Config.parse(text, CONF) as conf, DaemonSettings(conf) as d:
        with d.window as w:
            assert w.zone == "Europe/Berlin" and w.next(1616846400).start == 1616895000
        assert d.window_zone_source == 'LOCKSMITHD_REBOOT_WINDOW_TZ="Europe/Berlin" (from %s)' % CONF
    with Config.parse("REBOOT_WINDOW_START=02:30\nREBOOT_WINDOW_LENGTH=1h\n") as conf, DaemonSettings(conf) as d:
        assert d.window.zone is None and d.window_zone_source is None


def test_daemon_settings_from_a_config(etcd, group, tmp_path, monkeypatch):
    monkeypatch.setenv("LOCKSMITHD_GROUP", "not-from-the-environment")  # only the config counts
    text = ("REBOOT_STRATEGY=best-effort\nLOCKSMITHD_REBOOT_WINDOW_START=thu 23:00\nREBOOT_WINDOW_LENGTH=1h30m\n"
            "LOCKSMITHD_REBOOT_BROADCAST_DELAY=90s\nLOCKSMITHD_SLOT_WAIT=poll\nLOCKSMITHD_UTMP=/run/utmp\n"
            "LOCKSMITHD_GROUP=%s\nLOCKSMITHD_ENDPOINT=%s\nLOCKSMITHD_TIMEOUT=2s\nno assignment\n" % (group, etcd.endpoint))
    with Config.parse(text, CONF) as conf:
        d = DaemonSettings(conf, root=tmp_path)
    with d:  # outlives its config
        assert d.strategy == "etcd-lock"
        w = d.window
        assert isinstance(w, Window) and str(w) == "Thu 23:00 1h30m0s"
        assert w.seconds_to_start(1432191600) == 23 * 3600  # Thu 00:00 in Los Angeles
        assert d.window_sources == ('LOCKSMITHD_REBOOT_WINDOW_START="thu 23:00" (from %s)' % CONF,
                                    'REBOOT_WINDOW_LENGTH="1h30m" (from %s)' % CONF)
        assert d.broadcast_delay == 90 * 10**9
        assert d.slot_wait == "poll"
        assert d.utmp == str(tmp_path / "run" / "utmp")
        assert d.group == group
        assert len(d.warnings) == 2
        assert any("best-effort" in x and "etcd-lock" in x for x in d.warnings)
        assert any("no assignment" in x and CONF in x for x in d.warnings)
        with d.client() as c:
            assert c.key == locksmith.group_key(group)
            s = by_name(c)
            assert s["group"] == Setting("group", group, "LOCKSMITHD_GROUP in " + CONF)
            assert s["timeout"].value == "2s"
            with c.status() as semaphore:
                assert semaphore.to_json() == FRESH
            assert c.endpoint.rstrip("/") == etcd.endpoint
        with d.client(environment=False) as c:
            assert c.key == locksmith.group_key(group)
            assert isinstance(c, Client)
    with pytest.raises(ValueError, match="closed daemon settings"):
        d.strategy


@pytest.mark.parametrize("strategy", ["etcd-lock", "reboot", "off"])
def test_daemon_settings_strategies(strategy):
    with Config.parse("REBOOT_STRATEGY=%s\n" % strategy) as conf, DaemonSettings(conf, "/") as d:
        assert d.strategy == strategy and d.warnings == []


@pytest.mark.parametrize("text, variable", [
    ("REBOOT_STRATEGY=sometimes\n", "REBOOT_STRATEGY"),
    ("LOCKSMITHD_REBOOT_WINDOW_START=Thu 23:00\n", "LOCKSMITHD_REBOOT_WINDOW_START"),
    ("REBOOT_WINDOW_LENGTH=1h\n", "REBOOT_WINDOW_LENGTH"),
    ("LOCKSMITHD_REBOOT_WINDOW_START=Thx 23:00\nLOCKSMITHD_REBOOT_WINDOW_LENGTH=1h\n", "LOCKSMITHD_REBOOT_WINDOW_START"),
    ("LOCKSMITHD_REBOOT_BROADCAST_DELAY=-1s\n", "LOCKSMITHD_REBOOT_BROADCAST_DELAY"),
    ("LOCKSMITHD_SLOT_WAIT=sometimes\n", "LOCKSMITHD_SLOT_WAIT"),
    ("LOCKSMITHD_ETCD_API=v9\n", "LOCKSMITHD_ETCD_API"),
    ("LOCKSMITHD_REBOOT_SOURCE=sometimes\n", "LOCKSMITHD_REBOOT_SOURCE"),
    ("LOCKSMITHD_REBOOT_SOURCE=file:relative\n", "LOCKSMITHD_REBOOT_SOURCE"),
    ("LOCKSMITHD_REBOOT_SOURCE=command:\n", "LOCKSMITHD_REBOOT_SOURCE"),
    ("LOCKSMITHD_HOOK_TIMEOUT=100ms\n", "LOCKSMITHD_HOOK_TIMEOUT"),
    ("LOCKSMITHD_REBOOT_CHECK_INTERVAL=never\n", "LOCKSMITHD_REBOOT_CHECK_INTERVAL"),
    ("LOCKSMITHD_METRICS_FILE=x.prom\n", "LOCKSMITHD_METRICS_FILE"),
    ("REBOOT_WINDOW_START=1:00\nREBOOT_WINDOW_LENGTH=1h\nLOCKSMITHD_REBOOT_WINDOW_TZ=Nowhere/Atlantis\n", "LOCKSMITHD_REBOOT_WINDOW_TZ"),
])
def test_daemon_settings_bad_values_name_the_variable_and_the_file(text, variable):
    with Config.parse(text, "/etc/flatcar/update.conf") as conf:
        with pytest.raises(InvalidArgument) as e:
            DaemonSettings(conf)
    assert variable in e.value.strerror and "/etc/flatcar/update.conf" in e.value.strerror


def test_daemon_settings_bad_arguments():
    with Config.parse("") as conf:
        for root in ["relative", "", b"rel"]:
            with pytest.raises(InvalidArgument):
                DaemonSettings(conf, root)
        with pytest.raises(TypeError):
            DaemonSettings(conf, 5)
    with pytest.raises(TypeError):
        DaemonSettings("REBOOT_STRATEGY=off")
    with Config.parse("") as conf, DaemonSettings(conf) as d:
        with pytest.raises(TypeError):
            d.client(environment=0)


# ---- the reboot-slot record ------------------------------------------------------------------

def test_slot_record_round_trip(tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    assert locksmith.slot_record(root) is None  # no record: the daemon never ran here
    key = locksmith.group_key("prod/database")
    locksmith.record_slot(key, "0123456789abcdef0123456789abcdef", root)
    record = locksmith.slot_record(str(root))
    assert record == SlotRecord(key, "0123456789abcdef0123456789abcdef") and record.held
    path = root / "var" / "lib" / "locksmith" / "reboot-slot"
    assert stat.S_IMODE(path.lstat().st_mode) == 0o644
    locksmith.record_slot(None, None, root=root)
    record = locksmith.slot_record(root)
    assert record == SlotRecord(None, None) and not record.held


@pytest.mark.parametrize("id", ["node-1", "a b", 'q"uote', "#hash", "$HOME", "é", "  lead", "back\\slash"])
def test_every_id_the_record_takes_reads_back(tmp_path, id):
    locksmith.record_slot(locksmith.DEFAULT_KEY, id, tmp_path)
    assert locksmith.slot_record(tmp_path) == SlotRecord(locksmith.DEFAULT_KEY, id)


def test_slot_record_bad_arguments(tmp_path):
    for key, id in [(locksmith.DEFAULT_KEY, None), (None, "node"), ("not/a/key", "node"), (locksmith.DEFAULT_KEY, ""),
                    (locksmith.DEFAULT_KEY, "a\nb"), (locksmith.DEFAULT_KEY, "x" * 256)]:
        with pytest.raises(InvalidArgument):
            locksmith.record_slot(key, id, tmp_path)
    with pytest.raises(InvalidArgument):
        locksmith.record_slot(None, None, "relative")
    with pytest.raises(InvalidArgument):
        locksmith.slot_record("relative")
    assert locksmith.slot_record(tmp_path) is None


def test_a_file_that_is_not_a_record(tmp_path):
    path = tmp_path / "var" / "lib" / "locksmith" / "reboot-slot"
    path.parent.mkdir(parents=True)
    for text in ["garbage\n", "", "HELD=maybe\n", "HELD=yes\n"]:
        path.write_text(text)
        with pytest.raises(BadData) as e:
            locksmith.slot_record(tmp_path)
        assert str(path) in e.value.strerror


def test_a_symlink_in_place_of_the_record_is_never_followed(tmp_path):
    path = tmp_path / "var" / "lib" / "locksmith" / "reboot-slot"
    path.parent.mkdir(parents=True)
    target = tmp_path / "target"
    target.write_text("HELD=yes\nKEY=%s\nID=through-the-link\n" % locksmith.DEFAULT_KEY)
    path.symlink_to(target)
    with pytest.raises(BadData):
        locksmith.slot_record(tmp_path)
    locksmith.record_slot(None, None, tmp_path)
    assert not path.is_symlink() and locksmith.slot_record(tmp_path) == SlotRecord(None, None)
    assert "through-the-link" in target.read_text()


def test_a_fifo_in_place_of_the_record_does_not_block(tmp_path):
    path = tmp_path / "var" / "lib" / "locksmith" / "reboot-slot"
    path.parent.mkdir(parents=True)
    os.mkfifo(path)
    result = []
    t = threading.Thread(target=lambda: result.append(pytest.raises(BadData, locksmith.slot_record, tmp_path)),
                         daemon=True)
    t.start()
    t.join(5)
    if t.is_alive():  # unblock it: a writer that closes at once
        os.close(os.open(path, os.O_WRONLY | os.O_NONBLOCK))
        t.join(5)
        pytest.fail("slot_record() blocked on a FIFO")
    assert result


# ---- Holder records -----------------------------------------------------------------------------

def test_holder_records_follow_lock_and_unlock(etcd, group, api):
    import socket
    with Client(etcd.endpoint, api=api, group=group) as c:
        c.set_max(3)
        assert c.holder_records() == []
        before = time.time()
        c.lock("b-holder")
        c.lock("a-holder")
        records = c.holder_records()
        assert [r.id for r in records] == ["a-holder", "b-holder"]
        for r in records:
            assert isinstance(r, locksmith.HolderRecord)
            assert before - 1 <= r.since <= time.time() + 1
            assert r.host == socket.gethostname()
        # The document stays what the original writes: no member for the records.
        with c.status() as s:
            assert s.to_json() == '{"semaphore":1,"max":3,"holders":["a-holder","b-holder"]}'
        c.unlock("b-holder")
        assert [r.id for r in c.holder_records()] == ["a-holder"]
        with pytest.raises(locksmith.NotHeld):
            c.unlock("b-holder")


def test_holder_records_that_are_not_valid_are_left_out(etcd, group, api):
    with Client(etcd.endpoint, api=api, group=group) as c:
        c.set_max(5)
        c.lock("good")
        prefix = locksmith.group_key(group) + ".holders/"
        etcd.put(api, prefix + "not-json", "{")
        etcd.put(api, prefix + "no-since", '{"host":"x"}')
        etcd.put(api, prefix + "year-20000", '{"since":569000000000,"host":"x"}')
        etcd.put(api, prefix + "control", '{"since":1,"host":"a\\u0007b"}')
        etcd.put(api, prefix + "bad%zzescape", '{"since":1,"host":"x"}')
        etcd.put(api, prefix + "huge", '{"since":1,"host":"%s"}' % ("x" * 2000))
        etcd.put(api, prefix + "written+by+hand", '{"since":1700000000}')
        records = c.holder_records()
        assert [(r.id, r.since, r.host) for r in records if r.id != "good"] == [("written by hand", 1700000000, "")]


def test_unlock_record_keeps_a_slot_given_back_and_taken_again(etcd, group, api):
    # Security issue 26, item 7b, through the binding: the record read names the holding.
    with Client(etcd.endpoint, api=api, group=group) as c:
        c.set_max(2)
        c.lock("holder")
        [read] = c.holder_records()
        assert read.key == locksmith.group_key(group) + ".holders/holder" and read.revision > 0
        c.unlock("holder")
        c.lock("holder")
        with pytest.raises(locksmith.Changed):
            c.unlock_record("holder", read.revision)
        assert c.status().holders == ["holder"]
        [fresh] = c.holder_records()
        assert fresh.revision > read.revision
        with pytest.raises(locksmith.NotHeld):
            c.unlock_record("someone-else", fresh.revision)
        with pytest.raises(locksmith.InvalidArgument):
            c.unlock_record("holder", 0)
        c.unlock_record("holder", fresh.revision)
        assert c.status().holders == [] and c.holder_records() == []


def test_queue_entries_no_waiter_made_are_listed_marked_and_skipped(etcd, group, api):
    # Security issue 26, item 5, through the binding.
    with Client(etcd.endpoint, api=api, group=group) as c:
        c.set_max(1)
        prefix = locksmith.group_key(group) + ".queue/"
        etcd.put(api, prefix + "0000000000000001", '{"id":"planted","since":1700000000,"host":"h"}')
        etcd.put(api, prefix + "0000000000000002", "garbage")
        assert c.queue() == []
        entries = c.queue_all()
        assert [(e.id, e.since, e.host, e.ignored) for e in entries] == [
            ("planted", 1700000000, "h", locksmith.QUEUE_NEVER_EXPIRES), ("", 0, "", locksmith.QUEUE_UNREADABLE)]
        assert [e.key for e in entries] == [prefix + "0000000000000001", prefix + "0000000000000002"]
        assert c.acquire("behind-them", timeout=10)
        assert c.status().holders == ["behind-them"]
        # All of it in one read (LOCKSMITH_6): the same as the three reads.
        semaphore, records, queue = c.get_all()
        assert semaphore.holders == ["behind-them"] and records == c.holder_records() and queue == c.queue_all()
        assert [r.id for r in records] == ["behind-them"] and [e.ignored for e in queue] == [
            locksmith.QUEUE_NEVER_EXPIRES, locksmith.QUEUE_UNREADABLE]


def test_holder_records_of_a_closed_or_unreachable_client():
    with Client("http://127.0.0.1:9", api="v3", timeout="200ms") as c:
        with pytest.raises(locksmith.Unreachable):
            c.holder_records()
    with pytest.raises(ValueError):
        c.holder_records()


def test_daemon_state_file_round_trip(tmp_path):
    """The state file as locksmithd writes it, read back with the library's checks (issue 18)."""
    import fcntl
    import struct
    text = locksmith.daemon_state_text("etcd-lock", "reboot-planned", 1764000000,
                                       slot=(locksmith.group_key("web"), "a" * 32), slot_since=1764000100)
    directory = tmp_path / "run" / "locksmith"
    directory.mkdir(parents=True)
    path = directory / "state"
    path.write_text(text)
    found = locksmith.daemon_file(root=tmp_path)
    assert found.running is False  # nobody holds a write lock on it
    assert found.values["SLOT_HELD"] == "yes" and found.values["SLOT_GROUP"] == "web"
    assert found.values["SLOT_SINCE"] == "1764000100" and found.values["STATE"] == "reboot-planned"
    with open(path) as f:
        fcntl.flock(f, fcntl.LOCK_EX)  # any reader can flock it: proves nothing
        assert locksmith.daemon_file(root=tmp_path).running is False
    with open(path, "r+") as f:  # the daemon's write lock, which only a writer can take
        fcntl.fcntl(f.fileno(), fcntl.F_OFD_SETLK, struct.pack("hhqqi", fcntl.F_WRLCK, os.SEEK_SET, 0, 0, 0))
        assert locksmith.daemon_file(root=tmp_path).running is True
    assert locksmith.daemon_file(locksmith.daemon.COORDINATOR_PATH, root=tmp_path) is None
    path.chmod(0o666)
    with pytest.raises(locksmith.AccessDenied, match="writable by nobody else"):
        locksmith.daemon_file(root=tmp_path)
    with pytest.raises(locksmith.InvalidArgument, match="state"):
        locksmith.daemon_state_text("etcd-lock", "Rebooting now", 1)
    with pytest.raises(locksmith.InvalidArgument, match="both set or both NULL"):
        locksmith.daemon_state_text("etcd-lock", "running", 1, slot=(locksmith.group_key("web"), None))


def test_config_line_points_at_the_assignment():
    config = locksmith.Config.parse("# comment\nREBOOT_STRATEGY=reboot\n\nLOCKSMITHD_GROUP=\"a\\\nb\"\nLOCKSMITHD_GROUP=web\n", "update.conf")
    assert config.line("REBOOT_STRATEGY") == 2
    assert config.line("LOCKSMITHD_GROUP") == 6  # the last assignment wins, after a continued line
    assert config.line("LOCKSMITHD_ENDPOINT") is None
