#!/usr/bin/python3
"""Safety of the semaphore under load and faults.

A 3-member etcd cluster (Debian's etcd-server, loopback ports, temporary data directories, v2
enabled) serves many clients contending for a semaphore of max 3, while this script kills the
leader with SIGKILL and restarts it, pauses a member with SIGSTOP (SIGCONT later), kills a
follower, and restarts the whole cluster. Afterwards the complete history of the semaphore key
is checked against what the clients reported:

  - v3: every revision of the key, read back through the JSON gateway (POST /v3/kv/range with
    "revision"), walking the key's versions from the newest to the first;
  - v2: the watch log of a watcher that followed waitIndex through the run (asking another member
    when one fails); each event's prevNode index must be the previous event's index, and a
    watcher that fell out of etcd's 1000-event history is a harness failure.

Also locksmith-fleetlockd on the cluster (--fleetlock-apis), with FleetLock clients alternating
pre-reboot and steady-state: never more than max holders in any revision (one write of the
server may change several), every grant in etcd's history, nothing left held.

Clients: build/faults/locker (Tests/faults/locker.c, on liblocksmith), N threads each with its own
client and id, taking slots with lock-and-watch, then (--mode queue) waiting in the fair queue,
where each client must also have had its turns and be done soon after the run (no waiter
stranded); and, separately, a fleet of real locksmithd daemons (tools/fleet-sim --endpoint).

Standard library only; run by Tests/harness/test-faults.
"""
import argparse
import base64
import bisect
import http.client
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "Tests", "harness"))
from locksmith_harness import free_port, group_key  # noqa: E402
LOCKER = os.path.join(ROOT, "build", "faults", "locker")
CTL = os.path.join(ROOT, "build", "bin", "locksmithctl")
FLEET = os.path.join(ROOT, "tools", "fleet-sim")
FLEETLOCKD = os.path.join(ROOT, "build", "tools", "locksmith-fleetlockd")
PREFIX = "coreos.com/updateengine/rebootlock"
REFUSALS = {"EBUSY": 16, "EEXIST": 17, "ENOENT": 2}
EBUSY, EEXIST, ENOENT = 16, 17, 2

T0 = time.monotonic()


def log(text):
    print("  [%6.1fs] %s" % (time.monotonic() - T0, text), flush=True)




def b64(text):
    return base64.b64encode(text.encode() if isinstance(text, str) else text).decode()


def post_json(endpoint, path, body, timeout=2.0):
    req = urllib.request.Request(endpoint + path, data=json.dumps(body).encode(), method="POST")
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return json.loads(r.read())


# ---- the cluster ---------------------------------------------------------------------------------

class Cluster:
    """Three etcd members on loopback; members can be killed, paused, restarted."""

    def __init__(self, size=3):
        base = "/dev/shm" if os.access("/dev/shm", os.W_OK) else None
        self.dir = tempfile.mkdtemp(prefix="locksmith-faults-etcd-", dir=base)
        self.names = ["m%d" % (i + 1) for i in range(size)]
        self.client = [free_port() for _ in self.names]
        self.peer = [free_port() for _ in self.names]
        self.urls = ["http://127.0.0.1:%d" % p for p in self.client]
        self.endpoints = ",".join(self.urls)
        self.procs = [None] * size
        self.paused = set()
        self.faults = []  # (mono, text): what was done to the cluster, in order
        initial = ",".join("%s=http://127.0.0.1:%d" % (n, p) for n, p in zip(self.names, self.peer))
        self.argv = [["etcd", "--name", n, "--data-dir", os.path.join(self.dir, n), "--enable-v2=true",
                      "--listen-client-urls", u, "--advertise-client-urls", u,
                      "--listen-peer-urls", "http://127.0.0.1:%d" % p, "--initial-advertise-peer-urls",
                      "http://127.0.0.1:%d" % p, "--initial-cluster", initial, "--initial-cluster-state", "new",
                      "--initial-cluster-token", "locksmith-faults", "--logger", "zap",
                      "--log-outputs", os.path.join(self.dir, n + ".log")]
                     for n, u, p in zip(self.names, self.urls, self.peer)]
        for i in range(size):
            self.start(i, quiet=True)
        self.wait_leader(30)

    def start(self, i, quiet=False):
        self.procs[i] = subprocess.Popen(self.argv[i], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                         stderr=subprocess.DEVNULL)
        if not quiet:
            self.note("start %s" % self.names[i], fault=False)

    def note(self, text, fault=True):
        self.faults.append((time.monotonic(), text, fault))
        log(("fault: " if fault else "") + text)

    def status(self, i):
        """(member id, leader id) as member i reports them, or None."""
        try:
            s = post_json(self.urls[i], "/v3/maintenance/status", {}, timeout=0.5)
            return s["header"]["member_id"], s.get("leader")
        except (OSError, ValueError, KeyError):
            return None

    def leader(self):
        """Index of the member that is leader (per the members that answer), or None."""
        answers = {i: self.status(i) for i in range(len(self.names))
                   if self.procs[i] and self.procs[i].poll() is None and i not in self.paused}
        ids = {a[0]: i for i, a in answers.items() if a}
        for a in answers.values():
            if a and a[1] in ids and a[1] != "0":
                return ids[a[1]]
        return None

    def wait_leader(self, seconds):
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            i = self.leader()
            if i is not None:
                return i
            time.sleep(0.1)
        raise RuntimeError("etcd cluster has no leader after %ds (logs in %s)" % (seconds, self.dir))

    def kill(self, i, why):
        if i in self.paused:
            self.resume(i)
        self.procs[i].send_signal(signal.SIGKILL)
        self.procs[i].wait()
        self.note("kill -9 %s (%s)" % (self.names[i], why))

    def pause(self, i, why):
        self.procs[i].send_signal(signal.SIGSTOP)
        self.paused.add(i)
        self.note("kill -STOP %s (%s)" % (self.names[i], why))

    def resume(self, i):
        self.procs[i].send_signal(signal.SIGCONT)
        self.paused.discard(i)
        self.note("kill -CONT %s" % self.names[i], fault=False)

    def restart_all(self):
        for p in self.procs:
            p.send_signal(signal.SIGCONT)
            p.send_signal(signal.SIGKILL)
        for p in self.procs:
            p.wait()
        self.paused.clear()
        self.note("kill -9 every member (whole-cluster restart)")

    def heal(self):
        """Every member running and not paused."""
        for i in list(self.paused):
            self.resume(i)
        for i, p in enumerate(self.procs):
            if p.poll() is not None:
                self.start(i)
        self.wait_leader(30)

    def stop(self):
        for p in self.procs:
            if p and p.poll() is None:
                p.send_signal(signal.SIGCONT)
                p.terminate()
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
        shutil.rmtree(self.dir, ignore_errors=True)

    # Reads that the whole cluster stands behind.
    def v2_get(self, key):
        """(value, modifiedIndex, X-Etcd-Index) with quorum=true, from the first member that answers."""
        for _ in range(100):
            for u in self.urls:
                try:
                    with urllib.request.urlopen(u + "/v2/keys/" + urllib.parse.quote(key) + "?quorum=true", timeout=2) as r:
                        body, index = json.loads(r.read()), int(r.headers.get("X-Etcd-Index", "0"))
                    return body["node"].get("value"), body["node"]["modifiedIndex"], index
                except urllib.error.HTTPError as e:
                    if e.code == 404:
                        return None, None, int(e.headers.get("X-Etcd-Index", "0"))
                except (OSError, ValueError, KeyError):
                    pass
            time.sleep(0.2)
        raise RuntimeError("no member answers a v2 read")

    def v3_range(self, key, revision=None):
        body = {"key": b64(key)}
        if revision is not None:
            body["revision"] = str(revision)
        for _ in range(100):
            for u in self.urls:
                try:
                    answer = post_json(u, "/v3/kv/range", body)
                    kvs = answer.get("kvs") or []
                    return kvs[0] if kvs else None
                except (OSError, ValueError):
                    pass
            time.sleep(0.2)
        raise RuntimeError("no member answers a v3 range")


