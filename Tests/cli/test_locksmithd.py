"""locksmithd end to end: real daemons against a real etcd and a private D-Bus, with the
project's stand-in update engine and logind. Each daemon gets its own root (machine id,
coordinator.conf, utmp) and its own sd_notify socket."""
import calendar
import fcntl
import itertools
import os
import pty
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
NEED = "UPDATE_STATUS_UPDATED_NEED_REBOOT"
_ids = itertools.count(1)
etcd = bus = None


def setUpModule():
    global etcd, bus
    etcd = harness.Etcd()
    bus = harness.Bus()


def tearDownModule():
    bus.stop()
    etcd.stop()


wait_for, read = harness.wait_for, harness.read


class UpdateEngine:
    """The stand-in update engine on the private bus."""

    def __init__(self, operation="UPDATE_STATUS_IDLE"):
        self.proc = bus.start([os.path.join(harness.STANDINS, "fake-update-engine"), operation])

    def send(self, line):
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        assert self.proc.stdout.readline().strip() == "ok"

    def stop(self):
        bus.stop_process(self.proc)


class Logind:
    def __init__(self, fail=0):
        self.log = os.path.join(bus.dir, "logind-%d.log" % next(_ids))
        argv = [os.path.join(harness.STANDINS, "fake-logind"), self.log] + (["--fail", str(fail)] if fail else [])
        self.proc = bus.start(argv)

    def calls(self):
        return [line for line in read(self.log).splitlines() if line]

    def stop(self):
        bus.stop_process(self.proc)


class Node(harness.DaemonNode):
    """One machine: a root directory, a machine id, an sd_notify socket, and its daemon."""

    def __init__(self, group, strategy="etcd-lock", env=None, conf=None):
        super().__init__(LOCKSMITHD, etcd.endpoint, bus.address, group, strategy=strategy, env=env, conf=conf)

    def output(self):
        return read(self.log) + read(self.out)


def holders(group):
    out = subprocess.run([LOCKSMITHCTL, "-endpoint", etcd.endpoint, "-group", group, "status", "--json"],
                         capture_output=True, text=True, env={"LOCKSMITH_ROOT": "/nonexistent"}).stdout
    import json
    return json.loads(out)["holders"] if out else None


def ctl(group, *args):
    return subprocess.run([LOCKSMITHCTL, "-endpoint", etcd.endpoint, "-group", group, *args],
                          capture_output=True, text=True, env={"LOCKSMITH_ROOT": "/nonexistent"})


def group():
    return "d-%d-%d" % (os.getpid(), next(_ids))


class DaemonTest(unittest.TestCase):
    def setUp(self):
        self.nodes = []
        self.services = []

    def tearDown(self):
        for thing in self.nodes + self.services:
            try:
                thing.cleanup() if isinstance(thing, Node) else thing.stop()
            except Exception as e:
                print("cleanup:", e)

    def node(self, *args, **kwargs):
        n = Node(*args, **kwargs)
        self.nodes.append(n)
        return n

    def service(self, s):
        self.services.append(s)
        return s


