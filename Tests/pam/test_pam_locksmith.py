"""pam_locksmith.so loaded by PAM itself: pamtester opens sessions through service files written to
/etc/pam.d/locksmith-test-<random> (removed afterwards), against a real etcd, with each test's own
root directory (etc/machine-id, update.conf, run/update-engine/coordinator.conf).

The module logs with pam_syslog to /dev/log. Each pamtester runs in a private mount namespace
whose /dev is the real one plus a /dev/log that is this test's socket, so the tests read exactly
the lines the module wrote and nothing on the machine is changed.

Environment and Deadline are docs/security.md's issue 12 (items 3 and 6): under su or sudo the
module runs as root with the caller's environment, which must steer nothing (files, endpoints,
credentials, proxies), and timeout= bounds all the etcd work of one login, which never writes.
They talk to fake etcd servers (FakeEtcd, plain or TLS, on loopback) that count what they get.

Needs root (PAM service files, mount namespaces), pamtester, etcd, openssl and the built module:
PAM_LOCKSMITH (default build/tools/pam_locksmith.so). Run from Tests/pam:
    /usr/bin/python3 -m unittest -v test_pam_locksmith
"""
import base64
import fcntl
import http.server
import itertools
import json
import os
import secrets
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import unittest

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(TOP, "Tests", "harness"))
import locksmith_harness as harness  # noqa: E402

MODULE = os.environ.get("PAM_LOCKSMITH", os.path.join(TOP, "build", "tools", "pam_locksmith.so"))
LOCKSMITHCTL = harness.LOCKSMITHCTL
LOCKSMITHD = os.environ.get("LOCKSMITHD", os.path.join(TOP, "build", "bin", "locksmithd"))
# Where the module finds liblocksmith.so.1 before it is installed ("" when it is installed).
LIBDIR = os.environ.get("LOCKSMITH_LIBDIR", os.path.join(TOP, "build", "lib"))
SUPPRESSIONS = [os.path.join(TOP, "Tests", "c", "swift-runtime.supp"),
                os.path.join(TOP, "Tests", "pam", "ld-so.supp")]
NEED = "UPDATE_STATUS_UPDATED_NEED_REBOOT"

# Runs a command with /dev replaced by links to the real device files, and /dev/log -> $LOG.
NAMESPACE_SCRIPT = r'''
set -e
mkdir -p "$WORK/realdev"
mount --bind /dev "$WORK/realdev"
mount -t tmpfs -o mode=0755 tmpfs /dev
for f in "$WORK"/realdev/*; do
    n=${f##*/}
    [ "$n" = log ] || ln -s "$f" "/dev/$n"
done
ln -s "$LOG" /dev/log
exec "$@"
'''

_ids = itertools.count(1)
etcd = None
work = None
syslog = None


class Syslog:
    """A datagram socket that plays /dev/log."""

    def __init__(self, path):
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path)
        self.sock.setblocking(False)
        self.lines = []

    def drain(self):
        while True:
            try:
                self.lines.append(self.sock.recv(65536).decode(errors="replace"))
            except BlockingIOError:
                return self.lines

    def of(self, service):
        """The lines the module logged under service."""
        return [line for line in self.drain() if "pam_locksmith(%s:" % service in line]

    def close(self):
        self.sock.close()


def setUpModule():
    global etcd, work, syslog
    if os.geteuid() != 0:
        raise unittest.SkipTest("needs root: writes /etc/pam.d files and uses mount namespaces")
    if not os.path.exists(MODULE):
        raise RuntimeError("%s is not built (make build/tools/pam_locksmith.so)" % MODULE)
    work = tempfile.mkdtemp(prefix="locksmith-test-pam-")
    syslog = Syslog(os.path.join(work, "log"))
    etcd = harness.Etcd(prefix="locksmith-test-etcd-pam-")


def tearDownModule():
    if etcd:
        etcd.stop()
    if syslog:
        syslog.close()
    if work:
        shutil.rmtree(work, ignore_errors=True)


def ctl(group, *args, endpoint=None):
    r = subprocess.run([LOCKSMITHCTL, "-endpoint", endpoint or etcd.endpoint, "-group", group, *args],
                       capture_output=True, text=True, env={"LOCKSMITH_ROOT": "/nonexistent", "PATH": os.environ["PATH"]})
    if r.returncode != 0:
        raise AssertionError("locksmithctl %s: %s%s" % (" ".join(args), r.stdout, r.stderr))
    return r.stdout


def new_group():
    return "pam-%d-%d" % (os.getpid(), next(_ids))


class Result:
    def __init__(self, rc, out, err, seconds, log):
        self.rc, self.out, self.err, self.seconds, self.log = rc, out, err, seconds, log

    @property
    def text(self):
        """What the user was shown (pam_info goes to stdout, pam_error to stderr)."""
        return self.out + self.err

    @property
    def messages(self):
        return [line for line in self.text.splitlines() if not line.startswith("pamtester:")]

    def __repr__(self):
        return "rc=%d %.2fs\nstdout: %s\nstderr: %s\nlog: %s" % (self.rc, self.seconds, self.out, self.err, self.log)


class Node:
    """One machine's root: a machine id, update.conf and coordinator.conf, and the write lock the
    running locksmithd holds on coordinator.conf."""

    def __init__(self, conf=None):
        self.id = secrets.token_hex(16)
        self.root = harness.make_root(tempfile.mkdtemp(prefix="node-", dir=work), self.id, conf)
        os.makedirs(self.root + "/run/update-engine")
        self.coordinator = self.root + "/run/update-engine/coordinator.conf"
        self.locked = None
        self.state_locked = None

    def set_state(self, state, strategy="etcd-lock", age=None, running=True):
        """Writes coordinator.conf as locksmithd does, dated age seconds ago, and holds its write
        lock like a running daemon (or not)."""
        with open(self.coordinator, "w") as f:
            f.write("NAME=locksmithd\nSTRATEGY=%s\nSTATE=%s\n" % (strategy, state))
        if age is not None:
            t = time.time() - age
            os.utime(self.coordinator, (t, t))
        if self.locked:
            self.locked.close()
            self.locked = None
        if running:
            self.locked = open(self.coordinator, "r+")
            harness.hold_write_lock(self.locked)

    def set_local(self, state="running", slot_group=None, slot_age=None, state_age=0, running=True, mode=0o644):
        """Writes /run/locksmith/state as locksmithd does (the slot of slot_group held, taken
        slot_age seconds ago, unless None), and holds its write lock like a running daemon (or not)."""
        os.makedirs(self.root + "/run/locksmith", exist_ok=True)
        path = self.root + "/run/locksmith/state"
        now = int(time.time())
        text = "STRATEGY=etcd-lock\nSTATE=%s\nSTATE_SINCE=%d\n" % (state, now - state_age)
        if slot_group is None:
            text += "SLOT_HELD=no\n"
        else:
            text += 'SLOT_HELD=yes\nSLOT_GROUP="%s"\nSLOT_KEY="%s"\nSLOT_ID="%s"\n' % (slot_group, harness.group_key(slot_group), self.id)
            if slot_age is not None:
                text += "SLOT_SINCE=%d\n" % (now - slot_age)
        with open(path + ".tmp", "w") as f:  # replaced, as the daemon does: a new file each time
            f.write(text)
        os.chmod(path + ".tmp", mode)
        os.replace(path + ".tmp", path)
        if self.state_locked:
            self.state_locked.close()
            self.state_locked = None
        if running:
            self.state_locked = open(path, "r+")
            harness.hold_write_lock(self.state_locked)
        return path

    def cleanup(self):
        for f in (self.locked, self.state_locked):
            if f:
                f.close()
        shutil.rmtree(self.root, ignore_errors=True)


