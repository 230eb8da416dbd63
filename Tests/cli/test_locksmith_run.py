"""locksmith-run (tools/locksmith-run.c, a C program on the installed-style library) against a real
etcd: runs never overlap beyond max, the slot is given back whatever way the command ends, signals
reach the command, and the timeout, exit codes and errors are the documented ones. Hygiene (security
issue 12): the password is hidden from the process list, the command inherits no descriptor beyond
0-2, and the default holder id is not the daemon's (the machine id)."""
import itertools
import os
import signal
import subprocess
import tempfile
import threading
import time
import unittest

import harness

RUN = os.environ.get("LOCKSMITH_RUN", os.path.join(harness.ROOT, "build", "tools", "locksmith-run"))
LIBDIR = os.path.join(harness.ROOT, "build", "lib")
MACHINE_ID = "fedcba9876543210fedcba9876543210"
_counter = itertools.count()
etcd = None
ROOT = tempfile.mkdtemp(prefix="locksmith-test-root-")


def setUpModule():
    global etcd
    etcd = harness.Etcd()
    os.makedirs(ROOT + "/etc", exist_ok=True)
    with open(ROOT + "/etc/machine-id", "w") as f:
        f.write(MACHINE_ID + "\n")


def unique(name):
    return "%s-%d-%d" % (name, os.getpid(), next(_counter))


def environment(extra=None):
    e = {k: v for k, v in os.environ.items() if not k.startswith("LOCKSMITH")}
    e["LOCKSMITH_ROOT"] = ROOT
    e["LOCKSMITHCTL_ENDPOINT"] = etcd.endpoint
    e["LD_LIBRARY_PATH"] = LIBDIR
    e["LOCKSMITHCTL_ETCD_API"] = "v3"  # the tests read etcd with v3 unless they say otherwise
    e.update(extra or {})
    return e


_started = []


def start(*args, env=None):
    p = subprocess.Popen([RUN] + list(args), env=environment(env), stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, start_new_session=True)
    _started.append(p)
    return p


def tearDownModule():
    # A failed test may leave a run (and its command) going: stop the whole process group.
    for p in _started:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
            p.communicate()
    etcd.stop()


def run(*args, env=None, timeout=60):
    p = start(*args, env=env)
    out, err = p.communicate(timeout=timeout)
    return p.returncode, out, err


def set_max(api, group, max_):
    etcd.put(api, harness.group_key(group), '{"semaphore":%d,"max":%d,"holders":null}' % (max_, max_))


def wait_for(predicate, seconds=10):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return False


class Overlap(unittest.TestCase):
    def intervals(self, log):
        """(start, end) per run from a log of "start T" / "end T" lines written by the commands."""
        spans, opened = [], {}
        with open(log) as f:
            for line in f:
                what, who, t = line.split()
                if what == "start":
                    opened[who] = float(t)
                else:
                    spans.append((opened.pop(who), float(t)))
        return sorted(spans)

    def contend(self, api, ids, max_):
        group = unique("overlap")
        set_max(api, group, max_)
        log = tempfile.mktemp(prefix="locksmith-test-run-")
        script = 'echo start $0 $(date +%s.%N) >> {0}; sleep 0.3; echo end $0 $(date +%s.%N) >> {0}'.format(log)
        procs = [start("--group", group, "--etcd-api", api, *(["--id", i] if i else []), "--",
                       "sh", "-c", script, "run%d" % n) for n, i in enumerate(ids)]
        for p in procs:
            out, err = p.communicate(timeout=60)
            self.assertEqual(p.returncode, 0, err)
        spans = self.intervals(log)
        os.unlink(log)
        self.assertEqual(len(spans), len(ids))
        # At every start, count the runs still going: never more than max.
        for s, _ in spans:
            running = sum(1 for a, b in spans if a <= s < b)
            self.assertLessEqual(running, max_, spans)
        self.assertEqual(etcd.holders(api, harness.group_key(group)), [])
        return spans

    def test_two_runs_max_one_never_overlap(self):
        for api in ("v2", "v3"):
            with self.subTest(api=api):
                self.contend(api, ["a", "b"], 1)

    def test_same_id_is_waited_for_not_shared(self):
        # Both default to <machine-id>/locksmith-run: the second must wait, not run alongside.
        self.contend("v3", [None, None], 1)

    def test_six_runs_max_two(self):
        spans = self.contend("v2", ["n%d" % i for i in range(6)], 2)
        # With max 2 and 0.3 s each, six runs take at least three rounds.
        self.assertGreaterEqual(max(b for _, b in spans) - min(a for a, _ in spans), 0.85)


