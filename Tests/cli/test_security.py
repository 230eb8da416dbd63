"""Security properties, tested on the real programs (see docs/security.md for the findings):
TLS verification that nothing turns off, credentials that never show in output, logs, messages or
the process list, the daemon's files (coordinator.conf, terminals from utmp) safe from symlinks
and planted entries, and the C API under hostile arguments (Tests/c/test_hostile_args.c)."""
import itertools
import os
import pty
import shutil
import socket
import stat
import struct
import subprocess
import tempfile
import time
import unittest
import urllib.error
import urllib.request

import harness

LOCKSMITHD = os.environ.get("LOCKSMITHD", os.path.join(harness.ROOT, "build", "bin", "locksmithd"))
LIBDIR = os.environ.get("LOCKSMITH_LIBDIR", os.path.join(harness.ROOT, "build", "lib"))
NEED = "UPDATE_STATUS_UPDATED_NEED_REBOOT"
_ids = itertools.count(1)
PASSWORD = "s3cret-Pw-%d" % os.getpid()
WRONG = "wr0ng-Pw-%d" % os.getpid()
SCRATCH = None
bus = None


def setUpModule():
    global SCRATCH, bus
    SCRATCH = tempfile.mkdtemp(prefix="locksmith-test-security-")
    bus = harness.Bus()


def tearDownModule():
    bus.stop()
    shutil.rmtree(SCRATCH, ignore_errors=True)


def scratch(name):
    return os.path.join(SCRATCH, "%d-%s" % (next(_ids), name))


def clean_env(extra=None):
    e = {k: v for k, v in os.environ.items() if not k.startswith(("LOCKSMITH", "REBOOT_", "NOTIFY_", "JOURNAL_"))}
    e["LOCKSMITH_ROOT"] = "/nonexistent"
    e.update(extra or {})
    return e


def ctl(*args, env=None, timeout=60):
    r = subprocess.run([harness.LOCKSMITHCTL] + list(args), env=clean_env(env), capture_output=True, text=True, timeout=timeout)
    return r.returncode, r.stdout, r.stderr


wait_for, read = harness.wait_for, harness.read


def write(path, text, mode=0o600):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, mode)


# ---- servers ----

class Certificates:
    """A CA, a server certificate for 127.0.0.1, and one for another name, made with openssl."""

    def __init__(self):
        self.dir = scratch("tls")
        os.makedirs(self.dir)
        script = """
            set -e; cd '%s'
            q() { "$@" >/dev/null 2>&1; }
            q openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=locksmith-test-ca -keyout ca-key.pem -out ca.pem
            q openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=other-ca -keyout other-ca-key.pem -out other-ca.pem
            for name in server:IP:127.0.0.1 wrong:DNS:other.example; do
                n=${name%%%%:*}; printf 'subjectAltName=%%s\\nextendedKeyUsage=serverAuth\\n' "${name#*:}" > $n.ext
                q openssl req -newkey rsa:2048 -nodes -subj /CN=$n -keyout $n-key.pem -out $n.csr
                q openssl x509 -req -in $n.csr -CA ca.pem -CAkey ca-key.pem -CAcreateserial -days 2 -extfile $n.ext -out $n.pem
            done
            printf 'extendedKeyUsage=clientAuth\\n' > client.ext
            q openssl req -newkey rsa:2048 -nodes -subj /CN=client -keyout client-key.pem -out client.csr
            q openssl x509 -req -in client.csr -CA ca.pem -CAkey ca-key.pem -CAcreateserial -days 2 -extfile client.ext -out client.pem
            """ % self.dir
        subprocess.run(["bash", "-c", script], check=True)
        self.ca = self.dir + "/ca.pem"
        self.other_ca = self.dir + "/other-ca.pem"
        self.client = (self.dir + "/client.pem", self.dir + "/client-key.pem")


