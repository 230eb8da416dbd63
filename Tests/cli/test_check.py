"""`locksmithctl check` (issue 18, part 2): a preflight of one machine. Every check is made to fail
by its real cause (a bad update.conf line and setting, no machine id, no daemon or a left-over
state file, no update engine on a private system bus, a sentinel directory or a command that is
not there, hooks root would refuse, etcd endpoints down, or with a v3 gateway that cannot connect
to etcd itself (Flatcar's TLS layout), a corrupt or paused semaphore, a v2 semaphore beside the v3
one, a slot held under the machine id that the daemon did not take), and once everything is in
order (a real locksmithd, etcd, the stand-in update engine) it says ok throughout and exits 0.
Also: --json, exit statuses 0/1/2, TLS with its CA, nothing written."""
import fcntl
import json
import os
import shutil
import subprocess
import tempfile
import time
import unittest

import harness
import test_security as sec

LOCKSMITHCTL = harness.LOCKSMITHCTL
LOCKSMITHD = sec.LOCKSMITHD
NEED = "UPDATE_STATUS_UPDATED_NEED_REBOOT"
etcd = None
bus = None
_dirs = []


def setUpModule():
    global etcd, bus
    sec.setUpModule()  # its scratch directory, for its Certificates
    etcd = harness.Etcd(prefix="locksmith-test-etcd-check-")
    bus = harness.Bus()


def tearDownModule():
    etcd.stop()
    bus.stop()
    sec.tearDownModule()
    for d in _dirs:
        shutil.rmtree(d, ignore_errors=True)


class Machine:
    """A root with a machine id and an update.conf, and the environment locksmithd and check
    would both run with."""

    def __init__(self, conf="", env=None, machine_id=True):
        self.root = tempfile.mkdtemp(prefix="locksmith-test-check-")
        _dirs.append(self.root)
        self.id = os.urandom(16).hex()
        harness.make_root(self.root, self.id, conf)
        if not machine_id:
            os.unlink(self.root + "/etc/machine-id")
        os.makedirs(self.root + "/run", exist_ok=True)
        self.env = {"PATH": os.environ["PATH"], "LOCKSMITH_ROOT": self.root, "DBUS_SYSTEM_BUS_ADDRESS": bus.address, "TZ": "UTC"}
        self.env.update(env or {})
        self.held = []

    def check(self, *args):
        p = subprocess.run([LOCKSMITHCTL, "check", *args], capture_output=True, text=True, env=self.env, timeout=120)
        return p.returncode, p.stdout, p.stderr

    def findings(self):
        code, out, err = self.check("--json")
        self.code = code
        doc = json.loads(out)
        return doc

    def state_file(self, text, locked=True):
        os.makedirs(self.root + "/run/locksmith", exist_ok=True)
        path = self.root + "/run/locksmith/state"
        with open(path, "w") as f:
            f.write(text)
        if locked:
            f = open(path, "r+")  # the write lock the running daemon holds (only a writer can take it)
            harness.hold_write_lock(f)
            self.held.append(f)

    def hook(self, phase, name, mode=0o755):
        d = self.root + "/etc/locksmith/%s.d" % phase
        os.makedirs(d, exist_ok=True)
        path = d + "/" + name
        with open(path, "w") as f:
            f.write("#!/bin/sh\nexit 0\n")
        os.chmod(path, mode)
        return path

    def close(self):
        for f in self.held:
            f.close()


def go_seconds(n):
    """n whole seconds as Go (and locksmithctl) write a duration: 1m30s, 2m0s, 1h0m5s, 42s."""
    h, m, s = n // 3600, n // 60 % 60, n % 60
    return "%dh%dm%ds" % (h, m, s) if h else "%dm%ds" % (m, s) if m else "%ds" % s