# ---- a lost reply ---------------------------------------------------------------------------------

class ReplyDropper(threading.Thread):
    """An HTTP proxy in front of one etcd member. It forwards every request, but for the write
    (v2 PUT, v3 txn) with the given ordinal (1-based, counting distinct request bodies, so that
    libcurl's own resend of the same request counts as the same write) it closes the client's
    connection instead of passing etcd's answer on: the write is applied and the client never
    hears so."""

    def __init__(self, target_port, drop):
        super().__init__(daemon=True)
        self.target, self.drop = target_port, drop
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.url = "http://127.0.0.1:%d" % self.sock.getsockname()[1]
        self.bodies = []
        self.dropped = 0

    def run(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self.serve, args=(conn,), daemon=True).start()

    def serve(self, conn):
        f = conn.makefile("rb")
        try:
            while True:
                line = f.readline()
                if not line.strip():
                    return
                method, path, _ = line.decode().split(" ", 2)
                headers = {}
                while True:
                    h = f.readline().decode()
                    if h in ("\r\n", "\n", ""):
                        break
                    k, v = h.split(":", 1)
                    headers[k.strip().lower()] = v.strip()
                body = f.read(int(headers.get("content-length", "0")))
                up = http.client.HTTPConnection("127.0.0.1", self.target, timeout=10)
                send = {k: v for k, v in headers.items() if k in ("content-type", "authorization")}
                up.request(method, path, body=body if method != "GET" else None, headers=send)
                r = up.getresponse()
                data = r.read()
                extra = "".join("%s: %s\r\n" % (k, v) for k, v in r.getheaders()
                                if k.lower() in ("content-type", "x-etcd-index"))
                up.close()
                if (method == "PUT" and path.startswith("/v2/keys/")) or (method == "POST" and path == "/v3/kv/txn"):
                    if body not in self.bodies:
                        self.bodies.append(body)
                    if self.bodies.index(body) + 1 == self.drop:
                        self.dropped += 1
                        return  # etcd applied it; the client hears nothing
                conn.sendall(("HTTP/1.1 %d %s\r\n%sContent-Length: %d\r\n\r\n" % (r.status, r.reason, extra, len(data))).encode() + data)
        except (OSError, ValueError):
            return
        finally:
            f.close()
            conn.close()


def lost_reply_run(results, api, work, known_issues=False):
    """A write whose reply is lost, then the next call at once: the client must not act on what
    it remembered from before that write. (A) lock, reply lost (applied), then unlock: the slot
    must be given back, not reported as "not held" while etcd still lists it; (B) lock, unlock
    with its reply lost (applied), then lock: the client must not be told it already holds a slot
    that etcd no longer lists; (D) the same write sent on to a second endpoint after the first
    lost its reply must be reported as done. With known_issues: (C) max 1, lock with its reply lost (applied),
    then lock again: the library answers -EBUSY (it checks for a free slot before it checks for
    the holder, as the original did), so the caller waits for a slot that it holds itself."""
    print("== %s: a write applied but its reply lost" % api, flush=True)
    cluster = Cluster(size=1)
    try:
        # (D) max 1 and two endpoints: the lock's reply is lost on the first, the client sends the
        # same write to the second, which loses the compare-and-swap; the fresh read shows the
        # semaphore full with this client in it: that is its own write, so the lock succeeded.
        scenarios = [("A", "lock,unlock", 1, 3), ("B", "lock,unlock,lock", 2, 3), ("D", "lock", 1, 1)]
        if known_issues:
            scenarios.append(("C", "lock,lock", 1, 1))
        for name, steps, drop, top in scenarios:
            group = "lost-reply-%s-%s" % (api, name)
            subprocess.run([CTL, "-endpoint", cluster.urls[0], "-etcd-api", api, "-group", group, "set-max", str(top)],
                           check=True, capture_output=True, env=dict(os.environ, LOCKSMITH_ROOT=work))
            proxy = ReplyDropper(cluster.client[0], drop)
            proxy.start()
            endpoints = proxy.url + ("," + cluster.urls[0] if name == "D" else "")
            out = subprocess.run([LOCKER, "--endpoints", endpoints, "--api", api, "--group", group, "--prefix", "x" + name,
                                  "--timeout", "2s", "--steps", steps], capture_output=True, text=True, timeout=60)
            proxy.sock.close()
            calls = [line.split(" ", 9) for line in out.stdout.splitlines() if line.startswith("op ")]
            believes = None
            for c in calls:
                rc = int(c[3])
                if c[2] == "lock" and rc in (0, EEXIST):
                    believes = True
                elif c[2] == "unlock" and rc in (0, ENOENT):
                    believes = False
                elif c[2] == "lock" and rc == EBUSY:
                    believes = False if believes is None else believes  # told to wait for a slot
                else:
                    believes = None  # unknown
            key = group_key(group)
            if api == "v2":
                value = cluster.v2_get(key)[0]
            else:
                kv = cluster.v3_range(key)
                value = base64.b64decode(kv.get("value", "")).decode() if kv else None
            holds = ("x" + name) in (json.loads(value).get("holders") or []) if value else False
            trace = ["%s -> %s%s" % (c[2], "ok" if c[3] == "0" else os.strerror(int(c[3])), (" (" + c[9][:120] + ")") if len(c) > 9 else "")
                     for c in calls]
            trace.append("etcd lists the client as holder: %s; the client believes it holds: %s; replies dropped: %d"
                         % (holds, believes, proxy.dropped))
            print("%s %s: %s" % (api, name, "; ".join(trace)))
            results.check("%s: lost reply %s (%s, reply of write %d lost): the client's belief matches etcd"
                          % (api, name, steps, drop), proxy.dropped > 0 and believes is not None and believes == holds, trace)
    finally:
        cluster.stop()


