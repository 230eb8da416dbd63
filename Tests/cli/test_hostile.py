"""Hostile values stored at a semaphore key (etcd v2 and v3, default group and a named group):
every locksmithctl command that reads the semaphore and the daemon must say which key holds what
is wrong, fail (commands: exit 1), and never overwrite the value (checked byte for byte through
etcd itself). The daemon keeps running, retries, and goes on once the value is repaired."""
import base64
import itertools
import json
import os
import shutil
import subprocess
import tempfile
import time
import unittest
import urllib.error
import urllib.parse
import urllib.request

import harness

LOCKSMITHD = os.environ.get("LOCKSMITHD", os.path.join(harness.ROOT, "build", "bin", "locksmithd"))
NEED = "UPDATE_STATUS_UPDATED_NEED_REBOOT"
MACHINE_ID = "0123456789abcdef0123456789abcdef"
_ids = itertools.count(1)
etcd = bus = None
ROOT = None


def setUpModule():
    global etcd, bus, ROOT
    etcd = harness.Etcd()
    bus = harness.Bus()
    ROOT = tempfile.mkdtemp(prefix="locksmith-test-hostile-")
    os.makedirs(ROOT + "/etc")
    with open(ROOT + "/etc/machine-id", "w") as f:
        f.write(MACHINE_ID + "\n")


def tearDownModule():
    bus.stop()
    etcd.stop()
    shutil.rmtree(ROOT, ignore_errors=True)


# ---- etcd, bytes in and bytes out (bypassing the client under test) ----

def _request(method, path, data=None, form=False):
    req = urllib.request.Request(etcd.endpoint + path, method=method, data=data)
    if form:
        req.add_header("Content-Type", "application/x-www-form-urlencoded")
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def _v2path(key):
    return "/v2/keys/" + urllib.parse.quote(key, safe="/$&+,:;=@")


def _b64(data):
    return base64.b64encode(data).decode()


def put(api, key, value):
    """Stores the bytes `value` at key, replacing whatever is there (a v2 directory too)."""
    if api == "v2":
        _request("DELETE", _v2path(key) + "?recursive=true")
        status, body = _request("PUT", _v2path(key), urllib.parse.urlencode({"value": value}).encode(), form=True)
    else:
        status, body = _request("POST", "/v3/kv/put", json.dumps({"key": _b64(key.encode()), "value": _b64(value)}).encode())
    assert status in (200, 201), (status, body)


def make_directory(key, child=False):
    _request("DELETE", _v2path(key) + "?recursive=true")
    if child:
        status, body = _request("PUT", _v2path(key + "/child"), b"value=x", form=True)
    else:
        status, body = _request("PUT", _v2path(key) + "?dir=true")
    assert status in (200, 201), (status, body)


def raw(api, key):
    """What etcd holds at key: the value's bytes (v2: as etcd reports it), ("dir", nodes) for a v2
    directory, None if missing."""
    if api == "v2":
        status, body = _request("GET", _v2path(key) + "?recursive=true")
        node = json.loads(body).get("node")
        if node is None:
            return None
        if node.get("dir"):
            return ("dir", json.dumps(node.get("nodes", []), sort_keys=True))
        return node["value"].encode("utf-8")
    status, body = _request("POST", "/v3/kv/range", json.dumps({"key": _b64(key.encode())}).encode())
    kvs = json.loads(body).get("kvs")
    return base64.b64decode(kvs[0].get("value", "")) if kvs else None


# ---- the hostile values ----

def doc(fields):
    return fields.encode() if isinstance(fields, str) else fields


MANY_IDS = b'{"semaphore":-9999,"max":1,"holders":[' + b",".join(b'"%032x"' % i for i in range(10000)) + b"]}"