def ages(since, before, after):
    """The ages a check run between `before` and `after` (times read around it) may give a time
    written as `since`: on a busy machine a run can take seconds, so the age is computed from the
    times, never taken as exact."""
    return {go_seconds(t - since) + " ago" for t in range(int(before), int(after) + 2)}


def etcd_conf(group, endpoint=None, extra=""):
    return 'REBOOT_STRATEGY=etcd-lock\nLOCKSMITHD_ENDPOINT=%s\nLOCKSMITHD_GROUP="%s"\n%s' % (endpoint or etcd.endpoint, group, extra)


_groups = iter(range(1, 1000000))


def new_group():
    return "check-%d-%d" % (os.getpid(), next(_groups))


def ctl(group, *args, endpoint=None, api=None):
    argv = [LOCKSMITHCTL, "-endpoint", endpoint or etcd.endpoint, "-group", group]
    if api:
        argv += ["-etcd-api", api]
    p = subprocess.run(argv + list(args), capture_output=True, text=True, env={"LOCKSMITH_ROOT": "/nonexistent", "PATH": os.environ["PATH"]})
    if p.returncode != 0:
        raise AssertionError("locksmithctl %s: %s%s" % (" ".join(args), p.stdout, p.stderr))
    return p.stdout


class CheckTest(unittest.TestCase):
    def setUp(self):
        self.machines = []
        self.engine = None

    def tearDown(self):
        for m in self.machines:
            m.close()
        if self.engine:
            bus.stop_process(self.engine)

    def machine(self, *args, **kwargs):
        m = Machine(*args, **kwargs)
        self.machines.append(m)
        return m

    def update_engine(self, status="UPDATE_STATUS_IDLE"):
        self.engine = bus.start([os.path.join(harness.STANDINS, "fake-update-engine"), status])

    def find(self, doc, check, status=None):
        found = [c for c in doc["checks"] if c["check"] == check and (status is None or c["status"] == status)]
        self.assertTrue(found, "no %s check%s in %s" % (check, " with " + status if status else "", json.dumps(doc, indent=1)))
        return found

    def assertOnly(self, doc, check, status, *fragments):
        """The check has a finding of that status whose message holds every fragment."""
        for c in self.find(doc, check, status):
            if all(f in c["message"] for f in fragments):
                return c
        self.fail("no %s %s with %r in %s" % (status, check, fragments, json.dumps(doc, indent=1)))


