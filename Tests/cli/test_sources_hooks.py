"""locksmithd's reboot sources (sentinel file, command), hooks (pre-lock, pre-reboot, post-reboot)
and metrics file, end to end: real daemons against a real etcd and a private D-Bus, as in
test_locksmithd (whose stand-ins and nodes these tests use)."""
import os
import time
import unittest

import harness
import test_locksmithd as d

wait_for, read = harness.wait_for, harness.read


def setUpModule():
    d.setUpModule()


def tearDownModule():
    d.tearDownModule()


def write_hook(node, phase, name, body, mode=0o755):
    """An executable shell script in the node's /etc/locksmith/PHASE.d."""
    directory = "%s/etc/locksmith/%s.d" % (node.root, phase)
    os.makedirs(directory, exist_ok=True)
    path = directory + "/" + name
    with open(path + ".new", "w") as f:
        f.write("#!/bin/sh\n" + body + "\n")
    os.chmod(path + ".new", mode)
    os.rename(path + ".new", path)
    return path


def metrics(node):
    """The metrics file as {sample: value}."""
    samples = {}
    for line in read(node.root + "/run/locksmith/metrics.prom").splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            samples[name] = value
    return samples


class Sources(d.DaemonTest):
    def test_sentinel_created_after_start(self):
        logind = self.service(d.Logind())
        n = self.node(d.group(), strategy="reboot", env={"LOCKSMITHD_REBOOT_SOURCE": "file"}).start()
        self.assertTrue(wait_for(lambda: n.saw("STATUS=waiting for an update")), n.output())
        time.sleep(1.5)
        self.assertEqual(logind.calls(), [])
        with open(n.root + "/run/reboot-required", "w") as f:
            f.write("*** System restart required ***\n")
        self.assertTrue(wait_for(lambda: logind.calls()), n.output())
        self.assertIn("a reboot is needed (%s/run/reboot-required exists)" % n.root, n.output())
        self.assertEqual(n.stop(), 0)

    def test_other_files_beside_the_sentinel_leave_the_daemon_idle(self):
        # Files come and go in /run all the time: each is one wake-up, not a busy loop (the
        # watch was once removed and added at each event, and each removal is an event itself).
        logind = self.service(d.Logind())
        n = self.node(d.group(), strategy="reboot", env={"LOCKSMITHD_REBOOT_SOURCE": "file"}).start()
        self.assertTrue(wait_for(lambda: n.saw("STATUS=waiting for an update")), n.output())
        for i in range(3):
            with open(n.root + "/run/other-%d" % i, "w") as f:
                f.write("x")
            os.unlink(n.root + "/run/other-%d" % i)

        def cpu_seconds():
            with open("/proc/%d/stat" % n.proc.pid) as f:
                fields = f.read().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        time.sleep(0.5)
        before, started = cpu_seconds(), time.monotonic()
        time.sleep(2)
        used = cpu_seconds() - before
        self.assertLess(used, 0.2 * (time.monotonic() - started), "the daemon used %.2f s of CPU in 2 s while idle" % used)
        with open(n.root + "/run/reboot-required", "w") as f:
            f.write("*** System restart required ***\n")
        self.assertTrue(wait_for(lambda: logind.calls()), n.output())

    def test_auto_uses_the_sentinel_without_an_update_engine(self):
        logind = self.service(d.Logind())
        n = self.node(d.group(), strategy="reboot").start()
        self.assertTrue(wait_for(lambda: "waiting for it, and for %s/run/reboot-required" % n.root in n.output()), n.output())
        self.assertNotIn("warning: the update engine", n.output())
        open(n.root + "/run/reboot-required", "w").close()
        self.assertTrue(wait_for(lambda: logind.calls()), n.output())
        self.assertEqual(n.stop(), 0)

    def test_update_engine_only_ignores_the_sentinel(self):
        logind = self.service(d.Logind())
        n = self.node(d.group(), strategy="reboot", env={"LOCKSMITHD_REBOOT_SOURCE": "update-engine"}).start()
        self.assertTrue(wait_for(lambda: "is not on the system bus; waiting for it" in n.output()), n.output())
        open(n.root + "/run/reboot-required", "w").close()
        time.sleep(1.5)
        self.assertEqual(logind.calls(), [])
        ue = self.service(d.UpdateEngine(d.NEED))
        self.assertTrue(wait_for(lambda: logind.calls()), n.output())

    def test_sentinel_whose_directories_come_later(self):
        logind = self.service(d.Logind())
        n = self.node(d.group(), strategy="reboot", env={"LOCKSMITHD_REBOOT_SOURCE": "file:/var/run-later/a/b/needed"}).start()
        self.assertTrue(wait_for(lambda: n.saw("STATUS=waiting for an update")), n.output())
        os.makedirs(n.root + "/var/run-later/a")
        time.sleep(0.3)
        os.makedirs(n.root + "/var/run-later/a/b")
        time.sleep(0.3)
        self.assertEqual(logind.calls(), [])
        open(n.root + "/var/run-later/a/b/needed", "w").close()
        self.assertTrue(wait_for(lambda: logind.calls()), n.output())

    def test_a_sentinel_older_than_the_boot_is_ignored_until_written_again(self):
        logind = self.service(d.Logind())
        n = self.node(d.group(), strategy="reboot", env={"LOCKSMITHD_REBOOT_SOURCE": "file:/var/lib/needed"})
        os.makedirs(n.root + "/var/lib")
        open(n.root + "/var/lib/needed", "w").close()
        os.utime(n.root + "/var/lib/needed", (1000000000, 1000000000))
        n.start()
        self.assertTrue(wait_for(lambda: "is older than this boot: ignoring it" in n.output()), n.output())
        time.sleep(1)
        self.assertEqual(logind.calls(), [])
        os.utime(n.root + "/var/lib/needed")
        self.assertTrue(wait_for(lambda: logind.calls()), n.output())

    def test_command_says_no_then_fails_then_yes(self):
        logind = self.service(d.Logind())
        g = d.group()
        n = self.node(g, strategy="reboot", env={"LOCKSMITHD_REBOOT_CHECK_INTERVAL": "1s"})
        answers = n.root + "/answers"
        with open(answers, "w") as f:
            f.write("0\n2\n1\n")
        script = n.root + "/check"
        with open(script, "w") as f:
            f.write('#!/bin/sh\ncode=$(head -n1 "$1"); sed -i 1d "$1"\necho "check says $code for $LOCKSMITH_ID"\nexit "$code"\n')
        os.chmod(script, 0o755)
        n.env["LOCKSMITHD_REBOOT_SOURCE"] = "command:%s %s" % (script, answers)
        n.start()
        self.assertTrue(wait_for(lambda: "reboot check: check says 0 for %s" % n.id in n.output()), n.output())
        self.assertEqual(logind.calls(), [])
        self.assertTrue(wait_for(lambda: "failed (exit status 2" in n.output()), n.output())
        self.assertEqual(logind.calls(), [])
        self.assertTrue(wait_for(lambda: logind.calls(), timeout=15), n.output())
        self.assertIn("reboot check: check says 1", n.output())
        self.assertIn("a reboot is needed (the reboot check says so)", n.output())

    def test_bad_sources_are_refused_at_start(self):
        for value, why in [("nonsense", "is not a reboot source"), ("file:relative/path", "is not an absolute path"),
                           ("file:/run/../etc/x", "is not an absolute path"), ("command:", "names no command"),
                           ("command:  ", "names no command")]:
            n = self.node(d.group(), strategy="reboot", env={"LOCKSMITHD_REBOOT_SOURCE": value}).start()
            self.assertEqual(n.wait_exit(5), 78, value)
            self.assertIn("LOCKSMITHD_REBOOT_SOURCE=", n.output())
            self.assertIn(why, n.output())
        for variable in ["LOCKSMITHD_REBOOT_CHECK_INTERVAL", "LOCKSMITHD_HOOK_TIMEOUT"]:
            n = self.node(d.group(), strategy="reboot", env={variable: "10ms"}).start()
            self.assertEqual(n.wait_exit(5), 78)
            self.assertIn('%s="10ms" (from the environment) is shorter than 1s' % variable, n.output())


