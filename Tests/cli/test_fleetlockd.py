"""locksmith-fleetlockd (Sources/locksmith-fleetlockd, issue 16) against a real etcd, v3 and v2:
requests exactly as Zincati sends them, every error case with its status and kind, one semaphore
shared with locksmithctl (group "default" is locksmith's default group), 200 concurrent pre-reboot
calls never past max (checked against every revision etcd kept), a corrupt semaphore reported and
never overwritten, slow and oversized clients, /health, /metrics, TLS, the command line, SIGTERM."""
import base64
import itertools
import json
import os
import socket
import ssl
import subprocess
import tempfile
import threading
import time
import unittest
import urllib.error
import urllib.request

import harness

SERVER = os.environ.get("LOCKSMITH_FLEETLOCKD", os.path.join(harness.ROOT, "build", "tools", "locksmith-fleetlockd"))
LIBDIR = os.path.join(harness.ROOT, "build", "lib")
_counter = itertools.count()
etcd = None


def setUpModule():
    global etcd
    etcd = harness.Etcd()


def tearDownModule():
    etcd.stop()


def environment(api="v3"):
    e = {k: v for k, v in os.environ.items() if not k.startswith("LOCKSMITH") and k != "NOTIFY_SOCKET"}
    e.update(LOCKSMITH_ROOT="/nonexistent", LD_LIBRARY_PATH=LIBDIR, LOCKSMITHCTL_ENDPOINT=etcd.endpoint, LOCKSMITHCTL_ETCD_API=api)
    return e


def unique(name):
    return "%s-%d-%d" % (name, os.getpid(), next(_counter))


def zincati_body(node_id, group="default"):
    # Zincati pretty-prints its JSON (serde_json::to_string_pretty) and sends no Content-Type.
    return json.dumps({"client_params": {"id": node_id, "group": group}}, indent=2).encode()


