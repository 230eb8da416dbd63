"""locksmithctl, run as a program against a real etcd (and a private D-Bus for reboot and
send-need-reboot): the original's outputs and exit codes byte for byte, for etcd v2 and v3,
flags, environment, configuration files and bad input."""
import itertools
import json
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
import unittest
import urllib.parse

import harness

MACHINE_ID = "0123456789abcdef0123456789abcdef"
_counter = itertools.count()
etcd = None


def setUpModule():
    global etcd
    etcd = harness.Etcd()


def tearDownModule():
    etcd.stop()


def unique(name):
    return "%s-%d-%d" % (name, os.getpid(), next(_counter))


class Run:
    def __init__(self, proc):
        self.out, self.err, self.code = proc.stdout, proc.stderr, proc.returncode


def ctl(*args, env=None, root=None, endpoint=True):
    """Runs locksmithctl with a clean environment (no LOCKSMITH* from outside)."""
    e = {k: v for k, v in os.environ.items() if not k.startswith("LOCKSMITH") and not k.startswith("REBOOT_")}
    e["LOCKSMITH_ROOT"] = root or EMPTY_ROOT
    if endpoint:
        e["LOCKSMITHCTL_ENDPOINT"] = etcd.endpoint
    e.update(env or {})
    return Run(subprocess.run([harness.LOCKSMITHCTL] + list(args), env=e, capture_output=True, text=True, timeout=60))


EMPTY_ROOT = tempfile.mkdtemp(prefix="locksmith-test-root-")


def read(path):
    with open(path) as f:
        return f.read()


def make_root(files):
    root = tempfile.mkdtemp(prefix="locksmith-test-root-")
    for path, text in files.items():
        full = root + path
        os.makedirs(os.path.dirname(full), exist_ok=True)
        with open(full, "w") as f:
            f.write(text)
    return root


class GoldenOutputs(unittest.TestCase):
    """Every "must match" row of golden-outputs.md, for v2 and v3."""

    def each_api(self, body):
        for api in ("v2", "v3"):
            with self.subTest(api=api):
                body(api, lambda *a, **k: ctl("-etcd-api=" + api, *a, **k))

    def expect(self, run, out="", err="", code=0):
        self.assertEqual((run.out, run.err, run.code), (out, err, code))

    def test_status_and_locks(self):
        def case(api, c):
            g = ["-group", unique("golden")]
            self.expect(c(*g, "status"), "Available: 1\nMax: 1\n")
            self.assertEqual(etcd.get(api, harness.group_key(g[1])), '{"semaphore":1,"max":1,"holders":null}')
            self.expect(c(*g, "set-max", "3"), "Old-Max: 1\nMax: 3\n")
            for h in ("node1", "b", "a"):
                self.expect(c(*g, "lock", h))
            self.expect(c(*g, "status"), "Available: 0\nMax: 3\n\nMACHINE ID\na\nb\nnode1\n")
            self.assertEqual(etcd.get(api, harness.group_key(g[1])), '{"semaphore":0,"max":3,"holders":["a","b","node1"]}')
            self.expect(c(*g, "lock", "x"), err="Error locking: semaphore is at 0\n", code=1)
            self.expect(c(*g, "set-max", "2"), "Old-Max: 3\nMax: 2\n")
            self.expect(c(*g, "status"), "Available: -1\nMax: 2\n\nMACHINE ID\na\nb\nnode1\n")
            self.expect(c(*g, "set-max", "+5"), "Old-Max: 2\nMax: 5\n")
            self.expect(c(*g, "lock", "a"), err="Error locking: holder exists\n", code=1)
            self.expect(c(*g, "unlock", "zz"), err="Error unlocking: holder does not exist\n", code=1)
            for h in ("a", "b", "node1"):
                self.expect(c(*g, "unlock", h))
            self.assertEqual(etcd.get(api, harness.group_key(g[1])), '{"semaphore":5,"max":5,"holders":[]}')
        self.each_api(case)

    def test_set_max_bad_values_change_nothing(self):
        def case(api, c):
            g = ["-group", unique("setmax")]
            c(*g, "status")
            before = etcd.get(api, harness.group_key(g[1]))
            self.expect(c(*g, "set-max"), err="New maximum value must be set.\n", code=1)
            self.expect(c(*g, "set-max", "1", "2"), err="New maximum value must be set.\n", code=1)
            for bad in ("abc", "1.5", "0x10", "", "-1", "99999999999999999999", "3000000000"):
                self.expect(c(*g, "set-max", bad), err="Invalid maximum value: %s\n" % bad, code=1)
            self.expect(c(*g, "set-max", "--", "-1"), err="Invalid maximum value: -1\n", code=1)
            self.assertEqual(etcd.get(api, harness.group_key(g[1])), before)
        self.each_api(case)

    def test_unknown_subcommand_and_version(self):
        self.expect(ctl("foo"), 'locksmithctl: unknown subcommand: "foo"\nRun \'locksmithctl help\' for usage.\n', code=2)
        self.expect(ctl("-version"), "locksmithctl version 0.11.0\n")
        self.expect(ctl("status", "--version"), "locksmithctl version 0.11.0\n")

    def test_no_endpoint_reachable_names_each(self):
        dead = "http://127.0.0.1:%d" % harness.free_port()
        r = ctl("-endpoint", dead + ",http://127.0.0.1:9", "status", endpoint=False)
        self.assertEqual((r.out, r.code), ("", 1))
        self.assertTrue(r.err.startswith("Error initializing etcd client: "), r.err)
        self.assertIn(dead + ": ", r.err)
        self.assertIn("http://127.0.0.1:9: ", r.err)

    def test_corrupt_value_is_reported_and_kept(self):
        def case(api, c):
            group = unique("corrupt")
            key = harness.group_key(group)
            etcd.put(api, key, "this is not json")
            for args in (["status"], ["set-max", "2"], ["lock", "x"], ["unlock", "x"]):
                r = c("-group", group, *args)
                self.assertEqual((r.out, r.code), ("", 1))
                self.assertTrue(r.err.startswith("Error reading semaphore: %s: not JSON" % key), r.err)
                self.assertIn('"this is not json"', r.err)
            self.assertEqual(etcd.get(api, key), "this is not json")
        self.each_api(case)

    def test_twenty_concurrent_locks_with_free_slots_all_succeed(self):
        def case(api, c):
            g = ["-group", unique("crowd")]
            c(*g, "set-max", "100")
            env = {k: v for k, v in os.environ.items() if not k.startswith("LOCKSMITH")}
            env.update(LOCKSMITHCTL_ENDPOINT=etcd.endpoint, LOCKSMITH_ROOT=EMPTY_ROOT)
            procs = [subprocess.Popen([harness.LOCKSMITHCTL, "-etcd-api=" + api, *g, "lock", "m%d" % i], env=env,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE) for i in range(20)]
            errors = [p.communicate(timeout=60)[1] for p in procs]
            self.assertEqual([p.returncode for p in procs], [0] * 20, errors)
            self.assertTrue(c(*g, "status").out.startswith("Available: 80\nMax: 100\n"))
        self.each_api(case)


