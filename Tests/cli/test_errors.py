"""Errors that say what to do (issue 18, part 4): the rows of docs/errors.md beyond TLS and
connections (those are in test_security.py), each provoked by its real cause (a real etcd with
authentication, without the v2 API, paused with SIGSTOP, or in Flatcar's TLS layout that its own v3
gateway cannot connect to; a web server that is not etcd; a corrupt value stored in etcd; a machine
without a machine id; a password file this user cannot read), on the real programs. Each test
checks that the message names what was wrong and the fix, the exit status, and that nothing
stored changed."""
import http.server
import os
import signal
import socketserver
import subprocess
import threading
import unittest
import urllib.parse

import harness
import test_security as sec
from test_security import ctl, request, write, wait_for, NEED

KEY = harness.group_key("")
PASSWORD = sec.PASSWORD
WRONG = sec.WRONG

# The settings' names as every message gives them (Sources/LocksmithEtcd/Advice.swift).
CREDENTIALS = ("etcd-username and etcd-password-file (flags -etcd-username/-etcd-password-file, "
               "or LOCKSMITHD_ETCD_USERNAME/LOCKSMITHD_ETCD_PASSWORD_FILE)")


def setUpModule():
    sec.setUpModule()


def tearDownModule():
    sec.tearDownModule()


def refused(test, result, *fragments, prefix="Error initializing etcd client: "):
    code, out, err = result
    test.assertEqual((code, out), (1, ""), err)
    test.assertTrue(err.startswith(prefix), err)
    test.assertEqual(err.count("\n"), 1, "one line: %r" % err)
    for f in fragments:
        test.assertIn(f, err)
    return err


def daemon_says(test, env, *fragments, conf=None):
    """A daemon (etcd-lock) with `env` that needs a reboot: its log says each fragment, and it
    keeps running and retrying (it reboots nothing)."""
    ue = sec.bus.start([os.path.join(harness.STANDINS, "fake-update-engine"), NEED])
    logind = sec.Logind()
    node = sec.Node(env=env, conf=conf)
    try:
        test.assertTrue(wait_for(lambda: all(f in node.output() for f in fragments), 20), node.output())
        test.assertIsNone(node.proc.poll(), node.output())
        test.assertEqual(logind.calls(), [])
    finally:
        node.stop()
        logind.stop()
        sec.bus.stop_process(ue)
    return node.output()


# ---- authentication and permission ----

