"""locksmithctl status --watch, run as a program against a real etcd: the full-screen view in a
real terminal (tmux) while a simulated fleet of real daemons reboots, the plain lines through a
pipe, that changes come from etcd's watch (nothing printed while nothing changes, a change seen
within a second), etcd lost and found again, a corrupt semaphore, SIGINT and SIGTERM, and the
usage error with --json."""
import itertools
import os
import pty
import re
import select
import shutil
import signal
import subprocess
import tempfile
import time
import unittest

import harness

_counter = itertools.count()
etcd = None
EMPTY_ROOT = tempfile.mkdtemp(prefix="locksmith-test-root-")
STAMP = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ"
SIM = os.path.join(harness.ROOT, "tools", "fleet-sim")
# The ids fleet-sim gives its nodes.
NODE_IDS = ["%032x" % (0x5eed0000 + i) for i in (1, 2, 3)]


def setUpModule():
    global etcd
    etcd = harness.Etcd()


def tearDownModule():
    etcd.stop()
    shutil.rmtree(EMPTY_ROOT, ignore_errors=True)


def unique(name):
    return "%s-%d-%d" % (name, os.getpid(), next(_counter))


def environment(endpoint=None, **extra):
    e = {k: v for k, v in os.environ.items() if not k.startswith("LOCKSMITH") and not k.startswith("REBOOT_")}
    e.update(LOCKSMITH_ROOT=EMPTY_ROOT, LOCKSMITHCTL_ENDPOINT=endpoint or etcd.endpoint, TZ="UTC")
    e.update(extra)
    return e


def ctl(*args, endpoint=None):
    r = subprocess.run([harness.LOCKSMITHCTL] + list(args), env=environment(endpoint), capture_output=True, text=True, timeout=60)
    return r