class FlagsAndSettings(unittest.TestCase):
    def test_flag_forms_and_places(self):
        group = unique("forms")
        ctl("-group", group, "set-max", "4")
        for args in (["-endpoint=" + etcd.endpoint, "status"], ["-endpoint", etcd.endpoint, "status"],
                     ["--endpoint=" + etcd.endpoint, "status"], ["--endpoint", etcd.endpoint, "status"],
                     ["status", "-endpoint=" + etcd.endpoint], ["status", "--endpoint", etcd.endpoint]):
            with self.subTest(args=args):
                r = ctl("-group=" + group, *args, endpoint=False)
                self.assertEqual((r.out, r.err, r.code), ("Available: 4\nMax: 4\n", "", 0))
        r = ctl("status", "-group", group)
        self.assertEqual(r.out, "Available: 4\nMax: 4\n")

    def test_endpoints_repeated_comma_lists_trailing_slash_and_dead_first(self):
        dead = "http://127.0.0.1:%d" % harness.free_port()
        for args in (["-endpoint", dead, "-endpoint", etcd.endpoint + "/"], ["-endpoint", dead + "," + etcd.endpoint]):
            r = ctl(*args, "-group", unique("ep"), "status", endpoint=False)
            self.assertEqual((r.out, r.code), ("Available: 1\nMax: 1\n", 0), r.err)

    def test_environment_and_precedence(self):
        group = unique("env")
        ctl("-group", group, "set-max", "7")
        r = ctl("status", endpoint=False, env={"LOCKSMITHCTL_ENDPOINT": etcd.endpoint, "LOCKSMITHCTL_GROUP": group})
        self.assertEqual(r.out, "Available: 7\nMax: 7\n")
        # The command line wins over the variable (which names a dead endpoint here).
        r = ctl("-endpoint", etcd.endpoint, "-group", group, "status", endpoint=False,
                env={"LOCKSMITHCTL_ENDPOINT": "http://127.0.0.1:9", "LOCKSMITHCTL_GROUP": "other"})
        self.assertEqual((r.out, r.code), ("Available: 7\nMax: 7\n", 0), r.err)

    def test_daemon_configuration_is_the_fallback(self):
        group = unique("daemon")
        ctl("-group", group, "set-max", "6")
        root = make_root({"/etc/coreos/update.conf": 'REBOOT_STRATEGY=etcd-lock\nLOCKSMITHD_ENDPOINT="%s"\nLOCKSMITHD_GROUP=%s\n'
                                                     % (etcd.endpoint, group)})
        r = ctl("status", root=root, endpoint=False)
        self.assertEqual((r.out, r.code), ("Available: 6\nMax: 6\n", 0), r.err)
        # LOCKSMITHCTL_* wins over the daemon's settings.
        r = ctl("status", root=root, endpoint=False, env={"LOCKSMITHCTL_GROUP": unique("own")})
        self.assertEqual(r.out, "Available: 1\nMax: 1\n")
        # The daemon's environment wins over its files.
        r = ctl("status", root=root, endpoint=False, env={"LOCKSMITHD_GROUP": unique("envd")})
        self.assertEqual(r.out, "Available: 1\nMax: 1\n")
        r = ctl("-debug", "status", root=root, endpoint=False)
        self.assertIn("group = %s (from LOCKSMITHD_GROUP in %s/etc/coreos/update.conf)" % (group, root), r.err)
        shutil.rmtree(root)

    def test_debug_shows_origins_requests_and_no_password(self):
        r = ctl("-debug", "-group", unique("dbg"), "-etcd-username", "someone", "status",
                env={"LOCKSMITHCTL_ETCD_PASSWORD": "very-secret-pw"})
        self.assertIn("endpoint = %s (from LOCKSMITHCTL_ENDPOINT)" % etcd.endpoint, r.err)
        self.assertIn("etcd-username = someone (from flag -etcd-username)", r.err)
        self.assertIn("etcd-password = (hidden) (from LOCKSMITHCTL_ETCD_PASSWORD)", r.err)
        self.assertRegex(r.err, r"GET %s/v2/keys/\S+ -> \d+ \(\d+ ms\)" % etcd.endpoint)
        self.assertIn("etcd API v2, endpoint " + etcd.endpoint, r.err)
        self.assertNotIn("very-secret-pw", r.err + r.out)