class AuthErrorsSayWhatToDo(unittest.TestCase):
    """etcd with authentication: root (PASSWORD), and "nobody" (PASSWORD) whose one role grants
    nothing; over v2 the guest role may do nothing."""

    @classmethod
    def setUpClass(cls):
        cls.v3 = harness.Etcd()
        for path, body in [("/v3/auth/user/add", {"name": "nobody", "password": PASSWORD}), ("/v3/auth/role/add", {"name": "none"}),
                           ("/v3/auth/user/grant", {"user": "nobody", "role": "none"})]:
            status, answer = cls.v3.call("POST", path, body)
            assert status == 200, (path, answer)
        cls.v3.enable_auth("v3", PASSWORD)
        cls.v2 = harness.Etcd()
        auth = cls.v2.enable_auth("v2", PASSWORD)
        status, body = cls.v2.call("PUT", "/v2/auth/users/nobody", {"user": "nobody", "password": PASSWORD}, auth)
        assert status in (200, 201), body

    @classmethod
    def tearDownClass(cls):
        cls.v2.stop()
        cls.v3.stop()

    def server(self, api):
        return self.v2 if api == "v2" else self.v3

    def as_root(self, api, group, *args):
        return ctl("-endpoint", self.server(api).endpoint, "-etcd-api", api, "-etcd-username", "root",
                   "-etcd-password", PASSWORD, "-group", group, *args)

    def assertNoHolder(self, api, group):
        code, out, err = self.as_root(api, group, "status")
        self.assertEqual((code, out), (0, "Available: 1\nMax: 1\n"), err)

    def test_no_credentials_for_an_etcd_that_requires_them(self):
        for api in ("v2", "v3"):
            with self.subTest(api=api):
                group = "no-credentials-" + api
                refused(self, ctl("-endpoint", self.server(api).endpoint, "-etcd-api", api, "-group", group, "lock", "m1"),
                        "etcd requires a user name and password: set " + CREDENTIALS)
                self.assertNoHolder(api, group)

    def test_a_wrong_password(self):
        path = sec.scratch("password")
        write(path, WRONG + "\n", 0o600)
        for api, says in [("v3", 'etcd refused user "root": the user name or the password is wrong: check ' + CREDENTIALS),
                          ("v2", 'etcd refused user "root": the password is wrong, or none of the user\'s roles may read and write '
                                 "/coreos.com/updateengine/rebootlock/*: check " + CREDENTIALS)]:
            with self.subTest(api=api):
                group = "wrong-password-" + api
                err = refused(self, ctl("-endpoint", self.server(api).endpoint, "-etcd-api", api, "-etcd-username", "root",
                                        "-etcd-password-file", path, "-group", group, "lock", "m1"), says)
                self.assertNotIn(WRONG, err)
                self.assertNoHolder(api, group)
        # The daemon's log says the same.
        out = daemon_says(self, {"LOCKSMITHD_ENDPOINT": self.v3.endpoint, "LOCKSMITHD_ETCD_API": "v3",
                                 "LOCKSMITHD_ETCD_USERNAME": "root", "LOCKSMITHD_ETCD_PASSWORD_FILE": path},
                          'etcd refused user "root": the user name or the password is wrong')
        self.assertNotIn(WRONG, out)

    def test_a_user_without_permission_on_the_keys(self):
        for api, says in [("v3", 'etcd refused user "nobody" access to coreos.com/updateengine/rebootlock/: none of its roles may '
                                 "read and write there: grant one of them readwrite on that prefix (etcdctl role grant-permission "
                                 "--prefix=true ROLE readwrite coreos.com/updateengine/rebootlock/) (etcdserver: permission denied)"),
                          ("v2", "(ETCDCTL_API=2 etcdctl role grant ROLE --readwrite --path '/coreos.com/updateengine/rebootlock/*')")]:
            with self.subTest(api=api):
                group = "no-permission-" + api
                refused(self, ctl("-endpoint", self.server(api).endpoint, "-etcd-api", api, "-etcd-username", "nobody",
                                  "-etcd-password", PASSWORD, "-group", group, "lock", "m1"), 'etcd refused user "nobody"', says)
                self.assertNoHolder(api, group)

    def test_a_password_file_this_user_cannot_read(self):
        if os.geteuid() != 0:
            self.skipTest("needs root, to run locksmithctl as another user")
        path = sec.scratch("root-only-password")
        write(path, PASSWORD + "\n", 0o600)
        os.chmod(os.path.dirname(path), 0o755)
        os.chmod(sec.SCRATCH, 0o755)
        r = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", harness.LOCKSMITHCTL,
                            "-endpoint", self.v3.endpoint, "-etcd-username", "root", "-etcd-password-file", path, "status"],
                           env=sec.clean_env(), capture_output=True, text=True, timeout=60)
        refused(self, (r.returncode, r.stdout, r.stderr),
                "etcd-password-file: cannot read %s: Permission denied: run as a user who may read it (locksmithd runs as root), "
                "or let this user read it (chgrp its group, then chmod g+r)" % path)


# ---- what answers at the endpoint ----

class NotEtcd:
    """A web server on loopback that is not etcd: HTML pages, 404 for every GET (the files it
    serves are none of etcd's paths) and 501 for POST, as python's http.server."""

    def __init__(self):
        class Handler(http.server.SimpleHTTPRequestHandler):
            def log_message(self, *args):
                pass
        empty = sec.scratch("www")
        os.makedirs(empty)
        self.server = socketserver.TCPServer(("127.0.0.1", 0), lambda *a, **k: Handler(*a, directory=empty, **k))
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.endpoint = "http://127.0.0.1:%d" % self.server.server_address[1]

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