class Watcher:
    """status --watch with its stdout on a pipe (not a terminal): its lines as they come."""

    def __init__(self, *args, endpoint=None):
        self.proc = subprocess.Popen([harness.LOCKSMITHCTL, "status", "--watch", *args], env=environment(endpoint),
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.buffer = b""
        self.raw = b""

    def lines(self, timeout):
        """The complete lines that arrive within timeout seconds (at least one, if any comes)."""
        out = []
        deadline = time.monotonic() + timeout
        while True:
            while b"\n" in self.buffer:
                line, self.buffer = self.buffer.split(b"\n", 1)
                out.append(line.decode())
            left = deadline - time.monotonic()
            if left <= 0:
                return out
            ready, _, _ = select.select([self.proc.stdout], [], [], left)
            if not ready:
                return out
            chunk = os.read(self.proc.stdout.fileno(), 65536)
            if not chunk:
                return out
            self.raw += chunk
            self.buffer += chunk

    def line_matching(self, pattern, timeout=10):
        """Reads lines until one matches; returns (it, the lines before it)."""
        seen = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in self.lines(min(0.2, max(deadline - time.monotonic(), 0.01))):
                if re.search(pattern, line):
                    return line, seen
                seen.append(line)
        raise AssertionError("no line matched %r within %ss; saw %r (exit status %r)" % (pattern, timeout, seen, self.proc.poll()))

    def stop(self, sig=signal.SIGINT):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            rest, err = self.proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rest, err = self.proc.communicate()
        self.raw += rest
        return self.proc.returncode, err.decode()


class PlainLines(unittest.TestCase):
    """Not a terminal: one timestamped line per change, no escape sequences."""

    def test_one_line_per_change_for_v2_and_v3(self):
        for api in ("v2", "v3"):
            with self.subTest(api=api):
                g = ["-etcd-api", api, "-group", unique("plain")]
                self.assertEqual(ctl(*g, "set-max", "2").returncode, 0)
                self.assertEqual(ctl(*g, "lock", "held-before").returncode, 0)
                w = Watcher(*g)
                try:
                    first = w.lines(5)
                    self.assertEqual(len(first), 1, first)
                    self.assertRegex(first[0], "^" + STAMP + r" state: available 1/2, holders: held-before; queue: -$")
                    steps = [(("lock", "m1"), r"took: m1 \(available 0/2\)"),
                             (("unlock", "held-before"), r"gave back: held-before \(available 1/2\)"),
                             (("set-max", "3"), r"max: 2 -> 3 \(available 2/3\)"),
                             (("unlock", "m1"), r"gave back: m1 \(available 3/3\)")]
                    for command, expected in steps:
                        self.assertEqual(ctl(*g, *command).returncode, 0)
                        got = w.lines(1.5)
                        self.assertEqual(len(got), 1, (command, got))
                        self.assertRegex(got[0], "^" + STAMP + " " + expected + "$")
                finally:
                    code, err = w.stop()
                self.assertEqual(code, 0, err)
                self.assertNotIn(b"\x1b", w.raw)
                self.assertEqual(err, "")

    def test_quiet_while_nothing_changes_and_a_change_within_a_second(self):
        # Redraws come from etcd's watch: nothing is printed while the semaphore stays as it is,
        # and a change is printed at once (not at the next tick of some timer).
        g = ["-group", unique("quiet")]
        ctl(*g, "status")
        w = Watcher(*g)
        try:
            self.assertEqual(len(w.lines(2)), 1)
            self.assertEqual(w.lines(3.5), [], "printed something though nothing changed")
            # A change by a client that is not locksmithctl: etcd's own API.
            key = harness.group_key(g[1])
            etcd.put("v2", key, '{"semaphore":0,"max":1,"holders":["direct"]}')
            started = time.monotonic()
            line, before = w.line_matching(r"took: direct", timeout=5)
            self.assertLess(time.monotonic() - started, 1.0)
            self.assertEqual(before, [])
            self.assertEqual(w.lines(2.5), [])
        finally:
            code, _ = w.stop(signal.SIGTERM)
        self.assertEqual(code, 0)

    def test_corrupt_semaphore_is_shown_never_written(self):
        g = ["-group", unique("corrupt")]
        ctl(*g, "status")
        key = harness.group_key(g[1])
        w = Watcher(*g)
        try:
            w.line_matching("state: available 1/1")
            etcd.put("v2", key, "not a semaphore")
            line, _ = w.line_matching(r" error: ", timeout=5)
            self.assertIn(key, line)
            self.assertEqual(w.lines(2), [])
            self.assertEqual(etcd.get("v2", key), "not a semaphore")
            etcd.put("v2", key, '{"semaphore":1,"max":1,"holders":null}')
            w.line_matching(r" readable: \(available 1/1\)$", timeout=5)
        finally:
            code, _ = w.stop()
        self.assertEqual(code, 0)
        self.assertEqual(etcd.get("v2", key), '{"semaphore":1,"max":1,"holders":null}')

    def test_all_groups(self):
        a, b = unique("all-a"), unique("all-b")
        ctl("-group", a, "status")
        ctl("-group", b, "status")
        w = Watcher("--all-groups")
        try:
            states = w.line_matching("group=%s state: available 1/1" % re.escape(b))[1]
            self.assertTrue(any(("group=%s state: available 1/1" % a) in s for s in states), states)
            self.assertEqual(ctl("-group", a, "lock", "x").returncode, 0)
            w.line_matching(r"^%s group=%s took: x \(available 0/1\)$" % (STAMP, re.escape(a)), timeout=2)
            self.assertEqual(ctl("-group", b, "set-max", "2").returncode, 0)
            w.line_matching(r"group=%s max: 1 -> 2" % re.escape(b), timeout=2)
            # A group made after the start shows up with the next change of a watched one.
            c = unique("all-c")
            ctl("-group", c, "status")
            ctl("-group", a, "unlock", "x")
            w.line_matching(r"group=%s state: available 1/1" % re.escape(c), timeout=3)
        finally:
            code, _ = w.stop()
        self.assertEqual(code, 0)


class Errors(unittest.TestCase):
    def test_watch_with_json_is_a_usage_error(self):
        r = ctl("status", "--watch", "--json")
        self.assertEqual(r.returncode, 2)
        self.assertEqual(r.stdout, "")
        self.assertIn("status --watch cannot be combined with --json", r.stderr)
        self.assertIn("Run 'locksmithctl help status' for usage.", r.stderr)

    def test_unreachable_at_start_says_what_status_says(self):
        dead = "http://127.0.0.1:%d" % harness.free_port()
        plain = ctl("status", endpoint=dead)
        watch = ctl("status", "--watch", endpoint=dead)
        self.assertEqual(plain.returncode, 1)
        self.assertEqual((watch.returncode, watch.stdout, watch.stderr), (1, "", plain.stderr))
        self.assertIn("Error initializing etcd client", watch.stderr)

    def test_etcd_lost_and_back_during_the_watch(self):
        own = harness.Etcd()
        port = own.port
        g = ["-group", unique("lost")]
        try:
            ctl(*g, "status", endpoint=own.endpoint)
            w = Watcher(*g, endpoint=own.endpoint)
            w.line_matching("state: available 1/1")
            own.stop()
            line, _ = w.line_matching(r" etcd lost: .*nothing accepts connections there", timeout=5)
            self.assertIsNone(w.proc.poll())
            own = harness.Etcd(port=port)
            # A fresh etcd (empty): the watch reads again, says so, and shows the new state.
            line, _ = w.line_matching(r" etcd reachable again after \d+s; state: ", timeout=30)
            ctl(*g, "lock", "after", endpoint=own.endpoint)
            w.line_matching(r"took: after \(available 0/1\)", timeout=3)
            code, _ = w.stop()
            self.assertEqual(code, 0)
        finally:
            own.stop()


class Help(unittest.TestCase):
    def test_help_completions_and_manual_name_watch(self):
        self.assertIn("--watch", ctl("help", "status").stdout)
        self.assertIn("locksmithctl status --watch", ctl("help", "status").stdout)
        for shell in ("bash", "zsh", "fish"):
            self.assertIn("watch", ctl("completion", shell).stdout)
        bash = ctl("completion", "bash").stdout
        self.assertIn("--watch", bash)
        self.assertEqual(subprocess.run(["bash", "-n"], input=bash, text=True).returncode, 0)
        self.assertIn("\\-\\-watch", ctl("man").stdout)


def tmux_available():
    return shutil.which("tmux") is not None


@unittest.skipUnless(tmux_available(), "tmux is not installed")
class Terminal(unittest.TestCase):
    """The full-screen view, in a real terminal: a tmux pane, read back with capture-pane."""

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="locksmith-test-watch-")
        self.socket = os.path.join(self.dir, "tmux")
        self.done = os.path.join(self.dir, "status")

    def tearDown(self):
        self.tmux("kill-server")
        shutil.rmtree(self.dir, ignore_errors=True)

    def tmux(self, *args):
        return subprocess.run(["tmux", "-S", self.socket, "-f", "/dev/null", *args], capture_output=True, text=True).stdout

    def start(self, *args, endpoint=None, width=120, height=40):
        env = environment(endpoint)
        command = " ".join("%s=%s" % (k, env[k]) for k in ("LOCKSMITH_ROOT", "LOCKSMITHCTL_ENDPOINT", "TZ"))
        self.tmux("new-session", "-d", "-x", str(width), "-y", str(height),
                  "env %s %s %s status --watch; echo $? > %s; sleep 60" % (command, harness.LOCKSMITHCTL, " ".join(args), self.done))

    def screen(self):
        return self.tmux("capture-pane", "-p")

    def wait_screen(self, predicate, timeout=10):
        deadline = time.monotonic() + timeout * harness.SLACK
        while True:
            s = self.screen()
            if predicate(s):
                return s
            if time.monotonic() > deadline:
                self.fail("the screen never showed what was expected:\n" + s)
            time.sleep(0.1)

    def test_fleet_rollout_on_screen(self):
        # A fleet of 3 real daemons with one slot: each takes the slot in turn, the others wait
        # in the queue; the view shows holders come and go, the queue and the changes.
        self.start()
        self.wait_screen(lambda s: "LAST CHANGES" in s and "Available:" in s)
        sim = subprocess.Popen([SIM, "--nodes", "3", "--max", "1", "--reboot-time", "2", "--quiet", "--endpoint", etcd.endpoint],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               env=dict(os.environ, TMPDIR=self.dir))
        screens = []
        while sim.poll() is None:
            screens.append(self.screen())
            time.sleep(0.15)
        output = sim.stdout.read()
        sim.stdout.close()
        self.assertEqual(sim.returncode, 0, output)
        time.sleep(1)
        final = self.screen()
        held = [s for s in screens if re.search(r"^  HOLDER +HELD FOR +HOST$", s, re.M)]
        self.assertTrue(held, "no screen showed a holder")
        for node in NODE_IDS:
            self.assertTrue(any(re.search(r"^  %s +\d+s +\S+$" % node, s, re.M) for s in held), "%s never shown holding:\n%s" % (node, "\n".join(held)))
            self.assertIn(node + " took a slot", final)
            self.assertIn(node + " gave back a slot", final)
        self.assertTrue(any(re.search(r"Available: 0/1 .*Waiting: [12]", s) and re.search(r"^  1 +[0-9a-f]{32} +\d+s", s, re.M)
                            for s in screens), "the queue was never shown")
        self.assertRegex(final, r"Available: 1/1 +Max: 1 +Holders: 0 +Waiting: 0")
        self.assertNotIn("HOLDER", final)
        # The changes are in order, newest first, each with its time.
        changes = final.split("LAST CHANGES\n", 1)[1]
        self.assertRegex(changes, r"^  \d\d:\d\d:\d\d  ")
        self.assertLess(changes.index(NODE_IDS[0] + " gave back") if NODE_IDS[0] + " gave back" in changes else 0,
                        changes.index(NODE_IDS[0] + " took a slot"))
        # Ctrl-C: exits 0 and gives the terminal back.
        self.tmux("send-keys", "C-c")
        harness.wait_for(lambda: os.path.exists(self.done) and harness.read(self.done).strip() != "", timeout=5)
        self.assertEqual(harness.read(self.done).strip(), "0")

    def test_fits_the_window_and_follows_its_size(self):
        g = unique("size")
        ctl("-group", g, "status")
        self.start("-group", g, width=120, height=30)
        header = self.wait_screen(lambda s: "LAST CHANGES" in s).splitlines()[0]
        self.assertRegex(header, r"^locksmithctl status --watch: group %s, etcd v\d at http://127\.0\.0\.1:\d+$" % re.escape(g))
        # One change at a time, each waited for on screen: on a busy machine, changes made faster
        # than the view takes them in were shown folded ("max 10 -> 12"), one line short.
        for i in range(12):
            ctl("-group", g, "set-max", str(i + 2))
            self.wait_screen(lambda s: "max %d -> %d" % (i + 1, i + 2) in s)
        self.tmux("resize-window", "-x", "40", "-y", "10")
        small = self.wait_screen(lambda s: len(s.splitlines()) <= 10 and "max 12 -> 13" in s, timeout=3)
        self.assertTrue(all(len(line) <= 40 for line in small.splitlines()), small)
        self.assertEqual(small.splitlines()[0], header[:40])
        self.tmux("resize-window", "-x", "150", "-y", "40")
        # Room again for every change (13 set-max changes since the start), once it is redrawn.
        big = self.wait_screen(lambda s: s.splitlines()[0] == header and len(re.findall(r"max \d+ -> \d+", s)) == 12, timeout=3)
        self.assertEqual(len(re.findall(r"max \d+ -> \d+", big)), 12)