class Ready(CheckTest):
    def test_a_machine_in_order_is_ok_throughout(self):
        # A real locksmithd on the same settings, the update engine on the bus, etcd up.
        self.update_engine()
        g = new_group()
        node = harness.DaemonNode(LOCKSMITHD, etcd.endpoint, bus.address, g, prefix="locksmith-test-check-node-")
        self.addCleanup(node.cleanup)
        self.hook_dir = node.root
        os.makedirs(node.root + "/etc/locksmith/pre-reboot.d")
        with open(node.root + "/etc/locksmith/pre-reboot.d/10-drain", "w") as f:
            f.write("#!/bin/sh\nexit 0\n")
        os.chmod(node.root + "/etc/locksmith/pre-reboot.d/10-drain", 0o755)
        node.start()
        # Running, not starting: the daemon is in order once it waits for an update.
        self.assertTrue(harness.wait_for(lambda: "STATE=running\n" in harness.read(node.root + "/run/locksmith/state")), node.output())
        env = {"PATH": os.environ["PATH"], "TZ": "UTC", **{k: v for k, v in node.env.items() if k.startswith(("LOCKSMITH", "REBOOT_", "DBUS_"))}}
        p = subprocess.run([LOCKSMITHCTL, "check"], capture_output=True, text=True, env=env, timeout=120)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertTrue(p.stdout.endswith(" ok, 0 warning(s), 0 error(s)\n"), p.stdout)
        for line in ("ok       strategy       REBOOT_STRATEGY=etcd-lock (environment)",  # no line there
                     "ok       machine-id     %s" % node.id,
                     "ok       locksmithd     running, running since",
                     "ok       reboot-source  the update engine (com.coreos.update1) is on the system bus",
                     "ok       hooks          %s/etc/locksmith/pre-reboot.d: 10-drain" % node.root,
                     "ok       etcd           %s: answered in " % etcd.endpoint,
                     "ok       etcd-api       etcd v",
                     'ok       semaphore      group "%s": ' % g):
            self.assertIn(line, p.stdout)
        p = subprocess.run([LOCKSMITHCTL, "check", "--json"], capture_output=True, text=True, env=env, timeout=120)
        doc = json.loads(p.stdout)
        self.assertEqual((p.returncode, doc["status"], doc["warnings"], doc["errors"]), (0, "ok", 0, 0), p.stdout)
        self.assertTrue(all(c["fix"] is None for c in doc["checks"]))

    def test_help_and_usage(self):
        p = subprocess.run([LOCKSMITHCTL, "help", "check"], capture_output=True, text=True)
        self.assertEqual(p.returncode, 0)
        self.assertIn("Exit status 0 when every check is ok, 1 with warnings, 2 with errors", " ".join(p.stdout.split()))
        p = subprocess.run([LOCKSMITHCTL, "check", "extra"], capture_output=True, text=True)
        self.assertEqual(p.returncode, 2)
        self.assertIn("check takes no arguments", p.stderr)
        p = subprocess.run([LOCKSMITHCTL, "-endpoint", "http://127.0.0.1:9", "check"], capture_output=True, text=True)
        self.assertEqual(p.returncode, 2)
        self.assertIn("it takes no -endpoint", p.stderr)


