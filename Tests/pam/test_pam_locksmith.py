"""pam_locksmith.so loaded by PAM itself: pamtester opens sessions through service files written to
/etc/pam.d/locksmith-test-<random> (removed afterwards), against a real etcd, with each test's own
root directory (etc/machine-id, update.conf, run/update-engine/coordinator.conf).

The module logs with pam_syslog to /dev/log. Each pamtester runs in a private mount namespace
whose /dev is the real one plus a /dev/log that is this test's socket, so the tests read exactly
the lines the module wrote and nothing on the machine is changed.

Needs root (PAM service files, mount namespaces), pamtester, etcd and the built module:
PAM_LOCKSMITH (default build/tools/pam_locksmith.so). Run from Tests/pam:
    /usr/bin/python3 -m unittest -v test_pam_locksmith
"""
import fcntl
import itertools
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import unittest

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(TOP, "tools"))
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
    """One machine's root: a machine id, update.conf and coordinator.conf, and the flock the
    running locksmithd holds on coordinator.conf."""

    def __init__(self, conf=None):
        self.root = tempfile.mkdtemp(prefix="node-", dir=work)
        self.id = secrets.token_hex(16)
        os.makedirs(self.root + "/etc/coreos")
        os.makedirs(self.root + "/run/update-engine")
        with open(self.root + "/etc/machine-id", "w") as f:
            f.write(self.id + "\n")
        if conf is not None:
            with open(self.root + "/etc/coreos/update.conf", "w") as f:
                f.write(conf)
        self.coordinator = self.root + "/run/update-engine/coordinator.conf"
        self.locked = None

    def set_state(self, state, strategy="etcd-lock", age=None, running=True):
        """Writes coordinator.conf as locksmithd does, dated age seconds ago, and holds its flock
        like a running daemon (or not)."""
        with open(self.coordinator, "w") as f:
            f.write("NAME=locksmithd\nSTRATEGY=%s\nSTATE=%s\n" % (strategy, state))
        if age is not None:
            t = time.time() - age
            os.utime(self.coordinator, (t, t))
        if self.locked:
            self.locked.close()
            self.locked = None
        if running:
            self.locked = open(self.coordinator)
            fcntl.flock(self.locked, fcntl.LOCK_EX | fcntl.LOCK_NB)

    def cleanup(self):
        if self.locked:
            self.locked.close()
        shutil.rmtree(self.root, ignore_errors=True)


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

    def pamtester(self, service, user="nobody", ops=("open_session",), wrapper=(), timeout=60):
        env = {k: v for k, v in os.environ.items() if not k.startswith(("LOCKSMITH", "REBOOT_"))}
        env.update(TZ="UTC", WORK=work, LOG=syslog.path)
        if LIBDIR:
            env["LD_LIBRARY_PATH"] = LIBDIR
        argv = ["unshare", "--mount", "--propagation", "private", "--", "/bin/sh", "-c", NAMESPACE_SCRIPT, "sh",
                *wrapper, "pamtester", "-v", service, user, *ops]
        start = time.monotonic()
        p = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=timeout)
        seconds = time.monotonic() - start
        return Result(p.returncode, p.stdout, p.stderr, seconds, syslog.of(service))

    def assertOpened(self, r):
        self.assertEqual(r.rc, 0, r)
        self.assertIn("successfully opened a session", r.out, r)

    def assertLogged(self, r, text):
        self.assertTrue(any(text in line for line in r.log), "no log line with %r:\n%r" % (text, r))

    def etcd_conf(self, group, endpoint=None):
        return 'REBOOT_STRATEGY=etcd-lock\nLOCKSMITHD_ENDPOINT=%s\nLOCKSMITHD_GROUP="%s"\n' % (endpoint or etcd.endpoint, group)