class EndpointErrorsSayWhatToDo(unittest.TestCase):
    def test_an_etcd_without_the_v2_api(self):
        etcd = harness.Etcd(enable_v2=False)
        try:
            says = ("%s: this etcd (etcd 3." % etcd.endpoint, "does not serve the v2 API",
                    "set etcd-api (flag -etcd-api, or LOCKSMITHD_ETCD_API) to v3 or auto",
                    "Machines that still run the original locksmith speak only v2, and v2 and v3 keep separate semaphores: "
                    "while any do, keep every machine on v2 and start etcd with --enable-v2=true")
            # Reached, and answered: the command's own prefix (EPROTO at the C API), not "Error
            # initializing etcd client" (a connection that failed).
            for args, prefix in [(["lock", "m1"], "Error locking: "), (["status"], "Error reading semaphore: "),
                                 (["set-max", "3"], "Error setting value: ")]:
                with self.subTest(args=args):
                    refused(self, ctl("-endpoint", etcd.endpoint, "-etcd-api", "v2", *args),
                            "no endpoint serves the etcd API in use (", *says, prefix=prefix)
            self.assertIsNone(etcd.get("v3", KEY), "nothing was written")
            # As advised: v3 (or auto) works.
            for api in ("v3", "auto"):
                code, out, err = ctl("-endpoint", etcd.endpoint, "-etcd-api", api, "status")
                self.assertEqual((code, out), (0, "Available: 1\nMax: 1\n"), err)
            daemon_says(self, {"LOCKSMITHD_ENDPOINT": etcd.endpoint, "LOCKSMITHD_ETCD_API": "v2"}, *says[1:])
        finally:
            etcd.stop()

    def test_a_server_that_is_not_etcd(self):
        web = NotEtcd()
        try:
            for api, request_line in [("auto", "HTTP 501 to POST /v3/kv/range"), ("v3", "HTTP 501 to POST /v3/kv/range"),
                                      ("v2", "HTTP 404 to GET /v2/keys/coreos.com/updateengine/rebootlock/semaphore")]:
                with self.subTest(api=api):
                    refused(self, ctl("-endpoint", web.endpoint, "-etcd-api", api, "lock", "m1"),
                            "no endpoint serves the etcd API in use (%s: this is not etcd: it answered %s" % (web.endpoint, request_line),
                            "check that the endpoint is the URL of etcd's client port (--advertise-client-urls, port 2379 by default)",
                            prefix="Error locking: ")
            # With a dead endpoint in the list too, the connection failure leads.
            refused(self, ctl("-endpoint", web.endpoint + ",http://127.0.0.1:9", "status"),
                    "no etcd endpoint answered (%s: this is not etcd" % web.endpoint, "; http://127.0.0.1:9: nothing accepts connections there")
            # Before a real etcd in the list, it is skipped.
            etcd = harness.Etcd()
            try:
                code, out, err = ctl("-endpoint", web.endpoint + "," + etcd.endpoint, "status")
                self.assertEqual((code, out, err), (0, "Available: 1\nMax: 1\n", ""))
            finally:
                etcd.stop()
        finally:
            web.stop()

    def test_a_paused_etcd(self):
        etcd = harness.Etcd()
        try:
            os.kill(etcd.proc.pid, signal.SIGSTOP)
            try:
                refused(self, ctl("-endpoint", etcd.endpoint, "-timeout", "1s", "lock", "m1"),
                        "%s: the server accepted the connection but did not answer in time: is etcd overloaded, stopped, "
                        "or without a quorum of its members (etcdctl endpoint health)? If it is only slow, give it longer with "
                        "timeout (flag -timeout, or LOCKSMITHD_TIMEOUT) (Operation timed out after" % etcd.endpoint)
            finally:
                os.kill(etcd.proc.pid, signal.SIGCONT)
            self.assertEqual(etcd.holders("v2", KEY), [], "nothing was locked")
        finally:
            etcd.stop()

    def test_an_endpoint_without_a_scheme(self):
        refused(self, ctl("-endpoint", "127.0.0.1:2379", "status"),
                'endpoint "127.0.0.1:2379" has no http:// or https:// scheme: write it as "http://127.0.0.1:2379" '
                "(https:// if the server uses TLS)")
        # The daemon names the variable and the file it came from.
        node = sec.Node(strategy="etcd-lock", conf="LOCKSMITHD_ENDPOINT=127.0.0.1:2379\n")
        try:
            self.assertEqual(node.proc.wait(10), 78, node.output())  # EX_CONFIG: not restarted
        finally:
            node.stop()
        self.assertIn('LOCKSMITHD_ENDPOINT: endpoint "127.0.0.1:2379" has no http:// or https:// scheme: write it as '
                      '"http://127.0.0.1:2379"', node.output())
        self.assertIn("%s/etc/coreos/update.conf" % node.root, node.output())