class BadInput(unittest.TestCase):
    def unchanged(self, group, *args, out="", code):
        key = harness.group_key(group)
        r = ctl("-group", group, *args)
        self.assertEqual((r.out, r.code), (out, code), r.err)
        self.assertIsNone(etcd.get("v2", key))
        self.assertIsNone(etcd.get("v3", key))
        return r

    def test_usage_errors_exit_2_and_write_nothing(self):
        g = unique("bad")
        r = self.unchanged(g, "-nosuchflag", "lock", "x", code=2)
        self.assertEqual(r.err, "locksmithctl: flag provided but not defined: -nosuchflag\nRun 'locksmithctl help' for usage.\n")
        r = self.unchanged(g, "lock", "x", "--nosuchflag", code=2)
        self.assertIn("flag provided but not defined: -nosuchflag", r.err)
        r = self.unchanged(g, "lock", "x", "-endpoint", code=2)
        self.assertIn("flag needs an argument: -endpoint", r.err)
        r = self.unchanged(g, "-timeout", "soon", "lock", "x", code=2)
        self.assertIn('invalid value "soon" for flag -timeout', r.err)
        r = self.unchanged(g, "-etcd-api", "v4", "lock", "x", code=2)
        self.assertIn('invalid value "v4" for flag -etcd-api', r.err)
        r = self.unchanged(g, "-debug=maybe", "lock", "x", code=2)
        self.assertIn('invalid boolean value "maybe" for -debug', r.err)
        self.unchanged(g, "lock", "x", "y", code=2)

    def test_bad_endpoints_and_tls_files_exit_1(self):
        g = unique("bad")
        for endpoint in ("127.0.0.1:2379", "garbage", "ftp://127.0.0.1:2379"):
            r = self.unchanged(g, "-endpoint", endpoint, "lock", "x", code=1)
            self.assertIn('endpoint "%s"' % endpoint, r.err)
            self.assertTrue(r.err.startswith("Error initializing etcd client: "))
        for flag in ("-etcd-cafile", "-etcd-certfile", "-etcd-keyfile"):
            r = self.unchanged(g, flag, "/nonexistent/file.pem", "lock", "x", code=1)
            self.assertIn("/nonexistent/file.pem", r.err)
            self.assertIn(flag[1:], r.err)

    def test_machine_id_is_read_from_the_root(self):
        g = unique("mid")
        root = make_root({"/etc/machine-id": MACHINE_ID + "\n"})
        self.assertEqual(ctl("-group", g, "lock", root=root).code, 0)
        self.assertIn(MACHINE_ID, ctl("-group", g, "status").out)
        self.assertEqual(ctl("-group", g, "unlock", root=root).code, 0)
        r = ctl("-group", g, "lock")  # the empty root has no machine id
        self.assertEqual(r.code, 1)
        self.assertIn("machine-id", r.err)
        shutil.rmtree(root)