class Release(unittest.TestCase):
    def test_failing_command_keeps_its_status_and_gives_the_slot_back(self):
        group = unique("fail")
        code, _, _ = run("--group", group, "--id", "x", "--", "sh", "-c", "exit 3")
        self.assertEqual(code, 3)
        self.assertEqual(etcd.holders("v3", harness.group_key(group)), [])

    def test_command_killed_by_a_signal(self):
        group = unique("killed")
        code, _, _ = run("--group", group, "--id", "x", "--", "sh", "-c", "kill -KILL $$")
        self.assertEqual(code, 128 + signal.SIGKILL)
        self.assertEqual(etcd.holders("v3", harness.group_key(group)), [])

    def test_command_not_found(self):
        group = unique("missing")
        code, _, err = run("--group", group, "--id", "x", "--", "/nonexistent/command")
        self.assertEqual(code, 127)
        self.assertIn("/nonexistent/command", err)
        self.assertEqual(etcd.holders("v3", harness.group_key(group)), [])

    def test_sigterm_reaches_the_command_and_the_slot_is_given_back(self):
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            with self.subTest(signal=sig.name):
                group = unique("term")
                marker = tempfile.mktemp(prefix="locksmith-test-run-")
                # The command records the signal it got and exits 9 on it.
                script = "trap 'echo got >> %s; exit 9' %s; echo held; while :; do sleep 0.05; done" % (marker, sig.name[3:])
                p = start("--group", group, "--id", "x", "--", "sh", "-c", script)
                self.assertEqual(p.stdout.readline().strip(), "held")
                self.assertEqual(etcd.holders("v3", harness.group_key(group)), ["x"])
                p.send_signal(sig)
                p.communicate(timeout=20)
                self.assertEqual(p.returncode, 9)
                with open(marker) as f:
                    self.assertEqual(f.read(), "got\n")
                os.unlink(marker)
                self.assertEqual(etcd.holders("v3", harness.group_key(group)), [])

    def test_sigterm_while_waiting_for_a_slot(self):
        group = unique("waiting")
        set_max("v3", group, 1)
        holder = start("--group", group, "--id", "first", "--", "sh", "-c", "echo held; exec sleep 30")
        self.assertEqual(holder.stdout.readline().strip(), "held")
        waiter = start("--group", group, "--id", "second", "--", "true")
        time.sleep(0.5)
        self.assertIsNone(waiter.poll())
        t = time.monotonic()
        waiter.send_signal(signal.SIGTERM)
        waiter.communicate(timeout=10)
        self.assertEqual(waiter.returncode, 128 + signal.SIGTERM)
        self.assertLess(time.monotonic() - t, 2.0)
        self.assertEqual(etcd.holders("v3", harness.group_key(group)), ["first"])
        holder.send_signal(signal.SIGTERM)
        holder.communicate(timeout=10)
        self.assertEqual(etcd.holders("v3", harness.group_key(group)), [])


class Timeout(unittest.TestCase):
    def test_no_slot_within_the_timeout(self):
        group = unique("timeout")
        set_max("v2", group, 1)
        etcd.put("v2", harness.group_key(group), '{"semaphore":0,"max":1,"holders":["other"]}')
        t = time.monotonic()
        code, out, err = run("--group", group, "--etcd-api", "v2", "--id", "me", "--timeout", "1.5s", "--", "echo", "ran")
        elapsed = time.monotonic() - t
        self.assertEqual(code, 75)
        self.assertEqual(out, "")
        self.assertIn("no free slot within the timeout", err)
        self.assertGreaterEqual(elapsed, 1.4)
        self.assertLess(elapsed, 4.0)
        self.assertEqual(etcd.holders("v2", harness.group_key(group)), ["other"])

    def test_zero_timeout_tries_once(self):
        group = unique("zero")
        etcd.put("v3", harness.group_key(group), '{"semaphore":0,"max":1,"holders":["other"]}')
        t = time.monotonic()
        code, _, _ = run("--group", group, "--id", "me", "--timeout", "0", "--", "true")
        self.assertEqual(code, 75)
        self.assertLess(time.monotonic() - t, 2.0)

    def test_a_freed_slot_is_taken_at_once(self):
        group = unique("freed")
        etcd.put("v3", harness.group_key(group), '{"semaphore":0,"max":1,"holders":["other"]}')
        p = start("--group", group, "--id", "me", "--timeout", "30s", "--", "date", "+%s.%N")
        time.sleep(0.5)
        freed = time.time()
        etcd.put("v3", harness.group_key(group), '{"semaphore":1,"max":1,"holders":null}')
        out, err = p.communicate(timeout=30)
        self.assertEqual(p.returncode, 0, err)
        self.assertLess(float(out) - freed, 1.0)


