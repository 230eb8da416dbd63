"""locksmithd under attack (security issue 12, daemon items 1, 2, 7 and 10): real daemons against a
real etcd and a private D-Bus, with the project's stand-in update engine and logind, each daemon
in its own root (LOCKSMITH_ROOT). Every test here asks the daemon to do something it must not:

- reboot without the lock because libcurl cannot be loaded or made to work (`NoLibcurl`);
- believe a StatusUpdate signal that does not come from the update engine, or that the update
  engine's own GetStatus contradicts (`UpdateEngineSignals`);
- give back, or count as its own, a slot it did not take (`SlotOwnership`; the daemon records the
  slot it took in <root>/var/lib/locksmith/reboot-slot, EnvironmentFile syntax: HELD=no, or
  HELD=yes with ID=<holder> and the group as GROUP=<group> or KEY=<its etcd key>);
- open what utmp names when it is not a terminal, or follow a symlink to one, and announce a delay
  it will not wait (`Broadcast`).

Terminals the daemon is meant to reach are real pty slaves bind-mounted under <root>/dev in a
mount namespace of the daemon's own (`unshare -m`), so no symlink is involved and nothing is left
mounted when the daemon ends.

Run: cd Tests/cli && python3 -m unittest test_daemon_attacks -v"""
import itertools
import json
import os
import pty
import re
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import threading
import time
import unittest

import harness

LOCKSMITHD = os.environ.get("LOCKSMITHD", os.path.join(harness.ROOT, "build", "bin", "locksmithd"))
LOCKSMITHCTL = harness.LOCKSMITHCTL
UPDATE_ENGINE = os.path.join(harness.STANDINS, "fake-update-engine")
CURL_SHIM_DIR = os.path.join(harness.STANDINS, "curl-shim")
NEED = "UPDATE_STATUS_UPDATED_NEED_REBOOT"
IDLE = "UPDATE_STATUS_IDLE"
AS_NOBODY = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"]
STATE_FILE = "/var/lib/locksmith/reboot-slot"
_ids = itertools.count(1)
etcd = bus = None
wait_for, read = harness.wait_for, harness.read


def setUpModule():
    global etcd, bus
    etcd = harness.Etcd()
    bus = harness.Bus()
    # harness.Bus keeps its socket in a 0700 directory: let user nobody reach it (the attacker).
    os.chmod(bus.dir, 0o755)


def tearDownModule():
    bus.stop()
    etcd.stop()


def group():
    return "atk-%d-%d" % (os.getpid(), next(_ids))


def ctl(g, *args):
    return subprocess.run([LOCKSMITHCTL, "-endpoint", etcd.endpoint, "-group", g, *args],
                          capture_output=True, text=True, env={"LOCKSMITH_ROOT": "/nonexistent"}, timeout=30)


def holders(g):
    out = ctl(g, "status", "--json").stdout
    return json.loads(out)["holders"] if out else None


def sleep_watching(seconds, bad):
    """Sleeps `seconds`, returning early with bad()'s value as soon as it is true."""
    deadline = time.time() + seconds
    while time.time() < deadline:
        value = bad()
        if value:
            return value
        time.sleep(0.05)
    return bad()


def nobody_can_run(path):
    """Whether user nobody can reach and run `path` (every directory above it searchable)."""
    return subprocess.run(AS_NOBODY + ["test", "-x", path], capture_output=True).returncode == 0


class UpdateEngine:
    """The stand-in update engine (or, with no_name, an impostor that does not own the name)."""

    def __init__(self, operation=IDLE, no_name=False, as_nobody=False):
        argv = [UPDATE_ENGINE] + (["--no-name"] if no_name else []) + [operation]
        self.proc = bus.start((AS_NOBODY if as_nobody else []) + argv)

    def send(self, line):
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        assert self.proc.stdout.readline().strip() == "ok"

    def stop(self):
        if self.proc is not None:
            bus.stop_process(self.proc)
            self.proc = None


class Logind:
    def __init__(self):
        self.log = os.path.join(bus.dir, "logind-%d.log" % next(_ids))
        self.proc = bus.start([os.path.join(harness.STANDINS, "fake-logind"), self.log])

    def calls(self):
        return [line for line in read(self.log).splitlines() if line]

    def stop(self):
        if self.proc is not None:
            bus.stop_process(self.proc)
            self.proc = None