class Server:
    def __init__(self, api="v3", args=(), env=None):
        self.port = harness.free_port()
        self.base = "http://127.0.0.1:%d" % self.port
        e = environment(api)
        e.update(env or {})
        self.proc = subprocess.Popen([SERVER, "--listen", "127.0.0.1:%d" % self.port] + list(args), env=e,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        harness._running.append(self.proc)
        if not harness.wait_for(lambda: self._up() or self.proc.poll() is not None, timeout=10) or self.proc.poll() is not None:
            raise RuntimeError("locksmith-fleetlockd did not start: %s" % self.stop())

    def _up(self):
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
            return True
        except OSError:
            return False

    def post(self, path, body, guard="true", headers=None, base=None):
        """Status and parsed body (None if not JSON) of a POST, as Zincati makes it."""
        url = (base or self.base).rstrip("/") + path
        req = urllib.request.Request(url, data=body, method="POST")
        req.remove_header("Content-type")
        if guard is not None:
            req.add_header("fleet-lock-protocol", guard)
        for k, v in (headers or {}).items():
            req.add_header(k, v)
        return request(req)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
        try:
            out, err = self.proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, err = self.proc.communicate()
        if self.proc in harness._running:
            harness._running.remove(self.proc)
        return err


def request(req, context=None):
    # urllib adds Content-Type: application/x-www-form-urlencoded to POSTs with data; Zincati sends
    # none, so take it out at the last moment.
    if req.data is not None and req.has_header("Content-type"):
        req.remove_header("Content-type")
    try:
        with urllib.request.urlopen(req, timeout=30, context=context) as r:
            status, raw = r.status, r.read()
    except urllib.error.HTTPError as e:
        status, raw = e.code, e.read()
    try:
        return status, json.loads(raw)
    except ValueError:
        return status, raw.decode(errors="replace")


def ctl(*args, api="v3"):
    return subprocess.run([harness.LOCKSMITHCTL] + list(args), env=environment(api), capture_output=True, text=True, timeout=30)


def made(name, api="v3", slots=1):
    """A new group with a semaphore of `slots` (the server serves only groups that have one)."""
    group = unique(name)
    r = ctl("-group", group, "set-max", str(slots), api=api)
    assert r.returncode == 0, r.stderr
    return group


class Protocol(unittest.TestCase):
    """The requests Zincati makes, and what FleetLock says the answers are."""

    @classmethod
    def setUpClass(cls):
        cls.servers = {api: Server(api) for api in ("v3", "v2")}

    @classmethod
    def tearDownClass(cls):
        for s in cls.servers.values():
            s.stop()

    def each_api(self):
        return list(self.servers.items())

    def test_pre_reboot_is_recursive_and_steady_state_idempotent(self):
        for api, s in self.each_api():
            with self.subTest(api=api):
                group = unique("zincati")
                self.assertEqual(ctl("-group", group, "set-max", "1", api=api).returncode, 0)
                key = harness.group_key(group)
                self.assertEqual(s.post("/v1/pre-reboot", zincati_body("node-a", group)), (200, {}))
                self.assertEqual(s.post("/v1/pre-reboot", zincati_body("node-a", group)), (200, {}))  # recursive
                self.assertEqual(etcd.holders(api, key), ["node-a"])
                status, body = s.post("/v1/pre-reboot", zincati_body("node-b", group))
                self.assertEqual((status, body["kind"]), (500, "failed_lock"))
                self.assertIn("max 1", body["value"])
                self.assertEqual(s.post("/v1/steady-state", zincati_body("node-a", group)), (200, {}))
                self.assertEqual(s.post("/v1/steady-state", zincati_body("node-a", group)), (200, {}))  # idempotent
                self.assertEqual(s.post("/v1/steady-state", zincati_body("never-held", group)), (200, {}))
                self.assertEqual(etcd.holders(api, key), [])

    def test_base_urls_with_and_without_a_trailing_slash(self):
        # Zincati joins v1/pre-reboot onto the base; either way the request reaches the root.
        for api, s in self.each_api():
            with self.subTest(api=api):
                group = made("base", api)
                for base in (s.base, s.base + "/"):
                    self.assertEqual(s.post("/v1/pre-reboot", zincati_body("n1", group), base=base), (200, {}))
                    self.assertEqual(s.post("/v1/steady-state", zincati_body("n1", group), base=base), (200, {}))

    def test_group_default_is_locksmiths_default_semaphore(self):
        # A slot taken with locksmithctl on the default group is what FleetLock's "default" sees,
        # and the other way round: one max for both kinds of machines.
        api, s = "v3", self.servers["v3"]
        group = unique("shared")
        self.assertEqual(ctl("-group", group, "set-max", "1").returncode, 0)
        self.assertEqual(ctl("-group", group, "lock", "locksmith-node").returncode, 0)
        status, body = s.post("/v1/pre-reboot", zincati_body("zincati-node", group))
        self.assertEqual((status, body["kind"]), (500, "failed_lock"))
        self.assertEqual(ctl("-group", group, "unlock", "locksmith-node").returncode, 0)
        self.assertEqual(s.post("/v1/pre-reboot", zincati_body("zincati-node", group)), (200, {}))
        out = ctl("-group", group, "status")
        self.assertIn("zincati-node", out.stdout)
        self.assertEqual(s.post("/v1/steady-state", zincati_body("zincati-node", group)), (200, {}))
        # The default group itself.
        before = etcd.get(api, harness.PREFIX + "/semaphore")
        self.assertEqual(s.post("/v1/pre-reboot", zincati_body("dflt")), (200, {}))
        self.assertIn("dflt", etcd.holders(api, harness.PREFIX + "/semaphore"))
        self.assertEqual(s.post("/v1/steady-state", zincati_body("dflt")), (200, {}))
        self.assertNotIn("dflt", etcd.holders(api, harness.PREFIX + "/semaphore"))
        self.assertTrue(before is None or json.loads(before))

    def test_bad_requests_get_the_right_status_and_kind_and_change_nothing(self):
        for api, s in self.each_api():
            with self.subTest(api=api):
                group = made("bad", api)
                key = harness.group_key(group)
                before = etcd.get(api, key)
                cases = [
                    ("no guard header", dict(body=zincati_body("x", group), guard=None), 400, "invalid_client_identity"),
                    ("guard not exactly true", dict(body=zincati_body("x", group), guard="True"), 400, "invalid_client_identity"),
                    ("guard 1", dict(body=zincati_body("x", group), guard="1"), 400, "invalid_client_identity"),
                    ("empty body", dict(body=b""), 400, "invalid_client_identity"),
                    ("not JSON", dict(body=b"{client_params"), 400, "invalid_client_identity"),
                    ("two values", dict(body=zincati_body("x", group) + b" {}"), 400, "invalid_client_identity"),
                    ("not an object", dict(body=b"[1,2]"), 400, "invalid_client_identity"),
                    ("no client_params", dict(body=b'{"id":"x","group":"g"}'), 400, "invalid_client_identity"),
                    ("empty id", dict(body=zincati_body("", group)), 400, "invalid_client_identity"),
                    ("id not a string", dict(body=b'{"client_params":{"id":7,"group":"g"}}'), 400, "invalid_client_identity"),
                    ("id with a control character", dict(body=zincati_body("a\x01b", group)), 400, "invalid_client_identity"),
                    ("id too long", dict(body=zincati_body("x" * 300, group)), 400, "invalid_client_identity"),
                    ("empty group", dict(body=zincati_body("x", "")), 400, "invalid_client_identity"),
                    ("group with a slash", dict(body=zincati_body("x", "a/b")), 400, "unknown_group"),
                    ("group with a space", dict(body=zincati_body("x", "a b")), 400, "unknown_group"),
                ("group ..", dict(body=zincati_body("x", "..")), 400, "unknown_group"),
                ("group .", dict(body=zincati_body("x", ".")), 400, "unknown_group"),
                    ("deep nesting", dict(body=b'{"client_params":' * 40 + b'1' + b'}' * 40), 400, "invalid_client_identity"),
                    ("oversized", dict(body=b'{"client_params":{"id":"' + b"x" * 20000 + b'","group":"g"}}'), 413, "invalid_client_identity"),
                ]
                for name, kwargs, want_status, want_kind in cases:
                    with self.subTest(case=name):
                        body = kwargs.pop("body")
                        status, answer = s.post("/v1/pre-reboot", body, **kwargs)
                        self.assertEqual(status, want_status, answer)
                        self.assertEqual(answer["kind"], want_kind, answer)
                        self.assertTrue(answer["value"])
                self.assertEqual(etcd.get(api, key), before)  # nothing was changed
                # The server is unharmed: a good request still works.
                self.assertEqual(s.post("/v1/pre-reboot", zincati_body("x", group)), (200, {}))
                self.assertEqual(s.post("/v1/steady-state", zincati_body("x", group)), (200, {}))

    def test_only_groups_with_a_semaphore_are_served(self):
        # A made-up group name creates nothing in etcd (and no queue or connection in the server).
        for api, s in self.each_api():
            with self.subTest(api=api):
                group = unique("madeup")
                key = harness.group_key(group)
                status, body = s.post("/v1/pre-reboot", zincati_body("x", group))
                self.assertEqual((status, body["kind"]), (400, "unknown_group"))
                self.assertIn("set-max", body["value"])
                self.assertEqual(s.post("/v1/steady-state", zincati_body("x", group)), (200, {}))  # nothing held
                self.assertIsNone(etcd.get(api, key))
                # Once the operator makes it (the listing is kept up to a second), it is served.
                self.assertEqual(ctl("-group", group, "set-max", "2", api=api).returncode, 0)
                self.assertTrue(harness.wait_for(lambda: s.post("/v1/pre-reboot", zincati_body("x", group)) == (200, {}), timeout=5))
                self.assertEqual(s.post("/v1/steady-state", zincati_body("x", group)), (200, {}))

    def test_wrong_methods_and_paths(self):
        s = self.servers["v3"]
        status, body = request(urllib.request.Request(s.base + "/v1/pre-reboot", method="GET"))
        self.assertEqual((status, body["kind"]), (405, "invalid_client_identity"))
        status, body = request(urllib.request.Request(s.base + "/v1/other", data=b"{}", method="POST"))
        self.assertEqual(status, 404)
        status, body = request(urllib.request.Request(s.base + "/v2/pre-reboot", data=zincati_body("x"), method="POST"))
        self.assertEqual(status, 404)

    def test_a_corrupt_semaphore_is_reported_and_never_overwritten(self):
        for api, s in self.each_api():
            with self.subTest(api=api):
                group = unique("corrupt")
                key = harness.group_key(group)
                etcd.put(api, key, "not a semaphore")
                for path in ("/v1/pre-reboot", "/v1/steady-state"):
                    status, body = s.post(path, zincati_body("x", group))
                    self.assertEqual((status, body["kind"]), (500, "failed_sem_init"), body)
                    self.assertIn(key, body["value"])
                self.assertEqual(etcd.get(api, key), "not a semaphore")

    def test_slow_and_idle_clients_do_not_hold_up_the_others(self):
        s = self.servers["v3"]
        group = made("slow")
        stalled = []
        for _ in range(20):
            c = socket.create_connection(("127.0.0.1", s.port))
            c.sendall(b"POST /v1/pre-reboot HTTP/1.1\r\nHost: x\r\nfleet-lock-protocol: true\r\nContent-Length: 100\r\n\r\n{")
            stalled.append(c)
        try:
            started = time.monotonic()
            self.assertEqual(s.post("/v1/pre-reboot", zincati_body("quick", group)), (200, {}))
            self.assertLess(time.monotonic() - started, 2)
        finally:
            for c in stalled:
                c.close()
        self.assertEqual(s.post("/v1/steady-state", zincati_body("quick", group)), (200, {}))

    def test_health_and_metrics(self):
        s = self.servers["v3"]
        group = unique("metrics")
        self.assertEqual(ctl("-group", group, "set-max", "3").returncode, 0)
        self.assertEqual(s.post("/v1/pre-reboot", zincati_body("m1", group)), (200, {}))
        status, text = request(urllib.request.Request(s.base + "/health"))
        self.assertEqual((status, text), (200, "ok\n"))
        status, text = request(urllib.request.Request(s.base + "/metrics"))
        self.assertEqual(status, 200)
        self.assertRegex(text, r'locksmith_fleetlock_requests_total\{endpoint="pre-reboot",result="ok"\} [1-9]')
        self.assertIn('locksmith_fleetlock_slots{group="%s",state="max"} 3' % group, text)
        self.assertIn('locksmith_fleetlock_slots{group="%s",state="held"} 1' % group, text)
        self.assertIn("locksmith_fleetlock_etcd_up 1", text)
        self.assertRegex(text, r"locksmith_fleetlock_etcd_seconds_count [1-9]")
        self.assertEqual(s.post("/v1/steady-state", zincati_body("m1", group)), (200, {}))


class Concurrency(unittest.TestCase):
    def test_200_concurrent_pre_reboots_never_exceed_max(self):
        for api in ("v3", "v2"):
            with self.subTest(api=api):
                group = unique("crowd")
                key = harness.group_key(group)
                self.assertEqual(ctl("-group", group, "set-max", "5", api=api).returncode, 0)
                s = Server(api, ["--threads", "8"])
                try:
                    results = [None] * 200
                    barrier = threading.Barrier(200)

                    def call(i):
                        barrier.wait()
                        results[i] = s.post("/v1/pre-reboot", zincati_body("n%03d" % i, group))
                    threads = [threading.Thread(target=call, args=(i,)) for i in range(200)]
                    for t in threads:
                        t.start()
                    for t in threads:
                        t.join(120)
                finally:
                    s.stop()
                granted = ["n%03d" % i for i, r in enumerate(results) if r and r[0] == 200]
                refused = [r for r in results if r and r[0] != 200]
                self.assertEqual(len(granted), 5, results[:5])
                # Every refusal says the slots are taken: no write conflict surfaced as an error.
                self.assertTrue(all(r[0] == 500 and r[1]["kind"] == "failed_lock" and "taken" in r[1]["value"] for r in refused),
                                [r for r in refused if "taken" not in str(r)][:3])
                self.assertEqual(sorted(etcd.holders(api, key)), sorted(granted))
                if api == "v3":
                    self.assertEqual(max_holders_in_history(key), 5)


def max_holders_in_history(key):
    """The most holders of any revision of key that etcd kept, walking back from the newest."""
    most, revision = 0, None
    while True:
        body = {"key": base64.b64encode(key.encode()).decode()}
        if revision:
            body["revision"] = str(revision)
        answer = etcd._request("POST", "/v3/kv/range", json.dumps(body).encode())
        kvs = answer.get("kvs")
        if not kvs:
            return most
        doc = json.loads(base64.b64decode(kvs[0].get("value", "")))
        holders = doc.get("holders") or []
        assert len(holders) + int(doc["semaphore"]) == int(doc["max"]), doc
        most = max(most, len(holders))
        if int(kvs[0].get("version", "1")) <= 1:
            return most
        revision = int(kvs[0]["mod_revision"]) - 1


class CommandLine(unittest.TestCase):
    def run_server(self, *args):
        return subprocess.run([SERVER] + list(args), env=environment(), capture_output=True, text=True, timeout=30)

    def test_bad_flags_are_named_and_exit_2(self):
        for args, words in [
            (["--listen", "nonsense"], "--listen"),
            (["--listen", "127.0.0.1:0"], "port"),
            (["--listen", "127.0.0.1:99999"], "port"),
            (["--listen", "[::1:3333"], "brackets"),
            (["--threads", "0"], "--threads"),
            (["--tls-cert", "/nonexistent"], "--tls-key"),
            (["--etcd-password", "secret"], "--etcd-password-file"),
            (["extra"], "extra"),
        ]:
            with self.subTest(args=args):
                r = self.run_server(*args)
                self.assertEqual(r.returncode, 2, r.stderr)
                self.assertIn(words, r.stderr)

    def test_a_bad_setting_or_a_taken_port_stops_it_with_status_1(self):
        r = self.run_server("--listen", "127.0.0.1:%d" % harness.free_port(), "--etcd-api", "v4")
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn("etcd-api", r.stderr)
        with socket.socket() as taken:
            taken.bind(("127.0.0.1", 0))
            taken.listen()
            r = self.run_server("--listen", "127.0.0.1:%d" % taken.getsockname()[1])
            self.assertEqual(r.returncode, 1, r.stderr)
            self.assertIn("cannot listen", r.stderr)
        r = self.run_server("--listen", "127.0.0.1:%d" % harness.free_port(), "--tls-cert", "/nonexistent", "--tls-key", "/nonexistent")
        self.assertEqual(r.returncode, 1)
        self.assertIn("/nonexistent", r.stderr)

    def test_help_and_version(self):
        r = self.run_server("--help")
        self.assertEqual(r.returncode, 0)
        for word in ("--listen", "--threads", "--tls-cert", "default", "FleetLock", "/health", "/metrics"):
            self.assertIn(word, r.stdout)
        r = self.run_server("--version")
        self.assertEqual(r.returncode, 0)
        self.assertRegex(r.stdout, r"^locksmith-fleetlockd \d")

    def test_sigterm_stops_it_cleanly_and_it_says_ready(self):
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "notify")
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            sock.bind(path)
            sock.settimeout(10)
            try:
                s = Server("v3", env={"NOTIFY_SOCKET": path})
                self.assertIn(b"READY=1", sock.recv(4096))
                s.proc.terminate()
                self.assertEqual(s.proc.wait(10), 0)
                self.assertIn(b"STOPPING=1", sock.recv(4096))
                s.stop()
            finally:
                sock.close()

    def test_unit_file_verifies(self):
        with tempfile.TemporaryDirectory() as d:
            unit = os.path.join(d, "locksmith-fleetlockd.service")
            with open(os.path.join(harness.ROOT, "systemd", "locksmith-fleetlockd.service.in")) as f:
                text = f.read().replace("@BINDIR@", os.path.dirname(SERVER))
            with open(unit, "w") as f:
                f.write(text)
            r = subprocess.run(["systemd-analyze", "verify", "--man=no", unit], capture_output=True, text=True)
            self.assertEqual([line for line in r.stderr.splitlines() if "locksmith-fleetlockd.service" in line], [])
            for setting in ("Type=notify", "DynamicUser=yes", "CapabilityBoundingSet=\n", "NoNewPrivileges=yes"):
                self.assertIn(setting, text)

    def test_man_page_names_every_flag(self):
        with open(os.path.join(harness.ROOT, "man", "locksmith-fleetlockd.8")) as f:
            page = f.read().replace("\\-", "-")
        for flag in ("--listen", "--threads", "--tls-cert", "--tls-key", "--endpoint", "--etcd-password-file"):
            self.assertIn(flag, page)

    def test_tls(self):
        with tempfile.TemporaryDirectory() as d:
            cert, key = os.path.join(d, "cert.pem"), os.path.join(d, "key.pem")
            subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert,
                            "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
                           check=True, capture_output=True)
            s = Server("v3", ["--tls-cert", cert, "--tls-key", key])
            try:
                group = made("tls")
                context = ssl.create_default_context(cafile=cert)
                url = "https://127.0.0.1:%d/v1/pre-reboot" % s.port
                req = urllib.request.Request(url, data=zincati_body("t1", group), method="POST")
                req.add_header("fleet-lock-protocol", "true")
                self.assertEqual(request(req, context), (200, {}))
                # Plain HTTP to the TLS listener gets no FleetLock answer.
                with self.assertRaises(Exception):
                    urllib.request.urlopen(urllib.request.Request("http://127.0.0.1:%d/health" % s.port), timeout=5).read()
            finally:
                s.stop()


if __name__ == "__main__":
    unittest.main()