class Strategies(DaemonTest):
    def test_off_exits_at_once(self):
        n = self.node(group(), strategy="off").start()
        # Ready, read by the service manager (a barrier: its descriptor goes when the message
        # is read), then exit 0: a Type=notify unit ends inactive, not failed. Not STOPPING=1 in
        # the READY=1 message: systemd 252 and 257 failed the unit for it ('protocol').
        self.assertTrue(wait_for(lambda: n.saw("READY=1") and n.saw("BARRIER=1")), n.messages)
        self.assertEqual(n.wait_exit(5), 0)
        self.assertIn("REBOOT_STRATEGY is off", n.output())
        ready = [m for m in n.drain() if "READY=1" in m]
        self.assertEqual(len(ready), 1, n.messages)
        self.assertNotIn("STOPPING=1", ready[0])

    def test_invalid_configuration_names_variable_and_file(self):
        n = self.node(group(), strategy=None, conf="REBOOT_STRATEGY=sometimes\n").start()
        self.assertEqual(n.wait_exit(5), 78)
        self.assertIn('REBOOT_STRATEGY="sometimes" (from %s/etc/coreos/update.conf)' % n.root, n.output())
        n2 = self.node(group(), env={"LOCKSMITHD_REBOOT_WINDOW_START": "Thu 23:00"}).start()
        self.assertEqual(n2.wait_exit(5), 78)
        self.assertIn("LOCKSMITHD_REBOOT_WINDOW_LENGTH is not", n2.output())
        n3 = self.node(group(), conf='LOCKSMITHD_TIMEOUT="soon"\n').start()
        self.assertEqual(n3.wait_exit(5), 78)
        self.assertIn("LOCKSMITHD_TIMEOUT", n3.output())
        self.assertIn("/etc/coreos/update.conf", n3.output())

    def test_reboot_strategy_needs_no_etcd(self):
        ue = self.service(UpdateEngine(NEED))
        logind = self.service(Logind())
        n = self.node(group(), strategy="reboot", env={"LOCKSMITHD_ENDPOINT": "http://127.0.0.1:9"}).start()
        self.assertTrue(wait_for(lambda: logind.calls()), n.output())
        self.assertTrue(wait_for(lambda: n.state() == "rebooting"))
        self.assertEqual(n.stop(), 0)

    def test_etcd_lock_from_update_conf_and_best_effort(self):
        ue = self.service(UpdateEngine(NEED))
        logind = self.service(Logind())
        g = group()
        n = self.node(g, strategy=None, conf="REBOOT_STRATEGY=best-effort\n").start()
        self.assertTrue(wait_for(lambda: logind.calls()), n.output())
        self.assertIn("best-effort was removed", n.output())
        self.assertEqual(holders(g), [n.id])
        self.assertEqual(read(n.root + "/run/update-engine/coordinator.conf"),
                         "NAME=locksmithd\nSTRATEGY=etcd-lock\nSTATE=rebooting\n")
        self.assertEqual(n.stop(), 0)
        self.assertEqual(holders(g), [n.id], "the slot is kept through the reboot")