class Node(harness.DaemonNode):
    """One machine: a root directory, a machine id, an sd_notify socket, and its daemon. The
    daemon's stderr (its log) and stdout go to separate files."""

    def __init__(self, group, strategy="etcd-lock", env=None):
        super().__init__(LOCKSMITHD, etcd.endpoint, bus.address, group, strategy=strategy, env=env,
                         id_base=0xa77ac000, prefix="locksmith-test-attack-")


utmp_record, write_utmp = harness.utmp_record, harness.write_utmp


class Pty:
    """A pty pair; text() is everything written to the slave so far."""

    def __init__(self):
        self.master, self.slave = pty.openpty()
        self.path = os.ttyname(self.slave)
        os.set_blocking(self.master, False)
        self.received = b""

    def text(self):
        while True:
            try:
                chunk = os.read(self.master, 4096)
            except BlockingIOError:
                break
            if not chunk:
                break
            self.received += chunk
        return self.received.decode(errors="replace")

    def stop(self):
        os.close(self.master)
        os.close(self.slave)


class DaemonTest(unittest.TestCase):
    def setUp(self):
        self.things = []

    def tearDown(self):
        for thing in reversed(self.things):
            try:
                thing.cleanup() if isinstance(thing, Node) else thing.stop()
            except Exception as e:
                print("cleanup:", e)

    def keep(self, thing):
        self.things.append(thing)
        return thing

    def node(self, *args, **kwargs):
        return self.keep(Node(*args, **kwargs))

    def ready(self, n):
        """Waits until the daemon waits for an update (past start-up)."""
        self.assertTrue(wait_for(lambda: n.saw("STATUS=waiting for an update") or n.proc.poll() is not None),
                        n.output())
        self.assertIsNone(n.proc.poll(), n.output())
        time.sleep(0.3)


# ---- 1: no reboot without the lock when libcurl is unusable ----

class NoLibcurl(DaemonTest):
    def test_unloadable_libcurl_stops_the_daemon_at_start_without_a_reboot(self):
        # Item 1a: a libcurl.so.4 that is an empty file, or text: exit 1 naming libcurl, no Reboot.
        for name, content in [("empty", b""), ("text", b"this is not a shared library\n")]:
            with self.subTest(libcurl=name):
                ue = self.keep(UpdateEngine(NEED))
                logind = self.keep(Logind())
                try:
                    g = group()
                    self.assertEqual(ctl(g, "set-max", "0").returncode, 0)
                    libdir = tempfile.mkdtemp(prefix="locksmith-test-nocurl-")
                    self.addCleanup(shutil.rmtree, libdir, True)
                    with open(os.path.join(libdir, "libcurl.so.4"), "wb") as f:
                        f.write(content)
                    n = self.node(g, env={"LD_LIBRARY_PATH": libdir}).start()
                    wait_for(lambda: n.proc.poll() is not None or logind.calls(), timeout=8)
                    time.sleep(0.5)
                    self.assertEqual(logind.calls(), [], "rebooted without the lock:\n" + n.output())
                    self.assertIsNotNone(n.proc.poll(), "still running after 8 s:\n" + n.output())
                    self.assertEqual(n.wait_exit(), 1, n.output())
                    self.assertIn("libcurl", n.output())
                    self.assertEqual(holders(g), [])
                finally:
                    logind.stop()
                    ue.stop()

    def test_libcurl_failing_at_run_time_is_retried_never_skipped(self):
        # Item 1b: curl_easy_init() fails when the reboot is needed: no Reboot until it works, then
        # the slot is taken and the machine reboots.
        flag = os.path.join(tempfile.mkdtemp(prefix="locksmith-test-curlflag-"), "fail")
        self.addCleanup(shutil.rmtree, os.path.dirname(flag), True)
        ue = self.keep(UpdateEngine(IDLE))
        logind = self.keep(Logind())
        g = group()
        n = self.node(g, env={"LD_LIBRARY_PATH": CURL_SHIM_DIR, "CURL_SHIM_FAIL_INIT_IF": flag}).start()
        self.ready(n)
        time.sleep(1)  # start-up's own etcd work (the stale slot) is done with a working libcurl
        open(flag, "w").close()
        ue.send("emit " + NEED)
        self.assertFalse(sleep_watching(6, logind.calls), "rebooted without the lock:\n" + n.output())
        self.assertIn("cannot make the etcd client", n.output())
        self.assertIsNone(n.proc.poll(), n.output())
        self.assertEqual(holders(g), [])
        os.unlink(flag)
        self.assertTrue(wait_for(logind.calls, timeout=18), "no reboot once libcurl works again:\n" + n.output())
        self.assertEqual(holders(g), [n.id])
        self.assertEqual(n.stop(), 0)