class Errors(unittest.TestCase):
    def test_usage(self):
        for args, text in ((["--group", "g"], "no command given"),
                           (["--timeout", "soon", "--", "true"], 'invalid --timeout "soon"'),
                           (["--bogus", "--", "true"], "Usage:"),
                           (["--etcd-api", "v9", "--", "true"], "etcd-api")):
            with self.subTest(args=args):
                code, out, err = run(*args)
                self.assertEqual(code, 2, err)
                self.assertIn(text, err)

    def test_help(self):
        code, out, _ = run("--help")
        self.assertEqual(code, 0)
        self.assertIn("Exit status", out)

    def test_corrupt_semaphore_is_reported_and_left_alone(self):
        group = unique("corrupt")
        etcd.put("v3", harness.group_key(group), "not json")
        code, out, err = run("--group", group, "--id", "me", "--", "echo", "ran")
        self.assertEqual(code, 1)
        self.assertEqual(out, "")
        self.assertIn(harness.group_key(group), err)
        self.assertEqual(etcd.get("v3", harness.group_key(group)), "not json")

    def test_unreachable_etcd_is_retried_then_reported(self):
        port = harness.free_port()
        t = time.monotonic()
        code, out, err = run("--endpoint", "http://127.0.0.1:%d" % port, "--timeout", "2s", "--", "echo", "ran")
        self.assertEqual(code, 1)
        self.assertEqual(out, "")
        self.assertIn("127.0.0.1:%d" % port, err)
        self.assertLess(time.monotonic() - t, 6.0)

    def test_environment_settings(self):
        group = unique("env")
        code, out, err = run("--id", "me", "--", "sh", "-c", "echo ok", env={"LOCKSMITHCTL_GROUP": group})
        self.assertEqual((code, out), (0, "ok\n"), err)
        self.assertIsNotNone(etcd.get("v3", harness.group_key(group)))


def ctl(group, *args):
    return subprocess.run([harness.LOCKSMITHCTL, "-group", group, *args], env=environment(),
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=30)


def cmdline(pid):
    with open("/proc/%d/cmdline" % pid, "rb") as f:
        return f.read().decode(errors="replace").split("\0")[:-1]


class Hygiene(unittest.TestCase):
    SECRET = "s3cret-Pa55word"

    def test_password_on_the_command_line_is_hidden_from_the_process_list(self):
        # No --etcd-username: the client sends a password only with a user name, so the test etcd
        # (no authentication) accepts the run and the flag is parsed exactly as with a user.
        stars = "*" * len(self.SECRET)
        for args, shown in [(["--etcd-password", self.SECRET], ["--etcd-password", stars]),
                            (["-etcd-password", self.SECRET], ["-etcd-password", stars]),
                            (["--etcd-password=" + self.SECRET], ["--etcd-password=" + stars]),
                            (["-etcd-password=" + self.SECRET], ["-etcd-password=" + stars])]:
            with self.subTest(args=args):
                group = unique("password")
                # The command's own arguments after -- are not locksmith-run's: left alone.
                p = start("--group", group, *args, "--id", "x", "--", "sh", "-c", "echo held; exec sleep 5",
                          "--etcd-password")
                try:
                    self.assertEqual(p.stdout.readline().strip(), "held")
                    seen = cmdline(p.pid)
                    self.assertNotIn(self.SECRET, " ".join(seen))
                    self.assertEqual(seen[3:3 + len(shown)], shown)
                    self.assertEqual(seen[-5:], ["--", "sh", "-c", "echo held; exec sleep 5", "--etcd-password"])
                finally:
                    p.send_signal(signal.SIGTERM)
                    out, err = p.communicate(timeout=10)
                self.assertNotIn(self.SECRET, out + err)
                self.assertEqual(etcd.holders("v3", harness.group_key(group)), [])

    def test_command_has_only_standard_descriptors(self):
        for api in ("v2", "v3"):
            with self.subTest(api=api):
                group = unique("fds")
                p = start("--group", group, "--etcd-api", api, "--id", "x", "--",
                          "sh", "-c", "echo $$; exec sleep 5")
                try:
                    pid = int(p.stdout.readline())
                    fds = sorted(int(fd) for fd in os.listdir("/proc/%d/fd" % pid))
                    self.assertEqual(fds, [0, 1, 2], [(fd, os.readlink("/proc/%d/fd/%d" % (pid, fd))) for fd in fds])
                finally:
                    p.send_signal(signal.SIGTERM)
                    p.communicate(timeout=10)

    def test_default_id_is_not_the_daemons(self):
        group = unique("machine")
        p = start("--group", group, "--", "sh", "-c", "echo held; exec sleep 30")
        try:
            self.assertEqual(p.stdout.readline().strip(), "held")
            holders = etcd.holders("v3", harness.group_key(group))
            self.assertEqual(holders, [MACHINE_ID + "/locksmith-run"])
            self.assertNotIn(MACHINE_ID, holders)
        finally:
            p.send_signal(signal.SIGINT)
            p.communicate(timeout=10)
        self.assertEqual(etcd.holders("v3", harness.group_key(group)), [])

    def test_daemon_holding_the_machine_id_does_not_block_a_default_run(self):
        # locksmithd's reboot lock is held under the plain machine id (locksmithctl lock without an
        # id takes it the same way); a default run is another holder and takes the second slot.
        group = unique("daemon")
        set_max("v3", group, 2)
        done = ctl(group, "lock")
        self.assertEqual(done.returncode, 0, done.stderr)
        self.assertEqual(etcd.holders("v3", harness.group_key(group)), [MACHINE_ID])
        code, out, err = run("--group", group, "--timeout", "3s", "--", "sh", "-c", "echo ran")
        self.assertEqual((code, out), (0, "ran\n"), err)
        # The daemon's slot is untouched; the run's own is given back.
        self.assertEqual(etcd.holders("v3", harness.group_key(group)), [MACHINE_ID])


if __name__ == "__main__":
    unittest.main()