# Advice.gatewayCannotConnect, as every message gives it.
GATEWAY = ("etcd's JSON gateway (its v3 API over HTTP) cannot connect to etcd itself: etcd 3.4's gateway connects to etcd's "
           "client port as a client, with etcd's own server certificate (--cert-file), and etcd refuses it. Either use the v2 API, "
           "as the original locksmith does: set etcd-api (flag -etcd-api, or LOCKSMITHD_ETCD_API) to v2, with etcd started with "
           "--enable-v2=true; or let etcd accept its own certificate: sign the server's and the clients' certificates with one CA "
           "(or list both CAs in --trusted-ca-file), and give the server's certificate client use too (extendedKeyUsage "
           "serverAuth,clientAuth); or, on etcd 3.5 and later, give etcd a client certificate for its own connections with "
           "--client-cert-file and --client-key-file")


class GatewayErrorsSayWhatToDo(unittest.TestCase):
    """Flatcar's kola TLS layout (etcd's certificate from one CA, client certificates from another
    that --trusted-ca-file names, --client-cert-auth): etcd 3.4's JSON gateway presents etcd's
    own certificate to etcd, which refuses it, so every v3 request is answered HTTP 503
    "connection closed" (issue 25, item 5)."""

    @classmethod
    def setUpClass(cls):
        directory = sec.scratch("kola")
        os.makedirs(directory)
        cls.certs = harness.kola_certificates(directory)

    def kctl(self, etcd, *args):
        """locksmithctl as kola runs it on the machine: the etcd CA, locksmith's client certificate."""
        return ctl("-endpoint", "https://localhost:%d" % etcd.port, "-etcd-cafile", self.certs["ca-etcd-cert"],
                   "-etcd-certfile", self.certs["locksmith-cert"], "-etcd-keyfile", self.certs["locksmith-key"], *args)

    def test_a_v3_gateway_that_cannot_connect_to_its_own_etcd(self):
        etcd = harness.kola_etcd(self.certs, enable_v2=False)
        try:
            endpoint = "https://localhost:%d" % etcd.port
            for api, args in [("v3", ["status"]), ("v3", ["lock", "m1"]), ("auto", ["status"])]:
                with self.subTest(api=api, args=args):
                    # The gateway's words after the advice: "connection closed", "write tcp ...: broken pipe", ...
                    refused(self, self.kctl(etcd, "-etcd-api", api, *args), "no etcd endpoint answered (%s: %s (HTTP 503 \"" % (endpoint, GATEWAY))
            # The daemon's log says the same.
            daemon_says(self, {"LOCKSMITHD_ENDPOINT": endpoint, "LOCKSMITHD_ETCD_CAFILE": self.certs["ca-etcd-cert"],
                               "LOCKSMITHD_ETCD_CERTFILE": self.certs["locksmith-cert"], "LOCKSMITHD_ETCD_KEYFILE": self.certs["locksmith-key"]},
                        GATEWAY)
        finally:
            etcd.stop()
        # Where etcd serves v2 too, v3 still fails so; as advised, v2 works, and auto picks it.
        etcd = harness.kola_etcd(self.certs)
        try:
            refused(self, self.kctl(etcd, "-etcd-api", "v3", "lock", "m1"), GATEWAY)
            for api in ("v2", "auto"):
                code, out, err = self.kctl(etcd, "-etcd-api", api, "status")
                self.assertEqual((code, out), (0, "Available: 1\nMax: 1\n"), err)
        finally:
            etcd.stop()


# ---- stored data ----