# ---- 2: only the update engine's current owner is believed ----

class UpdateEngineSignals(DaemonTest):
    def setUp(self):
        super().setUp()
        self.ue = self.keep(UpdateEngine(IDLE))
        self.logind = self.keep(Logind())
        self.n = self.node(group()).start()
        self.ready(self.n)
        time.sleep(1)  # the daemon has read GetStatus and listens for signals

    def assert_no_reboot(self, seconds=5):
        self.assertFalse(sleep_watching(seconds, self.logind.calls), "rebooted:\n" + self.n.output())
        self.assertEqual(holders(self.n.group), [])

    def assert_real_engine_still_heard(self):
        """The daemon was listening all along: the real update engine's word still makes it reboot."""
        self.ue.send("emit " + NEED)
        self.assertTrue(wait_for(self.logind.calls, timeout=10), self.n.output())
        self.assertEqual(holders(self.n.group), [self.n.id])

    def test_need_reboot_signal_from_a_non_root_user_is_ignored(self):
        # Item 2a: user nobody runs locksmithctl send-need-reboot while the engine says IDLE.
        if not nobody_can_run(LOCKSMITHCTL):
            self.skipTest("user nobody cannot run %s" % LOCKSMITHCTL)
        r = subprocess.run(AS_NOBODY + [LOCKSMITHCTL, "send-need-reboot"], capture_output=True, text=True, timeout=30,
                           env=dict(bus.env, LOCKSMITH_ROOT="/nonexistent"))
        self.assertEqual(r.returncode, 0, "nobody could not send the signal: " + r.stderr)
        self.assert_no_reboot()
        self.assert_real_engine_still_heard()

    def test_need_reboot_signal_that_get_status_contradicts_is_ignored(self):
        # Item 2b: the engine's owner signals NEED_REBOOT but GetStatus answers IDLE.
        self.ue.send("emit-only " + NEED)
        self.assert_no_reboot()
        self.assert_real_engine_still_heard()

    def test_forged_name_owner_changed_does_not_make_an_impostor_the_engine(self):
        # Item 2c: a non-root connection claims com.coreos.update1 with a forged NameOwnerChanged,
        # answers GetStatus with NEED_REBOOT on its unique name, and signals NEED_REBOOT.
        if not nobody_can_run(UPDATE_ENGINE):
            self.skipTest("user nobody cannot run %s" % UPDATE_ENGINE)
        impostor = self.keep(UpdateEngine(NEED, no_name=True, as_nobody=True))
        impostor.send("forge-owner")
        impostor.send("emit " + NEED)
        self.assert_no_reboot()
        impostor.stop()
        self.assert_real_engine_still_heard()

    def test_send_need_reboot_as_root_still_reboots(self):
        # Item 2d (decision kept): root's locksmithctl send-need-reboot, the original's way to test a
        # daemon, is believed although the engine says IDLE.
        r = subprocess.run([LOCKSMITHCTL, "send-need-reboot"], capture_output=True, text=True, timeout=30,
                           env=dict(bus.env, LOCKSMITH_ROOT="/nonexistent"))
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertTrue(wait_for(self.logind.calls, timeout=10), self.n.output())
        self.assertEqual(holders(self.n.group), [self.n.id])

    def test_a_restarted_update_engine_is_followed(self):
        # Item 2e: the engine stops, a new one (a new unique name) says NEED_REBOOT when asked.
        self.ue.stop()
        time.sleep(1)
        self.assertEqual(self.logind.calls(), [])
        self.ue = self.keep(UpdateEngine(NEED))
        self.assertTrue(wait_for(self.logind.calls, timeout=10), self.n.output())
        self.assertEqual(holders(self.n.group), [self.n.id])

    def test_signals_of_a_restarted_update_engine_are_believed(self):
        # Item 2e: the engine stops, a new one starts IDLE and later reports NEED_REBOOT (GetStatus
        # and signal): the daemon believes its new owner, not only the one it saw first.
        self.ue.stop()
        self.ue = self.keep(UpdateEngine(IDLE))
        self.assertFalse(sleep_watching(1.5, self.logind.calls), self.n.output())
        self.assert_real_engine_still_heard()