class RawTerminal(unittest.TestCase):
    """The bytes written to a pseudo-terminal: the alternate screen and hidden cursor, both
    restored on SIGINT and SIGTERM, and exit status 0."""

    def run_in_pty(self, sig):
        g = unique("pty")
        ctl("-group", g, "status")
        master, slave = pty.openpty()
        p = subprocess.Popen([harness.LOCKSMITHCTL, "-group", g, "status", "--watch"], env=environment(),
                             stdin=slave, stdout=slave, stderr=slave, start_new_session=True)
        os.close(slave)
        out = b""
        deadline = time.monotonic() + 10
        while b"LAST CHANGES" not in out and time.monotonic() < deadline:
            if select.select([master], [], [], 0.2)[0]:
                out += os.read(master, 65536)
        ctl("-group", g, "lock", "seen-in-pty")
        while b"seen-in-pty took a slot" not in out and time.monotonic() < deadline:
            if select.select([master], [], [], 0.2)[0]:
                out += os.read(master, 65536)
        p.send_signal(sig)
        code = p.wait(10)
        try:
            while select.select([master], [], [], 0.2)[0]:
                out += os.read(master, 65536)
        except OSError:
            pass
        os.close(master)
        return code, out

    def test_sigint_and_sigterm_restore_the_terminal(self):
        for sig in (signal.SIGINT, signal.SIGTERM):
            with self.subTest(signal=sig):
                code, out = self.run_in_pty(sig)
                self.assertEqual(code, 0)
                self.assertTrue(out.startswith(b"\x1b[?1049h\x1b[?25l"), out[:40])
                self.assertIn(b"seen-in-pty took a slot", out)
                self.assertTrue(out.endswith(b"\x1b[?25h\x1b[?1049l"), out[-40:])


if __name__ == "__main__":
    unittest.main()