# ---- fault schedule ------------------------------------------------------------------------------

def schedule(start, duration):
    """The faults of a run: a 40 s cycle (kill -9 the leader, restart it 3 s later; SIGSTOP the
    leader or a follower for 5 s; kill -9 every member and start them 2 s later; kill -9 a
    follower, restart it 3 s later) from 4 s on, as long as the cycle fits; ends 6 s before the
    clients stop."""
    out = []
    t, cycle = start + 4, 0
    steps = [(0, "kill-leader", 3), (10, "pause-leader" if cycle % 2 == 0 else "pause-follower", 5),
             (20, "restart-all", 2), (30, "kill-follower", 3)]
    while True:
        for offset, kind, length in steps:
            if cycle % 2 == 1 and kind == "pause-leader":
                kind = "pause-follower"
            if t + offset + length > start + duration - 6:
                return out
            out.append((t + offset, kind, length))
        t += 40
        cycle += 1


def run_faults(cluster, plan, stop_event):
    """Carries out the plan (times are time.monotonic()); each fault's repair follows it."""
    for at, kind, length in plan:
        while time.monotonic() < at:
            if stop_event.wait(min(0.05, at - time.monotonic())):
                return
        leader = cluster.leader()
        if leader is None:
            leader = 0
        followers = [i for i in range(len(cluster.names)) if i != leader]
        if kind == "kill-leader":
            cluster.kill(leader, "the leader")
            victims = [leader]
        elif kind == "kill-follower":
            cluster.kill(followers[0], "a follower")
            victims = [followers[0]]
        elif kind == "pause-leader":
            cluster.pause(leader, "the leader")
            victims = [leader]
        elif kind == "pause-follower":
            cluster.pause(followers[-1], "a follower")
            victims = [followers[-1]]
        else:
            cluster.restart_all()
            victims = list(range(len(cluster.names)))
        if stop_event.wait(length):
            return
        for i in victims:
            if i in cluster.paused:
                cluster.resume(i)
            elif cluster.procs[i].poll() is not None:
                cluster.start(i)


# ---- v2 watcher ----------------------------------------------------------------------------------

class V2Watcher(threading.Thread):
    """Follows every change of key from index `after`+1 on, one waitIndex request at a time,
    moving to the next member when one fails or keeps quiet for a second."""

    def __init__(self, cluster, key, after):
        super().__init__(daemon=True)
        self.cluster, self.key, self.next = cluster, key, after + 1
        self.events = []
        self.failure = None
        self.switches = 0
        self.errors = {}
        self.done = threading.Event()
        self.path = "/v2/keys/" + urllib.parse.quote(key)

    def run(self):
        member = 0
        conn = None
        reused = False
        while not self.done.is_set():
            try:
                if conn is None:
                    conn = http.client.HTTPConnection("127.0.0.1", self.cluster.client[member], timeout=1.0)
                    reused = False
                elif not reused:
                    reused = True
                conn.request("GET", "%s?wait=true&waitIndex=%d" % (self.path, self.next))
                r = conn.getresponse()
                data = r.read()
                body = json.loads(data)
            except (OSError, ValueError, http.client.HTTPException) as e:
                self.errors[type(e).__name__] = self.errors.get(type(e).__name__, 0) + 1
                if conn:
                    conn.close()
                conn = None
                if not reused:  # a kept-alive connection that the member closed is no failure
                    member = (member + 1) % len(self.cluster.urls)
                    self.switches += 1
                    if member == 0:
                        time.sleep(0.02)  # every member failed: do not spin while they restart
                continue
            if "errorCode" in body:
                if body["errorCode"] == 401:
                    self.failure = "the watcher fell out of etcd's event history at index %d: %s" % (self.next, body.get("message"))
                    return
                conn.close()
                conn = None
                member = (member + 1) % len(self.cluster.urls)
                continue
            node = body.get("node", {})
            index = node.get("modifiedIndex")
            if not isinstance(index, int):
                continue
            self.events.append({"index": index, "action": body.get("action"), "value": node.get("value"),
                                "prev": (body.get("prevNode") or {}).get("modifiedIndex"), "mono": time.monotonic()})
            self.next = index + 1

    def caught_up(self, index, seconds=30):
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and not self.failure:
            if self.events and self.events[-1]["index"] >= index:
                return True
            time.sleep(0.05)
        return False


def follow_history(cluster, api, key):
    """For v2, a watcher that follows key from now on (etcd v2 keeps no history to read back);
    None for v3, whose revisions are read back afterwards."""
    if api != "v2":
        return None
    _, _, index = cluster.v2_get(key)
    watcher = V2Watcher(cluster, key, index)
    watcher.start()
    return watcher