class Hooks(d.DaemonTest):
    def test_pre_lock_blocks_until_it_passes_and_sees_the_cluster(self):
        g = d.group()
        ue = self.service(d.UpdateEngine(d.NEED))
        logind = self.service(d.Logind())
        n = self.node(g, env={"LOCKSMITHD_METRICS_FILE": "/run/locksmith/metrics.prom"})
        env_file = n.root + "/hook-env"
        write_hook(n, "pre-lock", "10-busy", 'env > %s\necho "a job is running"\nexit 1' % env_file)
        n.start()
        self.assertTrue(wait_for(lambda: n.saw("pre-lock hook 10-busy says not now (exit status 1)")), n.drain())
        m = metrics(n)
        self.assertEqual(m['locksmithd_state{state="reboot-planned"}'], "1")
        self.assertEqual(m["locksmithd_reboot_needed"], "1")
        self.assertEqual(m["locksmithd_slot_held"], "0")
        self.assertGreaterEqual(int(m['locksmithd_hook_failures_total{phase="pre-lock"}']), 1)
        self.assertGreater(int(m["locksmithd_last_error_seconds"]), 0)
        self.assertIn("pre-lock/10-busy: a job is running", n.output())
        self.assertEqual(d.holders(g), [])
        self.assertEqual(logind.calls(), [])
        env = dict(line.split("=", 1) for line in read(env_file).splitlines() if "=" in line)
        self.assertEqual(env["LOCKSMITH_PHASE"], "pre-lock")
        self.assertEqual(env["LOCKSMITH_GROUP"], g)
        self.assertEqual(env["LOCKSMITH_ID"], n.id)
        self.assertEqual(env["LOCKSMITHCTL_ENDPOINT"], d.etcd.endpoint)
        self.assertEqual(env["LOCKSMITHCTL_GROUP"], g)
        self.assertNotIn("DBUS_SYSTEM_BUS_ADDRESS", env, "the daemon's own environment is not passed on")
        write_hook(n, "pre-lock", "10-busy", "exit 0")
        self.assertTrue(wait_for(lambda: logind.calls(), timeout=20), n.output())
        self.assertEqual(d.holders(g), [n.id])

    def test_a_hooks_locksmithctl_authenticates_as_the_daemon(self):
        # Issue 25: the hooks' environment came from the settings as shown, so a hook's
        # locksmithctl got LOCKSMITHCTL_ETCD_PASSWORD=(hidden) and was refused. Against an etcd
        # with authentication, with the password given as such and in a file: status works.
        server = harness.Etcd(prefix="locksmith-test-etcd-hook-auth-", enable_v2=False)
        self.services.append(server)
        server.enable_auth("v3", "hook-s3cret")
        self.service(d.UpdateEngine(d.NEED))
        self.service(d.Logind())
        for n_case, credentials in enumerate(({"LOCKSMITHD_ETCD_PASSWORD": "hook-s3cret"}, {"LOCKSMITHD_ETCD_PASSWORD_FILE": "file"})):
            g = d.group()
            env = {"LOCKSMITHD_ENDPOINT": server.endpoint, "LOCKSMITHD_ETCD_USERNAME": "root"}
            n = self.node(g, env=env)
            if "LOCKSMITHD_ETCD_PASSWORD_FILE" in credentials:
                path = n.root + "/etcd-password"
                with open(path, "w") as f:
                    f.write("hook-s3cret\n")
                os.chmod(path, 0o600)
                credentials = {"LOCKSMITHD_ETCD_PASSWORD_FILE": path}
            n.env.update(credentials)
            out = n.root + "/status"
            write_hook(n, "pre-lock", "10-status", "%s status > %s 2>&1 || { env | grep ^LOCKSMITHCTL_ETCD_PASSWORD >> %s; exit 1; }\nexit 1"
                       % (d.LOCKSMITHCTL, out, out))
            n.start()
            self.assertTrue(wait_for(lambda: os.path.exists(out) and "Max:" in read(out) or "pre-lock hook 10-status says not now" in n.output()),
                            n.output())
            self.assertTrue(wait_for(lambda: "Available: 1\nMax: 1" in read(out)), read(out) + n.output())
            if "LOCKSMITHD_ETCD_PASSWORD_FILE" in credentials:
                self.assertNotIn("hook-s3cret", read(out))
            n.stop()

    def test_pre_reboot_failure_gives_the_slot_back(self):
        g = d.group()
        ue = self.service(d.UpdateEngine(d.NEED))
        logind = self.service(d.Logind())
        n = self.node(g)
        write_hook(n, "pre-reboot", "20-drain", "echo cannot drain >&2\nexit 3")
        n.start()
        self.assertTrue(wait_for(lambda: "pre-reboot hook 20-drain failed (exit status 3)" in n.output()), n.output())
        self.assertIn("pre-reboot/20-drain: cannot drain", n.output())
        self.assertTrue(wait_for(lambda: d.holders(g) == []), n.output())
        self.assertEqual(logind.calls(), [])
        write_hook(n, "pre-reboot", "20-drain", "exit 0")
        self.assertTrue(wait_for(lambda: logind.calls(), timeout=20), n.output())
        self.assertEqual(d.holders(g), [n.id])

    def test_the_watchdog_is_pinged_while_a_hook_runs(self):
        # A hook may run for minutes: the unit's watchdog must not kill the daemon meanwhile.
        g = d.group()
        ue = self.service(d.UpdateEngine(d.NEED))
        logind = self.service(d.Logind())
        n = self.node(g, env={"WATCHDOG_USEC": "400000"})
        marker = n.root + "/hook-running"
        write_hook(n, "pre-reboot", "10-slow", "touch %s\nwhile [ -e %s ]; do sleep 0.1; done" % (marker, marker))
        n.start()
        self.assertTrue(wait_for(lambda: os.path.exists(marker)), n.output())
        def pings():
            return sum(1 for m in n.drain() if "WATCHDOG=1" in m)
        before, started = pings(), time.monotonic()
        time.sleep(1.5)
        pinged = pings() - before
        elapsed = time.monotonic() - started
        self.assertEqual(logind.calls(), [])
        # Half of WATCHDOG_USEC is 0.2 s: at least one ping per 0.5 s, however busy the machine.
        self.assertGreaterEqual(pinged, int(elapsed / 0.5), n.messages)
        os.unlink(marker)
        self.assertTrue(wait_for(lambda: logind.calls()), n.output())

    def test_a_hook_that_runs_too_long_is_stopped_with_its_children(self):
        g = d.group()
        ue = self.service(d.UpdateEngine(d.NEED))
        logind = self.service(d.Logind())
        n = self.node(g, env={"LOCKSMITHD_HOOK_TIMEOUT": "1s"})
        pids = n.root + "/pids"
        write_hook(n, "pre-lock", "30-slow", "sleep 60 &\necho $! > %s\nsleep 60" % pids)
        n.start()
        self.assertTrue(wait_for(lambda: "pre-lock hook 30-slow failed: timed out after 1s, stopped" in n.output()), n.output())
        child = int(read(pids).strip())
        self.assertTrue(wait_for(lambda: not os.path.exists("/proc/%d" % child) or " Z " in read("/proc/%d/stat" % child)),
                        "the hook's background child was left running")
        self.assertEqual(d.holders(g), [])
        self.assertEqual(logind.calls(), [])

    def assertRefusedAndNothingRuns(self, change, refusal):
        """A node with the pre-lock hook 40-check (it would leave a file), changed by change(node,
        hook path) before it starts: the daemon logs refusal(node), the hook never runs, no slot
        is taken and nothing reboots."""
        g = d.group()
        ue, logind = d.UpdateEngine(d.NEED), d.Logind()
        n = self.node(g)
        ran = n.root + "/ran"
        change(n, write_hook(n, "pre-lock", "40-check", "touch %s" % ran))
        n.start()
        try:
            self.assertTrue(wait_for(lambda: refusal(n) in n.output()), n.output())
            self.assertFalse(os.path.exists(ran))
            self.assertEqual(d.holders(g), [])
            self.assertEqual(logind.calls(), [])
        finally:
            n.stop()
            ue.stop()
            logind.stop()

    def started_with_a_pre_reboot_hook(self, change):
        """A node needing a reboot, with the pre-reboot hook 50-ok, changed by change(node), started;
        returns it, its group and logind."""
        g = d.group()
        self.service(d.UpdateEngine(d.NEED))
        logind = self.service(d.Logind())
        n = self.node(g)
        write_hook(n, "pre-reboot", "50-ok", "exit 0")
        change(n)
        n.start()
        return n, g, logind

    def test_hooks_others_could_change_are_refused(self):
        for mode, owner, why in [(0o757, 0, "writable by every user"), (0o775, 0, "writable by its group"),
                                 (0o644, 0, "not executable"), (0o755, 65534, "owned by uid 65534, not root")]:
            def change(n, path):
                os.chmod(path, mode)
                os.chown(path, owner, owner)
            self.assertRefusedAndNothingRuns(change, lambda n: "pre-lock hook 40-check refused: %s" % why)
        # A directory others can write to: nothing in it runs.
        n, g, logind = self.started_with_a_pre_reboot_hook(lambda n: os.chmod(n.root + "/etc/locksmith/pre-reboot.d", 0o777))
        self.assertTrue(wait_for(lambda: "pre-reboot hook %s/etc/locksmith/pre-reboot.d refused: writable by every user" % n.root in n.output()),
                        n.output())
        self.assertTrue(wait_for(lambda: d.holders(g) == []), n.output())
        self.assertEqual(logind.calls(), [])

    def test_a_directory_on_the_way_others_could_change_is_refused(self):
        # Issue 26, item 7: a user who may write /etc/locksmith could move pre-reboot.d away (a
        # missing phase directory passes) or put their own there. Nothing under it runs, and the
        # phases that would have gated the reboot fail.
        for change, why in [(lambda n, _: os.chmod(n.root + "/etc/locksmith", 0o777), "writable by every user"),
                            (lambda n, _: os.chown(n.root + "/etc/locksmith", 65534, 65534), "owned by uid 65534, not root")]:
            self.assertRefusedAndNothingRuns(change, lambda n: "hook %s/etc/locksmith refused: %s" % (n.root, why))
        # A sticky directory others may write (as /tmp) is fine on the way: they cannot move root's
        # directories in it.
        n, g, logind = self.started_with_a_pre_reboot_hook(lambda n: os.chmod(n.root + "/etc", 0o1777))
        self.assertTrue(wait_for(lambda: logind.calls(), timeout=20), n.output())

    def test_hooks_run_in_name_order_and_leftovers_are_skipped(self):
        g = d.group()
        ue = self.service(d.UpdateEngine(d.NEED))
        logind = self.service(d.Logind())
        n = self.node(g)
        order = n.root + "/order"
        for name in ["20-b", "10-a", "10-a.dpkg-old", ".hidden", "30-c~", "15_x.sh"]:
            write_hook(n, "pre-reboot", name, "echo %s >> %s" % (name, order))
        n.start()
        self.assertTrue(wait_for(lambda: logind.calls()), n.output())
        self.assertEqual(read(order).split(), ["10-a", "15_x.sh", "20-b"])


