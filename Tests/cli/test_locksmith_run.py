"""locksmith-run (Sources/locksmith-run/locksmith-run.c, a C program on the installed-style library) against a real
etcd: runs never overlap beyond max, the slot is given back whatever way the command ends, signals
reach the command, and the timeout, exit codes and errors are the documented ones. Hygiene (security
issue 12): the password is hidden from the process list, the command inherits no descriptor beyond
0-2, and the default holder id is not the daemon's (the machine id). Issue 13: settings follow the
library's one rule (flag, LOCKSMITHCTL_*, the daemon's LOCKSMITHD_* from update.conf), and a
waiting run holds one watch (no polling) that a signal cancels at once."""
import base64
import itertools
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import unittest
import urllib.parse

import harness

RUN = os.environ.get("LOCKSMITH_RUN", os.path.join(harness.ROOT, "build", "tools", "locksmith-run"))
LIBDIR = os.path.join(harness.ROOT, "build", "lib")
MACHINE_ID = "fedcba9876543210fedcba9876543210"
_counter = itertools.count()
etcd = None
ROOT = tempfile.mkdtemp(prefix="locksmith-test-root-")
_roots = []  # more machine roots, made by node_root()


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


def stop_if_running(p):
    """Stops a run left going (and its command: the whole process group)."""
    if p.poll() is None:
        os.killpg(p.pid, signal.SIGKILL)
        p.communicate()


def tearDownModule():
    # A failed test may leave a run going.
    for p in _started:
        stop_if_running(p)
    etcd.stop()
    for root in [ROOT] + _roots:
        shutil.rmtree(root, ignore_errors=True)


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