class Views(unittest.TestCase):
    def test_status_json(self):
        import json
        g = unique("json")
        ctl("-group", g, "lock", "m1")
        for api in ("v2", "v3"):
            ctl("-etcd-api", api, "-group", g, "status")
            ctl("-etcd-api", api, "-group", g, "lock", "m1")
            r = ctl("-etcd-api", api, "-group", g, "status", "--json")
            self.assertEqual(r.code, 0, r.err)
            status = json.loads(r.out)
            ages = status.pop("holder_ages")
            self.assertEqual(status.pop("queue"), [])
            self.assertEqual(status.pop("queue_ignored"), [])
            self.assertEqual(status, {"group": g, "key": harness.group_key(g), "available": 0, "max": 1,
                                      "holders": ["m1"], "etcd_api": api, "endpoint": etcd.endpoint})
            self.assertEqual([a["id"] for a in ages], ["m1"])
            self.assertEqual(ages[0]["host"], socket.gethostname())
            self.assertLessEqual(abs(ages[0]["since"] + ages[0]["held_seconds"] - time.time()), 5)

    def test_holder_ages(self):
        import json
        for api in ("v2", "v3"):
            g = unique("ages-" + api)
            base = ["-etcd-api", api, "-group", g]
            ctl(*base, "set-max", "3")
            ctl(*base, "lock", "ours")
            # A holder that took its slot with the original: in the document, with no record.
            r = ctl(*base, "status", "--json")
            doc = json.loads(r.out)
            etcd.put(api, harness.group_key(g), '{"semaphore":1,"max":3,"holders":["ours","theirs"]}')
            # An old slot: its record says it was taken three hours ago, on another host.
            ctl(*base, "lock", "old")
            etcd.put(api, harness.group_key(g) + ".holders/old", '{"since":%d,"host":"web-7"}' % (time.time() - 3 * 3600))
            r = ctl(*base, "status")
            self.assertEqual(r.out, "Available: 0\nMax: 3\n\nMACHINE ID\nold\nours\ntheirs\n", "the original's view is unchanged")
            r = ctl(*base, "status", "--ages", env={"TZ": "UTC"})
            self.assertEqual(r.code, 0, r.err)
            lines = r.out.splitlines()
            self.assertEqual(lines[:3], ["Available: 0", "Max: 3", ""])
            self.assertEqual(lines[3].split(), ["MACHINE", "ID", "HELD", "FOR", "SINCE", "HOST"])
            self.assertRegex(lines[4], r"^old +3h0m[0-9]+s +\w{3} \d{4}-\d\d-\d\d \d\d:\d\d UTC +web-7$")
            self.assertRegex(lines[5], r"^ours +[0-9]+s +\w{3} .* UTC +%s$" % re.escape(socket.gethostname()))
            self.assertRegex(lines[6], r"^theirs +unknown +- +-$")
            ages = {a["id"]: a for a in json.loads(ctl(*base, "status", "--json").out)["holder_ages"]}
            self.assertEqual(ages["theirs"], {"id": "theirs", "since": None, "held_seconds": None, "host": None})
            self.assertGreaterEqual(ages["old"]["held_seconds"], 3 * 3600)
            # unlock --older-than: the old one goes, the young one and the unknown one stay.
            r = ctl(*base, "unlock", "--older-than=2h")
            self.assertEqual(r.code, 0, r.err)
            out = r.out.splitlines()
            self.assertRegex(out[0], r"^Released old: held for 3h0m[0-9]+s, since .* from web-7$")
            self.assertEqual(out[1], "Kept theirs: how long it has held its slot is unknown (it took it with a client that records nothing)")
            self.assertEqual(ctl(*base, "status").out, "Available: 1\nMax: 3\n\nMACHINE ID\nours\ntheirs\n")
            r = ctl(*base, "unlock", "--older-than", "2h")
            self.assertEqual(r.out.splitlines()[0], "No holder has held its slot longer than 2h0m0s.")
            self.assertEqual(ctl(*base, "status").out, "Available: 1\nMax: 3\n\nMACHINE ID\nours\ntheirs\n")

    def test_unlock_older_than_keeps_a_slot_given_back_and_taken_again_meanwhile(self):
        # Security issue 26, item 7b: the holder gives its slot back and takes one again between
        # the read of the ages and the unlock (a proxy makes it happen just before the unlock's
        # write reaches etcd). Before, the fresh slot was freed; now the unlock is conditional on
        # the record that was read.
        import json
        for api in ("v2", "v3"):
            with self.subTest(api=api):
                g = unique("retaken-" + api)
                base = ["-etcd-api", api, "-group", g]
                ctl(*base, "set-max", "2")
                ctl(*base, "lock", "old")
                etcd.put(api, harness.group_key(g) + ".holders/old", '{"since":%d,"host":"web-7"}' % (time.time() - 3 * 3600))
                retaken = []

                def give_back_and_take_again(method, path, body):
                    write = (method == "PUT" and "prevIndex=" in path) if api == "v2" else path == "/v3/kv/txn"
                    if write and not retaken:
                        retaken.extend([ctl(*base, "unlock", "old").code, ctl(*base, "lock", "old").code])
                proxy = harness.CountingProxy(before=give_back_and_take_again)
                self.addCleanup(proxy.stop)
                # Loopback is never proxied: etcd is named by a host name only the proxy resolves.
                endpoint = "http://etcd.invalid:%d" % urllib.parse.urlsplit(etcd.endpoint).port
                r = ctl(*base, "unlock", "--older-than=2h", env={"LOCKSMITHCTL_ENDPOINT": endpoint, "LOCKSMITHCTL_PROXY": proxy.url})
                self.assertEqual(retaken, [0, 0])
                self.assertEqual((r.code, r.err), (0, ""))
                self.assertEqual(r.out, "Kept old: it gave its slot back and took one again after its age was read\n")
                self.assertEqual(etcd.holders(api, harness.group_key(g)), ["old"], "the fresh slot survives")
                self.assertLess(time.time() - json.loads(etcd.get(api, harness.group_key(g) + ".holders/old"))["since"], 60)
                # Without anything in between, the same run releases an old slot as before.
                etcd.put(api, harness.group_key(g) + ".holders/old", '{"since":%d,"host":"web-7"}' % (time.time() - 3 * 3600))
                r = ctl(*base, "unlock", "--older-than=2h", env={"LOCKSMITHCTL_ENDPOINT": endpoint, "LOCKSMITHCTL_PROXY": proxy.url})
                self.assertEqual(r.code, 0, r.err)
                self.assertRegex(r.out, r"^Released old: held for 3h0m[0-9]+s, since .* from web-7\n$")
                self.assertEqual(etcd.holders(api, harness.group_key(g)), [])
                self.assertIsNone(etcd.get(api, harness.group_key(g) + ".holders/old"))

    def test_unlock_older_than_refuses_bad_input(self):
        g = unique("older")
        ctl("-group", g, "lock", "x")
        for args, message in [(["--older-than=soon"], 'Invalid duration for --older-than: "soon"'),
                              (["--older-than=0s"], "it must be more than 0"),
                              (["--older-than=-1h"], 'Invalid duration for --older-than: "-1h"'),
                              (["--older-than=1h", "x"], "unlock --older-than takes no machine id"),
                              (["--older-than"], "flag needs an argument: --older-than")]:
            r = ctl("-group", g, "unlock", *args)
            self.assertEqual(r.code, 2, args)
            self.assertIn(message, r.err + r.out)
        self.assertEqual(ctl("-group", g, "status").out, "Available: 0\nMax: 1\n\nMACHINE ID\nx\n", "nothing changed")

    def test_all_groups(self):
        import json
        e2 = harness.Etcd()
        try:
            env = {"LOCKSMITHCTL_ENDPOINT": e2.endpoint}
            ctl("status", env=env)
            ctl("-group", "lb", "lock", "x", env=env)
            etcd_key = harness.group_key("broken")
            e2.put("v2", etcd_key, "[]")
            r = ctl("status", "--all-groups", env=env)
            self.assertEqual(r.code, 1)
            lines = r.out.splitlines()
            self.assertEqual(lines[0].split(), ["GROUP", "AVAILABLE", "MAX", "HOLDERS"])
            self.assertEqual(lines[1].split(), ["(default)", "1", "1", "-"])
            self.assertEqual(lines[2].split()[:3], ["broken", "-", "-"])
            self.assertEqual(lines[3].split(), ["lb", "0", "1", "x"])
            r = ctl("status", "--all-groups", "--json", env=env)
            groups = json.loads(r.out)["groups"]
            self.assertEqual([x["group"] for x in groups], ["", "broken", "lb"])
            self.assertIn("error", groups[1])
            self.assertEqual(groups[2]["holders"], ["x"])
        finally:
            e2.stop()

    def test_window(self):
        env = {"TZ": "America/Los_Angeles"}
        r = ctl("window", env=env)
        self.assertEqual((r.out, r.code), ("No reboot window is set: reboots may happen at any time.\n", 0))
        r = ctl("window", env=dict(env, LOCKSMITHD_REBOOT_WINDOW_START="Thu 23:00", LOCKSMITHD_REBOOT_WINDOW_LENGTH="1h30m"))
        self.assertEqual(r.code, 0, r.err)
        self.assertTrue(r.out.startswith("Reboot window: Thu 23:00, 1h30m0s long"), r.out)
        self.assertRegex(r.out, r"(Next opening|Open now): .*P[SD]T")
        root = make_root({"/etc/flatcar/update.conf": "REBOOT_WINDOW_START=25:00\nREBOOT_WINDOW_LENGTH=1h\n"})
        r = ctl("window", root=root, env=env)
        self.assertEqual(r.code, 1)
        self.assertIn('REBOOT_WINDOW_START="25:00" (from %s/etc/flatcar/update.conf)' % root, r.err)
        self.assertIn("hour 25", r.err)
        r = ctl("window", env=dict(env, LOCKSMITHD_REBOOT_WINDOW_START="14:00"))
        self.assertEqual(r.code, 1)
        self.assertIn("LOCKSMITHD_REBOOT_WINDOW_LENGTH is not", r.err)
        shutil.rmtree(root)

    def test_window_in_a_named_zone(self):
        env = {"TZ": "America/Los_Angeles", "LOCKSMITHD_REBOOT_WINDOW_START": "Sun 02:30", "LOCKSMITHD_REBOOT_WINDOW_LENGTH": "1h",
               "LOCKSMITHD_REBOOT_WINDOW_TZ": "Europe/Berlin"}
        r = ctl("window", env=env)
        self.assertEqual(r.code, 0, r.err)
        first = r.out.splitlines()[0]
        self.assertEqual(first, 'Reboot window: Sun 02:30, 1h0m0s long, Europe/Berlin time '
                                '(LOCKSMITHD_REBOOT_WINDOW_START="Sun 02:30" (from the environment), '
                                'LOCKSMITHD_REBOOT_WINDOW_LENGTH="1h" (from the environment), '
                                'LOCKSMITHD_REBOOT_WINDOW_TZ="Europe/Berlin" (from the environment))')
        # The times are Berlin's (CET or CEST), not the process's Los Angeles time.
        self.assertRegex(r.out.splitlines()[1], r"^(Next opening|Open now): .*Sun \d{4}-\d\d-\d\d 0[23]:30 CES?T")
        for zone, why in [("Mars/Olympus_Mons", "no such zone"), ("../etc/passwd", "is not allowed"), ("/etc/localtime", "")]:
            r = ctl("window", env=dict(env, LOCKSMITHD_REBOOT_WINDOW_TZ=zone))
            self.assertEqual(r.code, 1, zone)
            self.assertIn('LOCKSMITHD_REBOOT_WINDOW_TZ="%s" (from the environment)' % zone, r.err)
            self.assertIn(why, r.err)

    def test_help_completions_and_manual(self):
        r = ctl("help")
        self.assertEqual(r.code, 0)
        for name in ("status", "lock", "unlock", "set-max", "reboot", "send-need-reboot", "window", "-endpoint", "LOCKSMITHCTL_"):
            self.assertIn(name, r.out)
        self.assertEqual(ctl().out, r.out)
        for command in ("status", "lock", "unlock", "set-max", "reboot", "send-need-reboot", "window"):
            h = ctl("help", command)
            self.assertEqual(h.code, 0)
            self.assertIn("Usage: locksmithctl [global flags] " + command, h.out)
            self.assertRegex(h.out, r"Examples?:\n  \$ ")
            self.assertEqual(ctl(command, "--help").out, h.out)
        self.assertEqual(ctl("help", "nope").code, 2)
        for shell, marker in (("bash", "complete -F"), ("zsh", "#compdef locksmithctl"), ("fish", "complete -c locksmithctl")):
            out = ctl("completion", shell).out
            self.assertIn(marker, out)
            self.assertIn("send-need-reboot", out)
        self.assertTrue(ctl("man").out.startswith(".TH LOCKSMITHCTL 1"))


