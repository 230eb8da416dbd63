"""The FleetLock client side (issue 16): locksmithd with REBOOT_STRATEGY=fleetlock takes and gives
back its slot through a FleetLock server, locksmithctl and locksmith-run with a FleetLock URL.
Real daemons, a real etcd, a private D-Bus with the stand-in update engine and logind, and the real
locksmith-fleetlockd; one small FleetLock server written here (a base path, airlock's refusals)
records the requests exactly as they arrive."""
import http.server
import json
import os
import socket
import subprocess
import threading
import time
import unittest

import harness
import test_locksmithd as daemon_tests
from test_locksmithd import NEED, Logind, UpdateEngine, group, holders, read, wait_for

SERVER = os.path.join(harness.ROOT, "build", "tools", "locksmith-fleetlockd")
RUN = os.path.join(harness.ROOT, "build", "tools", "locksmith-run")


def setUpModule():
    daemon_tests.setUpModule()


def tearDownModule():
    daemon_tests.tearDownModule()


def ctl(*args, env=None):
    e = {"LOCKSMITH_ROOT": "/nonexistent"}
    e.update(env or {})
    return subprocess.run([harness.LOCKSMITHCTL, "-endpoint", daemon_tests.etcd.endpoint] + list(args),
                          capture_output=True, text=True, env=e, timeout=60)