# (name, stored bytes, what the message must say after "<key>: ")
CASES = [
    ("not JSON", b"this is not json", "not JSON"),
    ("empty", b"", "not JSON: the value is empty"),
    ("blanks", b"  \n ", "not JSON"),
    ("single quotes", b"{'semaphore':1,'max':1}", "not JSON"),
    ("comment", b'{"semaphore":1,/* x */"max":1}', "not JSON"),
    ("byte order mark", b'\xef\xbb\xbf{"semaphore":1,"max":1,"holders":null}', "not JSON"),
    ("trailing data", b'{"semaphore":1,"max":1,"holders":null}{}', "not JSON: extra data after the document"),
    ("truncated", b'{"semaphore":1,"max":1,"holders":["a"', "not JSON"),
    ("array", b"[1,2,3]", "not a JSON object but an array"),
    ("string", b'"semaphore"', "not a JSON object but a string"),
    ("number", b"42", "not a JSON object but a number"),
    ("null", b"null", "not a JSON object but null"),
    ("boolean", b"true", "not a JSON object but a boolean"),
    ("semaphore is a string", b'{"semaphore":"1","max":1,"holders":null}', '"semaphore" is not an integer but a string'),
    ("max is a boolean", b'{"semaphore":1,"max":true,"holders":null}', '"max" is not an integer but a boolean'),
    ("max is an object", b'{"semaphore":1,"max":{"n":1},"holders":null}', '"max" is not an integer but an object'),
    ("max is a fraction", b'{"semaphore":1,"max":1.5,"holders":null}', '"max" is not an integer but a fraction'),
    ("max with an exponent", b'{"semaphore":1,"max":1e3,"holders":null}', '"max" is not an integer but a fraction'),
    ("max 1e400", b'{"semaphore":1,"max":1e400,"holders":null}', '"max" is not an integer but a fraction'),
    ("max beyond int32", b'{"semaphore":1,"max":2147483648,"holders":null}', '"max" is out of range: 2147483648'),
    ("semaphore below int32", b'{"semaphore":-2147483649,"max":1,"holders":null}', '"semaphore" is out of range: -2147483649'),
    ("max int64", b'{"semaphore":1,"max":9223372036854775807,"holders":null}', '"max" is out of range: 9223372036854775807'),
    ("max beyond int64", b'{"semaphore":1,"max":99999999999999999999,"holders":null}', '"max" is out of range: 9223372036854775807 or more'),
    ("semaphore beyond -int64", b'{"semaphore":-99999999999999999999,"max":1,"holders":null}', '"semaphore" is out of range: -9223372036854775808 or less'),
    ("holders is a number", b'{"semaphore":1,"max":1,"holders":5}', '"holders" is not an array but an integer'),
    ("holders is a string", b'{"semaphore":1,"max":1,"holders":"a"}', '"holders" is not an array but a string'),
    ("holders is an object", b'{"semaphore":1,"max":1,"holders":{"a":1}}', '"holders" is not an array but an object'),
    ("holder is a number", b'{"semaphore":0,"max":1,"holders":[1]}', "holders[0] is not a string but an integer"),
    ("holder is null", b'{"semaphore":0,"max":2,"holders":["a",null]}', "holders[1] is not a string but null"),
    ("holder is an array", b'{"semaphore":0,"max":1,"holders":[["a"]]}', "holders[0] is not a string but an array"),
    ("duplicate holders", b'{"semaphore":0,"max":3,"holders":["a","b","a"]}', 'holder "a" is listed twice'),
    ("NUL byte", b'{"semaphore":1,"max":1,"holders":null}\x00', "document contains a NUL byte"),
    ("escaped NUL in a holder", b'{"semaphore":0,"max":1,"holders":["a\\u0000b"]}', "holders[0] is not a valid machine id"),
    ("escaped NUL in a member name", b'{"semaphore":1,"max":1,"holders":null,"a\\u0000b":1}', "\\u0000 in a member name"),
    ("newline in a holder", b'{"semaphore":0,"max":2,"holders":["a\\nMACHINE ID"]}', 'holders[0] "a\\nMACHINE ID" contains a control character'),
    ("escape sequence in a holder", b'{"semaphore":0,"max":2,"holders":["\\u001b]0;owned\\u0007"]}', "contains a control character"),
    ("deep nesting", b'{"x":' + b"[" * 100 + b"]" * 100 + b"}", "not JSON: nested deeper than 32 levels"),
    ("very deep nesting", b"[" * 120000, "not JSON: nested deeper than 32 levels"),
    ("1 MiB", b'{"semaphore":1,"max":1,"holders":null,"pad":"' + b"a" * (1 << 20) + b'"}', "more than the 131072 allowed"),
    ("10,000 machine ids", MANY_IDS, "document is %d bytes, more than the 131072 allowed" % len(MANY_IDS)),
]
# Raw bytes that are not UTF-8 reach a client only through v3: etcd's v2 answers are JSON made by
# Go, which turns such bytes into U+FFFD (see V2InvalidUTF8 below).
V3_ONLY_CASES = [
    ("invalid UTF-8 in a holder", b'{"semaphore":0,"max":1,"holders":["\xff\xfe"]}', "not valid UTF-8 at byte 35"),
    ("overlong UTF-8 in a holder", b'{"semaphore":0,"max":1,"holders":["\xc0\xaf"]}', "not valid UTF-8 at byte 35"),
    ("encoded surrogate in a field kept", b'{"semaphore":1,"max":1,"holders":null,"x":"\xed\xa0\x80"}', "not valid UTF-8 at byte 43"),
    ("invalid UTF-8 in a member name", b'{"semaphore":1,"max":1,"holders":null,"\xc0\xaf":1}', "not valid UTF-8 at byte 39"),
]