class FakeEtcd:
    """An HTTP server on loopback that plays etcd's v2 API, or an HTTP proxy (requests then name
    absolute URLs), and records what it gets: connections, and method, path and headers of each
    request. GET is answered with `get` (status, JSON), every write (PUT, POST, DELETE) with
    `write`, each after `delay` seconds; with `tls` (a Certificates) it speaks https."""

    def __init__(self, get=None, write=None, delay=0.0, tls=None):
        self.get = get or v2_missing()
        self.write = write or (412, {"errorCode": 105, "message": "Key already exists", "cause": "/", "index": 7})
        self.delay = delay
        self.connections = 0
        self.requests = []
        self.lock = threading.Lock()
        fake = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self):
                with fake.lock:
                    fake.connections += 1
                super().setup()

            def answer(self):
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                with fake.lock:
                    fake.requests.append((self.command, self.path, dict(self.headers)))
                time.sleep(fake.delay)
                status, doc = fake.get if self.command == "GET" else fake.write
                body = json.dumps(doc).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("X-Etcd-Index", "7")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_PUT = do_POST = do_DELETE = answer

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        scheme = "http"
        if tls:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(tls.cert, tls.key)
            self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
            scheme = "https"
        self.endpoint = "%s://127.0.0.1:%d" % (scheme, self.server.server_address[1])
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def writes(self):
        with self.lock:
            return [r for r in self.requests if r[0] != "GET"]

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


def v2_missing():
    return 404, {"errorCode": 100, "message": "Key not found", "cause": "/coreos.com", "index": 7}


def v2_value(key, holders):
    """A v2 answer with a semaphore document whose holders are `holders`."""
    doc = json.dumps({"semaphore": 0, "max": len(holders), "holders": holders}, separators=(",", ":"))
    return 200, {"action": "get", "node": {"key": "/" + key, "value": doc, "modifiedIndex": 5, "createdIndex": 5}}


class Certificates:
    """A CA and a server certificate for 127.0.0.1, made with openssl."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="tls-", dir=work)
        script = """
            set -e; cd '%s'
            q() { "$@" >/dev/null 2>&1; }
            q openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=locksmith-test-ca -keyout ca-key.pem -out ca.pem
            printf 'subjectAltName=IP:127.0.0.1\\nextendedKeyUsage=serverAuth\\n' > server.ext
            q openssl req -newkey rsa:2048 -nodes -subj /CN=server -keyout server-key.pem -out server.csr
            q openssl x509 -req -in server.csr -CA ca.pem -CAkey ca-key.pem -CAcreateserial -days 2 -extfile server.ext -out server.pem
            """ % self.dir
        subprocess.run(["bash", "-c", script], check=True, timeout=60)
        self.ca, self.cert, self.key = self.dir + "/ca.pem", self.dir + "/server.pem", self.dir + "/server-key.pem"


def secret_file(text):
    """A password file only root can read, as a node keeps its etcd password."""
    fd, path = tempfile.mkstemp(prefix="secret-", dir=work)
    os.write(fd, (text + "\n").encode())
    os.close(fd)
    os.chmod(path, 0o600)
    return path


class PamTest(unittest.TestCase):
    def setUp(self):
        self.cleanups = []

    def tearDown(self):
        for f in reversed(self.cleanups):
            try:
                f()
            except Exception as e:
                print("cleanup:", e)

    def node(self, conf=None):
        n = Node(conf)
        self.cleanups.append(n.cleanup)
        return n

    def service(self, options="", lines=None):
        """Writes /etc/pam.d/locksmith-test-<random> naming the module by absolute path."""
        name = "locksmith-test-%s" % secrets.token_hex(6)
        path = "/etc/pam.d/" + name
        with open(path, "x") as f:
            f.write(lines if lines is not None else "session required %s %s\n" % (MODULE, options))
        self.cleanups.append(lambda: os.unlink(path))
        return name

    def pamtester(self, service, user="nobody", ops=("open_session",), wrapper=(), timeout=60, env=None):
        """Opens a session; env adds variables (the caller's environment under su or sudo)."""
        extra = env or {}
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("LOCKSMITH", "REBOOT_", "SSLKEYLOG")) and not k.lower().endswith("_proxy")}
        env.update(TZ="UTC", WORK=work, LOG=syslog.path)
        env.update(extra)
        if LIBDIR:
            env["LD_LIBRARY_PATH"] = LIBDIR
        argv = ["unshare", "--mount", "--propagation", "private", "--", "/bin/sh", "-c", NAMESPACE_SCRIPT, "sh",
                *wrapper, "pamtester", "-v", service, user, *ops]
        start = time.monotonic()
        p = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=timeout)
        seconds = time.monotonic() - start
        return Result(p.returncode, p.stdout, p.stderr, seconds, syslog.of(service))

    def beyond_baseline(self, service, root, limit=60):
        """A session open of `service`, and the seconds it took beyond the same open with the
        module asking nothing of etcd (lock=never), the lesser of one measured just before and
        one just after: on a busy machine starting pamtester alone can take seconds, and what
        the module promises is a bound on its own wait."""
        never = self.service("root=%s lock=never" % root)
        before = self.pamtester(never).seconds
        try:
            r = self.pamtester(service, timeout=limit)
        except subprocess.TimeoutExpired:
            self.fail("the session open took more than %d s" % limit)
        return r, r.seconds - min(before, self.pamtester(never).seconds)

    def assertOpened(self, r):
        self.assertEqual(r.rc, 0, r)
        self.assertIn("successfully opened a session", r.out, r)

    def assertLogged(self, r, text):
        self.assertTrue(any(text in line for line in r.log), "no log line with %r:\n%r" % (text, r))

    def etcd_conf(self, group, endpoint=None):
        return 'REBOOT_STRATEGY=etcd-lock\nLOCKSMITHD_ENDPOINT=%s\nLOCKSMITHD_GROUP="%s"\n' % (endpoint or etcd.endpoint, group)

    def fake_etcd(self, **kwargs):
        f = FakeEtcd(**kwargs)
        self.cleanups.append(f.stop)
        return f