def read_history(cluster, api, key, watcher):
    """[(index, value, _)] of every change of key during the run, and problems with its
    completeness: v2 from the watcher (stopped here), v3 read back revision by revision."""
    if api != "v2":
        return v3_history(cluster, key)
    _, last_index, _ = cluster.v2_get(key)
    caught = watcher.caught_up(last_index)
    watcher.done.set()
    history, problems = v2_history(watcher)
    if watcher.failure:
        problems.append(watcher.failure)
    elif not caught:
        problems.append("the watch log never reached the final index %s" % last_index)
    return history, problems


def v2_history(watcher):
    """[(index, value, mono)] from the watch log, and problems with its continuity."""
    problems = []
    history = []
    last = None
    for e in watcher.events:
        if e["action"] not in ("create", "compareAndSwap", "set", "update"):
            problems.append("unexpected %s at index %d" % (e["action"], e["index"]))
        if last is not None and e["prev"] != last:
            problems.append("event at index %d follows index %s, but the watch log's previous event is %d"
                            % (e["index"], e["prev"], last))
        if last is None and e["action"] != "create":
            problems.append("the watch log does not start with the key's creation (index %d, %s)" % (e["index"], e["action"]))
        history.append((e["index"], e["value"], e["mono"]))
        last = e["index"]
    return history, problems


def v3_history(cluster, key):
    """[(mod_revision, value, None)] for every version of key, oldest first, read back one
    revision at a time; and problems with its continuity."""
    problems = []
    out = []
    kv = cluster.v3_range(key)
    while kv:
        revision, version = int(kv["mod_revision"]), int(kv["version"])
        out.append((revision, base64.b64decode(kv.get("value", "")).decode(), None))
        if version == 1:
            break
        older = cluster.v3_range(key, revision - 1)
        if not older or int(older["version"]) != version - 1:
            problems.append("version %d (revision %d) is not preceded by version %d" % (version, revision, version - 1))
            break
        kv = older
    out.reverse()
    if out and int(cluster.v3_range(key, out[0][0])["create_revision"]) != out[0][0]:
        problems.append("the history does not reach back to the key's creation")
    return out, problems


# ---- the checks ----------------------------------------------------------------------------------

def parse_locker(path):
    ops, finals, stats = [], {}, {}
    with open(path) as f:
        for line in f:
            parts = line.rstrip("\n").split(" ", 9)
            if parts[0] == "op":
                ops.append({"id": parts[1], "op": parts[2], "rc": int(parts[3]), "m0": int(parts[4]) / 1e6,
                            "m1": int(parts[5]) / 1e6, "r0": int(parts[6]) / 1e6, "r1": int(parts[7]) / 1e6,
                            "extra": int(parts[8]), "why": parts[9] if len(parts) > 9 else ""})
            elif parts[0] == "final":
                finals[parts[1]] = int(parts[2])
            elif parts[0] == "stats":
                stats[parts[1]] = (int(parts[2]), int(parts[3]))
            elif parts[0] == "jobs":
                stats.setdefault("jobs", {})[parts[1]] = int(parts[2])
    return ops, finals, stats


def never_sent(why):
    """Whether an error says that no endpoint even received the request (every one refused the
    connection or did not accept it in time): such a call cannot have changed anything."""
    inner = why.split("(", 1)[1] if "(" in why else ""
    parts = [p for p in inner.split("; ") if p.strip()]
    return bool(parts) and all(("Couldn't connect" in p or "Connection refused" in p or "Failed to connect" in p
                                or "Connection timed out" in p or "Resolving timed out" in p) for p in parts)


def classify(op):
    """ok, busy, exists, notfound, error (not sent) or indeterminate."""
    if op["rc"] == 0:
        return "ok"
    if op["rc"] == EBUSY and op["op"] == "lock":
        return "busy"
    if op["rc"] == EEXIST and op["op"] == "lock":
        return "exists"
    if op["rc"] == ENOENT and op["op"] == "unlock":
        return "notfound"
    return "error" if never_sent(op["why"]) else "indeterminate"


def check_documents(history, maximum):
    """Per revision: a well-formed document, at most max holders, free = max - holders; per step
    between revisions: one holder added or removed (or only max changed). Returns violations,
    the transitions [(position, id, 'add'|'remove')], and the most holders seen."""
    violations, transitions = [], []
    most = 0
    previous = None
    for pos, (index, value, _) in enumerate(history):
        try:
            doc = json.loads(value)
            holders = doc.get("holders") or []
            free, top = int(doc["semaphore"]), int(doc["max"])
        except (ValueError, KeyError, TypeError) as e:
            violations.append("index %d: not a semaphore document (%s): %r" % (index, e, value))
            previous = None
            continue
        most = max(most, len(holders))
        if len(set(holders)) != len(holders):
            violations.append("index %d: a holder listed twice: %s" % (index, holders))
        if top == maximum and len(holders) > maximum:
            violations.append("index %d: %d holders, max %d: %s" % (index, len(holders), maximum, holders))
        if free != top - len(holders):
            violations.append("index %d: semaphore %d, but max %d and %d holders" % (index, free, top, len(holders)))
        if previous is not None:
            before, after = set(previous[0]), set(holders)
            added, removed = after - before, before - after
            if len(added) + len(removed) > 1:
                violations.append("index %d: more than one holder changed at once (added %s, removed %s): an update was lost"
                                  % (index, sorted(added), sorted(removed)))
            elif not added and not removed and top == previous[1]:
                violations.append("index %d: a write that changed nothing" % index)
            for h in sorted(added):
                transitions.append((pos, h, "add"))
            for h in sorted(removed):
                transitions.append((pos, h, "remove"))
        elif holders:
            for h in sorted(holders):
                transitions.append((pos, h, "add"))
        previous = (holders, top)
    return violations, transitions, most