def request(endpoint, method, path, body=None, headers=None):
    req = urllib.request.Request(endpoint + path, method=method, data=body, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


class HungEndpoint:
    """Accepts connections and never answers: locksmithctl waits on it for its timeout."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.endpoint = "http://127.0.0.1:%d" % self.sock.getsockname()[1]

    def close(self):
        self.sock.close()


# ---- TLS ----

class TLS(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.certs = Certificates()
        cls.etcd = harness.Etcd(tls=(cls.certs.dir + "/server.pem", cls.certs.dir + "/server-key.pem", cls.certs.ca))
        cls.wrong_name = harness.Etcd(tls=(cls.certs.dir + "/wrong.pem", cls.certs.dir + "/wrong-key.pem", cls.certs.ca))

    @classmethod
    def tearDownClass(cls):
        cls.etcd.stop()
        cls.wrong_name.stop()

    def assertRefused(self, result, endpoint, *fragments):
        code, out, err = result
        self.assertEqual((code, out), (1, ""), err)
        self.assertTrue(err.startswith("Error initializing etcd client: no etcd endpoint answered (%s: " % endpoint), err)
        for f in fragments:
            self.assertIn(f, err)

    def test_ca_file_verifies_the_server(self):
        for api in ("v2", "v3", "auto"):
            with self.subTest(api=api):
                code, out, err = ctl("-endpoint", self.etcd.endpoint, "-etcd-api", api, "-etcd-cafile", self.certs.ca,
                                     "-group", "tls-" + api, "status")
                self.assertEqual((code, out), (0, "Available: 1\nMax: 1\n"), err)

    def test_self_signed_server_without_a_ca_fails_with_a_clear_error(self):
        for api in ("v2", "v3", "auto"):
            with self.subTest(api=api):
                self.assertRefused(ctl("-endpoint", self.etcd.endpoint, "-etcd-api", api, "status"),
                                   self.etcd.endpoint, "SSL certificate problem")

    def test_another_ca_fails(self):
        self.assertRefused(ctl("-endpoint", self.etcd.endpoint, "-etcd-cafile", self.certs.other_ca, "status"),
                           self.etcd.endpoint, "certificate")

    def test_host_name_is_checked(self):
        # Signed by the trusted CA, but for other.example: refused.
        self.assertRefused(ctl("-endpoint", self.wrong_name.endpoint, "-etcd-cafile", self.certs.ca, "status"),
                           self.wrong_name.endpoint, "127.0.0.1")

    def test_nothing_turns_verification_off(self):
        # Variables that turn verification off in other tools, and lookalikes of ours.
        lookalikes = {"GIT_SSL_NO_VERIFY": "1", "PYTHONHTTPSVERIFY": "0", "NODE_TLS_REJECT_UNAUTHORIZED": "0",
                      "CURL_INSECURE": "1", "CURLOPT_SSL_VERIFYPEER": "0", "ETCDCTL_INSECURE_SKIP_TLS_VERIFY": "true",
                      "ETCDCTL_INSECURE_TRANSPORT": "true", "LOCKSMITHCTL_INSECURE": "true",
                      "LOCKSMITHCTL_INSECURE_SKIP_TLS_VERIFY": "true", "LOCKSMITHCTL_ETCD_INSECURE": "true",
                      "LOCKSMITHD_INSECURE_SKIP_TLS_VERIFY": "true"}
        self.assertRefused(ctl("-endpoint", self.etcd.endpoint, "status", env=lookalikes), self.etcd.endpoint, "certificate")
        for flag in ("-insecure", "-insecure-skip-tls-verify", "-etcd-insecure", "-k"):
            code, out, err = ctl("-endpoint", self.etcd.endpoint, flag, "status")
            self.assertEqual(code, 2, "%s is not a flag" % flag)
            self.assertIn("flag provided but not defined", err)
        code, help_text, _ = ctl("help")
        for word in ("insecure", "no-verify", "skip"):
            self.assertNotIn(word, help_text.lower())
        # The one place TLS is configured sets both checks on, unconditionally.
        with open(os.path.join(harness.ROOT, "Sources", "LocksmithEtcd", "HTTP.swift")) as f:
            source = f.read()
        self.assertIn("CURLOPT_SSL_VERIFYPEER, 1)", source)
        self.assertIn("CURLOPT_SSL_VERIFYHOST, 2)", source)
        for name in os.listdir(os.path.join(harness.ROOT, "Sources")):
            for dirpath, _, files in os.walk(os.path.join(harness.ROOT, "Sources", name)):
                for file in files:
                    with open(os.path.join(dirpath, file), errors="replace") as f:
                        text = f.read()
                    self.assertEqual(text.count("SSL_VERIFYPEER"), 1 if file == "HTTP.swift" else 0, file)
                    self.assertNotIn("VERIFYHOST, 0", text)

    def test_without_a_ca_file_the_system_store_is_used(self):
        # In a private mount namespace, the system bundle is replaced by the test CA: the server
        # verifies without -etcd-cafile, so that bundle is what verification uses.
        bundle = "/etc/ssl/certs/ca-certificates.crt"
        probe = subprocess.run(["unshare", "-m", "true"], capture_output=True)
        if probe.returncode != 0 or not os.path.exists(bundle):
            self.skipTest("no mount namespace here (unshare -m: %s)" % probe.stderr.decode().strip())
        script = 'mount --bind "$1" "$2" && exec "$3" -endpoint "$4" -group system-store status'
        r = subprocess.run(["unshare", "-m", "sh", "-c", script, "sh", self.certs.ca, bundle, harness.LOCKSMITHCTL,
                            self.etcd.endpoint], env=clean_env(), capture_output=True, text=True, timeout=60)
        self.assertEqual((r.returncode, r.stdout), (0, "Available: 1\nMax: 1\n"), r.stderr)


# ---- credentials ----

class TLSErrorsSayWhatToDo(unittest.TestCase):
    """The TLS rows of docs/errors.md, each provoked by its real cause."""

    @classmethod
    def setUpClass(cls):
        cls.certs = Certificates()
        d = cls.certs.dir
        cls.strict = harness.Etcd(tls=(d + "/server.pem", d + "/server-key.pem", cls.certs.ca), client_certificate=cls.certs.client)
        cls.plain = harness.Etcd(tls=(d + "/server.pem", d + "/server-key.pem", cls.certs.ca))
        cls.wrong_name = harness.Etcd(tls=(d + "/wrong.pem", d + "/wrong-key.pem", cls.certs.ca))

    @classmethod
    def tearDownClass(cls):
        for e in (cls.strict, cls.plain, cls.wrong_name):
            e.stop()

    def refused(self, *args, says):
        code, out, err = ctl(*args, "status")
        self.assertEqual((code, out), (1, ""), err)
        self.assertIn(says, err)
        return err

    def test_no_client_certificate_for_a_server_that_wants_one(self):
        for api in ("v2", "v3"):
            with self.subTest(api=api):
                err = self.refused("-endpoint", self.strict.endpoint, "-etcd-api", api, "-etcd-cafile", self.certs.ca,
                                   says="the server asked for a client certificate and none was given")
                self.assertIn("-etcd-certfile/-etcd-keyfile", err)
        # With the certificate, it works.
        code, out, err = ctl("-endpoint", self.strict.endpoint, "-etcd-cafile", self.certs.ca,
                             "-etcd-certfile", self.certs.client[0], "-etcd-keyfile", self.certs.client[1], "status")
        self.assertEqual((code, out), (0, "Available: 1\nMax: 1\n"), err)

    def test_a_client_certificate_the_server_refuses(self):
        # Signed by the CA the server trusts, but a server certificate (not for client use).
        d = self.certs.dir
        self.refused("-endpoint", self.strict.endpoint, "-etcd-api", "v3", "-etcd-cafile", self.certs.ca,
                     "-etcd-certfile", d + "/server.pem", "-etcd-keyfile", d + "/server-key.pem",
                     says="the server refused the client certificate %s/server.pem" % d)

    def test_a_server_certificate_nothing_here_trusts(self):
        self.refused("-endpoint", self.plain.endpoint, says="not signed by a CA this system trusts: name the CA that signed it with etcd-cafile")
        self.refused("-endpoint", self.plain.endpoint, "-etcd-cafile", self.certs.other_ca,
                     says="the server's certificate is not signed by the CA in %s" % self.certs.other_ca)

    def test_a_server_certificate_for_another_name(self):
        self.refused("-endpoint", self.wrong_name.endpoint, "-etcd-cafile", self.certs.ca,
                     says="the server's certificate is not made out to the host name or address in the endpoint URL")


class ConnectionErrorsSayWhatToDo(unittest.TestCase):
    """The connection rows of docs/errors.md, each provoked by its real cause."""

    def test_nothing_listening(self):
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        sock.close()  # a port nothing listens on
        code, out, err = ctl("-endpoint", "http://127.0.0.1:%d" % port, "status")
        self.assertEqual((code, out), (1, ""), err)
        self.assertIn("nothing accepts connections there: is the server running, and is the URL's address and port right?", err)

    def test_a_host_name_that_does_not_resolve(self):
        code, out, err = ctl("-endpoint", "http://locksmith-test.invalid:2379", "status")
        self.assertEqual((code, out), (1, ""), err)
        self.assertIn("the host name does not resolve: check the URL's host name, or use an address", err)


class Credentials(unittest.TestCase):
    """One etcd with v2 authentication and one with v3 authentication (user root, PASSWORD)."""

    @classmethod
    def setUpClass(cls):
        cls.v2 = harness.Etcd()
        cls.v2.enable_auth("v2", PASSWORD)
        cls.v3 = harness.Etcd()
        cls.v3.enable_auth("v3", PASSWORD)
        cls.hung = HungEndpoint()

    @classmethod
    def tearDownClass(cls):
        cls.v2.stop()
        cls.v3.stop()
        cls.hung.close()

    def server(self, api):
        return self.v2 if api == "v2" else self.v3

    def password_ways(self, password):
        """The three ways to give locksmithctl a password: (arguments, environment)."""
        path = scratch("password")
        write(path, password + "\n", 0o600)
        return [("flag", ["-etcd-password", password], {}),
                ("environment", [], {"LOCKSMITHCTL_ETCD_PASSWORD": password}),
                ("file", ["-etcd-password-file", path], {})]

    def test_wrong_password_is_refused_and_never_shown(self):
        for api in ("v2", "v3"):
            for way, args, env in self.password_ways(WRONG):
                with self.subTest(api=api, way=way):
                    code, out, err = ctl("-endpoint", self.server(api).endpoint, "-etcd-api", api, "-etcd-username", "root",
                                         *args, "-debug", "lock", "m1", env=env)
                    self.assertEqual(code, 1, err)
                    self.assertIn("refused", err)
                    self.assertNotIn(WRONG, out + err)
                    self.assertNotIn(PASSWORD, out + err)
            with self.subTest(api=api, way="none"):
                code, out, err = ctl("-endpoint", self.server(api).endpoint, "-etcd-api", api, "-debug", "status")
                self.assertEqual(code, 1, err)
                self.assertTrue(err.rstrip().splitlines()[-1].startswith("Error initializing etcd client: "), err)

    def test_right_password_works_and_is_never_shown(self):
        for api in ("v2", "v3"):
            for way, args, env in self.password_ways(PASSWORD):
                with self.subTest(api=api, way=way):
                    group = "auth-%s-%s" % (api, way)
                    base = ["-endpoint", self.server(api).endpoint, "-etcd-api", api, "-etcd-username", "root", "-group", group] + args
                    code, out, err = ctl(*base, "-debug", "lock", "m1", env=env)
                    self.assertEqual(code, 0, err)
                    self.assertRegex(err, r"locksmithctl: debug: (PUT|POST) http://", "the trace is on")
                    self.assertNotIn(PASSWORD, out + err)
                    code, out, err = ctl(*base, "-debug", "status", env=env)
                    self.assertEqual(out, "Available: 0\nMax: 1\n\nMACHINE ID\nm1\n", err)
                    self.assertNotIn(PASSWORD, out + err)
                    if way == "environment":
                        self.assertIn("etcd-password = (hidden) (from LOCKSMITHCTL_ETCD_PASSWORD)", err)

    def test_password_on_the_command_line_is_hidden_from_the_process_list(self):
        for args, shown in [(["-etcd-password", PASSWORD], ["-etcd-password", "*" * len(PASSWORD)]),
                            (["-etcd-password=" + PASSWORD], ["-etcd-password=" + "*" * len(PASSWORD)]),
                            (["--etcd-password=" + PASSWORD], ["--etcd-password=" + "*" * len(PASSWORD)])]:
            with self.subTest(args=args):
                p = subprocess.Popen([harness.LOCKSMITHCTL, "-endpoint", self.hung.endpoint, "-timeout", "30s",
                                      "-etcd-username", "root"] + args + ["-group", "-etcd-password", "status"],
                                     env=clean_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
                try:
                    def cmdline():
                        with open("/proc/%d/cmdline" % p.pid, "rb") as f:
                            return f.read().decode().split("\0")[:-1]
                    self.assertTrue(wait_for(lambda: "*" in " ".join(cmdline()), 10), cmdline())
                    seen = cmdline()
                    self.assertNotIn(PASSWORD, " ".join(seen))
                    self.assertEqual(seen[7:7 + len(shown)], shown)
                    # The value of another flag that looks like the password flag is left alone.
                    self.assertEqual(seen[-3:], ["-group", "-etcd-password", "status"])
                finally:
                    p.terminate()  # it would wait for the hung endpoint until its timeout
                    out, err = p.communicate(timeout=30)
                self.assertNotIn(PASSWORD.encode(), out + err)

    def test_password_in_the_environment_is_readable_only_by_its_owner(self):
        p = subprocess.Popen([harness.LOCKSMITHCTL, "-endpoint", self.hung.endpoint, "-timeout", "30s", "status"],
                             env=clean_env({"LOCKSMITHCTL_ETCD_USERNAME": "root", "LOCKSMITHCTL_ETCD_PASSWORD": PASSWORD}),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            time.sleep(0.3)
            self.assertEqual(stat.S_IMODE(os.stat("/proc/%d/environ" % p.pid).st_mode), 0o400)
            with open("/proc/%d/cmdline" % p.pid, "rb") as f:
                self.assertNotIn(PASSWORD.encode(), f.read())
        finally:
            p.terminate()
            p.communicate(timeout=30)

    def test_password_file_that_every_user_can_read_is_warned_about(self):
        for mode, warned in [(0o644, True), (0o604, True), (0o640, False), (0o600, False), (0o400, False)]:
            with self.subTest(mode=oct(mode)):
                path = scratch("password")
                write(path, PASSWORD + "\n", mode)
                code, out, err = ctl("-endpoint", self.v3.endpoint, "-etcd-api", "v3", "-etcd-username", "root",
                                     "-etcd-password-file", path, "-group", "file-mode", "status")
                self.assertEqual(code, 0, err)
                warning = "locksmithctl: warning: etcd-password-file: %s can be read by every user (mode %o): chmod o-r it\n" % (path, mode)
                self.assertEqual(err, warning if warned else "")
                self.assertNotIn(PASSWORD, out + err)
        empty = scratch("empty-password")
        write(empty, "", 0o600)
        code, out, err = ctl("-endpoint", self.v3.endpoint, "-etcd-password-file", empty, "status")
        self.assertEqual((code, err), (1, "Error initializing etcd client: etcd-password-file: %s is empty\n" % empty))

    def test_credentials_in_an_endpoint_are_refused_without_showing_them(self):
        for endpoint in ("http://root:%s@127.0.0.1:2379" % PASSWORD, "https://root:%s@[::1]:2379/" % PASSWORD,
                         "root:%s@127.0.0.1:2379" % PASSWORD):
            with self.subTest(endpoint=endpoint):
                code, out, err = ctl("-endpoint", endpoint, "-debug", "status")
                self.assertEqual(code, 1)
                self.assertNotIn(PASSWORD, out + err)
                self.assertIn("***@", err)
                code, out, err = ctl("status", "-debug", env={"LOCKSMITHCTL_ENDPOINT": endpoint})
                self.assertEqual(code, 1)
                self.assertNotIn(PASSWORD, out + err)
        code, out, err = ctl("-endpoint", "http://root:%s@127.0.0.1:2379" % PASSWORD, "status")
        self.assertEqual(err, 'Error initializing etcd client: endpoint "http://***@127.0.0.1:2379" carries credentials: '
                              "give them with etcd-username and etcd-password-file\n")

    def test_daemon_reads_the_password_from_a_file_or_update_conf_and_never_logs_it(self):
        ue = bus.start([os.path.join(harness.STANDINS, "fake-update-engine"), NEED])
        logind = Logind()
        try:
            # Right password from a world-readable update.conf: a warning, and it works.
            conf = "LOCKSMITHD_ETCD_USERNAME=root\nLOCKSMITHD_ETCD_PASSWORD=%s\n" % PASSWORD
            node = Node(conf=conf, conf_mode=0o644, env={"LOCKSMITHD_ENDPOINT": self.v3.endpoint, "LOCKSMITHD_ETCD_API": "v3"})
            try:
                self.assertTrue(wait_for(lambda: logind.calls(), 20), node.output())
                self.assertIn("LOCKSMITHD_ETCD_PASSWORD is set in %s/etc/coreos/update.conf, which every user can read" % node.root,
                              node.output())
                self.assertNotIn(PASSWORD, node.output())
            finally:
                node.stop()
            # Wrong password from a file (mode 0600: no warning): refused, retried, never shown.
            path = scratch("daemon-password")
            write(path, WRONG + "\n", 0o600)
            for api in ("v2", "v3"):
                node = Node(env={"LOCKSMITHD_ENDPOINT": self.server(api).endpoint, "LOCKSMITHD_ETCD_API": api,
                                 "LOCKSMITHD_ETCD_USERNAME": "root", "LOCKSMITHD_ETCD_PASSWORD_FILE": path})
                try:
                    self.assertTrue(wait_for(lambda: "refused" in node.output(), 15), node.output())
                    self.assertIsNone(node.proc.poll())
                    self.assertNotIn(WRONG, node.output())
                    self.assertNotIn("can be read by every user", node.output())
                    with open("/proc/%d/cmdline" % node.proc.pid, "rb") as f:
                        self.assertNotIn(WRONG.encode(), f.read())
                finally:
                    node.stop()
        finally:
            logind.stop()
            bus.stop_process(ue)


# ---- the daemon's files ----

class Logind:
    def __init__(self):
        self.log = scratch("logind.log")
        self.proc = bus.start([os.path.join(harness.STANDINS, "fake-logind"), self.log])

    def calls(self):
        return [line for line in read(self.log).splitlines() if line]

    def stop(self):
        bus.stop_process(self.proc)


class Node:
    """A daemon with its own root (machine id, update.conf) on the private bus."""

    def __init__(self, env=None, conf=None, conf_mode=0o644, strategy="etcd-lock", start=True, prepare=None):
        self.root = scratch("node")
        write(self.root + "/etc/machine-id", "%032x\n" % (0x5ec000 + next(_ids)), 0o644)
        if conf is not None:
            write(self.root + "/etc/coreos/update.conf", conf, conf_mode)
        self.env = clean_env({"LOCKSMITH_ROOT": self.root, "DBUS_SYSTEM_BUS_ADDRESS": bus.address, "REBOOT_STRATEGY": strategy,
                              "LOCKSMITHD_REBOOT_BROADCAST_DELAY": "1s", "LOCKSMITHD_TIMEOUT": "2s", "TZ": "UTC"})
        self.env.update(env or {})
        self.tty = None  # a terminal to mount under the root (prepare may set it)
        if prepare:
            prepare(self)
        self.log = open(self.root + "/daemon.log", "w")
        binds = [harness.terminal_under(self.root, self.tty)[0]] if self.tty else []
        self.proc = subprocess.Popen(harness.in_mount_namespace(LOCKSMITHD, binds), env=self.env, stdout=self.log, stderr=subprocess.STDOUT)
        harness._running.append(self.proc)

    @property
    def conf_dir(self):
        return self.root + "/run/update-engine"

    def output(self):
        return read(self.root + "/daemon.log")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
        code = self.proc.wait(10)
        harness._running.remove(self.proc)
        self.log.close()
        return code


utmp_record = harness.utmp_record


class Files(unittest.TestCase):
    def test_coordinator_conf_is_root_owned_0644_in_a_0755_directory_and_replaced_safely(self):
        ue = bus.start([os.path.join(harness.STANDINS, "fake-update-engine"), "UPDATE_STATUS_IDLE"])
        logind = Logind()
        victim = scratch("victim")
        write(victim, "precious\n", 0o644)
        node = Node(strategy="reboot")
        try:
            conf = node.conf_dir + "/coordinator.conf"
            self.assertTrue(wait_for(lambda: "STATE=running" in read(conf)), node.output())
            st, dst = os.lstat(conf), os.stat(node.conf_dir)
            self.assertTrue(stat.S_ISREG(st.st_mode))
            self.assertEqual((stat.S_IMODE(st.st_mode), st.st_uid), (0o644, os.geteuid()))
            self.assertEqual(stat.S_IMODE(dst.st_mode) & 0o022, 0, "the directory is writable by its owner only")
            # A symlink planted at the temporary file's predictable name: the next state change
            # replaces it with a new file and leaves the link's target alone.
            planted = "%s.%d.tmp" % (conf, node.proc.pid)
            os.symlink(victim, planted)
            ue.stdin.write("emit %s\n" % NEED)
            ue.stdin.flush()
            self.assertTrue(wait_for(lambda: logind.calls(), 15), node.output())
            self.assertTrue(wait_for(lambda: "STATE=rebooting" in read(conf)), node.output())
            self.assertEqual(read(victim), "precious\n")
            self.assertTrue(stat.S_ISREG(os.lstat(conf).st_mode))
            self.assertEqual(stat.S_IMODE(os.lstat(conf).st_mode), 0o644)
            self.assertFalse(os.path.lexists(planted))
        finally:
            node.stop()
            logind.stop()
            bus.stop_process(ue)

    def test_a_symlink_in_place_of_coordinator_conf_is_never_followed(self):
        # The daemon never opens coordinator.conf: it renames a new file over it (issue 26), and
        # rename replaces a symbolic link itself. What the link named stays as it was.
        victim = scratch("victim")
        write(victim, "precious\n", 0o644)
        conf = []

        def plant(node):
            os.makedirs(node.conf_dir)
            os.symlink(victim, node.conf_dir + "/coordinator.conf")
            conf.append(node.conf_dir + "/coordinator.conf")
        node = Node(strategy="reboot", prepare=plant)
        try:
            self.assertTrue(wait_for(lambda: stat.S_ISREG(os.lstat(conf[0]).st_mode)), node.output())
            self.assertIn("NAME=locksmithd\n", read(conf[0]))
            self.assertEqual(read(victim), "precious\n")
        finally:
            node.stop()

    def test_broadcast_writes_to_terminals_only(self):
        ue = bus.start([os.path.join(harness.STANDINS, "fake-update-engine"), NEED])
        logind = Logind()
        master, slave = pty.openpty()
        victims = {}

        def prepare(node):
            tty = os.ttyname(slave)
            line = tty[len("/dev/"):]
            node.tty = tty
            for name, path in [("absolute", "/etc/victim"), ("file-in-dev", "/dev/victim"), ("fifo", None)]:
                if path:
                    victims[name] = node.root + path
                    write(node.root + path, "precious\n", 0o644)
            os.mkfifo(node.root + "/dev/fifo")
            write(node.root + "/var/run/utmp", "", 0o644)
            with open(node.root + "/var/run/utmp", "wb") as f:
                for entry in ("/etc/victim", "victim", "fifo", "/dev/../etc/victim", line):
                    f.write(utmp_record(entry))
        node = Node(strategy="reboot", prepare=prepare)
        try:
            self.assertTrue(wait_for(lambda: logind.calls(), 15), node.output())
            os.set_blocking(master, False)
            self.assertIn("System reboot in 1 second!", os.read(master, 4096).decode(errors="replace"))
            for name, path in victims.items():
                self.assertEqual(read(path), "precious\n", name)
            self.assertIn("told 1 logged-in terminal(s)", node.output())
        finally:
            node.stop()
            os.close(master)
            os.close(slave)
            logind.stop()
            bus.stop_process(ue)


# ---- the C API ----

class CAPI(unittest.TestCase):
    def test_every_function_survives_hostile_arguments_under_valgrind(self):
        if not shutil.which("valgrind") or not shutil.which("gcc"):
            self.skipTest("needs gcc and valgrind")
        if not os.path.exists(os.path.join(LIBDIR, "liblocksmith.so")):
            self.skipTest("no library in %s (make lib)" % LIBDIR)
        binary = scratch("test_hostile_args")
        subprocess.run(["gcc", "-std=c99", "-Wall", "-Wextra", "-Werror", "-g",
                        os.path.join(harness.ROOT, "Tests", "c", "test_hostile_args.c"),
                        "-I" + os.path.join(harness.ROOT, "include"), "-L" + LIBDIR, "-llocksmith",
                        "-Wl,-rpath," + LIBDIR, "-o", binary], check=True)
        root = scratch("c-root")
        os.makedirs(root)
        r = subprocess.run(["valgrind", "-q", "--leak-check=full", "--error-exitcode=1",
                            "--suppressions=" + os.path.join(harness.ROOT, "Tests", "c", "swift-runtime.supp"), binary, root],
                           env=clean_env(), capture_output=True, text=True, timeout=600)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr[-4000:])
        self.assertRegex(r.stdout, r"test_hostile_args: \d+ passed, 0 failed")


if __name__ == "__main__":
    unittest.main()