class States(PamTest):
    def test_no_reboot_says_nothing(self):
        g = new_group()
        n = self.node(self.etcd_conf(g))
        n.set_state("running")
        r = self.pamtester(self.service("root=%s lock=always debug" % n.root))
        self.assertOpened(r)
        self.assertEqual(r.messages, [], r)
        self.assertLogged(r, "does not hold the reboot lock of group \"%s\"" % g)  # etcd was asked
        self.assertFalse([line for line in r.log if "<83>" in line or "<84>" in line], r)  # no errors or warnings

    def test_default_never_asks_etcd(self):
        # etcd-lock, an etcd that would say "held", and no state file: nothing is said and etcd
        # is not asked (that is lock=always's job).
        fake = self.fake_etcd(get=v2_value(harness.group_key("g"), ["x"]))
        n = self.node(self.etcd_conf("g", endpoint=fake.endpoint))
        n.set_state("reboot-planned")
        r = self.pamtester(self.service("root=%s debug" % n.root))
        self.assertOpened(r)
        self.assertEqual(len(r.messages), 1, r)
        self.assertIn("A reboot of this machine is planned", r.messages[0])
        self.assertLogged(r, "no state file from a running locksmithd: not telling about the reboot lock")
        self.assertEqual(fake.connections, 0, fake.requests)

    def test_lock_held_by_this_machine(self):
        g = new_group()
        n = self.node(self.etcd_conf(g))
        n.set_state("running")
        ctl(g, "lock", n.id)
        r = self.pamtester(self.service("root=%s lock=always" % n.root))
        self.assertOpened(r)
        self.assertEqual(r.messages, ['This machine holds the reboot lock of group "%s".' % g], r)
        self.assertEqual(r.log, [], r)

    def test_lock_held_by_another_machine_says_nothing(self):
        g = new_group()
        n = self.node(self.etcd_conf(g))
        ctl(g, "lock", "f" * 32)
        r = self.pamtester(self.service("root=%s lock=always" % n.root))
        self.assertOpened(r)
        self.assertEqual(r.messages, [], r)

    def test_default_group_and_options_over_update_conf(self):
        # update.conf names a dead endpoint and another group; the options win, one by one.
        n = self.node(self.etcd_conf("elsewhere", endpoint="http://127.0.0.1:9"))
        ctl("", "lock", n.id)
        self.cleanups.append(lambda: ctl("", "unlock", n.id))
        r = self.pamtester(self.service("root=%s lock=always endpoint=%s group= api=v2" % (n.root, etcd.endpoint)))
        self.assertOpened(r)
        self.assertEqual(r.messages, ["This machine holds the reboot lock of the default group."], r)

    def test_reboot_planned_with_and_without_the_lock(self):
        g = new_group()
        n = self.node(self.etcd_conf(g))
        n.set_state("reboot-planned", age=5 * 60 + 10)
        stamp = time.strftime("%a %Y-%m-%d %H:%M:%S UTC", time.gmtime(os.stat(n.coordinator).st_mtime))
        service = self.service("root=%s lock=always deny" % n.root)
        r = self.pamtester(service)
        self.assertOpened(r)
        self.assertEqual(r.messages, ["A reboot of this machine is planned (since %s, 5 minutes ago), to finish an update." % stamp], r)
        ctl(g, "lock", n.id)
        r = self.pamtester(service)
        self.assertOpened(r)
        self.assertEqual(r.messages[1:], ['This machine holds the reboot lock of group "%s": it may reboot at any moment.' % g], r)

    def test_rebooting_without_deny_lets_everyone_in(self):
        n = self.node()
        n.set_state("rebooting", age=3 * 3600)
        r = self.pamtester(self.service("root=%s" % n.root))
        self.assertOpened(r)
        self.assertEqual(len(r.messages), 1, r)
        self.assertRegex(r.messages[0], r"^This machine is rebooting \(since \w{3} \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC, 3 hours ago\)\.$")

    def test_rebooting_with_deny_refuses_users_but_not_root(self):
        g = new_group()
        n = self.node(self.etcd_conf(g))
        n.set_state("rebooting", age=30)
        ctl(g, "lock", n.id)
        service = self.service("root=%s lock=always deny" % n.root)
        r = self.pamtester(service, user="nobody")
        self.assertNotEqual(r.rc, 0, r)
        self.assertIn("Permission denied", r.err, r)
        self.assertNotIn("successfully opened", r.out, r)
        self.assertRegex(r.err, r"This machine is rebooting \(since .* UTC, [3-5]\d seconds ago\)\. Only root may log in until it is back\.")
        self.assertLogged(r, "refusing the session of nobody: the machine is rebooting")
        r = self.pamtester(service, user="root")
        self.assertOpened(r)
        self.assertEqual(len(r.messages), 2, r)
        self.assertIn("This machine is rebooting (since", r.messages[0])
        self.assertEqual(r.messages[1], 'This machine holds the reboot lock of group "%s".' % g)

    def test_rebooting_that_cannot_be_confirmed_is_shown_but_never_refuses(self):
        # Whether a running daemon holds the file cannot be told (fcntl fails: here a shim makes
        # F_OFD_GETLK fail, as some file systems do): the file may be left over, so with deny the
        # user is told of the reboot, and let in.
        shim = os.path.join(work, "getlk-fails.so")
        if not os.path.exists(shim):
            source = shim[:-3] + ".c"
            with open(source, "w") as f:
                f.write("#define _GNU_SOURCE\n#include <dlfcn.h>\n#include <errno.h>\n#include <fcntl.h>\n#include <stdarg.h>\n"
                        "static int pass(const char *name, int fd, int cmd, void *arg) {\n"
                        "    if (cmd == F_OFD_GETLK) { errno = EINVAL; return -1; }\n"
                        "    int (*next)(int, int, ...) = (int (*)(int, int, ...))dlsym(RTLD_NEXT, name);\n"
                        "    return next(fd, cmd, arg);\n}\n"
                        "int fcntl(int fd, int cmd, ...) { va_list a; va_start(a, cmd); void *arg = va_arg(a, void *); va_end(a);"
                        " return pass(\"fcntl\", fd, cmd, arg); }\n"
                        "int fcntl64(int fd, int cmd, ...) { va_list a; va_start(a, cmd); void *arg = va_arg(a, void *); va_end(a);"
                        " return pass(\"fcntl64\", fd, cmd, arg); }\n")
            subprocess.run(["cc", "-shared", "-fPIC", "-o", shim, source, "-ldl"], check=True)
        n = self.node()
        n.set_state("rebooting", age=30)
        service = self.service("root=%s deny" % n.root)
        r = self.pamtester(service, user="nobody", env={"LD_PRELOAD": shim})
        self.assertOpened(r)
        self.assertTrue(any("This machine is rebooting (since" in m for m in r.messages), r)
        self.assertLogged(r, "cannot tell whether locksmithd holds")
        self.assertLogged(r, "not refusing the session of nobody: whether the machine is rebooting is not known")
        # Without the shim the same file refuses the session (the daemon is running).
        r = self.pamtester(service, user="nobody")
        self.assertNotEqual(r.rc, 0, r)

    def test_state_left_by_a_stopped_daemon_is_ignored(self):
        # Nobody holds coordinator.conf's flock: the daemon that wrote it is gone.
        n = self.node()
        n.set_state("rebooting", running=False)
        r = self.pamtester(self.service("root=%s deny debug" % n.root), user="nobody")
        self.assertOpened(r)
        self.assertEqual(r.messages, [], r)
        self.assertLogged(r, "is not locked: locksmithd is not running")

    def test_silent_flag_shows_nothing_but_still_denies(self):
        n = self.node()
        n.set_state("rebooting")
        service = self.service("root=%s deny" % n.root)
        r = self.pamtester(service, user="root", ops=("open_session(PAM_SILENT)",))
        self.assertOpened(r)
        self.assertEqual(r.messages, [], r)
        r = self.pamtester(service, user="nobody", ops=("open_session(PAM_SILENT)",))
        self.assertNotEqual(r.rc, 0, r)
        self.assertEqual(r.messages, [], r)
        self.assertIn("Permission denied", r.err, r)

    def test_close_session_and_other_stacks(self):
        n = self.node()
        n.set_state("rebooting")
        lines = "".join("%s required %s root=%s deny\n%s required pam_permit.so\n" % (t, MODULE, n.root, t)
                        for t in ("auth", "account", "password"))
        lines += "session required %s root=%s deny nolock\n" % (MODULE, n.root)
        r = self.pamtester(self.service(lines=lines), user="root",
                           ops=("authenticate", "acct_mgmt", "open_session", "close_session"))
        self.assertEqual(r.rc, 0, r)
        for done in ("successfully authenticated", "account management done", "successfully opened a session",
                     "session has successfully been closed"):
            self.assertIn(done, r.out, r)