def match_client(ops, transitions):
    """Matches one client's operations (in call order) with its transitions in the history (in
    order). A success must account for exactly one transition of its kind (lock: added, unlock:
    removed); a refusal for none; a call with an unknown outcome (and -EEXIST / -ENOENT, which a
    retried write of the same call may have caused) for at most one. Returns the transition
    position each operation got (or None), or None if no assignment explains everything."""
    kinds = [t[2] for t in transitions]
    # reachable[j] = how we got to having used the first j transitions
    reachable = {0: None}
    trail = []
    for op in ops:
        want = "add" if op["op"] == "lock" else "remove"
        c = op["class"]
        nxt = {}
        # Where both are possible, a transition is credited to the earliest call that may have
        # made it (the weakest claim on its time).
        if c in ("busy", "error", "indeterminate", "exists", "notfound"):
            for j in reachable:
                nxt[j] = (j, False)
        if c in ("ok", "indeterminate", "exists", "notfound"):
            for j in reachable:
                if j < len(kinds) and kinds[j] == want:
                    nxt.setdefault(j + 1, (j, True))
        trail.append(nxt)
        reachable = nxt
        if not reachable:
            return None, op
    if len(kinds) not in reachable:
        return None, None
    # Walk back.
    assignment = [None] * len(ops)
    j = len(kinds)
    for k in range(len(ops) - 1, -1, -1):
        prev, used = trail[k][j]
        if used:
            assignment[k] = transitions[prev][0]
        j = prev
    return assignment, None


def check_locker_run(history, ops, finals, ids, maximum):
    violations, transitions, most = check_documents(history, maximum)
    by_client = {i: [] for i in ids}
    for t in transitions:
        if t[1] not in by_client:
            violations.append("index %d: holder %s is no client of this run" % (history[t[0]][0], t[1]))
            continue
        by_client[t[1]].append(t)
    writes = [o for o in ops if o["op"] in ("lock", "unlock")]
    for o in writes:
        o["class"] = classify(o)
    applied_unknown = 0
    ordered = []  # (m0, m1, position, definite)
    for cid in ids:
        mine = [o for o in writes if o["id"] == cid]
        assignment, stuck = match_client(mine, by_client[cid])
        if assignment is None:
            trans = ", ".join("%s@%d" % (t[2], history[t[0]][0]) for t in by_client[cid][:12])
            seq = ", ".join("%s:%s" % (o["op"], o["class"]) for o in mine[:12])
            violations.append("client %s: its reported operations do not explain its history (transitions %s...; calls %s...)%s"
                              % (cid, trans, seq, " at %s %s" % (stuck["op"], stuck["class"]) if stuck else ""))
            continue
        for o, pos in zip(mine, assignment):
            if pos is not None:
                ordered.append((o["m0"], o["m1"], pos, o["class"] == "ok", o))
                if o["class"] != "ok":
                    applied_unknown += 1
    # Real-time order: a success that ended before another call began has the earlier revision.
    # (For calls with an unknown outcome only the lower bound holds: their write may land late.)
    definite = sorted((e for e in ordered if e[3]), key=lambda e: e[1])
    ends = [e[1] for e in definite]
    prefix_max = []
    m = None
    for e in definite:
        m = e if m is None or e[2] > m[2] else m
        prefix_max.append(m)

    def show(e):
        o = e[4]
        return "%s %s %s (%.6f..%.6f, index %d)" % (o["id"], o["op"], o["class"], e[0] - T0, e[1] - T0, history[e[2]][0])
    for e in ordered:
        k = bisect.bisect_left(ends, e[0])
        if k and prefix_max[k - 1][2] >= e[2]:
            violations.append("%s is not after %s, which ended before it began" % (show(e), show(prefix_max[k - 1])))
    # Upper bound for successes: their transition is no later than any success that began after them.
    starts = sorted(definite, key=lambda e: e[0])
    suffix_min = [0] * len(starts)
    m = float("inf")
    for k in range(len(starts) - 1, -1, -1):
        m = min(m, starts[k][2])
        suffix_min[k] = m
    start_times = [e[0] for e in starts]
    for e in definite:
        k = bisect.bisect_right(start_times, e[1])
        if k < len(starts) and suffix_min[k] <= e[2]:
            violations.append("%s is not before a success at index %d that began after it ended" % (show(e), history[suffix_min[k]][0]))
    # The end: nobody holds a slot, and every client says it holds none.
    if history:
        last = json.loads(history[-1][1])
        if last.get("holders"):
            violations.append("slots still held at the end (a client believes it gave them back): %s" % last["holders"])
    missing = [i for i in ids if i not in finals]
    if missing:
        violations.append("clients that did not finish: %s" % missing)
    return violations, most, applied_unknown


def failover(faults, successes):
    """For each fault: seconds until the first successful operation that began after it."""
    out = []
    successes = sorted(successes)
    for at, text, is_fault in faults:
        if not is_fault:
            continue
        after = [end for start, end in successes if start >= at]
        out.append((text, at, (min(after) - at) if after else None))
    return out


def figures(out, tag, faults, times):
    print("%s: faults injected:" % tag)
    for at, text, is_fault in faults:
        print("    +%6.2fs  %s%s" % (at - T0, "" if is_fault else "(repair) ", text))
    known = [t for _, _, t in times if t is not None]
    for text, at, t in times:
        print("    failover after %-45s %s" % (text, "%.2fs" % t if t is not None else "never"))
    if known:
        print("%s: failover: max %.2fs, median %.2fs over %d faults" % (tag, max(known), statistics.median(known), len(known)))
    out["failover"] = known
    return len(known) == len(times)


# ---- runs ----------------------------------------------------------------------------------------

class Results:
    def __init__(self):
        self.passed = self.failed = 0

    def check(self, name, ok, detail=None):
        if ok:
            self.passed += 1
            print("ok    " + name)
        else:
            self.failed += 1
            print("FAIL  " + name)
            for line in (detail or [])[:30]:
                print("      " + line)
            if detail and len(detail) > 30:
                print("      ... and %d more" % (len(detail) - 30))
        sys.stdout.flush()