class StoredDataErrorsSayWhatToDo(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.etcd = harness.Etcd()

    @classmethod
    def tearDownClass(cls):
        cls.etcd.stop()

    def test_a_corrupt_semaphore_says_how_to_repair_it(self):
        fresh = '{"semaphore":1,"max":1,"holders":[]}'
        for api, bad, what, get, put in [
                ("v3", "not json", 'not JSON: expected null at byte 1 (value: "not json")', "`etcdctl get %s`", "`etcdctl put %s '%s'`"),
                ("v2", '{"semaphore":"x","max":2,"holders":[]}', '"semaphore" is not an integer but a string',
                 "`ETCDCTL_API=2 etcdctl get /%s`", "`ETCDCTL_API=2 etcdctl set /%s '%s'`")]:
            group = "corrupt-" + api
            key = harness.group_key(group)
            self.etcd.put(api, key, bad)
            for args in (["lock", "m1"], ["unlock", "m1"], ["set-max", "3"], ["status"]):
                with self.subTest(api=api, args=args):
                    refused(self, ctl("-endpoint", self.etcd.endpoint, "-etcd-api", api, "-group", group, *args),
                            "%s: %s" % (key, what), "locksmith does not overwrite it: look at it with " + get % key,
                            "and store a valid document over it, such as " + put % (key, fresh),
                            "(list the machines that hold a slot in holders, and set semaphore to max minus their number)",
                            prefix="Error reading semaphore: ")
                    self.assertEqual(self.etcd.get(api, key), bad, "the bad value is left alone")
            if api == "v3":
                daemon_says(self, {"LOCKSMITHD_ENDPOINT": self.etcd.endpoint, "LOCKSMITHD_ETCD_API": api, "LOCKSMITHD_GROUP": group},
                            key, "locksmith does not overwrite it")
                self.assertEqual(self.etcd.get(api, key), bad)
            # Repaired as the message says, it works again.
            self.etcd.put(api, key, fresh)
            code, out, err = ctl("-endpoint", self.etcd.endpoint, "-etcd-api", api, "-group", group, "lock", "m1")
            self.assertEqual((code, err), (0, ""))

    def test_a_directory_where_the_semaphore_belongs(self):
        group = "directory"
        key = harness.group_key(group)
        status, _ = request(self.etcd.endpoint, "PUT", "/v2/keys/%s/inside" % urllib.parse.quote(key, safe="/%"),
                            b"value=x", {"Content-Type": "application/x-www-form-urlencoded"})
        self.assertEqual(status, 201)
        refused(self, ctl("-endpoint", self.etcd.endpoint, "-etcd-api", "v2", "-group", group, "lock", "m1"),
                "%s: is a directory, not a semaphore document: locksmith does not remove it: look at what it holds with "
                "`ETCDCTL_API=2 etcdctl ls --recursive /%s`, then remove it with `ETCDCTL_API=2 etcdctl rm --recursive /%s`" % (key, key, key),
                "set the maximum again with locksmithctl set-max", prefix="Error reading semaphore: ")
        self.assertEqual(self.etcd.get("v2", key + "/inside"), "x", "the directory is left alone")
        # Removed as the message says, the next command starts afresh.
        status, _ = request(self.etcd.endpoint, "DELETE", "/v2/keys/%s?recursive=true" % urllib.parse.quote(key, safe="/%"))
        self.assertEqual(status, 200)
        code, out, err = ctl("-endpoint", self.etcd.endpoint, "-etcd-api", "v2", "-group", group, "status")
        self.assertEqual((code, out), (0, "Available: 1\nMax: 1\n"), err)


# ---- this machine ----

class MachineIDErrorsSayWhatToDo(unittest.TestCase):
    def test_a_machine_without_a_usable_machine_id(self):
        etcd = harness.Etcd()
        try:
            for name, content, says in [("missing", None, "No such file or directory: this machine has no machine id"),
                                        ("empty", "", "not a machine id (expected 32 lower-case hex digits, it is empty)"),
                                        ("uninitialized", "uninitialized\n",
                                         'not a machine id (expected 32 lower-case hex digits, it holds "uninitialized")')]:
                with self.subTest(name):
                    root = sec.scratch("root")
                    os.makedirs(root + "/etc")
                    if content is not None:
                        write(root + "/etc/machine-id", content, 0o444)
                    for verb in ("lock", "unlock"):
                        refused(self, ctl("-endpoint", etcd.endpoint, verb, env={"LOCKSMITH_ROOT": root}),
                                "%s/etc/machine-id: " % root, says,
                                ": make one with systemd-machine-id-setup, or name the machine: locksmithctl %s ID" % verb,
                                prefix="Error reading machine id: ")
            self.assertIsNone(etcd.get("v2", KEY), "nothing was written")
        finally:
            etcd.stop()


if __name__ == "__main__":
    unittest.main()