class LockDiscipline(DaemonTest):
    def test_signal_after_start_and_notify(self):
        ue = self.service(UpdateEngine())
        logind = self.service(Logind())
        g = group()
        n = self.node(g).start()
        self.assertTrue(wait_for(lambda: n.saw("READY=1")))
        self.assertTrue(wait_for(lambda: n.saw("STATUS=waiting for an update")))
        self.assertEqual(n.state(), "running")
        ue.send("emit " + NEED)
        self.assertTrue(wait_for(lambda: logind.calls()), n.output())
        self.assertTrue(n.saw("STATUS=rebooting"))
        self.assertEqual(n.stop(), 0)
        self.assertTrue(n.saw("STOPPING=1"))

    def test_help_lists_the_settings_files_the_library_reads(self):
        # The list is the library's (locksmith_config_file), in its order: written once.
        r = subprocess.run([LOCKSMITHD, "-help"], capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 0, r)
        files = ["/usr/share/coreos/update.conf", "/usr/share/flatcar/update.conf", "/etc/coreos/update.conf",
                 "/etc/flatcar/update.conf", "/etc/default/locksmithd"]
        listed = [line.strip() for line in r.stdout.splitlines() if line.strip() in files]
        self.assertEqual(listed, files, r.stdout)

    def test_watchdog_is_pinged_when_the_unit_asks(self):
        ue = self.service(UpdateEngine())
        n = self.node(group(), env={"WATCHDOG_USEC": "400000"}).start()
        self.assertTrue(wait_for(lambda: n.saw("READY=1")))
        time.sleep(1.5)
        pings = sum(1 for m in n.drain() if "WATCHDOG=1" in m)
        self.assertGreaterEqual(pings, 4, n.messages)
        plain = self.node(group()).start()
        self.assertTrue(wait_for(lambda: plain.saw("READY=1")))
        time.sleep(1)
        self.assertFalse(any("WATCHDOG=1" in m for m in plain.drain()))

    def test_stale_own_slot_is_released_at_start_even_when_reboot_is_needed(self):
        g = group()
        n = self.node(g)
        ctl(g, "lock", n.id)
        self.assertEqual(holders(g), [n.id])
        # Idle: the stale slot goes at once.
        ue = self.service(UpdateEngine())
        n.start()
        self.assertTrue(wait_for(lambda: holders(g) == []), n.output())
        self.assertIn("held from before its reboot", n.output())
        n.stop()
        # Starting in NEED_REBOOT with a window that is closed: the slot is released, not kept
        # while waiting for the window. (After the first start only a slot the daemon recorded
        # as its own is given back: test_daemon_attacks has the rest.)
        ctl(g, "lock", n.id)
        with open(n.root + "/var/lib/locksmith/reboot-slot", "w") as f:
            f.write("HELD=yes\nKEY=%s\nID=%s\n" % (harness.group_key(g), n.id))
        ue.send("status " + NEED)
        closed = time.gmtime(time.time() + 3 * 3600)
        n.env.update(LOCKSMITHD_REBOOT_WINDOW_START="%02d:%02d" % (closed.tm_hour, closed.tm_min), LOCKSMITHD_REBOOT_WINDOW_LENGTH="10m")
        logind = self.service(Logind())
        n.start()
        self.assertTrue(wait_for(lambda: holders(g) == []), n.output())
        self.assertTrue(wait_for(lambda: n.saw("STATUS=waiting for reboot window")), n.drain())
        self.assertEqual(logind.calls(), [])
        self.assertEqual(n.stop(), 0)
        self.assertEqual(holders(g), [])

    def test_reboot_inside_a_window_and_not_outside(self):
        ue = self.service(UpdateEngine(NEED))
        logind = self.service(Logind())
        now = time.gmtime()
        g = group()
        inside = self.node(g, env={"LOCKSMITHD_REBOOT_WINDOW_START": "%02d:%02d" % (now.tm_hour, now.tm_min),
                                   "LOCKSMITHD_REBOOT_WINDOW_LENGTH": "1h"}).start()
        self.assertTrue(wait_for(lambda: logind.calls()), inside.output())
        later = time.gmtime(time.time() + 7200)
        outside = self.node(group(), env={"LOCKSMITHD_REBOOT_WINDOW_START": "%s %02d:%02d" % (
            ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")[later.tm_wday], later.tm_hour, later.tm_min),
            "LOCKSMITHD_REBOOT_WINDOW_LENGTH": "30m"}).start()
        self.assertTrue(wait_for(lambda: outside.saw("STATUS=waiting for reboot window")), outside.output())
        self.assertRegex(" ".join(outside.drain()), r"opens in (1h59m|2h0m)")
        time.sleep(0.5)
        self.assertEqual(len(logind.calls()), 1)
        self.assertEqual(outside.state(), "running")
        self.assertEqual(outside.stop(), 0)

    def test_window_is_checked_again_after_a_late_slot(self):
        g = group()
        ctl(g, "lock", "someone-else")
        ue = self.service(UpdateEngine(NEED))
        logind = self.service(Logind())
        # A window that opened this minute and closes a few seconds from now.
        t = time.time()
        if time.gmtime(t).tm_sec > 50:
            time.sleep(61 - time.gmtime(t).tm_sec)
            t = time.time()
        start = time.gmtime(t)
        seconds_left = 4
        window_length = start.tm_sec + seconds_left
        n = self.node(g, env={"LOCKSMITHD_REBOOT_WINDOW_START": "%02d:%02d" % (start.tm_hour, start.tm_min),
                              "LOCKSMITHD_REBOOT_WINDOW_LENGTH": "%ds" % window_length}).start()
        self.assertTrue(wait_for(lambda: n.saw("STATUS=waiting for a slot: 0 of 1 free, held by someone-else")), n.drain())
        time.sleep(seconds_left + 1.5)  # the window has closed
        ctl(g, "unlock", "someone-else")
        time.sleep(1.5)
        self.assertEqual(logind.calls(), [], n.output())
        self.assertEqual(holders(g), [], "no slot is held outside the window")
        self.assertTrue(wait_for(lambda: n.saw("waiting for reboot window")), n.drain())
        self.assertEqual(n.stop(), 0)

    def test_two_daemons_max_one_take_turns(self):
        g = group()
        ue = self.service(UpdateEngine(NEED))
        logind = self.service(Logind())
        a = self.node(g).start()
        self.assertTrue(wait_for(lambda: logind.calls()), a.output())
        first_pid = int(logind.calls()[0].split("pid=")[1])
        self.assertEqual(first_pid, a.proc.pid)
        b = self.node(g).start()
        self.assertTrue(wait_for(lambda: b.saw("STATUS=waiting for a slot: 0 of 1 free, held by " + a.id)), b.drain())
        time.sleep(0.5)
        self.assertEqual(len(logind.calls()), 1, "the second waits while the first reboots")
        # The first machine "reboots": its daemon stops, and starts again after the reboot
        # (the update is applied: the update engine is idle for it now).
        self.assertEqual(a.stop(), 0)
        self.assertEqual(holders(g), [a.id])
        ue.send("status UPDATE_STATUS_IDLE")
        a.start()
        # The restarted daemon gives its slot back; b takes it within a second (watch, not polling).
        self.assertTrue(wait_for(lambda: holders(g) != [a.id], step=0.005), a.output())
        freed = time.time()
        self.assertTrue(wait_for(lambda: len(logind.calls()) == 2, step=0.005), b.output())
        took = time.time() - freed
        self.assertEqual(int(logind.calls()[1].split("pid=")[1]), b.proc.pid)
        self.assertLess(took, 1.0, "b learns of the free slot within a second")
        self.assertEqual(holders(g), [b.id])
        self.assertIn("gave back the reboot slot", a.output())

    def test_sigterm_while_waiting_for_a_slot_and_after_taking_one(self):
        g = group()
        ctl(g, "lock", "someone-else")
        ue = self.service(UpdateEngine(NEED))
        logind = self.service(Logind())
        n = self.node(g).start()
        self.assertTrue(wait_for(lambda: n.saw("STATUS=waiting for a slot")), n.output())
        started = time.time()
        self.assertEqual(n.stop(), 0)
        self.assertLess(time.time() - started, 3)
        self.assertEqual(holders(g), ["someone-else"])
        # Right after taking it: a logged-in user makes the daemon wait before rebooting.
        ctl(g, "unlock", "someone-else")
        master, slave = pty.openpty()
        try:
            tty = os.ttyname(slave)
            write_utmp(n, tty)
            n.env["LOCKSMITHD_REBOOT_BROADCAST_DELAY"] = "30s"
            n.start()
            self.assertTrue(wait_for(lambda: holders(g) == [n.id]), n.output())
            self.assertTrue(wait_for(lambda: n.saw("users were warned")), n.drain())
            self.assertEqual(n.stop(), 0)
            self.assertEqual(holders(g), [], "a slot taken and not used is given back")
            self.assertEqual(logind.calls(), [])
        finally:
            os.close(master)
            os.close(slave)

    def test_state_file_tells_the_slot_and_the_state(self):
        # /run/locksmith/state (issue 18, part 1): what pam_locksmith reads instead of etcd.
        g = group()
        ue = self.service(UpdateEngine(NEED))
        logind = self.service(Logind())
        n = self.node(g)
        path = n.root + "/run/locksmith/state"
        started = int(time.time())
        n.start()
        self.assertTrue(wait_for(lambda: "STATE=rebooting\n" in read(path), timeout=15), n.output())
        text = read(path)
        self.assertIn('SLOT_HELD=yes\nSLOT_GROUP="%s"\nSLOT_KEY="%s"\nSLOT_ID="%s"\n' % (g, harness.group_key(g), n.id), text)
        values = dict(line.split("=", 1) for line in text.splitlines() if "=" in line and not line.startswith("#"))
        self.assertEqual(values["STRATEGY"], "etcd-lock")
        for key in ("STATE_SINCE", "SLOT_SINCE"):
            self.assertTrue(started - 1 <= int(values[key]) <= time.time() + 1, text)
        self.assertEqual(os.stat(path).st_mode & 0o777, 0o644)
        with open(path, "r+") as f:  # the running daemon holds its flock and its write lock
            self.assertRaises(BlockingIOError, fcntl.flock, f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            self.assertRaises(OSError, fcntl.lockf, f, fcntl.LOCK_SH | fcntl.LOCK_NB)
        self.assertEqual(n.stop(), 0)
        with open(path, "r+") as f:  # and lets go of them when it stops
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            fcntl.lockf(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        # The next start gives the slot from before the reboot back: none is held.
        ue.stop()
        self.services.remove(ue)
        self.service(UpdateEngine())
        n.start()
        self.assertTrue(wait_for(lambda: holders(g) == [] and "STATE=running\n" in read(path)), n.output())
        self.assertIn("SLOT_HELD=no\n", read(path))

    def test_refused_reboot_gives_the_slot_back_and_retries(self):
        g = group()
        ue = self.service(UpdateEngine(NEED))
        logind = self.service(Logind(fail=1))
        n = self.node(g).start()
        self.assertTrue(wait_for(lambda: len(logind.calls()) == 2, timeout=15), n.output())
        self.assertIn("refused", logind.calls()[0])
        self.assertIn("the reboot was refused", n.output())
        self.assertIn("gave the reboot slot back", n.output())
        self.assertEqual(holders(g), [n.id])


class Environment(DaemonTest):
    def test_malformed_signals_are_ignored(self):
        ue = self.service(UpdateEngine())
        logind = self.service(Logind())
        n = self.node(group()).start()
        self.assertTrue(wait_for(lambda: n.saw("READY=1")))
        ue.send("emit-bad")
        ue.send("emit-bad")
        ue.send("emit " + NEED)
        self.assertTrue(wait_for(lambda: logind.calls()), n.output())
        self.assertEqual(n.output().count("does not carry (x d s s x)"), 1)

    def test_update_engine_absent_then_appearing(self):
        logind = self.service(Logind())
        n = self.node(group()).start()
        self.assertTrue(wait_for(lambda: "is not on the system bus; waiting for it" in n.output()), n.output())
        self.assertIsNone(n.proc.poll())
        ue = self.service(UpdateEngine(NEED))
        self.assertTrue(wait_for(lambda: logind.calls()), n.output())

    def test_etcd_down_then_back(self):
        e2 = harness.Etcd()
        try:
            endpoint = e2.endpoint
            e2.stop()
            ue = self.service(UpdateEngine(NEED))
            logind = self.service(Logind())
            n = self.node(group(), env={"LOCKSMITHD_ENDPOINT": endpoint, "LOCKSMITHD_TIMEOUT": "500ms"}).start()
            self.assertTrue(wait_for(lambda: "cannot give back a stale reboot slot" in n.output()), n.output())
            self.assertIsNone(n.proc.poll())
            restarted = restart_etcd_on(endpoint)
            try:
                self.assertTrue(wait_for(lambda: logind.calls(), timeout=20), n.output())
            finally:
                restarted.stop()
        finally:
            pass

    def test_broadcast_reaches_a_terminal_and_is_skipped_when_nobody_is_logged_in(self):
        ue = self.service(UpdateEngine(NEED))
        logind = self.service(Logind())
        master, slave = pty.openpty()
        try:
            n = self.node(group())
            write_utmp(n, os.ttyname(slave))
            started = time.time()
            n.start()
            self.assertTrue(wait_for(lambda: logind.calls()), n.output())
            self.assertGreaterEqual(time.time() - started, 1.0, "waited the broadcast delay")
            os.set_blocking(master, False)
            text = os.read(master, 4096).decode(errors="replace")
            self.assertIn("System reboot in 1 second!", text)  # the real delay (LOCKSMITHD_REBOOT_BROADCAST_DELAY=1s)
        finally:
            os.close(master)
            os.close(slave)
        nobody = self.node(group(), env={"LOCKSMITHD_REBOOT_BROADCAST_DELAY": "30s"})
        started = time.time()
        nobody.start()
        self.assertTrue(wait_for(lambda: len(logind.calls()) >= 2), nobody.output())
        self.assertLess(time.time() - started, 10, "no wait when nobody is logged in")

    def test_one_coordinator_per_machine(self):
        ue = self.service(UpdateEngine())
        n = self.node(group()).start()
        self.assertTrue(wait_for(lambda: n.saw("READY=1")))
        second = subprocess.run([LOCKSMITHD], env=n.env, capture_output=True, text=True, timeout=10)
        self.assertEqual(second.returncode, 1)
        self.assertIn("another update coordinator is running", second.stderr)
        st = os.stat(n.root + "/run/update-engine/coordinator.conf")
        self.assertEqual(st.st_mode & 0o777, 0o644)

    def test_a_readers_locks_on_left_over_files_do_not_stop_the_daemon(self):
        # Issue 26: anyone who can read coordinator.conf or the state file can flock them and take
        # a read lock. Left over from a stopped daemon and so locked, they must not keep the next
        # daemon from starting (one coordinator per machine is a lock on a root-only file).
        ue = self.service(UpdateEngine())
        n = self.node(group())
        held = []
        for path in (n.root + "/run/update-engine/coordinator.conf", n.root + "/run/locksmith/state"):
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "w") as f:
                f.write("STATE=rebooting\n")
            f = open(path)
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            fcntl.fcntl(f.fileno(), fcntl.F_OFD_SETLK, struct.pack("hhqqi", fcntl.F_RDLCK, os.SEEK_SET, 0, 0, 0))
            held.append(f)
        try:
            n.start()
            self.assertTrue(wait_for(lambda: n.saw("READY=1")), n.output())
            self.assertTrue(wait_for(lambda: "STATE=running\n" in read(n.root + "/run/locksmith/state")), n.output())
            self.assertEqual(os.stat(n.root + "/run/locksmith/locksmithd.lock").st_mode & 0o777, 0o600)
        finally:
            for f in held:
                f.close()

    def test_no_zombie_child_while_it_runs(self):
        # Issue 25: the start-up helper (it gives the slot from before back) ended and stayed a
        # "[locksmithd] <defunct>" child for as long as the daemon ran.
        self.service(UpdateEngine())
        g = group()
        n = self.node(g)
        self.assertEqual(ctl(g, "lock", n.id).returncode, 0)
        n.start()
        self.assertTrue(wait_for(lambda: n.saw("READY=1") and holders(g) == []), n.output())

        def children():
            found = []
            for task in os.listdir("/proc/%d/task" % n.proc.pid):
                with open("/proc/%d/task/%s/children" % (n.proc.pid, task)) as f:
                    found += f.read().split()
            return found

        def zombies():
            out = []
            for pid in children():
                try:
                    with open("/proc/%s/stat" % pid) as f:
                        if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                            out.append(pid)
                except FileNotFoundError:
                    pass
            return out
        self.assertTrue(wait_for(lambda: children() == [], timeout=10), "children %s, zombies %s" % (children(), zombies()))
        self.assertEqual(zombies(), [])
        self.assertEqual(n.stop(), 0)

    def test_sigterm_right_after_start_is_a_clean_stop(self):
        # The start-up helper's reaper thread began before the signal thread blocked SIGTERM in
        # every thread: a SIGTERM delivered to it ended the daemon by the signal (-15), without
        # giving a slot back. Started and stopped at once, many times: always exit 0.
        self.service(UpdateEngine())
        g = group()
        for _ in range(12):
            n = self.node(g).start()
            self.assertTrue(wait_for(lambda: n.saw("READY=1")), n.output())
            self.assertEqual(n.stop(), 0, n.output())

    def test_unit_file_verifies(self):
        unit = os.path.join(tempfile.mkdtemp(prefix="locksmith-test-unit-"), "locksmithd.service")
        with open(os.path.join(harness.ROOT, "systemd", "locksmithd.service.in")) as f:
            text = f.read().replace("@BINDIR@", os.path.dirname(LOCKSMITHD))
        with open(unit, "w") as f:
            f.write(text)
        r = subprocess.run(["systemd-analyze", "verify", "--man=no", unit], capture_output=True, text=True)
        problems = [line for line in r.stderr.splitlines() if "locksmithd.service" in line]
        self.assertEqual(problems, [])
        self.assertIn("Type=notify", text)
        self.assertIn("MemoryMax=32M", text)
        shutil.rmtree(os.path.dirname(unit))


def restart_etcd_on(endpoint):
    """A new etcd serving on the port of `endpoint`."""
    port = int(endpoint.rsplit(":", 1)[1])
    e = harness.Etcd(port=port)
    return e


def write_utmp(node, tty):
    """A utmp file under the node's root with one user session on tty (mounted under root/dev
    when the node starts)."""
    harness.write_utmp(node.root, [node.terminal(tty)])


if __name__ == "__main__":
    unittest.main()