def locker_run(results, api, threads, duration, maximum, work, queue=False):
    """The locker's clients under faults; with queue, each waits for its turn in the fair queue
    (a queue-ttl of 5 s) and every client must also have had turns and finished in time."""
    tag = "%s%s (%d clients, max %d, %ds)" % ("queue " if queue else "", api, threads, maximum, duration)
    name = ("queue " if queue else "") + api
    print("== %s" % tag, flush=True)
    cluster = Cluster()
    try:
        group = ("faults-queue-" if queue else "faults-") + api
        key = group_key(group)
        watcher = follow_history(cluster, api, key)
        subprocess.run([CTL, "-endpoint", cluster.endpoints, "-etcd-api", api, "-group", group, "set-max", str(maximum)],
                       check=True, capture_output=True, env=dict(os.environ, LOCKSMITH_ROOT=work))
        out_path = os.path.join(work, "locker-%s%s.log" % ("queue-" if queue else "", api))
        prefix = ("q" if queue else "c") + api
        with open(out_path, "w") as out, open(out_path + ".err", "w") as err:
            locker = subprocess.Popen([LOCKER, "--endpoints", cluster.endpoints, "--api", api, "--threads", str(threads),
                                       "--duration", str(duration), "--group", group, "--prefix", prefix,
                                       "--timeout", "1s"] + (["--mode", "queue", "--queue-ttl", "5s"] if queue else []),
                                      stdout=out, stderr=err)
            start = time.monotonic()
            finished = None
            stop = threading.Event()
            chaos = threading.Thread(target=run_faults, args=(cluster, schedule(start, duration), stop), daemon=True)
            chaos.start()
            chaos.join(duration + 5)
            stop.set()
            cluster.heal()
            try:
                locker.wait(duration + 120)
                finished = time.monotonic() - start
            except subprocess.TimeoutExpired:
                locker.kill()
                locker.wait()
                results.check("%s: the clients finish" % name, False, ["the locker did not finish in time: killed"])
        if locker.returncode != 0:
            with open(out_path + ".err") as f:
                results.check("%s: locker exit status" % name, False, ["exit %d" % locker.returncode] + f.read().splitlines())
        ops, finals, stats = parse_locker(out_path)
        ids = ["%s-%02d" % (prefix, i + 1) for i in range(threads)]
        history, problems = read_history(cluster, api, key, watcher)
        if watcher:
            with open(os.path.join(work, "watch-%s.jsonl" % name.replace(" ", "-")), "w") as f:
                f.writelines(json.dumps(e) + "\n" for e in watcher.events)
            source = "watch log of %d events; the watcher moved to another member %d times; failed requests: %s" % (
                len(history), watcher.switches, ", ".join("%s %d" % kv for kv in sorted(watcher.errors.items())) or "none")
        else:
            source = "%d revisions read back" % len(history)
        results.check("%s: complete history (%s)" % (name, source), not problems, problems)
        violations, most, applied_unknown = check_locker_run(history, ops, finals, ids, maximum)
        writes = [o for o in ops if o["op"] in ("lock", "unlock")]
        counts = {}
        for o in writes:
            counts[o["class"]] = counts.get(o["class"], 0) + 1
        gets = [o for o in ops if o["op"] == "get"]
        print("%s: operations: %d ok, %d busy, %d errors (never sent), %d indeterminate (%d of them applied), "
              "%d exists/notfound after a retried write; %d reads to settle an unknown outcome"
              % (name, counts.get("ok", 0), counts.get("busy", 0), counts.get("error", 0), counts.get("indeterminate", 0),
                 applied_unknown, counts.get("exists", 0) + counts.get("notfound", 0), len(gets)))
        print("%s: history: %d changes, most holders at once %d (max %d); violations: %d"
              % (name, len(history), most, maximum, len(violations)))
        results.check("%s: never more than %d holders, every change explained by a client's call, in real-time order, "
                      "nothing lost or left held" % (name, maximum), not violations and bool(history), violations)
        successes = [(o["m0"], o["m1"]) for o in writes if o["rc"] == 0]
        times = failover(cluster.faults, successes)
        complete = figures({}, name, cluster.faults, times)
        results.check("%s: the clients worked again after every fault" % name, complete and len(times) > 0,
                      ["no successful operation after: " + t for t, _, x in times if x is None])
        if queue:
            # No waiter stranded: each client had turns, and after the end of the run the ones
            # still in line got theirs within queue-ttl and the repair of the faults.
            jobs = stats.get("jobs", {})
            idle = [i for i in ids if jobs.get(i, 0) < 1]
            print("%s: turns per client: min %d, median %d, max %d; all done %.1fs after the run's end"
                  % (name, min(jobs.values() or [0]), statistics.median(jobs.values() or [0]), max(jobs.values() or [0]),
                     finished - duration if finished is not None else -1))
            results.check("%s: every waiter had its turns and none was stranded (all done within 60 s of the end)" % name,
                          not idle and len(jobs) == threads and finished is not None and finished <= duration + 60,
                          ["clients without a turn: %s" % idle] if idle else ["finished %s s after the start" % finished])
    finally:
        cluster.stop()