class LocalState(PamTest):
    """Issue 18, part 1: by default the module reads only the running daemon's state file
    (/run/locksmith/state): the slot it holds, since when, its state. etcd is never asked, so a
    login costs the same whatever etcd's state."""

    def dead_etcd_node(self):
        # update.conf names an etcd that would hang every request: the module must not go there.
        silent = socket.socket()
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        self.cleanups.append(silent.close)
        return self.node(self.etcd_conf("web", endpoint="http://127.0.0.1:%d" % silent.getsockname()[1]))

    def test_slot_held_with_since_when(self):
        n = self.dead_etcd_node()
        n.set_local("running", slot_group="web", slot_age=7 * 60 + 5)
        r = self.pamtester(self.service("root=%s" % n.root))
        self.assertOpened(r)
        self.assertLess(r.seconds, 5, r)
        self.assertEqual(len(r.messages), 1, r)
        self.assertRegex(r.messages[0], r'^This machine holds the reboot lock of group "web" \(since \w{3} [-0-9]+ [:0-9]+ UTC, 7 minutes ago\)\.$')
        self.assertEqual(r.log, [], r)

    def test_planned_with_the_slot_and_rebooting(self):
        n = self.dead_etcd_node()
        n.set_local("reboot-planned", slot_group="", slot_age=30, state_age=3 * 60 + 1)
        service = self.service("root=%s deny" % n.root)
        r = self.pamtester(service)
        self.assertOpened(r)
        self.assertRegex(r.messages[0], r"^A reboot of this machine is planned \(since .* UTC, 3 minutes ago\), to finish an update\.$")
        self.assertRegex(r.messages[1], r"^This machine holds the reboot lock of the default group \(since .* UTC, [3-5]\d seconds ago\): it may reboot at any moment\.$")
        n.set_local("rebooting", slot_group="", state_age=40)
        r = self.pamtester(service, user="nobody")
        self.assertNotEqual(r.rc, 0, r)
        self.assertRegex(r.err, r"This machine is rebooting \(since .* UTC, [45]\d seconds ago\)\. Only root may log in")
        r = self.pamtester(service, user="root")
        self.assertOpened(r)
        self.assertEqual(r.messages[1], "This machine holds the reboot lock of the default group.", r)  # since not known

    def test_no_slot_says_nothing_and_wins_over_coordinator_conf(self):
        n = self.dead_etcd_node()
        n.set_state("rebooting")  # an older coordinator.conf: the state file is read first
        n.set_local("running")
        r = self.pamtester(self.service("root=%s deny" % n.root), user="nobody")
        self.assertOpened(r)
        self.assertEqual(r.messages, [], r)

    def test_state_file_of_a_stopped_daemon_is_ignored(self):
        n = self.dead_etcd_node()
        n.set_state("rebooting")
        n.set_local("rebooting", slot_group="web", running=False)
        r = self.pamtester(self.service("root=%s deny debug" % n.root), user="nobody")
        self.assertOpened(r)
        self.assertEqual(r.messages, [], r)
        self.assertLogged(r, "run/locksmith/state is not locked: locksmithd is not running")

    def test_state_file_others_could_write_is_refused(self):
        n = self.dead_etcd_node()
        path = n.set_local("rebooting", slot_group="web", mode=0o666)
        r = self.pamtester(self.service("root=%s deny" % n.root), user="nobody")
        self.assertOpened(r)
        self.assertEqual(r.messages, [], r)
        self.assertLogged(r, "locksmithd's files are root's and writable by nobody else")
        os.chmod(path, 0o644)
        os.chown(path, 65534, 65534)
        r = self.pamtester(self.service("root=%s deny" % n.root), user="nobody")
        self.assertOpened(r)
        self.assertLogged(r, "is owned by uid 65534")
        os.unlink(path)
        os.symlink(n.coordinator, path)
        n.set_state("running")
        r = self.pamtester(self.service("root=%s" % n.root))
        self.assertOpened(r)
        self.assertLogged(r, "is a symbolic link: not locksmithd's")

    def test_lock_never_says_nothing_of_the_slot(self):
        n = self.dead_etcd_node()
        n.set_local("running", slot_group="web", slot_age=5)
        r = self.pamtester(self.service("root=%s lock=never" % n.root))
        self.assertOpened(r)
        self.assertEqual(r.messages, [], r)


# A user's process that holds every lock an unprivileged reader can take on a file: an flock and an
# open-file-description read lock. It says "held" once they are on, and keeps them until killed.
USER_LOCKS = r"""
import fcntl, os, struct, sys, time
f = open(sys.argv[1])
fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
fcntl.fcntl(f.fileno(), fcntl.F_OFD_SETLK, struct.pack("hhqqi", fcntl.F_RDLCK, os.SEEK_SET, 0, 0, 0))
print("held", flush=True)
time.sleep(3600)
"""

# A user's processes that hold `held` flocks each on files of their own and take and drop another
# as fast as they can: a huge, churning /proc/locks. Says "held" once all locks are on.
USER_CHURN = r"""
import fcntl, os, sys, tempfile, time
directory = tempfile.mkdtemp(prefix="locksmith-churn-")
processes, held = int(sys.argv[1]), int(sys.argv[2])
ready = os.pipe()
for p in range(processes):
    if os.fork() == 0:
        files = [open(os.path.join(directory, "%d-%d" % (p, i)), "w") for i in range(held)]
        for f in files:
            fcntl.flock(f, fcntl.LOCK_EX)
        os.write(ready[1], b"x")
        spin = open(os.path.join(directory, "spin-%d" % p), "w")
        while True:
            fcntl.flock(spin, fcntl.LOCK_EX)
            fcntl.flock(spin, fcntl.LOCK_UN)
for p in range(processes):
    os.read(ready[0], 1)
print("held", flush=True)
time.sleep(3600)
"""