class HealthGate(d.DaemonTest):
    def test_slot_is_kept_until_post_reboot_hooks_pass(self):
        g = d.group()
        ue = self.service(d.UpdateEngine())
        n = self.node(g, env={"LOCKSMITHD_METRICS_FILE": "/run/locksmith/metrics.prom"})
        d.ctl(g, "lock", n.id)
        n.write_state_file("HELD=yes\nKEY=%s\nID=%s\n" % (harness.group_key(g), n.id))
        write_hook(n, "post-reboot", "10-health", "echo service down\nexit 1")
        n.start()
        self.assertTrue(wait_for(lambda: n.saw("STATUS=holding the reboot slot: post-reboot health check 10-health failed (exit status 1)")),
                        n.drain())
        self.assertIn("keeping the reboot slot so that no other machine reboots", n.output())
        self.assertIn("post-reboot/10-health: service down", n.output())
        self.assertEqual(d.holders(g), [n.id])
        m = metrics(n)
        self.assertEqual(m["locksmithd_slot_held"], "1")
        self.assertEqual(m["locksmithd_slot_held_for_health_check"], "1")
        self.assertGreaterEqual(int(m['locksmithd_hook_failures_total{phase="post-reboot"}']), 1)
        self.assertEqual(m['locksmithd_state{state="running"}'], "1")
        time.sleep(1)
        self.assertEqual(d.holders(g), [n.id], "still held while the check fails")
        write_hook(n, "post-reboot", "10-health", "exit 0")
        self.assertTrue(wait_for(lambda: d.holders(g) == [], timeout=20), n.output())
        self.assertTrue(wait_for(lambda: metrics(n)["locksmithd_slot_held"] == "0"), read(n.root + "/run/locksmith/metrics.prom"))
        self.assertEqual(metrics(n)["locksmithd_slot_held_for_health_check"], "0")
        self.assertIn("the post-reboot hooks passed", n.output())
        self.assertEqual(n.state_file()["HELD"], "no")

    def test_without_post_reboot_hooks_the_slot_goes_at_once(self):
        g = d.group()
        ue = self.service(d.UpdateEngine())
        n = self.node(g)
        d.ctl(g, "lock", n.id)
        n.write_state_file("HELD=yes\nKEY=%s\nID=%s\n" % (harness.group_key(g), n.id))
        os.makedirs(n.root + "/etc/locksmith/post-reboot.d")
        n.start()
        self.assertTrue(wait_for(lambda: d.holders(g) == []), n.output())