class FleetLockd:
    """locksmith-fleetlockd on a free loopback port, on the test etcd (the API chosen as the
    daemons and locksmithctl choose it: auto), serving every group with a semaphore unless args
    say otherwise."""

    def __init__(self, args=("--all-groups",), scheme="http"):
        self.port = harness.free_port()
        self.url = "%s://127.0.0.1:%d/" % (scheme, self.port)
        env = {k: v for k, v in os.environ.items() if not k.startswith("LOCKSMITH") and k != "NOTIFY_SOCKET"}
        env.update(LOCKSMITH_ROOT="/nonexistent", LD_LIBRARY_PATH=os.path.join(harness.ROOT, "build", "lib"),
                   LOCKSMITHCTL_ENDPOINT=daemon_tests.etcd.endpoint)
        self.proc = subprocess.Popen([SERVER, "--listen", "127.0.0.1:%d" % self.port] + list(args), env=env,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        harness._running.append(self.proc)

        def up():
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return True
            except OSError:
                return False
        assert wait_for(up, timeout=10), "locksmith-fleetlockd did not start"

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
        self.proc.communicate(timeout=10)
        if self.proc in harness._running:
            harness._running.remove(self.proc)


class RecordingServer:
    """A FleetLock server under /fleetlock/ with `slots` slots, answering as airlock does (500
    failed_lock when full); it records method, path, headers and body of every request."""

    def __init__(self, slots=1):
        self.requests = []
        self.holders = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                outer.requests.append((self.command, self.path, dict(self.headers), body))
                if self.headers.get("fleet-lock-protocol") != "true":
                    return self.answer(400, {"kind": "invalid_client_identity", "value": "missing header"})
                params = json.loads(body)["client_params"]
                node = params["id"]
                if self.path == "/fleetlock/v1/pre-reboot":
                    if node in outer.holders:
                        return self.answer(200, {})
                    if len(outer.holders) >= slots:
                        return self.answer(500, {"kind": "failed_lock", "value": "semaphore full"})
                    outer.holders.append(node)
                    return self.answer(200, {})
                if self.path == "/fleetlock/v1/steady-state":
                    if node in outer.holders:
                        outer.holders.remove(node)
                    return self.answer(200, {})
                return self.answer(404, {"kind": "not_found", "value": self.path})

            def answer(self, status, doc):
                data = json.dumps(doc).encode()
                self.send_response(status)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = "http://127.0.0.1:%d/fleetlock" % self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


class FleetLockDaemon(daemon_tests.DaemonTest):
    @classmethod
    def setUpClass(cls):
        cls.server = FleetLockd()

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()

    def one_slot_and_an_update(self):
        """A new group with max 1, an update engine saying "reboot needed" and logind."""
        g = group()
        self.assertEqual(ctl("-group", g, "set-max", "1").returncode, 0)
        return g, self.service(UpdateEngine(NEED)), self.service(Logind())

    def fleet_node(self, g, env=None, **kwargs):
        e = {"LOCKSMITHD_FLEETLOCK_URL": self.server.url}
        e.update(env or {})
        return self.node(g, strategy="fleetlock", env=e, **kwargs)

    def test_two_daemons_take_turns_through_the_server(self):
        g, ue, logind = self.one_slot_and_an_update()
        a = self.fleet_node(g).start()
        self.assertTrue(wait_for(lambda: logind.calls(), timeout=15), a.output())
        self.assertEqual(holders(g), [a.id], "the server wrote the slot into the group's semaphore in etcd")
        self.assertEqual(read(a.root + "/run/update-engine/coordinator.conf"),
                         "NAME=locksmithd\nSTRATEGY=fleetlock\nSTATE=rebooting\n")
        self.assertIn("HELD=yes", read(a.root + a.STATE_FILE))
        b = self.fleet_node(g).start()
        self.assertTrue(wait_for(lambda: b.saw("STATUS=waiting for a slot: the FleetLock server %s granted no slot" % self.server.url),
                                 timeout=15), b.drain())
        self.assertIn("failed_lock", " ".join(b.messages))
        time.sleep(1)
        self.assertEqual(len(logind.calls()), 1, "the second waits while the first reboots")
        # The first machine reboots and comes back: steady-state gives its slot back at start.
        self.assertEqual(a.stop(), 0)
        self.assertEqual(holders(g), [a.id])
        ue.send("status UPDATE_STATUS_IDLE")
        a.start()
        self.assertTrue(wait_for(lambda: holders(g) != [a.id], timeout=15), a.output())
        # The server gives the slot back in etcd before it answers; the daemon writes its record
        # once it has the answer.
        self.assertTrue(wait_for(lambda: "HELD=no" in read(a.root + a.STATE_FILE)), read(a.root + a.STATE_FILE))
        self.assertIn("told the FleetLock server this machine is up (steady-state)", a.output())
        # b asks again after its backoff (5 s, then 10 s): no watch through FleetLock.
        self.assertTrue(wait_for(lambda: len(logind.calls()) == 2, timeout=25), b.output())
        self.assertEqual(int(logind.calls()[1].split("pid=")[1]), b.proc.pid)
        self.assertEqual(holders(g), [b.id])

    def test_default_group_id_setting_and_sigterm_gives_back(self):
        # No LOCKSMITHD_GROUP: FleetLock's "default" group, locksmith's default semaphore.
        ue = self.service(UpdateEngine(NEED))
        master, slave = os.openpty()
        try:
            n = self.fleet_node("", env={"LOCKSMITHD_FLEETLOCK_ID": "zincati-style-7f3a", "LOCKSMITHD_REBOOT_BROADCAST_DELAY": "30s"})
            daemon_tests.write_utmp(n, os.ttyname(slave))
            before = holders("") or []
            self.assertNotIn("zincati-style-7f3a", before)
            n.start()
            self.assertTrue(wait_for(lambda: "zincati-style-7f3a" in (holders("") or []), timeout=15), n.output())
            self.assertTrue(wait_for(lambda: n.saw("users were warned")), n.drain())
            self.assertIn('ID="zincati-style-7f3a"', read(n.root + n.STATE_FILE))
            self.assertEqual(n.stop(), 0)
            self.assertNotIn("zincati-style-7f3a", holders("") or [], "a slot taken and not used is given back")
            self.assertIn("gave the reboot slot back", n.output())
        finally:
            os.close(master)
            os.close(slave)

    def test_server_down_is_retried_and_nothing_is_held(self):
        g, ue, logind = self.one_slot_and_an_update()
        port = harness.free_port()
        n = self.node(g, strategy="fleetlock", env={"LOCKSMITHD_FLEETLOCK_URL": "http://127.0.0.1:%d" % port}).start()
        self.assertTrue(wait_for(lambda: n.saw("STATUS=cannot reach the FleetLock server to take a slot; retrying"), timeout=15), n.drain())
        self.assertIn("the FleetLock server http://127.0.0.1:%d/ did not answer" % port, n.output())
        self.assertEqual(logind.calls(), [])
        self.assertEqual(holders(g), [])
        self.assertEqual(n.stop(), 0)

    def test_unknown_group_is_reported_and_retried(self):
        g = group()  # no semaphore: the server refuses it (400 unknown_group)
        ue = self.service(UpdateEngine(NEED))
        logind = self.service(Logind())
        n = self.fleet_node(g).start()
        self.assertTrue(wait_for(lambda: "unknown_group" in n.output(), timeout=15), n.output())
        self.assertTrue(wait_for(lambda: n.saw("STATUS=the FleetLock server refused the request, cannot take a slot"), timeout=5), n.drain())
        self.assertEqual(logind.calls(), [])
        self.assertEqual(n.stop(), 0)

    def test_mixed_with_an_etcd_lock_daemon_under_one_max(self):
        g, ue, logind = self.one_slot_and_an_update()
        etcd_node = self.node(g).start()
        self.assertTrue(wait_for(lambda: logind.calls()), etcd_node.output())
        fleet = self.fleet_node(g).start()
        self.assertTrue(wait_for(lambda: fleet.saw("granted no slot"), timeout=15), fleet.drain())
        self.assertEqual(holders(g), [etcd_node.id])
        etcd_node.stop()
        ue.send("status UPDATE_STATUS_IDLE")
        etcd_node.start()
        self.assertTrue(wait_for(lambda: len(logind.calls()) == 2, timeout=25), fleet.output())
        self.assertEqual(holders(g), [fleet.id])


class ClientCertificate(daemon_tests.DaemonTest):
    """Finding 28: locksmithd presents a client certificate to a server that requires one (its TLS
    files, LOCKSMITHD_ETCD_CAFILE/CERTFILE/KEYFILE, serve the FleetLock server: a daemon with
    REBOOT_STRATEGY=fleetlock never talks to etcd), at a base URL carrying its group's secret."""

    def test_locksmithd_through_a_server_with_client_certificates_and_a_secret(self):
        import tempfile
        from test_fleetlockd import PKI, write_secrets
        g = group()
        self.assertEqual(ctl("-group", g, "set-max", "1").returncode, 0)
        ue, logind = self.service(UpdateEngine(NEED)), self.service(Logind())
        with tempfile.TemporaryDirectory() as d:
            pki = PKI(d)
            cert, key = pki.issue("node", "/CN=fleet-node-7", "subjectAltName=DNS:fleet-node-7")
            secrets = write_secrets(d, "%s s3cret-0123456789abcdef\n" % g)
            server = FleetLockd(["--tls-cert", pki.cert, "--tls-key", pki.key, "--tls-client-ca", pki.ca, "--group-secrets", secrets],
                                scheme="https")
            try:
                tls = {"LOCKSMITHD_FLEETLOCK_URL": server.url + "s3cret-0123456789abcdef/", "LOCKSMITHD_ETCD_CAFILE": pki.ca}
                # Without its certificate: refused, and nothing is held.
                n = self.node(g, strategy="fleetlock", env=dict(tls, LOCKSMITHD_FLEETLOCK_ID="fleet-node-7")).start()
                self.assertTrue(wait_for(lambda: "requires a client certificate" in n.output(), timeout=15), n.output())
                self.assertEqual(n.stop(), 0)
                self.assertEqual(holders(g), [])
                # A certificate for another id: refused.
                n = self.node(g, strategy="fleetlock", env=dict(tls, LOCKSMITHD_FLEETLOCK_ID="fleet-node-8",
                                                                LOCKSMITHD_ETCD_CERTFILE=cert, LOCKSMITHD_ETCD_KEYFILE=key)).start()
                self.assertTrue(wait_for(lambda: "is not a name of the client certificate" in n.output(), timeout=15), n.output())
                self.assertEqual(n.stop(), 0)
                self.assertEqual(holders(g), [])
                # Its own: it takes the slot and reboots.
                n = self.node(g, strategy="fleetlock", env=dict(tls, LOCKSMITHD_FLEETLOCK_ID="fleet-node-7",
                                                                LOCKSMITHD_ETCD_CERTFILE=cert, LOCKSMITHD_ETCD_KEYFILE=key)).start()
                self.assertTrue(wait_for(lambda: logind.calls(), timeout=15), n.output())
                self.assertEqual(holders(g), ["fleet-node-7"])
            finally:
                server.stop()


class Configuration(daemon_tests.DaemonTest):
    def test_errors_name_the_setting(self):
        cases = [
            ({}, "REBOOT_STRATEGY=fleetlock needs LOCKSMITHD_FLEETLOCK_URL"),
            ({"LOCKSMITHD_FLEETLOCK_URL": "ftp://x"}, 'LOCKSMITHD_FLEETLOCK_URL: fleetlock-url "ftp://x" has no http:// or https:// scheme'),
            ({"LOCKSMITHD_FLEETLOCK_URL": "http://u:secret@h/"}, "carries credentials"),
            ({"LOCKSMITHD_FLEETLOCK_URL": "http://h/", "LOCKSMITHD_GROUP": "web_1"}, 'LOCKSMITHD_GROUP="web_1" (from the environment): group "web_1" cannot be named to a FleetLock server'),
            ({"LOCKSMITHD_FLEETLOCK_URL": "http://h/", "LOCKSMITHD_FLEETLOCK_ID": "a\tb"}, "LOCKSMITHD_FLEETLOCK_ID"),
        ]
        for env, expected in cases:
            with self.subTest(env=env):
                e = {"LOCKSMITHD_GROUP": ""}
                e.update(env)
                n = self.node("", strategy="fleetlock", env=e).start()
                self.assertEqual(n.wait_exit(10), 78, n.output())  # EX_CONFIG: not restarted
                self.assertIn(expected, n.output())
                self.assertNotIn("secret", n.output())

    def test_fleetlock_settings_without_the_strategy_are_warned_about(self):
        ue = self.service(UpdateEngine())
        n = self.node(group(), env={"LOCKSMITHD_FLEETLOCK_URL": "http://127.0.0.1:9/", "LOCKSMITHD_SLOT_WAIT": "watch"}).start()
        self.assertTrue(wait_for(lambda: n.saw("READY=1")), n.output())
        self.assertIn('LOCKSMITHD_FLEETLOCK_URL="http://127.0.0.1:9/" (from the environment) has no effect: REBOOT_STRATEGY is etcd-lock', n.output())
        self.assertEqual(n.stop(), 0)
        f = self.node(group(), strategy="fleetlock", env={"LOCKSMITHD_FLEETLOCK_URL": "http://127.0.0.1:9/", "LOCKSMITHD_SLOT_WAIT": "watch"}).start()
        self.assertTrue(wait_for(lambda: f.saw("READY=1")), f.output())
        self.assertIn("has no effect with REBOOT_STRATEGY=fleetlock: a FleetLock server has no watch", f.output())
        self.assertEqual(f.stop(), 0)


class Clients(unittest.TestCase):
    """locksmithctl and locksmith-run with a FleetLock URL; the requests as a server sees them."""

    def test_requests_follow_the_protocol_under_a_base_path(self):
        s = RecordingServer(slots=1)
        try:
            for base in (s.url, s.url + "/"):
                r = ctl("-fleetlock-url", base, "-group", "web-1", "lock", "node-a")
                self.assertEqual(r.returncode, 0, r.stderr)
            method, path, headers, body = s.requests[0]
            self.assertEqual((method, path), ("POST", "/fleetlock/v1/pre-reboot"))
            self.assertEqual(headers.get("fleet-lock-protocol"), "true")
            self.assertNotIn("Authorization", headers)
            self.assertEqual(json.loads(body), {"client_params": {"id": "node-a", "group": "web-1"}})
            self.assertEqual(s.requests[1][1], "/fleetlock/v1/pre-reboot")
            # Full, as airlock answers it: 500 failed_lock is "no slot", exit 1, the server's text shown.
            r = ctl("-fleetlock-url", s.url, "-group", "web-1", "lock", "node-b")
            self.assertEqual(r.returncode, 1)
            self.assertIn('granted no slot (HTTP 500: failed_lock "semaphore full")', r.stderr)
            r = ctl("-fleetlock-url", s.url, "-group", "web-1", "unlock", "node-a")
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertEqual(s.requests[-1][1], "/fleetlock/v1/steady-state")
            self.assertEqual(s.holders, [])
            # No group: FleetLock's "default".
            ctl("-fleetlock-url", s.url, "lock", "node-c")
            self.assertEqual(json.loads(s.requests[-1][3])["client_params"]["group"], "default")
        finally:
            s.stop()

    def test_locksmithctl_says_what_fleetlock_cannot_do(self):
        s = RecordingServer()
        try:
            for args in (["status"], ["set-max", "3"]):
                with self.subTest(args=args):
                    before = len(s.requests)
                    r = ctl("-fleetlock-url", s.url, *args)
                    self.assertEqual(r.returncode, 1)
                    self.assertIn("is a FleetLock server (fleetlock-url): it can only take a slot (lock) and give one back (unlock)", r.stderr)
                    self.assertEqual(len(s.requests), before, "nothing is sent")
            r = ctl("-fleetlock-url", s.url + "/elsewhere", "lock", "x")
            self.assertEqual(r.returncode, 1)
            self.assertIn("has no pre-reboot call (HTTP 404", r.stderr)
            r = subprocess.run([harness.LOCKSMITHCTL, "-fleetlock-url", "http://127.0.0.1:%d" % harness.free_port(), "lock", "x"],
                               capture_output=True, text=True, env={"LOCKSMITH_ROOT": "/nonexistent"})
            self.assertEqual(r.returncode, 1)
            self.assertIn("Error locking: the FleetLock server", r.stderr)
            self.assertIn("did not answer pre-reboot", r.stderr)
            help_text = subprocess.run([harness.LOCKSMITHCTL, "help"], capture_output=True, text=True).stdout
            self.assertIn("-fleetlock-url", help_text)
        finally:
            s.stop()

    def test_locksmith_run_polls_a_fleetlock_server(self):
        s = RecordingServer(slots=1)
        try:
            env = {k: v for k, v in os.environ.items() if not k.startswith("LOCKSMITH")}
            env.update(LOCKSMITH_ROOT="/nonexistent", LD_LIBRARY_PATH=os.path.join(harness.ROOT, "build", "lib"))
            r = subprocess.run([RUN, "--fleetlock-url", s.url, "--id", "job-1", "--", "sh", "-c", "echo ran"],
                               capture_output=True, text=True, env=env, timeout=60)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertEqual(r.stdout, "ran\n")
            self.assertEqual([p for _, p, _, _ in s.requests], ["/fleetlock/v1/pre-reboot", "/fleetlock/v1/steady-state"])
            s.holders.append("someone-else")
            started = time.time()
            r = subprocess.run([RUN, "--fleetlock-url", s.url, "--id", "job-2", "--timeout", "7s", "--", "true"],
                               capture_output=True, text=True, env=env, timeout=60)
            self.assertNotEqual(r.returncode, 0)
            self.assertIn("no free slot within the timeout", r.stderr)
            self.assertGreaterEqual(time.time() - started, 6.5)
            asked = [p for _, p, _, _ in s.requests[2:]]
            self.assertEqual(asked.count("/fleetlock/v1/pre-reboot"), 3, "at once, after 5 s (backoff), and at the deadline")
        finally:
            s.stop()


if __name__ == "__main__":
    unittest.main()