class LocalUsers(PamTest):
    """Issue 26, items 3 and 4: another user of the machine can neither make a stopped daemon's
    leftover state look current (its locks are not the daemon's) nor slow down logins (the module
    asks the kernel about one file instead of reading /proc/locks)."""

    def as_nobody(self, script, *args):
        p = subprocess.Popen(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--",
                              "/bin/sh", "-c", 'ulimit -n 20000 2>/dev/null; exec "$@"', "sh", "/usr/bin/python3", "-c", script,
                              *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)

        def stop():
            os.killpg(p.pid, 9)
            p.communicate()
        self.cleanups.append(stop)
        line = p.stdout.readline()
        self.assertEqual(line, "held\n", p.stderr.read() if p.poll() is not None else line)
        return p

    def test_a_users_locks_do_not_make_a_left_over_state_current(self):
        n = self.node()
        n.set_state("rebooting", running=False)
        path = n.set_local("rebooting", slot_group="web", running=False)
        d = os.path.dirname(path)
        while d.startswith(work):  # nobody may reach the files (and only read them)
            os.chmod(d, os.stat(d).st_mode | 0o005)
            d = os.path.dirname(d)
        os.chmod(os.path.dirname(n.coordinator), 0o755)
        for f in (path, n.coordinator):
            self.as_nobody(USER_LOCKS, f)
        service = self.service("root=%s deny debug" % n.root)
        r = self.pamtester(service, user="nobody")
        self.assertOpened(r)  # not refused: the daemon that wrote "rebooting" is gone
        self.assertEqual(r.messages, [], r)
        self.assertLogged(r, "run/locksmith/state is not locked: locksmithd is not running")
        # The daemon's own lock, which needs the file open for writing, still counts.
        n.set_local("rebooting", slot_group="web")
        r = self.pamtester(service, user="nobody")
        self.assertNotEqual(r.rc, 0, r)
        self.assertIn("Permission denied", r.err, r)

    def test_proc_locks_is_never_read(self):
        # A /proc/locks that claims an flock on the leftover state file (what a user's flock puts
        # there): the module must not believe it, nor read the file at all.
        n = self.node()
        path = n.set_local("rebooting", slot_group="web", running=False)
        st = os.stat(path)
        fake = os.path.join(work, "fake-locks-%s" % secrets.token_hex(4))
        with open(fake, "w") as f:
            f.write("1: FLOCK  ADVISORY  WRITE 1 %02x:%02x:%d 0 EOF\n" % (os.major(st.st_dev), os.minor(st.st_dev), st.st_ino))
        wrapper = ("/bin/sh", "-c", 'mount --bind "$FAKE_LOCKS" /proc/locks && exec "$@"', "sh")
        r = self.pamtester(self.service("root=%s deny" % n.root), user="nobody", wrapper=wrapper, env={"FAKE_LOCKS": fake})
        self.assertOpened(r)
        self.assertEqual(r.messages, [], r)

    def test_a_user_churning_locks_does_not_slow_logins(self):
        n = self.node()
        n.set_local("running", slot_group="web", slot_age=60)
        self.as_nobody(USER_CHURN, "2", "16000")
        service = self.service("root=%s" % n.root)
        times = []
        for _ in range(5):
            r = self.pamtester(service)
            self.assertOpened(r)
            self.assertEqual(len(r.messages), 1, r)
            times.append(r.seconds)
        # A whole pamtester run while 32,000 locks churn; the module's own part is a fraction of it.
        print("\n  session opens with 32,000 churning locks: %s s" % ", ".join("%.3f" % t for t in times))
        self.assertLess(min(times), 1.0, times)


class Failures(PamTest):
    """Whatever goes wrong inside the module, the session opens, quickly, and a line is logged."""

    def test_etcd_that_never_answers(self):
        silent = socket.socket()
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)  # connections complete in the kernel; nothing ever answers
        self.cleanups.append(silent.close)
        endpoint = "http://127.0.0.1:%d" % silent.getsockname()[1]
        n = self.node(self.etcd_conf("g", endpoint=endpoint))
        n.set_state("reboot-planned")
        # What the same login costs without asking etcd, measured beside each run: on a busy
        # machine starting pamtester alone can take seconds; the module's wait is what is bounded.
        r, extra = self.beyond_baseline(self.service("root=%s lock=always" % n.root), n.root)
        self.assertOpened(r)
        self.assertLess(extra, 2.0, r)  # the default 1s request timeout, and no more than one
        self.assertGreater(r.seconds, 0.9, r)  # the default 1s request timeout was waited out
        self.assertEqual(len(r.messages), 1, r)  # the state is still told
        self.assertLogged(r, "cannot read the reboot lock of group \"g\" from etcd")
        r, extra = self.beyond_baseline(self.service("root=%s lock=always timeout=200ms" % n.root), n.root)
        self.assertOpened(r)
        self.assertLess(extra, 0.8, r)
        self.assertLogged(r, "cannot read the reboot lock")

    def test_etcd_refusing_connections(self):
        n = self.node(self.etcd_conf("g", endpoint="http://127.0.0.1:%d" % harness.free_port()))
        r, extra = self.beyond_baseline(self.service("root=%s lock=always" % n.root), n.root)
        self.assertOpened(r)
        self.assertLess(extra, 2.0, r)
        self.assertLogged(r, "cannot read the reboot lock")

    def test_bad_options_are_logged_and_skipped(self):
        n = self.node()
        n.set_state("reboot-planned")
        r = self.pamtester(self.service("root=%s bogus timeout=soon lock=maybe root=relative deny=yes" % n.root))
        self.assertOpened(r)
        self.assertEqual(len(r.messages), 1, r)  # the good options still apply
        for bad in ("bogus", "timeout=soon", "lock=maybe", "root=relative", "deny=yes"):
            self.assertLogged(r, 'ignoring bad option "%s"' % bad)

    def test_bad_etcd_setting_skips_the_lock_check(self):
        n = self.node(self.etcd_conf("g"))
        r = self.pamtester(self.service("root=%s lock=always api=v4" % n.root))
        self.assertOpened(r)
        self.assertLogged(r, "bad etcd setting api (from the module's options)")
        n2 = self.node(self.etcd_conf("g") + "LOCKSMITHD_ETCD_PASSWORD_FILE=/nonexistent/secret\nLOCKSMITHD_ETCD_USERNAME=u\n")
        r = self.pamtester(self.service("root=%s lock=always" % n2.root))
        self.assertOpened(r)
        self.assertLogged(r, "LOCKSMITHD_ETCD_PASSWORD_FILE (from %s/etc/coreos/update.conf)" % n2.root)

    def test_unreadable_files(self):
        # No machine id; a coordinator.conf that is a directory; an update.conf that is not UTF-8.
        n = self.node(self.etcd_conf("g"))
        os.unlink(n.root + "/etc/machine-id")
        os.mkdir(n.coordinator)
        r = self.pamtester(self.service("root=%s lock=always" % n.root))
        self.assertOpened(r)
        self.assertEqual(r.messages, [], r)
        self.assertLogged(r, "coordinator.conf is not a regular file")
        self.assertLogged(r, "cannot read the machine id")
        with open(n.root + "/etc/coreos/update.conf", "wb") as f:
            f.write(b"REBOOT_STRATEGY=\xff\n")
        r = self.pamtester(self.service("root=%s lock=always" % n.root))
        self.assertOpened(r)
        self.assertLogged(r, "cannot read the node's configuration")

    def test_nolock_never_asks_etcd(self):
        n = self.node(self.etcd_conf("g", endpoint="http://127.0.0.1:9"))
        r = self.pamtester(self.service("root=%s nolock" % n.root))
        self.assertOpened(r)
        self.assertEqual(r.log, [], r)