class Metrics(d.DaemonTest):
    def test_metrics_follow_the_states(self):
        g = d.group()
        ue = self.service(d.UpdateEngine())
        logind = self.service(d.Logind())
        n = self.node(g, env={"LOCKSMITHD_METRICS_FILE": "/run/locksmith/metrics.prom"})
        n.start()
        self.assertTrue(wait_for(lambda: os.path.exists(n.root + "/run/locksmith/metrics.prom")), n.output())
        m = metrics(n)
        self.assertEqual(m['locksmithd_state{state="running"}'], "1")
        self.assertEqual(m['locksmithd_state{state="rebooting"}'], "0")
        self.assertEqual(m["locksmithd_reboot_needed"], "0")
        self.assertEqual(m["locksmithd_slot_held"], "0")
        self.assertEqual(m['locksmithd_info{strategy="etcd-lock",group="%s"}' % g], "1")
        self.assertLessEqual(abs(int(m["locksmithd_state_since_seconds"]) - time.time()), 30)
        text = read(n.root + "/run/locksmith/metrics.prom")
        self.assertIn("# TYPE locksmithd_hook_failures_total counter\n", text)
        self.assertEqual(oct(os.stat(n.root + "/run/locksmith/metrics.prom").st_mode & 0o777), "0o644")
        ue.send("emit " + d.NEED)
        self.assertTrue(wait_for(lambda: logind.calls()), n.output())
        self.assertTrue(wait_for(lambda: metrics(n)['locksmithd_state{state="rebooting"}'] == "1"))
        m = metrics(n)
        self.assertEqual(m["locksmithd_reboot_needed"], "1")
        self.assertEqual(m['locksmithd_group_max_slots{group="%s"}' % g], "1")
        self.assertEqual(m['locksmithd_group_free_slots{group="%s"}' % g], "0")
        self.assertEqual(m["locksmithd_slot_held"], "1", "the slot is kept through the reboot")
        self.assertEqual(m['locksmithd_state{state="running"}'], "0")
        self.assertEqual(sorted(os.listdir(n.root + "/run/locksmith")), ["locksmithd.lock", "metrics.prom", "state"], "no temporary file left")

    def test_a_relative_metrics_file_is_refused(self):
        n = self.node(d.group(), env={"LOCKSMITHD_METRICS_FILE": "metrics.prom"}).start()
        self.assertEqual(n.wait_exit(5), 78)
        self.assertIn('LOCKSMITHD_METRICS_FILE="metrics.prom" (from the environment) is not an absolute path', n.output())