class StaleHolderRecords(unittest.TestCase):
    """Issue 25, item 3: a slot given back by a client that writes only the document (the
    original locksmithctl) leaves its holder record behind; the next write of the document by
    this library removes the records of ids that are no holder, never a holder's."""

    def original_writes(self, api, g, holders, max_=3):
        """What the original's lock or unlock leaves: the document alone, with these holders."""
        etcd.put(api, harness.group_key(g), '{"semaphore":%d,"max":%d,"holders":%s}' % (
            max_ - len(holders), max_, json.dumps(holders, separators=(",", ":")) if holders else "null"))

    def record(self, api, g, holder):
        return etcd.get(api, harness.group_key(g) + ".holders/" + holder)

    def test_a_record_left_by_the_original_goes_at_the_next_lock_unlock_or_set_max(self):
        for api in ("v2", "v3"):
            with self.subTest(api=api):
                g = unique("stale-" + api)
                base = ["-etcd-api", api, "-group", g]
                self.assertEqual(ctl(*base, "set-max", "3").code, 0)
                for holder in ("kept", "gone1"):
                    self.assertEqual(ctl(*base, "lock", holder).code, 0)
                kept = self.record(api, g, "kept")
                self.assertIsNotNone(kept)
                self.original_writes(api, g, ["kept"])
                self.assertIsNotNone(self.record(api, g, "gone1"), "the original leaves the record")
                # Readers show current holders only, the stale record or not.
                self.assertNotIn("gone1", ctl(*base, "status", "--ages").out)
                self.assertEqual([a["id"] for a in json.loads(ctl(*base, "status", "--json").out)["holder_ages"]], ["kept"])
                # The next lock removes it; the holder's own record stays as it was.
                self.assertEqual(ctl(*base, "lock", "new").code, 0)
                self.assertIsNone(self.record(api, g, "gone1"))
                self.assertEqual(self.record(api, g, "kept"), kept)
                self.assertIsNotNone(self.record(api, g, "new"))
                # So does the next unlock (of another holder), and the next set-max.
                self.assertEqual(ctl(*base, "lock", "gone2").code, 0)
                self.original_writes(api, g, ["kept", "new"])
                self.assertEqual(ctl(*base, "unlock", "new").code, 0)
                self.assertEqual((self.record(api, g, "gone2"), self.record(api, g, "new")), (None, None))
                self.assertEqual(ctl(*base, "lock", "gone3").code, 0)
                self.original_writes(api, g, ["kept"])
                self.assertEqual(ctl(*base, "set-max", "4").code, 0)
                self.assertIsNone(self.record(api, g, "gone3"))
                self.assertEqual(self.record(api, g, "kept"), kept)
                self.assertEqual(etcd.holders(api, harness.group_key(g)), ["kept"])

    def test_a_holder_that_took_its_slot_again_with_the_original_is_not_aged_by_its_old_record(self):
        # The original gives m's slot back, one of our clients writes, the original takes a slot
        # for m again: m's age is unknown. Before, the record of m's first slot (three hours old)
        # was shown as the age of the second, and unlock --older-than gave back the fresh slot.
        for api in ("v2", "v3"):
            with self.subTest(api=api):
                g = unique("retaken-by-original-" + api)
                base = ["-etcd-api", api, "-group", g]
                ctl(*base, "set-max", "3")
                self.assertEqual(ctl(*base, "lock", "m").code, 0)
                etcd.put(api, harness.group_key(g) + ".holders/m", '{"since":%d,"host":"web-7"}' % (time.time() - 3 * 3600))
                self.original_writes(api, g, [])
                self.assertEqual(ctl(*base, "lock", "x").code, 0)
                self.original_writes(api, g, ["x", "m"])
                r = ctl(*base, "status", "--ages")
                self.assertEqual(r.code, 0, r.err)
                self.assertRegex(r.out, r"\nm +unknown +- +-\n")
                ages = {a["id"]: a for a in json.loads(ctl(*base, "status", "--json").out)["holder_ages"]}
                self.assertEqual(ages["m"], {"id": "m", "since": None, "held_seconds": None, "host": None})
                r = ctl(*base, "unlock", "--older-than=2h")
                self.assertEqual(r.code, 0, r.err)
                self.assertNotIn("Released", r.out)
                self.assertEqual(etcd.holders(api, harness.group_key(g)), ["x", "m"])

    def test_the_cleanup_never_removes_the_record_of_a_holder_that_locked_meanwhile(self):
        # A proxy runs another client just before one of the cleanup's requests: one that takes a
        # slot for the id whose stale record is about to go (its record is then new: the
        # conditional delete must miss it); and on v2, whose listing is a request after the write,
        # one that takes a slot for an id missing from the document just written (its record is
        # newer than that write: not judged by it).
        cases = [("v2", "gone", lambda method, path, body: method == "DELETE"),
                 ("v3", "gone", lambda method, path, body: path == "/v3/kv/txn" and b"request_delete_range" in body),
                 ("v2", "late", lambda method, path, body: method == "GET" and ".holders?recursive" in path)]
        for api, meanwhile, before in cases:
            with self.subTest(api=api, meanwhile=meanwhile):
                g = unique("cleanup-race-" + api)
                base = ["-etcd-api", api, "-group", g]
                ctl(*base, "set-max", "3")
                if meanwhile == "gone":
                    ctl(*base, "lock", "gone")
                    self.original_writes(api, g, [])
                ran = []

                def lock_meanwhile(method, path, body):
                    if before(method, path, body) and not ran:
                        ran.append(ctl(*base, "lock", meanwhile).code)
                proxy = harness.CountingProxy(before=lock_meanwhile)
                self.addCleanup(proxy.stop)
                endpoint = "http://etcd.invalid:%d" % urllib.parse.urlsplit(etcd.endpoint).port
                r = ctl(*base, "lock", "other", env={"LOCKSMITHCTL_ENDPOINT": endpoint, "LOCKSMITHCTL_PROXY": proxy.url})
                self.assertEqual((r.code, r.err, ran), (0, "", [0]))
                self.assertEqual(sorted(etcd.holders(api, harness.group_key(g))), sorted(["other", meanwhile]))
                for holder in ("other", meanwhile):
                    record = self.record(api, g, holder)
                    self.assertIsNotNone(record, holder)
                    self.assertLess(time.time() - json.loads(record)["since"], 60)