class Environment(PamTest):
    """Issue 12, item 3: under su, sudo or common-session the module runs as root with the
    caller's environment. Nothing in it may steer the module: no file written, no endpoint,
    credentials, root or proxy taken from it. Settings come from the options and the update.conf
    files under root= alone."""

    PROXY_VARIABLES = ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY")

    def test_module_never_reads_or_changes_the_environment(self):
        # It used getenv("LOCKSMITH_ROOT"), and setenv() inside the login process for root=.
        symbols = subprocess.run(["nm", "-D", "--undefined-only", MODULE], capture_output=True, text=True, check=True).stdout
        used = {line.split()[-1].split("@")[0] for line in symbols.splitlines() if line.strip()}
        self.assertFalse(used & {"getenv", "secure_getenv", "setenv", "unsetenv", "putenv", "clearenv", "environ", "__environ"},
                         sorted(used))

    def test_sslkeylogfile_is_never_written(self):
        # libcurl appends the TLS session keys to $SSLKEYLOGFILE, creating it: as root, anywhere.
        certs = Certificates()
        g = new_group()
        n = self.node(self.etcd_conf(g) + "LOCKSMITHD_ETCD_API=v2\n")
        server = self.fake_etcd(tls=certs, get=v2_value(harness.group_key(g), [n.id]))
        keylog = os.path.join(work, "keylog-%d" % next(_ids))
        r = self.pamtester(self.service("root=%s lock=always endpoint=%s cafile=%s" % (n.root, server.endpoint, certs.ca)),
                           env={"SSLKEYLOGFILE": keylog})
        self.assertOpened(r)
        self.assertEqual(r.messages, ['This machine holds the reboot lock of group "%s".' % g], r)  # TLS was used
        self.assertGreater(len(server.requests), 0, r)
        self.assertFalse(os.path.exists(keylog), "%s was written: %r" % (keylog, r))

    def caller_environment(self, listener, secret, root=None):
        """What a caller of su or sudo would set: the listener as etcd, the node's root-only
        password file, the etcd strategy, another group, another root."""
        env = {"LOCKSMITHD_ENDPOINT": listener.endpoint, "LOCKSMITHD_ETCD_USERNAME": "thief",
               "LOCKSMITHD_ETCD_PASSWORD_FILE": secret, "LOCKSMITHD_GROUP": "thief",
               "LOCKSMITHD_ETCD_API": "v2", "REBOOT_STRATEGY": "etcd-lock"}
        if root:
            env["LOCKSMITH_ROOT"] = root
        return env

    def test_locksmithd_settings_from_the_environment_are_ignored(self):
        listener = self.fake_etcd()
        secret = secret_file("root-only-%s" % secrets.token_hex(4))
        other = self.node('REBOOT_STRATEGY=etcd-lock\nLOCKSMITHD_ENDPOINT=%s\n' % listener.endpoint)
        # By default the module asks nobody, whatever the caller's REBOOT_STRATEGY says. (The
        # listener would say that this machine holds the lock: a forged message, had it been asked.)
        n = self.node("")
        listener.get = v2_value(harness.group_key("thief"), [n.id])
        r = self.pamtester(self.service("root=%s debug" % n.root), env=self.caller_environment(listener, secret, other.root))
        self.assertEqual(listener.connections, 0, "the caller's listener got %r" % listener.requests)
        self.assertOpened(r)
        self.assertEqual(r.messages, [], r)
        self.assertLogged(r, "no state file from a running locksmithd: not telling about the reboot lock")
        # A node that uses the lock: the etcd and group of its update.conf, nothing else.
        g = new_group()
        n = self.node(self.etcd_conf(g))
        listener.get = v2_value(harness.group_key("thief"), [n.id])
        ctl(g, "lock", n.id)
        r = self.pamtester(self.service("root=%s lock=always" % n.root), env=self.caller_environment(listener, secret, other.root))
        self.assertEqual(listener.connections, 0, "the caller's listener got %r" % listener.requests)
        self.assertOpened(r)
        self.assertEqual(r.messages, ['This machine holds the reboot lock of group "%s".' % g], r)

    def test_locksmithctl_settings_from_the_environment_are_ignored(self):
        # The module takes its settings by the library's rule with the prefix LOCKSMITHCTL (as
        # locksmithctl does), but from a client that reads no environment: LOCKSMITHCTL_* of the
        # caller count no more than LOCKSMITHD_*.
        listener = self.fake_etcd()
        g = new_group()
        n = self.node(self.etcd_conf(g))
        listener.get = v2_value(harness.group_key("thief"), [])
        ctl(g, "lock", n.id)
        env = {"LOCKSMITHCTL_ENDPOINT": listener.endpoint, "LOCKSMITHCTL_GROUP": "thief", "LOCKSMITHCTL_ETCD_API": "v4",
               "LOCKSMITHCTL_PROXY": listener.endpoint, "LOCKSMITHCTL_ETCD_USERNAME": "thief",
               "LOCKSMITHCTL_ETCD_CAFILE": "/nonexistent", "LOCKSMITHCTL_TIMEOUT": "soon"}
        r = self.pamtester(self.service("root=%s lock=always debug" % n.root), env=env)
        self.assertEqual(listener.connections, 0, "the caller's listener got %r" % listener.requests)
        self.assertOpened(r)
        self.assertEqual(r.messages, ['This machine holds the reboot lock of group "%s".' % g], r)
        self.assertFalse([line for line in r.log if "LOCKSMITHCTL" in line or "thief" in line], r)

    def test_locksmith_root_from_the_environment_is_ignored(self):
        # Without root=, the module reads "/": never a root the caller names. Its coordinator.conf
        # says a running daemon is rebooting, and its update.conf names the caller's listener.
        if os.path.exists("/run/update-engine/coordinator.conf"):
            self.skipTest("this machine has a coordinator.conf: the module would tell its state")
        listener = self.fake_etcd()
        evil = self.node('REBOOT_STRATEGY=etcd-lock\nLOCKSMITHD_ENDPOINT=%s\n' % listener.endpoint)
        evil.set_state("rebooting")
        service = self.service("deny debug lock=always")
        r = self.pamtester(service, user="nobody", env={"LOCKSMITH_ROOT": evil.root})
        self.assertOpened(r)  # not refused on the caller's say-so
        r = self.pamtester(service, user="root", env={"LOCKSMITH_ROOT": evil.root})
        self.assertOpened(r)
        self.assertFalse([m for m in r.messages if "rebooting" in m], r)
        self.assertFalse([line for line in r.log if evil.root in line], r)
        self.assertEqual(listener.connections, 0, "the caller's listener got %r" % listener.requests)

    def test_proxy_variables_are_ignored(self):
        # An endpoint that is loopback but not written as such (the library never proxies
        # 127.0.0.0/8, ::1 or localhost): without the fix the proxy gets the request and the
        # basic auth with it.
        proxy = self.fake_etcd()
        g = new_group()
        endpoint = "http://[::ffff:127.0.0.1]:%d" % etcd.port
        n = self.node(self.etcd_conf(g, endpoint=endpoint) +
                      "LOCKSMITHD_ETCD_USERNAME=node\nLOCKSMITHD_ETCD_PASSWORD_FILE=%s\n" % secret_file("pw-%s" % secrets.token_hex(4)))
        proxy.get = v2_value(harness.group_key(g), [])
        ctl(g, "lock", n.id)
        env = {v: "http://127.0.0.1:%d" % proxy.server.server_address[1] for v in self.PROXY_VARIABLES}
        r = self.pamtester(self.service("root=%s lock=always" % n.root), env=env)
        self.assertEqual(proxy.connections, 0, "the proxy of the environment got %r" % proxy.requests)
        self.assertOpened(r)
        self.assertEqual(r.messages, ['This machine holds the reboot lock of group "%s".' % g], r)

    def test_proxy_option_is_the_only_proxy(self):
        # proxy=URL sends the requests through that proxy (here it answers as etcd itself, for a
        # host that does not exist).
        proxy = self.fake_etcd()
        g = new_group()
        n = self.node(self.etcd_conf(g, endpoint="http://etcd.invalid:2379") + "LOCKSMITHD_ETCD_API=v2\n")
        proxy.get = v2_value(harness.group_key(g), [n.id])
        r = self.pamtester(self.service("root=%s lock=always proxy=http://127.0.0.1:%d" % (n.root, proxy.server.server_address[1])))
        self.assertOpened(r)
        self.assertEqual(r.messages, ['This machine holds the reboot lock of group "%s".' % g], r)
        self.assertTrue(proxy.requests, r)
        for method, path, _ in proxy.requests:
            self.assertEqual(method, "GET", proxy.requests)
            self.assertTrue(path.startswith("http://etcd.invalid:2379/v2/keys/"), proxy.requests)