class WindowZone(d.DaemonTest):
    """The daemons run with TZ=UTC; the window is read in Asia/Kolkata (UTC+05:30, no DST)."""

    @staticmethod
    def hhmm(t):
        g = time.gmtime(t)
        return "%02d:%02d" % (g.tm_hour, g.tm_min)

    def test_open_in_the_zone_and_closed_in_local_time(self):
        logind = self.service(d.Logind())
        start = self.hhmm(time.time() + 5.5 * 3600 - 120)  # two minutes ago, Kolkata time
        env = {"LOCKSMITHD_REBOOT_SOURCE": "file", "LOCKSMITHD_REBOOT_WINDOW_START": start, "LOCKSMITHD_REBOOT_WINDOW_LENGTH": "30m"}
        local = self.node(d.group(), strategy="reboot", env=env)
        zoned = self.node(d.group(), strategy="reboot", env=dict(env, LOCKSMITHD_REBOOT_WINDOW_TZ="Asia/Kolkata"))
        for n in (local, zoned):
            os.makedirs(n.root + "/run", exist_ok=True)
            open(n.root + "/run/reboot-required", "w").close()
            n.start()
        self.assertTrue(wait_for(lambda: len(logind.calls()) == 1), zoned.output())
        self.assertEqual(zoned.state(), "rebooting")
        self.assertTrue(wait_for(lambda: local.saw("STATUS=waiting for reboot window %s, opens in" % start)), local.drain())
        self.assertEqual(len(logind.calls()), 1, "only the daemon whose window is open reboots")

    def test_closed_in_the_zone_and_open_in_local_time(self):
        logind = self.service(d.Logind())
        start = self.hhmm(time.time() - 120)  # two minutes ago, UTC
        n = self.node(d.group(), strategy="reboot", env={
            "LOCKSMITHD_REBOOT_SOURCE": "file", "LOCKSMITHD_REBOOT_WINDOW_START": start, "LOCKSMITHD_REBOOT_WINDOW_LENGTH": "30m",
            "LOCKSMITHD_REBOOT_WINDOW_TZ": "Asia/Kolkata"})
        os.makedirs(n.root + "/run", exist_ok=True)
        open(n.root + "/run/reboot-required", "w").close()
        n.start()
        self.assertTrue(wait_for(lambda: n.saw("STATUS=waiting for reboot window %s Asia/Kolkata time, opens in" % start)), n.drain())
        time.sleep(1)
        self.assertEqual(logind.calls(), [])

    def test_a_zone_that_does_not_exist_stops_the_daemon(self):
        n = self.node(d.group(), strategy="reboot", env={"LOCKSMITHD_REBOOT_WINDOW_START": "02:00", "LOCKSMITHD_REBOOT_WINDOW_LENGTH": "1h",
                                                         "LOCKSMITHD_REBOOT_WINDOW_TZ": "Europe/Atlantis"}).start()
        self.assertEqual(n.wait_exit(5), 78)
        self.assertIn('LOCKSMITHD_REBOOT_WINDOW_TZ="Europe/Atlantis" (from the environment): time zone "Europe/Atlantis": no such zone',
                      n.output())


class Queue(d.DaemonTest):
    def test_daemons_wait_in_turn_and_say_their_place(self):
        g = d.group()
        d.ctl(g, "lock", "blocker")
        ue = self.service(d.UpdateEngine(d.NEED))
        logind = self.service(d.Logind())
        first = self.node(g).start()
        self.assertTrue(wait_for(lambda: first.saw("STATUS=waiting for a slot: 0 of 1 free, held by blocker")), first.drain())
        second = self.node(g).start()
        self.assertTrue(wait_for(lambda: second.saw("STATUS=waiting for a slot: 2nd in line")), second.drain())
        r = d.ctl(g, "status", "--queue")
        self.assertEqual([line.split()[1] for line in r.stdout.splitlines()[4:]], [first.id, second.id], r.stdout)
        d.ctl(g, "unlock", "blocker")
        self.assertTrue(wait_for(lambda: d.holders(g) == [first.id]), first.output())
        self.assertTrue(wait_for(lambda: second.saw("STATUS=waiting for a slot: 0 of 1 free, held by " + first.id)), second.drain())
        self.assertEqual(len(logind.calls()), 1, "the first in line reboots first")

if __name__ == "__main__":
    unittest.main()