class LoaderScope(unittest.TestCase):
    """libcurl is opened with RTLD_DEEPBIND (its libraries look in their own scope first) unless
    something interposes symbols: then it binds as any library does, so that a preloaded
    allocator or shim stays in front (Sources/CLoader/cloader.c)."""

    def curl_scope(self, env):
        r = ctl("status", env=dict(env, LD_DEBUG="scopes"))
        self.assertEqual(r.code, 0, r.err)
        lines = r.err.splitlines()
        at = next(i for i, l in enumerate(lines) if re.search(r"object=\S*/libcurl\.so\.4 \[0\]$", l))
        return lines[at + 1].split("scope 0:", 1)[1].split()

    def test_deep_binding_unless_something_is_preloaded(self):
        if os.path.exists("/etc/ld.so.preload"):
            self.skipTest("this machine preloads objects into every program (/etc/ld.so.preload)")
        self.assertTrue(self.curl_scope({})[0].endswith("/libcurl.so.4"))
        # A preload (libm: already loaded, harmless) puts the program's scope first again.
        preloaded = self.curl_scope({"LD_PRELOAD": "libm.so.6"})
        self.assertTrue(preloaded[0].endswith("locksmithctl"), preloaded[:3])


class Bus(unittest.TestCase):
    """reboot and send-need-reboot on a private bus with stand-in services."""

    @classmethod
    def setUpClass(cls):
        cls.bus = harness.Bus()
        cls.root = make_root({"/etc/machine-id": MACHINE_ID + "\n"})

    @classmethod
    def tearDownClass(cls):
        cls.bus.stop()
        shutil.rmtree(cls.root)

    def run_ctl(self, *args, **kw):
        return ctl(*args, root=self.root, env={"DBUS_SYSTEM_BUS_ADDRESS": self.bus.address}, **kw)

    def test_send_need_reboot_is_seen_on_the_bus(self):
        monitor = subprocess.Popen(["dbus-monitor", "--address", self.bus.address,
                                    "type='signal',interface='com.coreos.update1.Manager'"],
                                   stdout=subprocess.PIPE, text=True)
        try:
            time.sleep(0.5)
            r = self.run_ctl("send-need-reboot")
            self.assertEqual((r.out, r.err, r.code), ("", "", 0))
            deadline = time.time() + 5
            seen = ""
            os.set_blocking(monitor.stdout.fileno(), False)
            while time.time() < deadline and "UPDATE_STATUS_UPDATED_NEED_REBOOT" not in seen:
                seen += monitor.stdout.read() or ""
                time.sleep(0.05)
            self.assertIn("member=StatusUpdate", seen)
            self.assertIn("path=/com/coreos/update1", seen)
            body = seen[seen.index("member=StatusUpdate"):]
            self.assertRegex(body, r'int64 0\s+double 0\s+string "UPDATE_STATUS_UPDATED_NEED_REBOOT"\s+string ""\s+int64 0')
        finally:
            monitor.kill()
            monitor.wait()
            monitor.stdout.close()

    def test_reboot_takes_the_lock_then_asks_logind(self):
        log = os.path.join(self.bus.dir, unique("logind") + ".log")
        logind = self.bus.start([os.path.join(harness.STANDINS, "fake-logind"), log])
        try:
            g = unique("reboot")
            r = self.run_ctl("-group", g, "reboot")
            self.assertEqual((r.out, r.err, r.code), ("", "", 0))
            self.assertRegex(read(log), r"^Reboot false pid=\d+\n$")
            self.assertIn(MACHINE_ID, self.run_ctl("-group", g, "status").out)
            # Holding already counts as holding, even with no free slot left.
            r = self.run_ctl("-group", g, "reboot")
            self.assertEqual(r.code, 0, r.err)
            self.assertRegex(read(log), r"^(Reboot false pid=\d+\n){2}$")
        finally:
            self.bus.stop_process(logind)

    def test_a_refused_reboot_gives_the_lock_back(self):
        log = os.path.join(self.bus.dir, unique("logind") + ".log")
        logind = self.bus.start([os.path.join(harness.STANDINS, "fake-logind"), log, "--fail", "1"])
        try:
            g = unique("refused")
            r = self.run_ctl("-group", g, "reboot")
            self.assertEqual(r.code, 1)
            self.assertIn("refused by the test", r.err)
            self.assertIn("was released", r.err)
            self.assertEqual(self.run_ctl("-group", g, "status").out, "Available: 1\nMax: 1\n")
        finally:
            self.bus.stop_process(logind)

    def test_reboot_without_logind_fails_and_releases(self):
        g = unique("nologind")
        r = self.run_ctl("-group", g, "reboot")
        self.assertEqual(r.code, 1)
        self.assertIn("Error rebooting", r.err)
        self.assertEqual(self.run_ctl("-group", g, "status").out, "Available: 1\nMax: 1\n")

    def test_reboot_needs_root(self):
        r = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", harness.LOCKSMITHCTL, "reboot"],
                           capture_output=True, text=True, env=dict(os.environ, LOCKSMITHCTL_ENDPOINT=etcd.endpoint))
        self.assertEqual(r.returncode, 1)
        self.assertIn("must be run as root", r.stderr)


if __name__ == "__main__":
    unittest.main()