# Every command that reads the semaphore. `reboot` runs as root against a private bus whose
# logind stand-in records calls (it must not be reached).
COMMANDS = [["status"], ["status", "--json"], ["lock", "someone"], ["lock"], ["unlock", "someone"], ["unlock"],
            ["set-max", "3"], ["set-max", "0"], ["reboot"], ["-debug", "status"]]

_groups = itertools.count()


def unique(name):
    return "hostile-%d-%d-%s" % (os.getpid(), next(_groups), name.replace(" ", "-").replace(",", ""))


def ctl(api, group, *args, env=None):
    e = {k: v for k, v in os.environ.items() if not k.startswith(("LOCKSMITH", "REBOOT_"))}
    e.update(LOCKSMITH_ROOT=ROOT, LOCKSMITHCTL_ENDPOINT=etcd.endpoint, LOCKSMITHCTL_ETCD_API=api,
             DBUS_SYSTEM_BUS_ADDRESS=bus.address)
    if group:
        e["LOCKSMITHCTL_GROUP"] = group
    e.update(env or {})
    return subprocess.run([harness.LOCKSMITHCTL] + list(args), env=e, capture_output=True, timeout=60)


class Logind:
    def __init__(self):
        self.log = os.path.join(bus.dir, "logind-hostile-%d.log" % next(_ids))
        self.proc = bus.start([os.path.join(harness.STANDINS, "fake-logind"), self.log])

    def calls(self):
        try:
            with open(self.log) as f:
                return [line for line in f.read().splitlines() if line]
        except FileNotFoundError:
            return []

    def stop(self):
        bus.stop_process(self.proc)


PICKED = {"not JSON", "empty", "array", "max beyond int64", "duplicate holders", "newline in a holder", "NUL byte"}