def fleetlock_run(results, api, clients, duration, maximum, work):
    """locksmith-fleetlockd on the cluster while its leader is killed and paused: FleetLock
    clients alternate pre-reboot and steady-state. One write of the server may take and give back
    several slots (a batch), so each revision is checked on its own: well-formed, never more than
    max holders. Every pre-reboot answered 200 must show its id as a holder in the history, and
    nothing is left held at the end."""
    tag = "fleetlock %s (%d FleetLock clients, max %d, %ds)" % (api, clients, maximum, duration)
    name = "fleetlock " + api
    print("== %s" % tag, flush=True)
    cluster = Cluster()
    server = None
    try:
        group = "faults-fleetlock-" + api
        key = group_key(group)
        watcher = follow_history(cluster, api, key)
        env = dict(os.environ, LOCKSMITH_ROOT=work, LD_LIBRARY_PATH=os.path.join(ROOT, "build", "lib"))
        subprocess.run([CTL, "-endpoint", cluster.endpoints, "-etcd-api", api, "-group", group, "set-max", str(maximum)],
                       check=True, capture_output=True, env=env)
        port = free_port()
        log_path = os.path.join(work, "fleetlockd-%s.log" % api)
        with open(log_path, "w") as server_log:
            server = subprocess.Popen([FLEETLOCKD, "--listen", "127.0.0.1:%d" % port, "--endpoint", cluster.endpoints,
                                       "--etcd-api", api, "--request-timeout", "1s", "--threads", "16", "--group", group],
                                      env=env, stdout=server_log, stderr=server_log)
        base = "http://127.0.0.1:%d" % port
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.05)

        def call(path, node_id):
            body = json.dumps({"client_params": {"id": node_id, "group": group}}, indent=2).encode()
            req = urllib.request.Request(base + path, data=body, method="POST", headers={"fleet-lock-protocol": "true"})
            if req.has_header("Content-type"):
                req.remove_header("Content-type")
            t0 = time.monotonic()
            try:
                with urllib.request.urlopen(req, timeout=30) as r:
                    status, kind = r.status, None
            except urllib.error.HTTPError as e:
                status = e.code
                try:
                    kind = json.loads(e.read()).get("kind")
                except ValueError:
                    kind = "?"
            except OSError as e:
                status, kind = 0, type(e).__name__
            return {"path": path, "id": node_id, "status": status, "kind": kind, "m0": t0, "m1": time.monotonic()}

        calls, lock = [], threading.Lock()
        start = time.monotonic()
        end = start + duration

        def client(i):
            node_id = "fl-%s-%02d" % (api, i)
            mine = []
            while time.monotonic() < end:
                got = call("/v1/pre-reboot", node_id)
                mine.append(got)
                if got["status"] != 200:
                    time.sleep(0.01 + (i % 5) * 0.005)
                    continue
                time.sleep(0.01 + (i % 7) * 0.005)
                while True:  # give it back, whatever it takes
                    back = call("/v1/steady-state", node_id)
                    mine.append(back)
                    if back["status"] == 200:
                        break
                    time.sleep(0.1)
            with lock:
                calls.extend(mine)

        threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(clients)]
        for t in threads:
            t.start()
        stop = threading.Event()
        chaos = threading.Thread(target=run_faults, args=(cluster, schedule(start, duration), stop), daemon=True)
        chaos.start()
        chaos.join(duration + 5)
        stop.set()
        cluster.heal()
        for t in threads:
            t.join(120)
        stuck = [t for t in threads if t.is_alive()]
        history, problems = read_history(cluster, api, key, watcher)
        source = ("watch log of %d events" if watcher else "%d revisions read back") % len(history)
        results.check("%s: complete history (%s)" % (name, source), not problems, problems)
        violations, most, ever = [], 0, set()
        for index, value, _ in history:
            try:
                doc = json.loads(value)
                holders = doc.get("holders") or []
                if int(doc["semaphore"]) != int(doc["max"]) - len(holders) or len(holders) > maximum:
                    violations.append("index %d: %r" % (index, value))
                most = max(most, len(holders))
                ever.update(holders)
            except (ValueError, KeyError, TypeError) as e:
                violations.append("index %d: not a semaphore document (%s)" % (index, e))
        granted = [c for c in calls if c["path"] == "/v1/pre-reboot" and c["status"] == 200]
        phantom = sorted({c["id"] for c in granted} - ever)
        if phantom:
            violations.append("granted but never a holder in etcd's history: %s" % phantom[:5])
        if history and (json.loads(history[-1][1]).get("holders") or []):
            violations.append("slots still held at the end: %s" % json.loads(history[-1][1])["holders"])
        if stuck:
            violations.append("%d clients did not finish" % len(stuck))
        kinds = {}
        for c in calls:
            if c["status"] != 200:
                kinds["%s %s" % (c["status"], c["kind"])] = kinds.get("%s %s" % (c["status"], c["kind"]), 0) + 1
        print("%s: %d calls, %d slots granted, most holders at once %d (max %d); not 200: %s"
              % (name, len(calls), len(granted), most, maximum, ", ".join("%s x%d" % kv for kv in sorted(kinds.items())) or "none"))
        results.check("%s: never more than %d holders, every grant in etcd's history, nothing left held" % (name, maximum),
                      not violations and bool(granted), violations)
        successes = [(c["m0"], c["m1"]) for c in calls if c["status"] == 200]
        times = failover(cluster.faults, successes)
        complete = figures({}, name, cluster.faults, times)
        results.check("%s: the server answered again after every fault" % name, complete and len(times) > 0,
                      ["no successful call after: " + t for t, _, x in times if x is None])
    finally:
        if server:
            server.terminate()
            try:
                server.wait(10)
            except subprocess.TimeoutExpired:
                server.kill()
        cluster.stop()