# ---- 7: only a slot the daemon took is given back or counted as its own ----

class SlotOwnership(DaemonTest):
    def assertGivenBackAtStart(self, n, g):
        """Starts n: the slot under its id is given back and the record then says HELD=no."""
        n.start()
        self.assertTrue(wait_for(lambda: holders(g) == []), n.output())
        self.assertTrue(wait_for(lambda: (n.state_file() or {}).get("HELD") == "no"),
                        "state file: %r\n%s" % (n.state_file(), n.output()))
        self.assertEqual(n.stop(), 0)

    def test_first_start_gives_back_the_machine_ids_slot_and_records_none(self):
        # Item 7a: no state file (first start, or upgraded from the original): the slot held under
        # the machine id is given back, and the file then says HELD=no.
        ue = self.keep(UpdateEngine(IDLE))
        g = group()
        n = self.node(g)
        self.assertEqual(ctl(g, "lock", n.id).returncode, 0)
        self.assertGivenBackAtStart(n, g)

    def test_the_machine_ids_slot_is_given_back_at_every_start(self):
        # Issue 25: a slot under the machine id means "this machine is going down" (the original's
        # rule, and Flatcar's tests: `locksmithctl lock`, restart, the slot is free again). So it
        # is given back at every start, also when the record says this daemon held none, and
        # besides the one the record names (another group's here).
        ue = self.keep(UpdateEngine(IDLE))
        g, other = group(), group()
        n = self.node(g)
        for text in ("# written by the test\nHELD=no\n", "HELD=yes\nGROUP=%s\nKEY=%s\nID=%s\n" % (other, harness.group_key(other), n.id)):
            n.write_state_file(text)
            self.assertEqual(ctl(g, "lock", n.id).returncode, 0)
            if "yes" in text:
                self.assertEqual(ctl(other, "lock", n.id).returncode, 0)
            self.assertGivenBackAtStart(n, g)
            self.assertEqual(holders(other), [])
            self.assertIn("gave back the reboot slot this machine held from before its reboot", n.output())

    def test_a_slot_recorded_as_held_is_given_back_and_the_record_cleared(self):
        # Item 7c: HELD=yes for this group and id: given back at start, the file says HELD=no.
        ue = self.keep(UpdateEngine(IDLE))
        g = group()
        n = self.node(g)
        # The group both ways: GROUP=<group> (as specified) and KEY=<its etcd key>.
        n.write_state_file("# written by the test\nHELD=yes\nGROUP=%s\nKEY=%s\nID=%s\n" % (g, harness.group_key(g), n.id))
        self.assertEqual(ctl(g, "lock", n.id).returncode, 0)
        self.assertGivenBackAtStart(n, g)

    def test_a_foreign_slot_under_the_machine_id_is_waited_for_not_used(self):
        # Item 7d: max 2, and once the daemon runs, someone takes a slot under the machine id (the
        # start gave back the one from before); then a reboot is needed. The daemon did not take
        # that slot: it waits; once it is given back it takes its own, records it, reboots.
        ue = self.keep(UpdateEngine(IDLE))
        logind = self.keep(Logind())
        g = group()
        n = self.node(g)
        n.write_state_file("# written by the test\nHELD=no\n")
        self.assertEqual(ctl(g, "set-max", "2").returncode, 0)
        n.start()
        self.ready(n)
        self.assertTrue(wait_for(lambda: "waiting for an update" in n.output()), n.output())
        self.assertEqual(ctl(g, "lock", n.id).returncode, 0)
        ue.send("emit " + NEED)
        self.assertTrue(wait_for(lambda: "reboot needed" in n.output() or "holder" in n.output() or "slot" in n.output()), n.output())
        self.assertFalse(sleep_watching(4, logind.calls), "rebooted on a slot it did not take:\n" + n.output())
        self.assertIsNone(n.proc.poll(), n.output())
        self.assertEqual(holders(g), [n.id])
        self.assertEqual(ctl(g, "unlock", n.id).returncode, 0)
        self.assertTrue(wait_for(logind.calls, timeout=10), n.output())
        self.assertEqual(holders(g), [n.id])
        state = n.state_file() or {}
        self.assertEqual((state.get("HELD"), state.get("ID")), ("yes", n.id), read(n.root + STATE_FILE))
        # The group as GROUP=<group> (as specified), or as KEY=<its etcd key>.
        self.assertTrue(state.get("GROUP") == g or state.get("KEY") == harness.group_key(g), read(n.root + STATE_FILE))
        self.assertEqual(n.stop(), 0)