class Commands(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.logind = Logind()

    @classmethod
    def tearDownClass(cls):
        cls.logind.stop()

    def check_refused(self, api, group, key, value_before, fragment, commands=COMMANDS):
        for args in commands:
            r = ctl(api, group, *args)
            err = r.stderr.decode("utf-8", "replace")
            with self.subTest(command=" ".join(args)):
                self.assertEqual(r.returncode, 1, err)
                self.assertEqual(r.stdout, b"")
                lines = [line for line in err.splitlines() if not line.startswith("locksmithctl: debug: ")]
                self.assertTrue(lines and lines[0].startswith("Error reading semaphore: %s: " % key), err)
                self.assertIn(fragment, lines[0])
                self.assertLess(len(err), 2000, "the message quotes only the start of the value")
                self.assertTrue(all(c >= " " for c in lines[0]), "no control characters in the message: %r" % lines[0])
            store = "v2" if api == "auto" else api  # auto picks v2: this etcd serves it
            self.assertEqual(raw(store, key), value_before, "%s changed the stored value" % " ".join(args))
        self.assertEqual(self.logind.calls(), [])

    def run_cases(self, api, cases, default_group):
        for name, value, fragment in cases:
            group = "" if default_group else unique(name)
            key = harness.group_key(group)
            with self.subTest(case=name, api=api, group=group or "(default)"):
                put(api, key, value)
                before = raw(api, key)
                self.check_refused(api, group, key, before, fragment)

    def test_v2_named_group(self):
        self.run_cases("v2", CASES, False)

    def test_v3_named_group(self):
        self.run_cases("v3", CASES + V3_ONLY_CASES, False)

    def test_v2_default_group(self):
        try:
            self.run_cases("v2", CASES, True)
        finally:
            put("v2", harness.group_key(""), b'{"semaphore":1,"max":1,"holders":null}')

    def test_v3_default_group(self):
        try:
            self.run_cases("v3", CASES + V3_ONLY_CASES, True)
        finally:
            put("v3", harness.group_key(""), b'{"semaphore":1,"max":1,"holders":null}')

    def test_v2_directory_at_the_key(self):
        for group in ("", unique("dir")):
            for child in (False, True):
                key = harness.group_key(group)
                with self.subTest(group=group or "(default)", child=child):
                    make_directory(key, child=child)
                    before = raw("v2", key)
                    self.check_refused("v2", group, key, before, "is a directory, not a semaphore document")
                    _request("DELETE", _v2path(key) + "?recursive=true")
        # auto finds v2 and reports the directory too.
        group = unique("dir-auto")
        key = harness.group_key(group)
        make_directory(key)
        self.check_refused("auto", group, key, raw("v2", key), "is a directory", commands=[["status"], ["lock", "x"]])

    def test_every_api_choice_reports_the_key(self):
        group = unique("auto")
        key = harness.group_key(group)
        put("v2", key, b"{")
        self.check_refused("auto", group, key, raw("v2", key), "not JSON", commands=[["status"], ["set-max", "2"]])

    def test_all_groups_lists_each_bad_group_and_changes_nothing(self):
        for api in ("v2", "v3"):
            with self.subTest(api=api):
                groups = {}
                for name, value, fragment in [c for c in CASES if c[0] in PICKED]:
                    group = unique("all-" + name)
                    put(api, harness.group_key(group), value)
                    groups[group] = fragment
                if api == "v2":
                    directory = unique("all-dir")
                    make_directory(harness.group_key(directory))
                    groups[directory] = "is a directory"
                good = unique("all-good")
                put(api, harness.group_key(good), b'{"semaphore":1,"max":2,"holders":["m1"]}')
                before = {g: raw(api, harness.group_key(g)) for g in list(groups) + [good]}
                text = ctl(api, "", "status", "--all-groups")
                self.assertEqual(text.returncode, 1)
                out = text.stdout.decode()
                self.assertIn("group(s) hold no valid semaphore", text.stderr.decode())
                rows = {line.split()[0]: line for line in out.splitlines()[1:]}
                for group, fragment in groups.items():
                    self.assertIn("error: %s: " % harness.group_key(group), rows.get(group, ""), out)
                    self.assertIn(fragment, rows[group])
                self.assertRegex(rows[good], r"^%s\s+1\s+2\s+m1$" % good)
                self.assertNotIn("\x1b", out)
                self.assertEqual(len(out.splitlines()), len(rows) + 1, "one line per group: no forged lines")
                js = ctl(api, "", "status", "--all-groups", "--json")
                self.assertEqual(js.returncode, 1)
                listed = {g["group"]: g for g in json.loads(js.stdout)["groups"]}
                for group, fragment in groups.items():
                    self.assertIn(fragment, listed[group]["error"])
                    self.assertTrue(listed[group]["error"].startswith(harness.group_key(group) + ": "))
                self.assertEqual(listed[good]["holders"], ["m1"])
                self.assertEqual({g: raw(api, harness.group_key(g)) for g in before}, before)

    def test_group_names_with_control_characters_are_shown_quoted(self):
        for api in ("v2", "v3"):
            group = "evil\x1b[31m-%d-%s" % (os.getpid(), api)
            put(api, harness.group_key(group), b'{"semaphore":1,"max":1,"holders":null}')
            r = ctl(api, "", "status", "--all-groups")
            out = r.stdout.decode()
            self.assertNotIn("\x1b", out)
            self.assertIn('"evil\\u001b[31m-%d-%s"' % (os.getpid(), api), out)


class LargeButValid(unittest.TestCase):
    """Values that are odd but are semaphore documents: read as the original read them."""

    def test_ten_thousand_short_holders(self):
        holders = ["m%05d" % i for i in range(10000)]
        value = json.dumps({"semaphore": -9999, "max": 1, "holders": holders}, separators=(",", ":")).encode()
        for api in ("v2", "v3"):
            with self.subTest(api=api):
                group = unique("many")
                key = harness.group_key(group)
                put(api, key, value)
                started = time.monotonic()
                r = ctl(api, group, "status")
                self.assertLess(time.monotonic() - started, 10)
                self.assertEqual(r.returncode, 0, r.stderr)
                lines = r.stdout.decode().splitlines()
                self.assertEqual(lines[:4], ["Available: -9999", "Max: 1", "", "MACHINE ID"])
                self.assertEqual(lines[4:], holders)
                self.assertEqual(ctl(api, group, "lock", "x").stderr, b"Error locking: semaphore is at -9999\n")
                self.assertEqual(raw(api, key), value)
                self.assertEqual(ctl(api, group, "unlock", "m05000").returncode, 0)
                after = json.loads(raw(api, key))
                self.assertEqual((after["semaphore"], len(after["holders"])), (-9998, 9999))
                self.assertNotIn("m05000", after["holders"])

    def test_odd_values_the_original_also_read(self):
        # A negative max (the original's `set-max -- -1` stored one), duplicate member names (the
        # last wins, as in Go), -0, an escaped lone surrogate (U+FFFD, as in Go).
        for api in ("v2", "v3"):
            for value, out in [(b'{"semaphore":0,"max":-1,"holders":null}', "Available: 0\nMax: -1\n"),
                               (b'{"semaphore":1,"max":1,"max":4,"holders":null}', "Available: 1\nMax: 4\n"),
                               (b'{"semaphore":-0,"max":1,"holders":null}', "Available: 0\nMax: 1\n"),
                               (b'{"semaphore":0,"max":1,"holders":["\\ud800"]}', "Available: 0\nMax: 1\n\nMACHINE ID\n\ufffd\n")]:
                with self.subTest(api=api, value=value):
                    group = unique("odd")
                    put(api, harness.group_key(group), value)
                    r = ctl(api, group, "status")
                    self.assertEqual((r.stdout.decode(), r.returncode), (out, 0), r.stderr)
                    self.assertEqual(raw(api, harness.group_key(group)), value)


class V2InvalidUTF8(unittest.TestCase):
    def test_v2_answers_carry_replacement_characters(self):
        """etcd's v2 API answers in JSON written by Go, which replaces bytes that are not UTF-8
        with U+FFFD: a v2 client never sees them (etcd's own documented behaviour, not ours).
        Reading changes nothing."""
        group = unique("v2-utf8")
        key = harness.group_key(group)
        put("v2", key, b'{"semaphore":0,"max":1,"holders":["\xff\xfe"]}')
        before = raw("v2", key)
        self.assertEqual(before, '{"semaphore":0,"max":1,"holders":["\ufffd\ufffd"]}'.encode())
        r = ctl("v2", group, "status")
        self.assertEqual((r.stdout.decode(), r.returncode), ("Available: 0\nMax: 1\n\nMACHINE ID\n\ufffd\ufffd\n", 0))
        self.assertEqual(ctl("v2", group, "lock", "x").returncode, 1)
        self.assertEqual(raw("v2", key), before)


class Daemon(unittest.TestCase):
    """The daemon with a bad value in its group: says which key and what is wrong, keeps running
    and retrying without touching the value, and reboots once the value is repaired."""

    def setUp(self):
        self.cleanup = []

    def tearDown(self):
        for f in reversed(self.cleanup):
            try:
                f()
            except Exception as e:
                print("cleanup:", e)

    def start_daemon(self, api, group):
        root = tempfile.mkdtemp(prefix="locksmith-test-hostile-node-")
        self.cleanup.append(lambda: shutil.rmtree(root, ignore_errors=True))
        machine = "%032x" % (0xbad000 + next(_ids))
        os.makedirs(root + "/etc")
        with open(root + "/etc/machine-id", "w") as f:
            f.write(machine + "\n")
        env = {k: v for k, v in os.environ.items() if not k.startswith(("LOCKSMITH", "REBOOT_", "NOTIFY_", "JOURNAL_"))}
        env.update(LOCKSMITH_ROOT=root, DBUS_SYSTEM_BUS_ADDRESS=bus.address, LOCKSMITHD_ENDPOINT=etcd.endpoint,
                   LOCKSMITHD_GROUP=group, LOCKSMITHD_ETCD_API=api, LOCKSMITHD_REBOOT_BROADCAST_DELAY="1s",
                   REBOOT_STRATEGY="etcd-lock", TZ="UTC")
        log = open(root + "/daemon.log", "w")
        proc = subprocess.Popen([LOCKSMITHD], env=env, stdout=log, stderr=subprocess.STDOUT)
        harness._running.append(proc)

        def stop():
            if proc.poll() is None:
                proc.terminate()
                proc.wait(10)
            harness._running.remove(proc)
            log.close()
        self.cleanup.append(stop)

        def output():
            with open(root + "/daemon.log") as f:
                return f.read()
        return proc, machine, output

    def wait_for(self, predicate, timeout):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if predicate():
                return True
            time.sleep(0.05)
        return predicate()

    def run_case(self, api, group, spoil, expected):
        key = harness.group_key(group)
        before = spoil(key)
        ue = bus.start([os.path.join(harness.STANDINS, "fake-update-engine"), NEED])
        self.cleanup.append(lambda: bus.stop_process(ue))
        logind = Logind()
        self.cleanup.append(logind.stop)
        proc, machine, output = self.start_daemon(api, group)
        warning = "cannot take a reboot slot: %s: %s" % (key, expected)
        stale = "cannot give back a stale reboot slot: %s: %s" % (key, expected)
        self.assertTrue(self.wait_for(lambda: warning in output() or stale in output(), 30), output())
        # Its STATUS says what stands in the way (not "cannot reach etcd").
        self.assertTrue(self.wait_for(lambda: "the semaphore in etcd is not valid" in output(), 30), output())
        self.assertIsNone(proc.poll(), output())
        self.assertEqual(logind.calls(), [])
        self.assertEqual(raw(api, key), before, "the daemon changed the bad value")
        # Repaired: the daemon goes on by itself (its next retry comes within the backoff).
        if api == "v2":
            _request("DELETE", _v2path(key) + "?recursive=true")
        put(api, key, b'{"semaphore":1,"max":1,"holders":null}')
        self.assertTrue(self.wait_for(lambda: logind.calls(), 40), output())
        self.assertEqual(json.loads(raw(api, key))["holders"], [machine])
        self.assertIsNone(proc.poll())

    def test_not_json_in_a_named_group_v2(self):
        self.run_case("v2", unique("d-notjson"), lambda key: (put("v2", key, b"garbage"), raw("v2", key))[1], "not JSON")

    def test_duplicate_holders_in_the_default_group_v3(self):
        value = b'{"semaphore":0,"max":2,"holders":["a","a"]}'
        try:
            self.run_case("v3", "", lambda key: (put("v3", key, value), raw("v3", key))[1], 'holder "a" is listed twice')
        finally:
            put("v3", harness.group_key(""), b'{"semaphore":1,"max":1,"holders":null}')

    def test_directory_in_a_named_group_v2(self):
        self.run_case("v2", unique("d-dir"), lambda key: (make_directory(key), raw("v2", key))[1],
                      "is a directory, not a semaphore document")

    def test_out_of_range_max_in_a_named_group_v3(self):
        value = b'{"semaphore":1,"max":1e3,"holders":null}'
        self.run_case("v3", unique("d-range"), lambda key: (put("v3", key, value), raw("v3", key))[1],
                      '"max" is not an integer but a fraction')


if __name__ == "__main__":
    unittest.main()