def fleet_run(results, api, nodes, maximum, work):
    tag = "fleet %s (%d locksmithd, max %d)" % (api, nodes, maximum)
    print("== %s" % tag, flush=True)
    cluster = Cluster()
    try:
        key = group_key("")
        watcher = follow_history(cluster, api, key)
        events_path = os.path.join(work, "fleet-%s.events" % api)
        log_path = os.path.join(work, "fleet-%s.log" % api)
        with open(log_path, "w") as out:
            fleet = subprocess.Popen([FLEET, "--endpoint", cluster.endpoints, "--etcd-api", api, "--nodes", str(nodes),
                                      "--max", str(maximum), "--reboot-time", "4", "--timeout", "150", "--events", events_path],
                                     stdout=out, stderr=subprocess.STDOUT)
            started = None
            deadline = time.monotonic() + 90
            while started is None and time.monotonic() < deadline and fleet.poll() is None:
                if os.path.exists(events_path):
                    with open(events_path) as f:
                        for line in f:
                            if json.loads(line)["event"] == "start":
                                started = time.monotonic()
                time.sleep(0.05)
            if started is None:
                fleet.kill()
                fleet.wait()
                with open(log_path) as f:
                    results.check("fleet %s: the fleet starts" % api, False, f.read().splitlines()[-20:])
                return
            plan = [(started + 1.5, "kill-leader", 3), (started + 6.5, "pause-leader", 3), (started + 11.5, "restart-all", 2),
                    (started + 16, "kill-follower", 3)]
            stop = threading.Event()
            chaos = threading.Thread(target=run_faults, args=(cluster, plan, stop), daemon=True)
            chaos.start()
            try:
                fleet.wait(200)
            except subprocess.TimeoutExpired:
                fleet.send_signal(signal.SIGTERM)
                fleet.wait(30)
            stop.set()
            chaos.join(10)
            cluster.heal()
        with open(log_path) as f:
            summary = f.read().splitlines()
        with open(events_path) as f:
            events = [json.loads(line) for line in f]
        for line in summary[-6:]:
            print("%s: fleet-sim: %s" % (api, line))
        results.check("fleet %s: every node rebooted and gave its slot back (fleet-sim exit %d)" % (api, fleet.returncode),
                      fleet.returncode == 0, summary[-10:])
        history, problems = read_history(cluster, api, key, watcher)
        source = ("watch log of %d events" if watcher else "%d revisions read back") % len(history)
        results.check("fleet %s: complete history (%s)" % (api, source), not problems, problems)
        violations, transitions, most = check_documents(history, maximum)
        ids = {"%032x" % (0x5eed0000 + i + 1) for i in range(nodes)}
        per = {i: [] for i in ids}
        for pos, h, kind in transitions:
            if h not in per:
                violations.append("index %d: holder %s is no node of the fleet" % (history[pos][0], h))
            else:
                per[h].append(kind)
        for h, kinds in sorted(per.items()):
            if kinds != ["add", "remove"]:
                violations.append("node %s: slot history %s, expected one add then one remove" % (h, kinds))
        by_index = {index: value for index, value, _ in history}
        reboots = [e for e in events if e["event"] == "reboot"]
        for e in reboots:
            if e["id"] not in e["holders"]:
                violations.append("%s rebooted without holding a slot (etcd: %s)" % (e["node"], e["holders"]))
            value = by_index.get(e["index"])
            if value is None or sorted(json.loads(value).get("holders") or []) != sorted(e["holders"]):
                violations.append("%s rebooted at index %s, which is not in the history as read" % (e["node"], e["index"]))
        if len(reboots) != nodes:
            violations.append("%d reboots for %d nodes" % (len(reboots), nodes))
        if history and json.loads(history[-1][1]).get("holders"):
            violations.append("slots still held at the end: %s" % json.loads(history[-1][1])["holders"])
        print("fleet %s: %d reboots, history %d changes, most holders at once %d (max %d); violations: %d"
              % (api, len(reboots), len(history), most, maximum, len(violations)))
        results.check("fleet %s: never more than %d holders, each node rebooted holding a slot, took and gave back exactly one"
                      % (api, maximum), not violations and bool(history), violations)
        # Failover: from each fault to the next change of the semaphore (watch log times, v2) or
        # the next reboot or return of a node (v3, which has no times in its history).
        if api == "v2":
            marks = [(e["mono"], e["mono"]) for e in watcher.events]
        else:
            marks = [(e["mono"], e["mono"]) for e in events if e["event"] in ("reboot", "done")]
        times = [(t, at, x) for t, at, x in failover(cluster.faults, marks)]
        figures({}, "fleet " + api, cluster.faults, times)
    finally:
        cluster.stop()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--duration", type=int, default=45, help="seconds of contention per API (default 45)")
    ap.add_argument("--clients", type=int, default=50, help="locker clients (default 50)")
    ap.add_argument("--max", type=int, default=3, help="slots (default 3)")
    ap.add_argument("--nodes", type=int, default=10, help="locksmithd daemons in the fleet part (default 10)")
    ap.add_argument("--apis", default="v3,v2", help="APIs for the clients (default v3,v2)")
    ap.add_argument("--queue-apis", default="v3,v2", help="APIs for the clients in the fair queue (default v3,v2; '' skips them)")
    ap.add_argument("--queue-clients", type=int, default=20, help="clients in the fair queue (default 20)")
    ap.add_argument("--queue-duration", type=int, default=30, help="seconds of the queue runs (default 30)")
    ap.add_argument("--fleetlock-apis", default="v3", help="APIs for locksmith-fleetlockd under faults (default v3; '' skips it)")
    ap.add_argument("--fleetlock-clients", type=int, default=30, help="FleetLock clients (default 30)")
    ap.add_argument("--fleet-apis", default="v2", help="APIs for the fleet part (default v2; '' skips it)")
    ap.add_argument("--lost-reply", default="v3,v2", help="APIs for the lost-reply checks (default v3,v2; '' skips them)")
    ap.add_argument("--known-issues", action="store_true", help="also run the lost-reply check of a known, unfixed issue (C)")
    ap.add_argument("--keep", action="store_true", help="keep the work directory (logs of every client)")
    args = ap.parse_args()
    apis = [a for a in args.apis.split(",") if a]
    fleet_apis = [a for a in args.fleet_apis.split(",") if a]
    queue_apis = [a for a in args.queue_apis.split(",") if a]
    fleetlock_apis = [a for a in args.fleetlock_apis.split(",") if a]
    lost_apis = [a for a in args.lost_reply.split(",") if a]
    if any(a not in ("v2", "v3") for a in apis + fleet_apis + queue_apis + fleetlock_apis) or args.duration < 10 or args.queue_duration < 10 or args.clients < 1 or args.max < 1:
        ap.error("APIs are v2 or v3; duration at least 10 s; clients and max at least 1")
    for path in (LOCKER, CTL, FLEET) + ((FLEETLOCKD,) if fleetlock_apis else ()):
        if not os.access(path, os.X_OK):
            sys.exit("chaos: %s is missing: build it first (Tests/harness/test-faults does)" % path)
    if not shutil.which("etcd"):
        sys.exit("chaos: etcd is missing: apt-get install etcd-server")
    work = tempfile.mkdtemp(prefix="locksmith-faults-")
    with open(os.path.join(work, "t0"), "w") as f:
        f.write("%.6f\n" % T0)
    results = Results()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        for api in lost_apis:
            lost_reply_run(results, api, work, args.known_issues)
        for api in apis:
            locker_run(results, api, args.clients, args.duration, args.max, work)
        for api in queue_apis:
            locker_run(results, api, args.queue_clients, args.queue_duration, args.max, work, queue=True)
        for api in fleetlock_apis:
            fleetlock_run(results, api, args.fleetlock_clients, args.queue_duration, args.max, work)
        for api in fleet_apis:
            fleet_run(results, api, args.nodes, args.max, work)
    finally:
        if args.keep or results.failed:
            print("logs kept in %s" % work)
        else:
            shutil.rmtree(work, ignore_errors=True)
    print("fault checks: %d passed, %d failed" % (results.passed, results.failed))
    return 1 if results.failed else 0


if __name__ == "__main__":
    sys.exit(main())