class Queue(unittest.TestCase):
    def test_runs_take_their_turns_in_the_order_they_started_and_say_their_place(self):
        for api in ("v2", "v3"):
            with self.subTest(api=api):
                group = unique("queue")
                etcd.put(api, harness.group_key(group), '{"semaphore":0,"max":1,"holders":["blocker"]}')
                log = tempfile.mktemp(prefix="locksmith-test-run-")
                procs = []
                for n in range(4):
                    procs.append(start("--group", group, "--etcd-api", api, "--id", "job%d" % n, "--",
                                       "sh", "-c", "echo $0 >> %s" % log, "job%d" % n))
                    # The next run starts once this one is in the queue: a known order.
                    self.assertTrue(wait_for(lambda: len(json.loads(ctl(group, "-etcd-api", api, "status", "--json").stdout)["queue"]) == n + 1),
                                    ctl(group, "-etcd-api", api, "status", "--queue").stdout)
                status = ctl(group, "-etcd-api", api, "status", "--queue").stdout.splitlines()
                self.assertEqual(status[:3], ["Available: 0", "Max: 1", ""])
                self.assertEqual(status[3].split(), ["IN", "LINE", "MACHINE", "ID", "WAITED", "SINCE", "HOST"])
                self.assertEqual([line.split()[:2] for line in status[4:]], [["1", "job0"], ["2", "job1"], ["3", "job2"], ["4", "job3"]])
                etcd.put(api, harness.group_key(group), '{"semaphore":1,"max":1,"holders":null}')
                errs = []
                for p in procs:
                    out, err = p.communicate(timeout=60)
                    self.assertEqual(p.returncode, 0, err)
                    errs.append(err)
                with open(log) as f:
                    self.assertEqual(f.read().split(), ["job0", "job1", "job2", "job3"])
                os.unlink(log)
                self.assertIn("locksmith-run: waiting for a slot: 3rd in line\n", errs[2])
                # (2nd may pass unseen: the jobs ahead are quick.)
                self.assertIn("locksmith-run: waiting for a slot: first in line\n", errs[2])
                self.assertEqual(etcd.holders(api, harness.group_key(group)), [])
                self.assertEqual(json.loads(ctl(group, "-etcd-api", api, "status", "--json").stdout)["queue"], [])


    def plant(self, api, group, value, ttl=None):
        """Puts a queue entry as someone with write access could: no lease or TTL unless `ttl`."""
        prefix = harness.group_key(group) + ".queue"
        if api == "v2":
            form = {"value": value}
            if ttl:
                form["ttl"] = str(ttl)
            etcd._request("POST", "/v2/keys/" + urllib.parse.quote(prefix), urllib.parse.urlencode(form).encode())
            return
        b64 = lambda text: base64.b64encode(text.encode()).decode()
        body = {"key": b64("%s/%016x" % (prefix, next(_counter) + 1)), "value": b64(value)}
        if ttl:
            status, answer = etcd.call("POST", "/v3/lease/grant", {"TTL": ttl})
            body["lease"] = json.loads(answer)["ID"]
        status, answer = etcd.call("POST", "/v3/kv/put", body)
        self.assertEqual(status, 200, answer)

    def test_entries_that_cannot_expire_or_be_read_are_skipped_and_shown(self):
        # Security issue 26, item 5: an entry without a lease (TTL) never goes, and one whose value
        # is not an entry cannot be a waiter's; before, both held up every waiter for ever.
        for api in ("v2", "v3"):
            with self.subTest(api=api):
                group = unique("planted")
                set_max(api, group, 1)
                since = int(time.time()) - 100
                self.plant(api, group, '{"id":"planted","since":%d,"host":"elsewhere"}' % since)
                self.plant(api, group, "not an entry {", ttl=600)
                t = time.monotonic()
                code, out, err = run("--group", group, "--etcd-api", api, "--id", "me", "--timeout", "20s", "--", "echo", "ran")
                self.assertEqual((code, out), (0, "ran\n"), err)
                self.assertLess(time.monotonic() - t, 5)
                self.assertEqual(etcd.holders(api, harness.group_key(group)), [])
                # A second run behind a real waiter: still in the order they joined.
                etcd.put(api, harness.group_key(group), '{"semaphore":0,"max":1,"holders":["other"]}')
                first = start("--group", group, "--etcd-api", api, "--id", "first", "--", "echo", "first")
                self.addCleanup(stop_if_running, first)
                self.assertTrue(wait_for(lambda: len(json.loads(ctl(group, "-etcd-api", api, "status", "--json").stdout)["queue"]) == 1))
                lines = ctl(group, "-etcd-api", api, "status", "--queue").stdout.splitlines()
                self.assertEqual(lines[3].split(), ["IN", "LINE", "MACHINE", "ID", "WAITED", "SINCE", "HOST"])
                never = "(no lease: ignored by waiters)" if api == "v3" else "(no TTL, or one over 1h: ignored by waiters)"
                self.assertRegex(lines[4], r"^- +planted +1m4[0-9]s +.* elsewhere +%s$" % re.escape(never))
                self.assertRegex(lines[5], r"^- +\? +- +- +- +\(unreadable entry %s[0-9]+: ignored by waiters\)$"
                                 % re.escape(harness.group_key(group) + ".queue/"))
                self.assertRegex(lines[6], r"^1 +first ")
                self.assertEqual(len(lines), 7)
                status = json.loads(ctl(group, "-etcd-api", api, "status", "--json").stdout)
                self.assertEqual([w["id"] for w in status["queue"]], ["first"])
                ignored = status["queue_ignored"]
                self.assertEqual([(e["id"], e["since"], e["host"], e["reason"]) for e in ignored],
                                 [("planted", since, "elsewhere", "no-lease" if api == "v3" else "no-ttl"), (None, None, None, "unreadable")])
                self.assertTrue(all(e["key"].startswith(harness.group_key(group) + ".queue/") for e in ignored))
                etcd.put(api, harness.group_key(group), '{"semaphore":1,"max":1,"holders":null}')
                out, err = first.communicate(timeout=30)
                self.assertEqual((first.returncode, out), (0, "first\n"), err)


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
        self.assertIn("no free slot within the timeout of 1.5s", err)
        self.assertNotIn("()", err)  # issue 25: it said "(...)" with nothing in it
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


def node_root(conf, mode=0o644):
    """A machine root of its own (LOCKSMITH_ROOT) whose etc/coreos/update.conf is conf."""
    root = tempfile.mkdtemp(prefix="locksmith-test-run-root-")
    _roots.append(root)
    harness.make_root(root, MACHINE_ID, conf)
    os.chmod(root + "/etc/coreos/update.conf", mode)
    return root