class Settings(PamTest):
    """Issue 13: the etcd settings follow the library's one rule (locksmith_client_load_settings),
    the module's options first, then the daemon's LOCKSMITHD_* from update.conf; the module keeps
    no table of its own."""

    def test_where_each_setting_came_from(self):
        g = new_group()
        n = self.node(self.etcd_conf("elsewhere") + "LOCKSMITHD_ETCD_API=v2\n")
        ctl(g, "lock", n.id)
        r = self.pamtester(self.service("root=%s lock=always group=%s debug" % (n.root, g)))
        self.assertOpened(r)
        self.assertEqual(r.messages, ['This machine holds the reboot lock of group "%s".' % g], r)
        conf = "%s/etc/coreos/update.conf" % n.root
        self.assertLogged(r, "etcd setting group = %s (from the module's options)" % g)
        self.assertLogged(r, "etcd setting endpoint = %s (from LOCKSMITHD_ENDPOINT in %s)" % (etcd.endpoint, conf))
        self.assertLogged(r, "etcd setting etcd-api = v2 (from LOCKSMITHD_ETCD_API in %s)" % conf)

    def test_daemon_timeout_is_not_used(self):
        # timeout= is the budget of a login, also per request: the daemon's LOCKSMITHD_TIMEOUT
        # (here one the client refuses) is never read.
        g = new_group()
        n = self.node(self.etcd_conf(g) + "LOCKSMITHD_TIMEOUT=10h\n")
        ctl(g, "lock", n.id)
        r = self.pamtester(self.service("root=%s lock=always timeout=2s debug" % n.root))
        self.assertOpened(r)
        self.assertEqual(r.messages, ['This machine holds the reboot lock of group "%s".' % g], r)
        self.assertLogged(r, "etcd setting timeout = 2s (from the module's options)")
        self.assertFalse([line for line in r.log if "LOCKSMITHD_TIMEOUT" in line], r)

    def test_daemon_proxy_from_update_conf(self):
        # LOCKSMITHD_PROXY in the root-owned update.conf is the daemon's proxy, and so the
        # module's; proxy= wins over it.
        proxy = self.fake_etcd()
        g = new_group()
        proxy.get = v2_value(harness.group_key(g), [])
        n = self.node(self.etcd_conf(g, endpoint="http://etcd.invalid:2379") + "LOCKSMITHD_ETCD_API=v2\n"
                      "LOCKSMITHD_PROXY=http://127.0.0.1:%d\n" % proxy.server.server_address[1])
        proxy.get = v2_value(harness.group_key(g), [n.id])
        r = self.pamtester(self.service("root=%s lock=always" % n.root))
        self.assertOpened(r)
        self.assertEqual(r.messages, ['This machine holds the reboot lock of group "%s".' % g], r)
        self.assertTrue(proxy.requests, r)
        other = self.fake_etcd(get=v2_value(harness.group_key(g), []))
        seen = len(proxy.requests)
        r = self.pamtester(self.service("root=%s lock=always proxy=http://127.0.0.1:%d" % (n.root, other.server.server_address[1])))
        self.assertOpened(r)
        self.assertEqual(r.messages, [], r)
        self.assertTrue(other.requests, r)
        self.assertEqual(len(proxy.requests), seen, r)

    def test_password_file_option_wins_over_the_daemons_password(self):
        # password_file= decides the password: the daemon's LOCKSMITHD_ETCD_PASSWORD (the library
        # resolves it apart from the file) must not replace it. Seen in the basic auth.
        fake = self.fake_etcd()
        option_file = secret_file("from-option-file")
        n = self.node(self.etcd_conf("g", endpoint=fake.endpoint) + "LOCKSMITHD_ETCD_API=v2\nLOCKSMITHD_ETCD_USERNAME=u\n"
                      "LOCKSMITHD_ETCD_PASSWORD=from-conf\n")
        os.chmod(n.root + "/etc/coreos/update.conf", 0o600)
        for options, expected in (("password_file=%s" % option_file, "u:from-option-file"), ("", "u:from-conf")):
            with self.subTest(options=options):
                del fake.requests[:]
                r = self.pamtester(self.service("root=%s lock=always %s" % (n.root, options)))
                self.assertOpened(r)
                self.assertTrue(fake.requests, r)
                sent = {base64.b64decode(h.get("Authorization", "").split()[-1]).decode() for _, _, h in fake.requests}
                self.assertEqual(sent, {expected}, r)

    def test_bad_daemon_setting_is_named_never_shown(self):
        # The variable and its file are named; the password next to it never appears, and a
        # password in an update.conf every user can read is warned about, without its value.
        password = "pw-%s" % secrets.token_hex(6)
        n = self.node(self.etcd_conf("g") + "LOCKSMITHD_ETCD_USERNAME=u\nLOCKSMITHD_ETCD_PASSWORD=%s\n"
                      "LOCKSMITHD_ETCD_CAFILE=/nonexistent/ca.pem\n" % password)
        r = self.pamtester(self.service("root=%s lock=always debug" % n.root))
        self.assertOpened(r)
        self.assertLogged(r, "bad etcd setting LOCKSMITHD_ETCD_CAFILE (from %s/etc/coreos/update.conf)" % n.root)
        self.assertLogged(r, "not asking etcd")
        self.assertFalse([line for line in r.log if password in line], r)
        os.chmod(n.root + "/etc/coreos/update.conf", 0o644)
        g = new_group()
        with open(n.root + "/etc/coreos/update.conf", "w") as f:
            f.write(self.etcd_conf(g) + "LOCKSMITHD_ETCD_PASSWORD=%s\n" % password)
        ctl(g, "lock", n.id)
        r = self.pamtester(self.service("root=%s lock=always debug" % n.root))
        self.assertOpened(r)
        self.assertEqual(r.messages, ['This machine holds the reboot lock of group "%s".' % g], r)
        self.assertLogged(r, "LOCKSMITHD_ETCD_PASSWORD is set in %s/etc/coreos/update.conf, which every user can read" % n.root)
        self.assertLogged(r, "etcd setting etcd-password = (hidden)")
        self.assertFalse([line for line in r.log if password in line], r)


