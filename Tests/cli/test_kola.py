"""Flatcar's integration tests of locksmith (mantle, kola/tests/locksmith), replayed against the
real locksmithd and locksmithctl: the original passes them, so a drop-in must (issue 25).

- flatcar.locksmith.tls: etcd serving TLS with a certificate from one CA and trusting client
  certificates from another; locksmithd stopped, `locksmithctl lock` (a slot under the machine
  id), status says "Available: 0\\nMax: 1"; locksmithd started, and within two minutes (10 tries,
  12 s apart) status says "Available: 1\\nMax: 1".
- flatcar.locksmith.reboot: no configuration at all (the default strategy, no etcd):
  `locksmithctl send-need-reboot` as root makes the machine reboot.
- flatcar.locksmith.cluster: three machines with REBOOT_STRATEGY=etcd-lock on one etcd, each told
  `send-need-reboot`: all three reboot, one at a time, and come back.

A machine is a daemon in its own root (test_locksmithd's nodes) with a private system bus, the
stand-in update engine and logind; its reboot is logind's Reboot call, and coming back is the
daemon starting again (the update engine then idle)."""
import os
import subprocess
import tempfile
import unittest

import harness
import test_locksmithd as d

wait_for = harness.wait_for
LOCKSMITHCTL = d.LOCKSMITHCTL


def setUpModule():
    d.setUpModule()


def tearDownModule():
    d.tearDownModule()


class Kola(d.DaemonTest):
    def test_flatcar_locksmith_tls(self):
        certs = harness.kola_certificates(tempfile.mkdtemp(prefix="locksmith-test-kola-"))
        etcd = harness.kola_etcd(certs)
        self.services.append(etcd)
        endpoint = "https://localhost:%d" % etcd.port
        tls = ["--etcd-cafile", certs["ca-etcd-cert"], "--etcd-certfile", certs["locksmith-cert"],
               "--etcd-keyfile", certs["locksmith-key"]]
        self.service(d.UpdateEngine())
        self.service(d.Logind())
        # kola's drop-in for locksmithd.service, and /etc/flatcar/update.conf.
        n = self.node("", env={"LOCKSMITHD_ETCD_CERTFILE": certs["locksmith-cert"], "LOCKSMITHD_ETCD_KEYFILE": certs["locksmith-key"],
                               "LOCKSMITHD_ETCD_CAFILE": certs["ca-etcd-cert"], "LOCKSMITHD_ENDPOINT": endpoint,
                               "LOCKSMITHD_REBOOT_WINDOW_START": "00:00", "LOCKSMITHD_REBOOT_WINDOW_LENGTH": "23h59m"})
        del n.env["LOCKSMITHD_GROUP"]

        def lctl(*args):
            # `sudo locksmithctl --endpoint https://localhost:2379 --etcd-cafile ... ` on the machine.
            return subprocess.run([LOCKSMITHCTL, "--endpoint", endpoint, *tls, *args], capture_output=True, text=True,
                                  env={"LOCKSMITH_ROOT": n.root, "PATH": os.environ["PATH"]}, timeout=60)

        n.start()
        self.assertTrue(wait_for(lambda: n.saw("READY=1"), timeout=20), n.output())
        r = lctl("status")
        self.assertEqual(r.returncode, 0, r)
        self.assertEqual(n.stop(), 0)  # systemctl stop locksmithd.service
        r = lctl("lock")  # the lock set while locksmithd isn't looking
        self.assertEqual(r.returncode, 0, r)
        r = lctl("status")
        self.assertTrue(r.stdout.startswith("Available: 0\nMax: 1"), r)
        n.start()  # systemctl start locksmithd.service
        # kola: util.Retry(10, 12*time.Second, ...): two minutes.
        self.assertTrue(wait_for(lambda: lctl("status").stdout.startswith("Available: 1\nMax: 1"), timeout=120, step=1),
                        n.output() + lctl("status").stdout)

    def test_flatcar_locksmith_reboot(self):
        # No update.conf and no etcd: the default strategy reboots on the word of root.
        self.service(d.UpdateEngine())
        logind = self.service(d.Logind())
        n = self.node("", strategy=None, env={"LOCKSMITHD_ENDPOINT": "http://127.0.0.1:9"})
        n.start()
        self.assertTrue(wait_for(lambda: n.saw("READY=1"), timeout=20), n.output())
        r = subprocess.run([LOCKSMITHCTL, "send-need-reboot"], capture_output=True, text=True, timeout=60,
                           env={"DBUS_SYSTEM_BUS_ADDRESS": d.bus.address, "LOCKSMITH_ROOT": n.root, "PATH": os.environ["PATH"]})
        self.assertEqual(r.returncode, 0, r)
        self.assertTrue(wait_for(logind.calls, timeout=30), n.output())

    def test_flatcar_locksmith_cluster(self):
        # Three machines on one etcd and one bus: `sudo locksmithctl send-need-reboot` reaches all
        # three (a signal). Each reboots in turn; the next may go once the one before is back.
        g = d.group()
        ue = self.service(d.UpdateEngine())
        logind = self.service(d.Logind())
        nodes = [self.node(g) for _ in range(3)]
        for n in nodes:
            n.start()
        self.assertTrue(wait_for(lambda: all(n.saw("READY=1") for n in nodes), timeout=20))
        self.assertEqual(d.ctl(g, "status").returncode, 0)
        r = subprocess.run([LOCKSMITHCTL, "send-need-reboot"], capture_output=True, text=True, timeout=60,
                           env={"DBUS_SYSTEM_BUS_ADDRESS": d.bus.address, "LOCKSMITH_ROOT": "/nonexistent", "PATH": os.environ["PATH"]})
        self.assertEqual(r.returncode, 0, r)
        rebooted = []
        while len(rebooted) < 3:
            self.assertTrue(wait_for(lambda: len(logind.calls()) > len(rebooted), timeout=60),
                            "\n".join(n.output() for n in nodes))
            self.assertLessEqual(len(d.holders(g)), 1)
            going = [n for n in nodes if n not in rebooted and n.state() == "rebooting"]
            self.assertEqual(len(going), 1, [n.state() for n in nodes])
            n = going[0]
            self.assertEqual(d.holders(g), [n.id])
            # The machine goes down and comes back: the update is applied, the daemon starts again.
            n.stop()
            rebooted.append(n)
            n.start()
            self.assertTrue(wait_for(lambda: n.state() == "running" and n.id not in d.holders(g), timeout=30), n.output())
        self.assertEqual(d.holders(g), [])
        self.assertEqual(len(logind.calls()), 3)


if __name__ == "__main__":
    unittest.main()
