"""tools/fleet-sim: a small fleet drains within max, and everything it started is stopped, also
when it is interrupted."""
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
import unittest

import harness

SIM = os.path.join(harness.ROOT, "tools", "fleet-sim")


class FleetSim(unittest.TestCase):
    def setUp(self):
        # The simulator's temporary files (and so its processes' command lines) live here.
        self.tmp = tempfile.mkdtemp(prefix="locksmith-test-fleet-")
        self.env = dict(os.environ, TMPDIR=self.tmp)

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def run_sim(self, *args, **kw):
        return subprocess.run([SIM, *args], capture_output=True, text=True, timeout=120, env=self.env, **kw)

    def leftovers(self):
        out = subprocess.run(["pgrep", "-af", self.tmp], capture_output=True, text=True).stdout
        return [line for line in out.splitlines() if "pgrep" not in line]

    def test_small_fleet_drains_within_max(self):
        # Reboots of 3 s: a daemon's start on a busy machine (a second or so) is then small
        # beside them, while a fleet that polled with backoff (5 s and up) would still drain at
        # more than 1.5 times the ideal.
        r = self.run_sim("--nodes", "4", "--max", "2", "--reboot-time", "3", "--quiet")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        ratio = float(re.search(r"ratio ([0-9.]+)", r.stdout).group(1))
        self.assertLess(ratio, 1.5, r.stdout)
        self.assertIn("per etcd: default 2 (max 2)", r.stdout)
        self.assertEqual(self.leftovers(), [])

    def test_groups_and_v3_and_live_events(self):
        r = self.run_sim("--nodes", "4", "--max", "1", "--groups", "2", "--reboot-time", "1", "--etcd-api", "v3")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertEqual(len(re.findall(r"node-\d+ reboots", r.stdout)), 4)
        self.assertIn("fleet-0 1 (max 1), fleet-1 1 (max 1)", r.stdout)

    def test_mixed_fleet_shares_one_max(self):
        # Half the nodes on etcd-lock, half on fleetlock through locksmith-fleetlockd: one
        # semaphore, never more than max holders at any reboot (etcd's word), all done.
        for api in ("v3", "v2"):
            with self.subTest(api=api):
                r = self.run_sim("--nodes", "6", "--max", "2", "--fleetlock-nodes", "3", "--reboot-time", "1",
                                 "--etcd-api", api)
                self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
                self.assertIn("3 through locksmith-fleetlockd", r.stdout)
                self.assertIn("per etcd: default 2 (max 2)", r.stdout)
                rebooted = set(re.findall(r"(node-\d+) reboots", r.stdout))
                self.assertEqual(rebooted, {"node-%02d" % i for i in range(1, 7)}, r.stdout)
                self.assertEqual(self.leftovers(), [])

    def test_interrupt_stops_everything(self):
        # SIGINT as a terminal sends it: not ignored, even when these tests run in the background
        # of a non-interactive shell (which ignores SIGINT for what it starts with &).
        p = subprocess.Popen([SIM, "--nodes", "3", "--max", "1", "--reboot-time", "30", "--quiet"],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=self.env,
                             preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
        time.sleep(4)
        p.send_signal(signal.SIGINT)
        out = p.communicate(timeout=60)[0]
        self.assertEqual(p.returncode, 130, out)
        time.sleep(0.5)
        self.assertEqual(self.leftovers(), [])

    def test_bad_options(self):
        r = self.run_sim("--nodes", "0")
        self.assertEqual(r.returncode, 2)
        self.assertIn("need nodes", r.stderr)
        r = self.run_sim("--nodes", "2", "--fleetlock-nodes", "3")
        self.assertEqual(r.returncode, 2)
        self.assertIn("--fleetlock-nodes must be between 0 and --nodes", r.stderr)


if __name__ == "__main__":
    unittest.main()