class Settings(unittest.TestCase):
    """Each setting from its flag, else LOCKSMITHCTL_<OPTION>, else the daemon's LOCKSMITHD_<OPTION>
    from update.conf (under LOCKSMITH_ROOT), as locksmithctl takes them."""

    def run_holding(self, *args, env):
        """Starts a run that holds its slot (as "x") until it is stopped; returns it once it holds."""
        p = start(*args, "--id", "x", "--", "sh", "-c", "echo held; exec sleep 30", env=env)
        if p.stdout.readline().strip() != "held":
            p.kill()
            _, err = p.communicate()
            self.fail("the run did not take a slot (exit %s): %s" % (p.returncode, err))
        return p

    def stop(self, p):
        p.send_signal(signal.SIGTERM)
        out, err = p.communicate(timeout=10)
        return err

    def test_daemon_settings_from_update_conf(self):
        daemon_group, own_group, flag_group = unique("conf"), unique("ctl"), unique("flag")
        # LOCKSMITHD_ENDPOINT names a port nobody serves: LOCKSMITHCTL_ENDPOINT (set by
        # environment()) wins over it, as it must.
        root = node_root('LOCKSMITHD_GROUP="%s"\nLOCKSMITHD_ENDPOINT=http://127.0.0.1:9\n' % daemon_group)
        cases = [({"LOCKSMITH_ROOT": root}, [], daemon_group),                                   # the daemon's
                 ({"LOCKSMITH_ROOT": root, "LOCKSMITHCTL_GROUP": own_group}, [], own_group),     # the variable
                 ({"LOCKSMITH_ROOT": root, "LOCKSMITHCTL_GROUP": own_group}, ["--group", flag_group], flag_group),
                 ({"LOCKSMITH_ROOT": root}, ["-group=" + flag_group], flag_group)]               # the flag
        for env, args, expected in cases:
            with self.subTest(env=env, args=args):
                p = self.run_holding(*args, env=env)
                try:
                    for group in (daemon_group, own_group, flag_group):
                        self.assertEqual(etcd.holders("v3", harness.group_key(group)), ["x"] if group == expected else [],
                                         group)
                finally:
                    err = self.stop(p)
                self.assertEqual(err, "")
                self.assertEqual(etcd.holders("v3", harness.group_key(expected)), [])

    def test_daemon_endpoint_and_api_from_update_conf(self):
        # Nothing but update.conf says where etcd is and which API to speak.
        group = unique("conf-v2")
        root = node_root('LOCKSMITHD_ENDPOINT=%s\nLOCKSMITHD_ETCD_API=v2\nLOCKSMITHD_GROUP=%s\n' % (etcd.endpoint, group))
        p = self.run_holding(env={"LOCKSMITH_ROOT": root, "LOCKSMITHCTL_ENDPOINT": "", "LOCKSMITHCTL_ETCD_API": ""})
        try:
            self.assertEqual(etcd.holders("v2", harness.group_key(group)), ["x"])
            self.assertEqual(etcd.holders("v3", harness.group_key(group)), [])
        finally:
            self.stop(p)
        self.assertEqual(etcd.holders("v2", harness.group_key(group)), [])

    def test_first_endpoint_flag_replaces_the_variables(self):
        # Flags are set before the variables are read, so LOCKSMITHCTL_ENDPOINT and the daemon's
        # endpoint (both an address that accepts and never answers) are never tried.
        silent = socket.socket()
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        self.addCleanup(silent.close)
        nowhere = "http://127.0.0.1:%d" % silent.getsockname()[1]
        root = node_root("LOCKSMITHD_ENDPOINT=%s\n" % nowhere)
        t = time.monotonic()
        code, out, err = run("--endpoint", etcd.endpoint, "--request-timeout", "3s", "--group", unique("endpoint"),
                             "--id", "x", "--", "echo", "ran", env={"LOCKSMITH_ROOT": root, "LOCKSMITHCTL_ENDPOINT": nowhere})
        self.assertEqual((code, out), (0, "ran\n"), err)
        self.assertLess(time.monotonic() - t, 2.5)

    def test_bad_values_name_their_variable(self):
        root = node_root("LOCKSMITHD_ETCD_API=v9\n")
        for env, text in (({"LOCKSMITHCTL_ETCD_API": "v9"}, "LOCKSMITHCTL_ETCD_API"),
                          ({"LOCKSMITHCTL_TIMEOUT": "soon"}, "LOCKSMITHCTL_TIMEOUT"),
                          ({"LOCKSMITH_ROOT": root, "LOCKSMITHCTL_ETCD_API": ""},
                           "LOCKSMITHD_ETCD_API: etcd-api: \"v9\" is not one of v2, v3, auto (from %s/etc/coreos/update.conf)" % root)):
            with self.subTest(env=env):
                group = unique("bad")
                code, out, err = run("--group", group, "--id", "x", "--", "echo", "ran", env=env)
                self.assertEqual((code, out), (1, ""), err)
                self.assertIn("locksmith-run: bad setting: " + text, err)
                self.assertIsNone(etcd.get("v3", harness.group_key(group)))
        # A flag sets the option first, so the bad value is never read.
        code, out, err = run("--etcd-api", "v3", "--group", unique("bad"), "--id", "x", "--", "echo", "ran",
                             env={"LOCKSMITH_ROOT": root, "LOCKSMITHCTL_ETCD_API": ""})
        self.assertEqual((code, out), (0, "ran\n"), err)

    def test_warnings_are_shown(self):
        # A password in an update.conf every user can read (the test etcd has no authentication,
        # and without a user name the password is never sent).
        root = node_root("LOCKSMITHD_ETCD_PASSWORD=secret-in-conf\n", mode=0o644)
        code, out, err = run("--group", unique("warn"), "--id", "x", "--", "echo", "ran", env={"LOCKSMITH_ROOT": root})
        self.assertEqual((code, out), (0, "ran\n"), err)
        self.assertIn("locksmith-run: warning: LOCKSMITHD_ETCD_PASSWORD is set in %s/etc/coreos/update.conf" % root, err)
        self.assertNotIn("secret-in-conf", err)
        secret = os.path.join(root, "password")
        with open(secret, "w") as f:
            f.write("pw\n")
        os.chmod(secret, 0o644)
        code, out, err = run("--group", unique("warn"), "--etcd-password-file", secret, "--id", "x", "--", "echo", "ran")
        self.assertEqual((code, out), (0, "ran\n"), err)
        self.assertIn("locksmith-run: warning: etcd-password-file: %s can be read by every user" % secret, err)

    def sent_password(self, args, env):
        """The password a run with args and env sends for user u: seen in the basic auth of its v2
        requests, through a stand-in proxy (the test etcd has no authentication and ignores it)."""
        proxy = harness.CountingProxy()
        self.addCleanup(proxy.stop)
        endpoint = "http://etcd.invalid:%d" % urllib.parse.urlsplit(etcd.endpoint).port
        code, out, err = run("--endpoint", endpoint, "--etcd-api", "v2", "--etcd-username", "u", *args,
                             "--group", unique("password"), "--id", "x", "--", "echo", "ran",
                             env=dict(env, LOCKSMITHCTL_PROXY=proxy.url))
        self.assertEqual((code, out), (0, "ran\n"), err)
        sent = {base64.b64decode(line.split()[-1]).decode() for _, _, headers in proxy.requests for line in headers
                if line.lower().startswith("authorization: basic ")}
        self.assertEqual(len(sent), 1, proxy.requests)
        return sent.pop()

    def password_files(self):
        files = []
        for name in ("conf", "flag"):
            path = os.path.join(ROOT, "pw-" + name)
            with open(path, "w") as f:
                f.write("from-%s-file\n" % name)
            os.chmod(path, 0o600)
            files.append(path)
        return files

    def test_password_flags_win_over_variables(self):
        # etcd-password and etcd-password-file are one setting: a variable for the other one
        # must not replace the password a flag gave.
        conf_file, flag_file = self.password_files()
        root = node_root("LOCKSMITHD_ETCD_PASSWORD_FILE=%s\n" % conf_file)
        for args, env, expected in ((["--etcd-password-file", flag_file], {"LOCKSMITHCTL_ETCD_PASSWORD": "from-variable"}, "from-flag-file"),
                                    (["--etcd-password", "from-flag"], {"LOCKSMITH_ROOT": root}, "from-flag"),
                                    (["--etcd-password", "from-flag", "--etcd-password-file", flag_file], {}, "from-flag-file"),
                                    (["--etcd-password-file", flag_file, "--etcd-password", "from-flag"], {}, "from-flag"),
                                    ([], {"LOCKSMITH_ROOT": root}, "from-conf-file")):
            with self.subTest(args=args, env=env):
                self.assertEqual(self.sent_password(args, env), "u:" + expected)

    def test_password_variable_wins_over_the_daemons_password_file(self):
        # etcd-password and etcd-password-file are one setting (locksmith_client_load_settings):
        # the daemon's LOCKSMITHD_ETCD_PASSWORD_FILE must not replace the password that
        # LOCKSMITHCTL_ETCD_PASSWORD, a higher source, gave.
        conf_file, _ = self.password_files()
        root = node_root("LOCKSMITHD_ETCD_PASSWORD_FILE=%s\n" % conf_file)
        self.assertEqual(self.sent_password([], {"LOCKSMITH_ROOT": root, "LOCKSMITHCTL_ETCD_PASSWORD": "from-variable"}),
                         "u:from-variable")