# ---- 10: the reboot warning only reaches terminals, and says the real delay ----

def can_bind_mount():
    r = subprocess.run(["unshare", "-m", "--propagation", "private", "mount", "--bind", "/", "/"],
                       capture_output=True)
    return r.returncode == 0


class Broadcast(DaemonTest):
    def setUp(self):
        super().setUp()
        if not can_bind_mount():
            self.skipTest("needs unshare -m and mount --bind (a real terminal under the daemon's root)")
        self.ue = self.keep(UpdateEngine(NEED))
        self.logind = self.keep(Logind())
        self.tty = self.keep(Pty())

    def test_a_fifo_in_utmp_is_never_opened(self):
        # Item 10a: a FIFO named in utmp, with a reader blocked in open(O_RDONLY): it stays blocked.
        n = self.node(group(), strategy="reboot")
        fifo = n.root + "/dev/fifo"
        os.makedirs(n.root + "/dev", exist_ok=True)
        os.mkfifo(fifo)
        opened = []
        reader = threading.Thread(target=lambda: opened.append(os.open(fifo, os.O_RDONLY)), daemon=True)
        reader.start()
        try:
            write_utmp(n.root, ["fifo", n.terminal(self.tty.path)])
            n.start()
            self.assertTrue(wait_for(self.logind.calls, timeout=10), n.output())
            self.assertIn("System reboot in", self.tty.text(), "the real terminal was warned")
            time.sleep(0.2)
            self.assertTrue(reader.is_alive() and not opened, "the daemon opened the FIFO for writing")
        finally:
            if reader.is_alive():
                # Unblock the reader: a writer that opens and goes.
                try:
                    os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
                except OSError:
                    pass
                reader.join(5)
            for fd in opened:
                os.close(fd)

    def test_a_symlink_in_dev_to_a_terminal_is_not_followed(self):
        # Item 10b: <root>/dev/ttyS99 is a symlink to a real pty slave: nothing is written to it.
        victim = self.keep(Pty())
        n = self.node(group(), strategy="reboot")
        os.makedirs(n.root + "/dev", exist_ok=True)
        os.symlink(victim.path, n.root + "/dev/ttyS99")
        write_utmp(n.root, ["ttyS99", n.terminal(self.tty.path)])
        n.start()
        self.assertTrue(wait_for(self.logind.calls, timeout=10), n.output())
        self.assertIn("System reboot in", self.tty.text(), "the real terminal was warned")
        self.assertEqual(victim.text(), "", "written through the symlink")

    def test_the_warning_says_the_configured_delay(self):
        # Item 10c: LOCKSMITHD_REBOOT_BROADCAST_DELAY=3s says 3 seconds (and waits them); the
        # default still says 5 minutes (read, then the daemon is stopped).
        n = self.node(group(), strategy="reboot", env={"LOCKSMITHD_REBOOT_BROADCAST_DELAY": "3s"})
        write_utmp(n.root, [n.terminal(self.tty.path)])
        n.start()
        self.assertTrue(wait_for(lambda: re.search("System reboot in [^!]*!", self.tty.text()), timeout=10), n.output())
        warned = time.time()
        self.assertIn("System reboot in 3 seconds!", self.tty.text())
        self.assertTrue(wait_for(self.logind.calls, timeout=10), n.output())
        self.assertGreaterEqual(time.time() - warned, 2.5, "waited the delay it announced")
        self.assertEqual(n.stop(), 0)

        default = self.keep(Pty())
        d = self.node(group(), strategy="reboot")
        del d.env["LOCKSMITHD_REBOOT_BROADCAST_DELAY"]
        write_utmp(d.root, [d.terminal(default.path)])
        d.start()
        self.assertTrue(wait_for(lambda: re.search("System reboot in [^!]*!", default.text()), timeout=10), d.output())
        self.assertIn("System reboot in 5 minutes!", default.text())
        self.assertEqual(d.stop(), 0)
        self.assertEqual(len(self.logind.calls()), 1, "the default delay is not cut short")


if __name__ == "__main__":
    unittest.main()