class Deadline(PamTest):
    """Issue 12, item 6: timeout= bounds all the etcd work of a session open, whatever etcd
    answers, and the module only reads: it never creates the key."""

    def open_bounded(self, service, limit=10):
        """pamtester, failed (not waited out) if the session open takes more than limit seconds."""
        try:
            return self.pamtester(service, timeout=limit)
        except subprocess.TimeoutExpired:
            self.fail("the session open took more than %d s" % limit)

    def test_flip_flop_etcd_costs_one_read(self):
        # A slow etcd where the key is always missing and always exists: GET answers 404 "Key not
        # found", every create 412 "Key already exists", each after 300 ms. Reading with create
        # retried 64 times (128 requests, about 40 s) before the fix.
        fake = self.fake_etcd(delay=0.3)
        n = self.node(self.etcd_conf("g", endpoint=fake.endpoint))
        r, extra = self.beyond_baseline(self.service("root=%s lock=always timeout=1s debug" % n.root), n.root, limit=10)
        self.assertOpened(r)
        self.assertLess(extra, 1.5, r)
        self.assertEqual(fake.writes, [], "the module wrote to etcd")
        self.assertEqual(r.messages, [], r)
        self.assertLogged(r, 'does not hold the reboot lock of group "g"')

    def test_timeout_bounds_all_endpoints_together(self):
        # Three endpoints that never answer: timeout= is for them all, not for each.
        endpoints = []
        for _ in range(3):
            silent = socket.socket()
            silent.bind(("127.0.0.1", 0))
            silent.listen(16)
            self.cleanups.append(silent.close)
            endpoints.append("http://127.0.0.1:%d" % silent.getsockname()[1])
        n = self.node(self.etcd_conf("g", endpoint=",".join(endpoints)))
        r, extra = self.beyond_baseline(self.service("root=%s lock=always timeout=1s" % n.root), n.root, limit=10)
        self.assertOpened(r)
        self.assertGreater(r.seconds, 0.9, r)
        self.assertLess(extra, 1.5, r)
        self.assertLogged(r, 'cannot read the reboot lock of group "g" from etcd')

    def test_missing_key_is_not_created(self):
        for api in ("v2", "v3"):
            with self.subTest(api=api):
                g = new_group()
                n = self.node(self.etcd_conf(g))
                r = self.open_bounded(self.service("root=%s lock=always api=%s debug" % (n.root, api)))
                self.assertOpened(r)
                self.assertEqual(r.messages, [], r)
                self.assertLogged(r, 'does not hold the reboot lock of group "%s"' % g)
                for stored in ("v2", "v3"):
                    self.assertIsNone(etcd.get(stored, harness.group_key(g)), "the module created the key (%s)" % api)


class Valgrind(PamTest):
    def test_no_leaks_or_errors(self):
        if not shutil.which("valgrind"):
            self.skipTest("valgrind is not installed")
        g = new_group()
        n = self.node(self.etcd_conf(g))
        n.set_state("reboot-planned")
        ctl(g, "lock", n.id)
        wrapper = ("valgrind", "-q", "--leak-check=full", "--errors-for-leak-kinds=definite,indirect",
                   "--error-exitcode=99", *("--suppressions=" + s for s in SUPPRESSIONS))
        r = self.pamtester(self.service("root=%s lock=always deny" % n.root), wrapper=wrapper, timeout=300)
        self.assertOpened(r)
        self.assertEqual(len(r.messages), 2, r)
        n.set_state("rebooting")
        r = self.pamtester(self.service("root=%s lock=always deny" % n.root), wrapper=wrapper, timeout=300)
        self.assertEqual(r.rc, 1, r)  # pamtester's own failure, not valgrind's 99
        self.assertIn("Permission denied", r.err, r)


class RealDaemon(PamTest):
    """A real locksmithd (private D-Bus, stand-in update engine and logind) drives the states."""

    def test_planned_then_rebooting(self):
        standins = harness.STANDINS
        if not os.path.exists(LOCKSMITHD) or not os.path.exists(os.path.join(standins, "fake-logind")):
            self.skipTest("locksmithd or the stand-ins are not built (make programs standins)")
        bus = harness.Bus()
        self.cleanups.append(bus.stop)
        engine = bus.start([os.path.join(standins, "fake-update-engine"), NEED])
        self.cleanups.append(lambda: bus.stop_process(engine))
        logind = bus.start([os.path.join(standins, "fake-logind"), os.path.join(work, "logind-%d.log" % next(_ids))])
        self.cleanups.append(lambda: bus.stop_process(logind))
        g = new_group()
        ctl(g, "set-max", "0")  # the daemon plans the reboot and waits for a slot
        n = self.node()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("LOCKSMITH", "REBOOT_", "NOTIFY_"))}
        env.update(LOCKSMITH_ROOT=n.root, DBUS_SYSTEM_BUS_ADDRESS=bus.address, REBOOT_STRATEGY="etcd-lock",
                   LOCKSMITHD_ENDPOINT=etcd.endpoint, LOCKSMITHD_GROUP=g)
        log = open(os.path.join(n.root, "daemon.log"), "w")
        self.cleanups.append(log.close)
        daemon = subprocess.Popen([LOCKSMITHD], env=env, stdout=log, stderr=subprocess.STDOUT)
        harness._running.append(daemon)

        def stop():
            daemon.terminate()
            daemon.wait(10)
            harness._running.remove(daemon)
        self.cleanups.append(stop)

        def state():
            try:
                with open(n.coordinator) as f:
                    return f.read()
            except OSError:
                return ""

        def wait_state(s):
            deadline = time.time() + 20
            while time.time() < deadline and "STATE=%s\n" % s not in state():
                time.sleep(0.05)
            with open(log.name) as f:
                self.assertIn("STATE=%s\n" % s, state(), f.read())

        wait_state("reboot-planned")
        # The daemon's configuration comes from its environment; the module is told with options.
        service = self.service("root=%s endpoint=%s group=%s deny" % (n.root, etcd.endpoint, g))
        r = self.pamtester(service)
        self.assertOpened(r)
        self.assertEqual(len(r.messages), 1, r)
        self.assertIn("A reboot of this machine is planned (since", r.messages[0])
        ctl(g, "set-max", "1")
        wait_state("rebooting")
        r = self.pamtester(service, user="nobody")
        self.assertIn("Permission denied", r.err, r)
        r = self.pamtester(service, user="root")
        self.assertOpened(r)
        # From the daemon's state file, not etcd: with the time the slot was taken.
        self.assertRegex(r.messages[1], r'^This machine holds the reboot lock of group "%s" \(since .*, \d+ seconds? ago\)\.$' % g, r)
        with open(n.root + "/run/locksmith/state") as f:
            text = f.read()
        self.assertIn('SLOT_HELD=yes\nSLOT_GROUP="%s"\nSLOT_KEY="%s"\nSLOT_ID="%s"\n' % (g, harness.group_key(g), n.id), text)
        self.assertIn("STATE=rebooting\n", text)
        stop()
        self.cleanups.remove(stop)
        # The daemon is gone: its last state no longer refuses anyone nor tells of the slot;
        # etcd, asked with lock=always, still has it.
        r = self.pamtester(service, user="nobody")
        self.assertOpened(r)
        self.assertEqual(r.messages, [], r)
        r = self.pamtester(self.service("root=%s endpoint=%s group=%s lock=always" % (n.root, etcd.endpoint, g)))
        self.assertEqual(r.messages, ['This machine holds the reboot lock of group "%s".' % g], r)


if __name__ == "__main__":
    unittest.main()