class Waiting(unittest.TestCase):
    """A run waiting for a slot holds one watch: no polling (it asked twice a second, in 1 s
    slices), and a signal cancels the wait at once, whatever --timeout says."""

    def test_signal_ends_a_long_wait_at_once(self):
        for api in ("v2", "v3"):
            for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
                with self.subTest(api=api, signal=sig.name):
                    group = unique("cancel")
                    etcd.put(api, harness.group_key(group), '{"semaphore":0,"max":1,"holders":["other"]}')
                    waiter = start("--group", group, "--etcd-api", api, "--id", "me", "--timeout", "10m", "--", "echo", "ran")
                    self.addCleanup(stop_if_running, waiter)
                    time.sleep(1.3)  # well inside the wait, past any 1 s slice
                    self.assertIsNone(waiter.poll())
                    t = time.monotonic()
                    waiter.send_signal(sig)
                    out, err = waiter.communicate(timeout=10)
                    self.assertLess(time.monotonic() - t, 1.5)
                    self.assertEqual(waiter.returncode, 128 + sig, err)
                    self.assertEqual(out, "")
                    self.assertEqual(etcd.holders(api, harness.group_key(group)), ["other"])

    def test_a_waiting_run_does_not_poll(self):
        for api in ("v2", "v3"):
            with self.subTest(api=api):
                # The proxy sees every request; loopback is never proxied, so etcd is named by a
                # host name that only the proxy resolves (to this machine).
                proxy = harness.CountingProxy()
                self.addCleanup(proxy.stop)
                group = unique("count")
                etcd.put(api, harness.group_key(group), '{"semaphore":0,"max":1,"holders":["other"]}')
                endpoint = "http://etcd.invalid:%d" % urllib.parse.urlsplit(etcd.endpoint).port
                waiter = start("--endpoint", endpoint, "--group", group, "--etcd-api", api, "--id", "me", "--", "echo", "ran",
                               env={"LOCKSMITHCTL_PROXY": proxy.url})
                self.addCleanup(stop_if_running, waiter)
                self.assertTrue(wait_for(lambda: proxy.count() >= 2), proxy.count())  # the lock, then the watch
                time.sleep(0.5)
                before = proxy.count()
                time.sleep(5)
                during = [(method, path) for method, path, _ in proxy.requests[before:proxy.count()]]
                # Before: 10 requests in 5 s (a read and a watch every second). Now none.
                self.assertLessEqual(len(during), 1, during)
                self.assertIsNone(waiter.poll())
                # The watch is live: a freed slot is taken through it at once.
                etcd.put(api, harness.group_key(group), '{"semaphore":1,"max":1,"holders":null}')
                out, err = waiter.communicate(timeout=10)
                self.assertEqual((waiter.returncode, out), (0, "ran\n"), err)
                self.assertEqual(etcd.holders(api, harness.group_key(group)), [])


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
                    # What the command inherited, once the shell has become sleep (the shell's own
                    # files, such as a locale it reads, are not inherited ones).
                    def became_sleep():
                        with open("/proc/%d/comm" % pid) as f:
                            return f.read().strip() == "sleep"
                    self.assertTrue(harness.wait_for(became_sleep, timeout=5))
                    # sleep itself may open and close a file (its locale) just after the exec: an
                    # inherited descriptor stays, a passing one goes.
                    def descriptors():
                        found = []
                        for fd in sorted(int(fd) for fd in os.listdir("/proc/%d/fd" % pid)):
                            try:
                                found.append((fd, os.readlink("/proc/%d/fd/%d" % (pid, fd))))
                            except FileNotFoundError:
                                pass
                        return found
                    harness.wait_for(lambda: [fd for fd, _ in descriptors()] == [0, 1, 2], timeout=3)
                    fds = descriptors()
                    self.assertEqual([fd for fd, _ in fds], [0, 1, 2], fds)
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

    def test_the_machine_id_as_id_is_warned_about(self):
        # Issue 25: locksmithd gives the machine id's slot back at every start.
        group = unique("machine-id")
        code, out, err = run("--group", group, "--id", MACHINE_ID, "--timeout", "3s", "--", "sh", "-c", "echo ran")
        self.assertEqual((code, out), (0, "ran\n"), err)
        self.assertIn("warning: --id %s is this machine's id: locksmithd gives that slot back whenever it starts" % MACHINE_ID, err)
        self.assertIn("the default id, %s/locksmith-run, is the job's own" % MACHINE_ID, err)
        code, out, err = run("--group", group, "--id", "job-7", "--timeout", "3s", "--", "sh", "-c", "echo ran")
        self.assertEqual((code, out), (0, "ran\n"), err)
        self.assertNotIn("warning", err)

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