class Configuration(CheckTest):
    def test_a_skipped_line_is_a_warning_with_file_and_line(self):
        self.update_engine()
        m = self.machine('REBOOT_STRATEGY=reboot\n\nLOCKSMITHD_GROUP web\n')
        doc = m.findings()
        self.assertEqual(m.code, 1, doc)
        c = self.assertOnly(doc, "configuration", "warning", "/etc/coreos/update.conf: line 3:", "LOCKSMITHD_GROUP web")
        self.assertIn("correct or remove the line", c["fix"])

    def test_a_bad_setting_is_an_error_naming_it(self):
        m = self.machine('REBOOT_STRATEGY=sometimes\n')
        doc = m.findings()
        self.assertEqual(m.code, 2, doc)
        self.assertEqual(doc["status"], "error")
        self.assertOnly(doc, "settings", "error", "REBOOT_STRATEGY", "sometimes", "/etc/coreos/update.conf")
        code, out, err = m.check()
        self.assertEqual(code, 2)
        self.assertIn("error    settings", out)
        self.assertIn("fix: correct REBOOT_STRATEGY at %s/etc/coreos/update.conf:1 (locksmithd does not start with it)" % m.root, out)
        m = self.machine('# the window\nREBOOT_STRATEGY=reboot\nREBOOT_WINDOW_START="Thu 23:00"\nREBOOT_WINDOW_LENGTH=1x\n')
        c = self.assertOnly(m.findings(), "settings", "error", "REBOOT_WINDOW_LENGTH", "1x")
        self.assertIn("REBOOT_WINDOW_LENGTH at %s/etc/coreos/update.conf:4" % m.root, c["fix"])

    def test_etc_default_locksmithd_is_read_last_as_the_unit_does(self):
        # Issue 27: the Debian unit reads /etc/default/locksmithd after the update.conf files;
        # locksmithctl and check ignored it (status went to 127.0.0.1:2379, check said the
        # default strategy, and told to restart a daemon that ran with the file's).
        self.update_engine()
        g = new_group()
        m = self.machine('REBOOT_STRATEGY=reboot\nLOCKSMITHD_GROUP=from-update-conf\n')
        os.makedirs(m.root + "/etc/default")
        with open(m.root + "/etc/default/locksmithd", "w") as f:
            f.write('# as the README tells a Debian operator\nREBOOT_STRATEGY=etcd-lock\nLOCKSMITHD_ENDPOINT=%s\nLOCKSMITHD_GROUP="%s"\n' % (etcd.endpoint, g))
        doc = m.findings()
        self.assertOnly(doc, "strategy", "ok", "REBOOT_STRATEGY=etcd-lock (%s/etc/default/locksmithd:2)" % m.root)
        self.assertOnly(doc, "semaphore", "ok", 'group "%s"' % g)
        # The daemon running with the file's strategy is in order: no "restart it".
        m.state_file("STRATEGY=etcd-lock\nSTATE=running\nSTATE_SINCE=%d\nSLOT_HELD=no\n" % int(time.time()))
        doc = m.findings()
        self.assertFalse([c for c in self.find(doc, "locksmithd") if c["status"] != "ok"], doc)
        # locksmithctl on the node goes to the file's endpoint and group.
        p = subprocess.run([LOCKSMITHCTL, "-debug", "status"], capture_output=True, text=True, env=m.env, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertTrue(p.stdout.startswith("Available: 1\nMax: 1\n"), p.stdout)
        self.assertIn("LOCKSMITHD_GROUP in %s/etc/default/locksmithd" % m.root, p.stderr)
        self.assertIn("LOCKSMITHD_ENDPOINT in %s/etc/default/locksmithd" % m.root, p.stderr)

    def test_strategy_off_and_the_window(self):
        m = self.machine('REBOOT_STRATEGY=off\nREBOOT_WINDOW_START="Thu 23:00"\nREBOOT_WINDOW_LENGTH=1h30m\n')
        doc = m.findings()
        self.assertEqual(m.code, 1, doc)
        c = self.assertOnly(doc, "strategy", "warning", "REBOOT_STRATEGY=off", "never reboots")
        self.assertIn("REBOOT_STRATEGY=etcd-lock", c["fix"])
        self.assertOnly(doc, "window", "ok", "Thu 23:00, 1h30m0s long")
        self.assertTrue(any("next opens Thu" in c["message"] or "open now" in c["message"] for c in self.find(doc, "window")))
        self.assertOnly(doc, "locksmithd", "ok", "REBOOT_STRATEGY=off")  # not running is fine then

    def test_no_machine_id(self):
        m = self.machine('REBOOT_STRATEGY=reboot\n', machine_id=False)
        doc = m.findings()
        c = self.assertOnly(doc, "machine-id", "error")
        self.assertIn("systemd-machine-id-setup", c["fix"])
        self.assertEqual(m.code, 2)


class Daemon(CheckTest):
    def test_not_running_and_left_over_state(self):
        self.update_engine()
        m = self.machine('REBOOT_STRATEGY=reboot\n')
        c = self.assertOnly(m.findings(), "locksmithd", "warning", "not running")
        self.assertIn("systemctl enable --now locksmithd", c["fix"])
        m.state_file("STRATEGY=reboot\nSTATE=rebooting\nSTATE_SINCE=1\nSLOT_HELD=no\n", locked=False)
        self.assertOnly(m.findings(), "locksmithd", "warning", "not running")

    def test_running_with_another_strategy(self):
        self.update_engine()
        m = self.machine('REBOOT_STRATEGY=reboot\n')
        since = int(time.time()) - 90
        m.state_file("STRATEGY=etcd-lock\nSTATE=running\nSTATE_SINCE=%d\nSLOT_HELD=no\n" % since)
        before = time.time()
        doc = m.findings()
        c = self.assertOnly(doc, "locksmithd", "ok", "running, running since ")
        self.assertTrue(any("running since %s" % age in c["message"] for age in ages(since, before, time.time())), c)
        c = self.assertOnly(doc, "locksmithd", "warning", "REBOOT_STRATEGY=etcd-lock", "now says reboot")
        self.assertEqual(c["fix"], "systemctl restart locksmithd")

    def test_a_state_file_others_could_write_is_an_error(self):
        self.update_engine()
        m = self.machine('REBOOT_STRATEGY=reboot\n')
        m.state_file("STATE=running\n")
        os.chmod(m.root + "/run/locksmith/state", 0o666)
        self.assertOnly(m.findings(), "locksmithd", "error", "writable by nobody else")


class RebootSource(CheckTest):
    def test_update_engine_not_on_the_bus(self):
        m = self.machine('REBOOT_STRATEGY=reboot\nLOCKSMITHD_REBOOT_SOURCE=update-engine\n')
        c = self.assertOnly(m.findings(), "reboot-source", "error", "is not on the system bus")
        self.assertIn("LOCKSMITHD_REBOOT_SOURCE=file", c["fix"])
        self.update_engine()
        self.assertOnly(m.findings(), "reboot-source", "ok", "is on the system bus")

    def test_auto_falls_back_to_the_sentinel_file(self):
        m = self.machine('REBOOT_STRATEGY=reboot\n')
        self.assertOnly(m.findings(), "reboot-source", "ok", "not on the system bus", "watches %s/run/reboot-required" % m.root)

    def test_a_file_in_a_directory_that_is_not_there(self):
        m = self.machine('REBOOT_STRATEGY=reboot\nLOCKSMITHD_REBOOT_SOURCE=file:/var/lib/nowhere/reboot-needed\n')
        self.assertOnly(m.findings(), "reboot-source", "error", "cannot be watched", "is not a directory")

    def test_a_command_that_is_not_there(self):
        m = self.machine('REBOOT_STRATEGY=reboot\nLOCKSMITHD_REBOOT_SOURCE="command:/usr/local/bin/no-such-check --quiet"\n')
        self.assertOnly(m.findings(), "reboot-source", "error", "is not an executable file")
        m = self.machine('REBOOT_STRATEGY=reboot\nLOCKSMITHD_REBOOT_SOURCE="command:true"\n')
        self.assertOnly(m.findings(), "reboot-source", "ok", "/bin/true")


class Hooks(CheckTest):
    def test_hooks_root_would_refuse(self):
        self.update_engine()
        m = self.machine('REBOOT_STRATEGY=reboot\n')
        m.hook("pre-lock", "10-ok")
        m.hook("pre-reboot", "20-everyone-writes", 0o777)
        m.hook("post-reboot", "30-not-executable", 0o644)
        doc = m.findings()
        self.assertEqual(m.code, 2, doc)
        self.assertOnly(doc, "hooks", "ok", "pre-lock.d: 10-ok")
        c = self.assertOnly(doc, "hooks", "error", "pre-reboot hook 20-everyone-writes is refused: writable by every user")
        self.assertIn("chmod go-w", c["fix"])
        c = self.assertOnly(doc, "hooks", "error", "post-reboot hook 30-not-executable is refused: not executable")
        self.assertIn("chmod +x", c["fix"])


class Etcd(CheckTest):
    def test_one_endpoint_down_then_all(self):
        self.update_engine()
        g = new_group()
        m = self.machine(etcd_conf(g, endpoint="http://127.0.0.1:9,%s" % etcd.endpoint))
        doc = m.findings()
        self.assertEqual(m.code, 1, doc)
        self.assertOnly(doc, "etcd", "warning", "http://127.0.0.1:9:", "nothing accepts connections there")
        self.assertOnly(doc, "etcd", "ok", etcd.endpoint)
        self.assertOnly(doc, "semaphore", "ok", "no semaphore yet")
        self.assertIsNone(etcd.get("v3", harness.group_key(g)), "check wrote the semaphore")
        self.assertIsNone(etcd.get("v2", harness.group_key(g)), "check wrote the semaphore")
        m = self.machine(etcd_conf(g, endpoint="http://127.0.0.1:9"))
        doc = m.findings()
        self.assertEqual(m.code, 2, doc)
        self.assertOnly(doc, "etcd", "error", "nothing accepts connections there")

    def test_a_paused_etcd(self):
        self.update_engine()
        paused = harness.Etcd(prefix="locksmith-test-etcd-check-paused-")
        self.addCleanup(paused.stop)
        m = self.machine(etcd_conf(new_group(), endpoint=paused.endpoint, extra="LOCKSMITHD_TIMEOUT=1s\n"))
        os.kill(paused.proc.pid, 19)  # SIGSTOP
        try:
            start = time.monotonic()
            doc = m.findings()
            self.assertLess(time.monotonic() - start, 30)
        finally:
            os.kill(paused.proc.pid, 18)  # SIGCONT
        self.assertOnly(doc, "etcd", "error", paused.endpoint, "did not answer in time")

    def test_semaphore_max_zero_corrupt_and_a_slot_the_daemon_did_not_take(self):
        self.update_engine()
        g = new_group()
        m = self.machine(etcd_conf(g))
        ctl(g, "set-max", "0")
        doc = m.findings()
        c = self.assertOnly(doc, "semaphore", "warning", "max is 0")
        self.assertIn("locksmithctl set-max", c["fix"])
        ctl(g, "set-max", "2")
        ctl(g, "lock", m.id)
        c = self.assertOnly(m.findings(), "slot", "warning", "holds a slot of group", "that locksmithd did not take")
        self.assertIn("locksmithctl unlock", c["fix"])
        # The slot recorded by a running daemon in its state file is its own.
        since = int(time.time()) - 120
        m.state_file('STRATEGY=etcd-lock\nSTATE=reboot-planned\nSTATE_SINCE=1\nSLOT_HELD=yes\nSLOT_GROUP="%s"\nSLOT_KEY="%s"\nSLOT_ID="%s"\nSLOT_SINCE=%d\n'
                     % (g, harness.group_key(g), m.id, since))
        before = time.time()
        c = self.assertOnly(m.findings(), "slot", "ok", "taken by locksmithd ")
        self.assertTrue(any("taken by locksmithd %s" % age in c["message"] for age in ages(since, before, time.time())), c)
        # A corrupt value: an error, and never rewritten.
        etcd.put("v2", harness.group_key(g), "{not json")  # the API auto picks where v2 is served
        doc = m.findings()
        self.assertEqual(m.code, 2, doc)
        c = self.assertOnly(doc, "semaphore", "error", "group \"%s\"" % g)
        self.assertIn("never overwrites", c["fix"])
        self.assertEqual(etcd.get("v2", harness.group_key(g)), "{not json")

    def test_a_v2_semaphore_beside_the_v3_one(self):
        self.update_engine()
        g = new_group()
        m = self.machine(etcd_conf(g, extra="LOCKSMITHD_ETCD_API=v3\n"))
        ctl(g, "set-max", "3", api="v2")
        doc = m.findings()
        self.assertEqual(m.code, 1, doc)
        c = self.assertOnly(doc, "etcd-api", "warning", "etcd v3, but etcd also holds a v2 semaphore", "max 3")
        self.assertIn("LOCKSMITHD_ETCD_API=v2", c["fix"])
        m = self.machine(etcd_conf(g, extra="LOCKSMITHD_ETCD_API=v2\n"))
        self.assertOnly(m.findings(), "etcd-api", "ok", "etcd v2", "share this semaphore")

    def test_tls_names_the_ca(self):
        self.update_engine()
        certs = sec.Certificates()
        tls = harness.Etcd(prefix="locksmith-test-etcd-check-tls-", tls=(certs.dir + "/server.pem", certs.dir + "/server-key.pem", certs.ca))
        self.addCleanup(tls.stop)
        m = self.machine(etcd_conf(new_group(), endpoint=tls.endpoint, extra="LOCKSMITHD_ETCD_CAFILE=%s\n" % certs.ca))
        self.assertOnly(m.findings(), "etcd", "ok", "TLS verified against %s" % certs.ca)
        m = self.machine(etcd_conf(new_group(), endpoint=tls.endpoint, extra="LOCKSMITHD_ETCD_CAFILE=%s\n" % certs.other_ca))
        self.assertOnly(m.findings(), "etcd", "error", tls.endpoint)

    def test_a_v3_gateway_that_cannot_connect_to_its_own_etcd(self):
        # Flatcar's kola TLS layout on an etcd without v2: its JSON gateway cannot connect to
        # etcd itself, and the endpoint's line says so with the ways out (issue 25, item 5).
        self.update_engine()
        directory = tempfile.mkdtemp(prefix="locksmith-test-check-kola-")
        _dirs.append(directory)
        certs = harness.kola_certificates(directory)
        kola = harness.kola_etcd(certs, enable_v2=False)
        self.addCleanup(kola.stop)
        endpoint = "https://localhost:%d" % kola.port
        tls = "LOCKSMITHD_ETCD_CAFILE=%s\nLOCKSMITHD_ETCD_CERTFILE=%s\nLOCKSMITHD_ETCD_KEYFILE=%s\n" % (
            certs["ca-etcd-cert"], certs["locksmith-cert"], certs["locksmith-key"])
        m = self.machine(etcd_conf(new_group(), endpoint=endpoint, extra=tls))
        doc = m.findings()
        self.assertEqual(m.code, 2, doc)
        c = self.assertOnly(doc, "etcd", "error", endpoint + ": ", "etcd's JSON gateway (its v3 API over HTTP) cannot connect to etcd itself",
                            "set etcd-api (flag -etcd-api, or LOCKSMITHD_ETCD_API) to v2, with etcd started with --enable-v2=true",
                            "sign the server's and the clients' certificates with one CA", "extendedKeyUsage serverAuth,clientAuth",
                            "--client-cert-file and --client-key-file")
        self.assertIsNotNone(c["fix"])


class Authentication(CheckTest):
    def test_the_user_and_a_wrong_password(self):
        # etcd v3 with authentication: root, and the check authenticated as root, or refused.
        self.update_engine()
        server = harness.Etcd(prefix="locksmith-test-etcd-check-auth-", enable_v2=False)
        self.addCleanup(server.stop)
        server.enable_auth("v3", sec.PASSWORD)
        right = os.path.join(self.machine().root, "right")
        wrong = os.path.join(self.machine().root, "wrong")
        for path, text in ((right, sec.PASSWORD), (wrong, sec.WRONG)):
            with open(path, "w") as f:
                f.write(text + "\n")
            os.chmod(path, 0o600)
        g = new_group()
        m = self.machine(etcd_conf(g, endpoint=server.endpoint, extra="LOCKSMITHD_ETCD_USERNAME=root\nLOCKSMITHD_ETCD_PASSWORD_FILE=%s\n" % right))
        self.assertOnly(m.findings(), "etcd", "ok", server.endpoint, "(etcd v3)", 'authenticated as "root"')
        m = self.machine(etcd_conf(g, endpoint=server.endpoint, extra="LOCKSMITHD_ETCD_USERNAME=root\nLOCKSMITHD_ETCD_PASSWORD_FILE=%s\n" % wrong))
        doc = m.findings()
        self.assertEqual(m.code, 2, doc)
        c = self.assertOnly(doc, "etcd", "error", server.endpoint, "password is wrong")
        self.assertNotIn(sec.WRONG, json.dumps(doc))
        m = self.machine(etcd_conf(g, endpoint=server.endpoint))
        self.assertOnly(m.findings(), "etcd", "error", server.endpoint, "requires a user name and password")


if __name__ == "__main__":
    unittest.main()