class States(PamTest):
    def test_no_reboot_says_nothing(self):
        g = new_group()
        n = self.node(self.etcd_conf(g))
        n.set_state("running")
        r = self.pamtester(self.service("root=%s debug" % n.root))
        self.assertOpened(r)
        self.assertEqual(r.messages, [], r)
        self.assertLogged(r, "does not hold the reboot lock of group \"%s\"" % g)  # etcd was asked
        self.assertFalse([line for line in r.log if "<83>" in line or "<84>" in line], r)  # no errors or warnings

    def test_no_coordinator_file_and_no_etcd_strategy_asks_nobody(self):
        n = self.node("LOCKSMITHD_ENDPOINT=http://127.0.0.1:9\n")
        r = self.pamtester(self.service("root=%s debug" % n.root))
        self.assertOpened(r)
        self.assertEqual(r.messages, [], r)
        self.assertLogged(r, "reboot strategy (default) takes no lock: not asking etcd")

    def test_lock_held_by_this_machine(self):
        g = new_group()
        n = self.node(self.etcd_conf(g))
        n.set_state("running")
        ctl(g, "lock", n.id)
        r = self.pamtester(self.service("root=%s" % n.root))
        self.assertOpened(r)
        self.assertEqual(r.messages, ['This machine holds the reboot lock of group "%s".' % g], r)
        self.assertEqual(r.log, [], r)

    def test_lock_held_by_another_machine_says_nothing(self):
        g = new_group()
        n = self.node(self.etcd_conf(g))
        ctl(g, "lock", "f" * 32)
        r = self.pamtester(self.service("root=%s" % n.root))
        self.assertOpened(r)
        self.assertEqual(r.messages, [], r)

    def test_default_group_and_options_over_update_conf(self):
        # update.conf names a dead endpoint and another group; the options win, one by one.
        n = self.node(self.etcd_conf("elsewhere", endpoint="http://127.0.0.1:9"))
        ctl("", "lock", n.id)
        self.cleanups.append(lambda: ctl("", "unlock", n.id))
        r = self.pamtester(self.service("root=%s endpoint=%s group= api=v2" % (n.root, etcd.endpoint)))
        self.assertOpened(r)
        self.assertEqual(r.messages, ["This machine holds the reboot lock of the default group."], r)

    def test_reboot_planned_with_and_without_the_lock(self):
        g = new_group()
        n = self.node(self.etcd_conf(g))
        n.set_state("reboot-planned", age=5 * 60 + 10)
        stamp = time.strftime("%a %Y-%m-%d %H:%M:%S UTC", time.gmtime(os.stat(n.coordinator).st_mtime))
        service = self.service("root=%s deny" % n.root)
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
        service = self.service("root=%s deny" % n.root)
        r = self.pamtester(service, user="nobody")
        self.assertNotEqual(r.rc, 0, r)
        self.assertIn("Permission denied", r.err, r)
        self.assertNotIn("successfully opened", r.out, r)
        self.assertRegex(r.err, r"This machine is rebooting \(since .* UTC, 3\d seconds ago\)\. Only root may log in until it is back\.")
        self.assertLogged(r, "refusing the session of nobody: the machine is rebooting")
        r = self.pamtester(service, user="root")
        self.assertOpened(r)
        self.assertEqual(len(r.messages), 2, r)
        self.assertIn("This machine is rebooting (since", r.messages[0])
        self.assertEqual(r.messages[1], 'This machine holds the reboot lock of group "%s".' % g)

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
        r = self.pamtester(self.service("root=%s" % n.root))
        self.assertOpened(r)
        self.assertLess(r.seconds, 3.0, r)
        self.assertGreater(r.seconds, 0.9, r)  # the default 1s request timeout was waited out
        self.assertEqual(len(r.messages), 1, r)  # the state is still told
        self.assertLogged(r, "cannot read the reboot lock of group \"g\" from etcd")
        r = self.pamtester(self.service("root=%s timeout=200ms" % n.root))
        self.assertOpened(r)
        self.assertLess(r.seconds, 0.9, r)
        self.assertLogged(r, "cannot read the reboot lock")

    def test_etcd_refusing_connections(self):
        n = self.node(self.etcd_conf("g", endpoint="http://127.0.0.1:%d" % harness.free_port()))
        r = self.pamtester(self.service("root=%s" % n.root))
        self.assertOpened(r)
        self.assertLess(r.seconds, 3.0, r)
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
        r = self.pamtester(self.service("root=%s api=v4" % n.root))
        self.assertOpened(r)
        self.assertLogged(r, "bad etcd setting api (from the module's options)")
        n2 = self.node(self.etcd_conf("g") + "LOCKSMITHD_ETCD_PASSWORD_FILE=/nonexistent/secret\nLOCKSMITHD_ETCD_USERNAME=u\n")
        r = self.pamtester(self.service("root=%s" % n2.root))
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
        r = self.pamtester(self.service("root=%s deny" % n.root), wrapper=wrapper, timeout=300)
        self.assertOpened(r)
        self.assertEqual(len(r.messages), 2, r)
        n.set_state("rebooting")
        r = self.pamtester(self.service("root=%s deny" % n.root), wrapper=wrapper, timeout=300)
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
        self.assertEqual(r.messages[1:], ['This machine holds the reboot lock of group "%s".' % g], r)
        stop()
        self.cleanups.remove(stop)
        # The daemon is gone: its last state no longer refuses anyone.
        r = self.pamtester(service, user="nobody")
        self.assertOpened(r)
        self.assertEqual(r.messages, ['This machine holds the reboot lock of group "%s".' % g], r)


if __name__ == "__main__":
    unittest.main()
