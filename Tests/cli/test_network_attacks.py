"""Attacks from the network on the etcd client (security issue 12), tested on the real programs
against hostile servers on loopback:

- item 4: `-etcd-cafile` limits trust to that CA; the system's CA directory (libcurl's CAPATH,
  /etc/ssl/certs on Debian) is not trusted alongside it (`SystemCADirectory`);
- item 5: answers are bounded: an endless answer to a read, or an endless watch stream, is cut
  off past a cap of a few MiB ("larger than"), and the program's memory stays small
  (`EndlessAnswers`);
- item 9: the protocol restriction (http and https only, for requests and for redirects) cannot
  silently fail: a libcurl that refuses CURLOPT_PROTOCOLS_STR (before 7.85) gets the bitmask
  options, and one that refuses both gets no request at all (`ProtocolRestriction`, through the
  stand-in libcurl of Tests/standins/curl-shim.c);
- extra A: a v3 auth token is sent only if it is a plain token: no header injection from the
  server (`AuthToken`);
- extra B: an endpoint with control characters is refused before any request, with a message
  that names the setting and does not echo the raw characters (`EndpointControlCharacters`).

`LOCKSMITHCTL`, `LOCKSMITH_RUN`, `LOCKSMITH_LIBDIR` and `CURL_SHIM_DIR` point the tests at other
builds."""
import base64
import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import threading
import time
import unittest
import urllib.request

import harness

RUN = os.environ.get("LOCKSMITH_RUN", os.path.join(harness.ROOT, "build", "tools", "locksmith-run"))
LIBDIR = os.environ.get("LOCKSMITH_LIBDIR", os.path.join(harness.ROOT, "build", "lib"))
SHIM_DIR = os.environ.get("CURL_SHIM_DIR", os.path.join(harness.ROOT, "build", "standins", "curl-shim"))
KEY = harness.PREFIX + "/semaphore"
HELD = '{"semaphore":0,"max":1,"holders":["someone"]}'
# How much an endless answer sends at most (then it holds the connection open without sending):
# far beyond the client's cap, and bounded so that a program that keeps everything (today's)
# cannot take the test machine down with it.
STREAM_LIMIT = 128 << 20
# The peak memory a program may reach while a server streams at it.
PEAK_LIMIT_MB = 64
SCRATCH = None


def setUpModule():
    global SCRATCH
    SCRATCH = tempfile.mkdtemp(prefix="locksmith-test-network-")
    os.makedirs(SCRATCH + "/root/etc")
    with open(SCRATCH + "/root/etc/machine-id", "w") as f:
        f.write("0123456789abcdef0123456789abcdef\n")


def tearDownModule():
    shutil.rmtree(SCRATCH, ignore_errors=True)


def clean_env(extra=None):
    e = {k: v for k, v in os.environ.items() if not k.startswith(("LOCKSMITH", "REBOOT_", "NOTIFY_", "JOURNAL_", "CURL_SHIM"))}
    e["LOCKSMITH_ROOT"] = SCRATCH + "/root"
    e["LD_LIBRARY_PATH"] = LIBDIR
    e.update(extra or {})
    return e


def shim_env(log, reject=""):
    """The environment that puts the stand-in libcurl in front of the real one."""
    return {"LD_LIBRARY_PATH": SHIM_DIR + ":" + LIBDIR, "CURL_SHIM_LOG": log, "CURL_SHIM_REJECT": reject}


def ctl(*args, env=None, timeout=60):
    # Bytes, decoded here: text mode would turn a "\r\n" in the output into "\n".
    r = subprocess.run([harness.LOCKSMITHCTL] + list(args), env=clean_env(env), capture_output=True, timeout=timeout)
    return r.returncode, r.stdout.decode(errors="replace"), r.stderr.decode(errors="replace")


class Measured:
    """One run of a program with its exit status, output, peak memory (MB) and time taken."""

    def __init__(self, argv, env=None, limit=30):
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            started = time.monotonic()
            p = subprocess.Popen(argv, env=clean_env(env), stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                 start_new_session=True)
            killed = False
            while True:
                # wait4 gives this child's own peak memory (RUSAGE_CHILDREN would mix in every
                # child reaped so far, etcd included).
                pid, status, usage = os.wait4(p.pid, os.WNOHANG)
                if pid:
                    break
                if not killed and time.monotonic() - started > limit:
                    os.killpg(p.pid, signal.SIGKILL)
                    killed = True
                time.sleep(0.01)
            p.returncode = os.waitstatus_to_exitcode(status)
            self.seconds = time.monotonic() - started
            self.code = p.returncode
            self.killed = killed
            self.peak_mb = usage.ru_maxrss / 1024
            out.seek(0)
            err.seek(0)
            self.out = out.read().decode(errors="replace")
            self.err = err.read().decode(errors="replace")

    def __repr__(self):
        return "exit %s after %.1f s%s, peak %.0f MB, stderr %r" % (
            self.code, self.seconds, " (killed)" if self.killed else "", self.peak_mb, self.err[-600:])


# ---- a hostile HTTP server ----

class Request:
    def __init__(self, raw, method, path, headers, body):
        self.raw, self.method, self.path, self.headers, self.body = raw, method, path, headers, body


class Endless:
    """An answer whose body never ends: chunked, or without Content-Length (until the server
    closes). It sends `prefix`, then filler, as fast as the client takes it, up to STREAM_LIMIT
    bytes; then it keeps the connection open, sending nothing, until the client goes."""

    def __init__(self, chunked=True, prefix=b"", headers=()):
        self.chunked, self.prefix, self.headers = chunked, prefix, list(headers)


class Answer:
    def __init__(self, status, body, headers=()):
        self.status, self.body, self.headers = status, body if isinstance(body, bytes) else body.encode(), list(headers)


REASONS = {200: "OK", 201: "Created", 404: "Not Found", 500: "Internal Server Error"}


class FakeServer:
    """An HTTP/1.1 server on 127.0.0.1 that records the raw bytes of every request and answers
    each with `respond(request)` (an Answer or an Endless). Keep-alive, one thread per connection."""

    def __init__(self, respond):
        self.respond = respond
        self.requests = []
        self.connections = 0
        self.streams = []  # bytes sent by each endless answer
        self.errors = []
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.sock.settimeout(0.1)
        self.endpoint = "http://127.0.0.1:%d" % self.sock.getsockname()[1]
        self.open = []
        self.threads = [threading.Thread(target=self._accept, daemon=True)]
        self.threads[0].start()

    def _accept(self):
        while not self.stopping.is_set():
            try:
                conn, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            with self.lock:
                self.connections += 1
                self.open.append(conn)
            t = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            self.threads.append(t)
            t.start()

    def _recv(self, conn):
        """Some bytes, b"" when the client closed, None when the server stops."""
        while not self.stopping.is_set():
            try:
                return conn.recv(65536)
            except socket.timeout:
                continue
            except OSError:
                return b""
        return None

    def _serve(self, conn):
        conn.settimeout(0.2)
        buffered = b""
        try:
            while True:
                while b"\r\n\r\n" not in buffered:
                    data = self._recv(conn)
                    if not data or len(buffered) > 1 << 20:
                        return
                    buffered += data
                head, buffered = buffered.split(b"\r\n\r\n", 1)
                lines = head.split(b"\r\n")
                method, path = lines[0].decode("latin-1").split(" ")[:2]
                headers = {}
                for line in lines[1:]:
                    name, _, value = line.partition(b":")
                    headers[name.strip().lower().decode("latin-1")] = value.strip().decode("latin-1")
                length = int(headers.get("content-length", "0"))
                while len(buffered) < length:
                    data = self._recv(conn)
                    if not data:
                        return
                    buffered += data
                body, buffered = buffered[:length], buffered[length:]
                request = Request(head + b"\r\n\r\n" + body, method, path, headers, body)
                with self.lock:
                    self.requests.append(request)
                answer = self.respond(request)
                if isinstance(answer, Endless):
                    self._stream(conn, answer)
                    return
                head = "HTTP/1.1 %d %s\r\n" % (answer.status, REASONS.get(answer.status, "Whatever"))
                for name, value in answer.headers + [("Content-Type", "application/json"),
                                                     ("Content-Length", str(len(answer.body)))]:
                    head += "%s: %s\r\n" % (name, value)
                conn.sendall(head.encode() + b"\r\n" + answer.body)
        except Exception as e:  # noqa: BLE001 (a client that goes away mid-answer is expected)
            if not isinstance(e, OSError):
                self.errors.append(repr(e))
        finally:
            conn.close()

    def _stream(self, conn, answer):
        head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
        for name, value in answer.headers:
            head += "%s: %s\r\n" % (name, value)
        head += "Transfer-Encoding: chunked\r\n" if answer.chunked else "Connection: close\r\n"
        conn.settimeout(5)
        try:
            conn.sendall(head.encode() + b"\r\n")
            filler = b"x" * (1 << 20)
            piece = answer.prefix + filler[len(answer.prefix):]
            with self.lock:
                self.streams.append(0)
                stream = len(self.streams) - 1
            while self.streams[stream] < STREAM_LIMIT and not self.stopping.is_set():
                conn.sendall(b"%x\r\n%s\r\n" % (len(piece), piece) if answer.chunked else piece)
                with self.lock:
                    self.streams[stream] += len(piece)
                piece = filler
        except OSError:
            return  # the client cut it off
        conn.settimeout(0.2)
        while self._recv(conn):  # hold the connection, sending nothing, until the client goes
            pass

    def requests_to(self, fragment):
        with self.lock:
            return [r for r in self.requests if fragment in r.path]

    def stop(self):
        self.stopping.set()
        self.sock.close()
        with self.lock:
            for conn in self.open:
                try:
                    conn.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
        for t in self.threads:
            t.join(10)


class Listener:
    """A TCP port that accepts connections (the kernel does, into the backlog) and never answers:
    `connections()` says how many connected since it was last asked."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.sock.setblocking(False)
        self.port = self.sock.getsockname()[1]
        self.endpoint = "http://127.0.0.1:%d" % self.port

    def connections(self):
        seen = 0
        while True:
            try:
                conn, _ = self.sock.accept()
            except BlockingIOError:
                return seen
            seen += 1
            conn.close()

    def close(self):
        self.sock.close()


# ---- what etcd says, in the shapes a real etcd sends ----

V2_HEADERS = [("X-Etcd-Cluster-Id", "6825550cba8c0b6a"), ("X-Etcd-Index", "5"), ("X-Raft-Index", "8"), ("X-Raft-Term", "2")]
V3_HEADER = {"cluster_id": "7504497867240508266", "member_id": "16395698742537081233", "revision": "5", "raft_term": "2"}


def v2_value(value, index=5):
    return Answer(200, json.dumps({"action": "get", "node": {"key": "/" + KEY, "value": value, "modifiedIndex": index,
                                                             "createdIndex": 4}}, separators=(",", ":")), V2_HEADERS)


def v2_missing():
    return Answer(404, json.dumps({"errorCode": 100, "message": "Key not found", "cause": "/" + KEY, "index": 5}), V2_HEADERS)


def v3_answer(**fields):
    return Answer(200, json.dumps(dict({"header": V3_HEADER}, **fields), separators=(",", ":")),
                  [("Grpc-Metadata-Content-Type", "application/grpc")])


QUEUE = KEY + ".queue"


def queue_answer(request):
    """What an etcd that keeps one waiter's queue entry answers to the queue's requests (a run
    waits in the fair queue before it watches the semaphore); None for other requests."""
    v2_entry = {"key": "/%s/00000000000000000006" % QUEUE, "value": "{}", "createdIndex": 6, "modifiedIndex": 6}
    if request.path.startswith("/v2/keys/" + QUEUE):
        if request.method == "POST":
            return Answer(201, json.dumps({"action": "create", "node": v2_entry}), V2_HEADERS)
        if request.method == "GET":
            return Answer(200, json.dumps({"action": "get", "node": {"key": "/" + QUEUE, "dir": True, "nodes": [v2_entry]}}), V2_HEADERS)
        return Answer(200, json.dumps({"action": request.method.lower(), "node": v2_entry}), V2_HEADERS)
    if request.path in ("/v3/lease/grant", "/v3/lease/keepalive", "/v3/lease/revoke"):
        return v3_answer(ID="1", TTL="60", result={"ID": "1", "TTL": "60"})
    if request.path == "/v3/kv/put":
        return v3_answer()
    if request.path == "/v3/kv/txn" and b"request_put" in request.body and b'"lease"' in request.body:
        # Joining: the entry put, the newest entries (only this one), their number, and no
        # semaphore (so the client reads it on its own).
        entry = base64.b64encode((QUEUE + "/0000000000000001").encode()).decode()
        kv = {"key": entry, "create_revision": V3_HEADER["revision"], "mod_revision": V3_HEADER["revision"], "version": "1"}
        return v3_answer(succeeded=True, responses=[{"response_put": {"header": V3_HEADER}},
                                                    {"response_range": {"header": V3_HEADER, "kvs": [kv], "count": "1"}},
                                                    {"response_range": {"header": V3_HEADER, "count": "1"}},
                                                    {"response_range": {"header": V3_HEADER}}])
    if request.path == "/v3/kv/range" and b"range_end" in request.body:
        entry = base64.b64encode((QUEUE + "/0000000000000001").encode()).decode()
        return v3_answer(kvs=[{"key": entry, "create_revision": "6", "mod_revision": "6", "version": "1"}], count="1")
    return None


def v3_range(value=None):
    if value is None:
        return v3_answer()
    kv = {"key": base64.b64encode(KEY.encode()).decode(), "create_revision": "4", "mod_revision": "5", "version": "2",
          "value": base64.b64encode(value.encode()).decode()}
    return v3_answer(kvs=[kv], count="1")


# ---- item 4: the CA file is the only CA ----

class Certificates:
    """CA "system" (planted as the system's store), CA "other", and a server certificate for
    127.0.0.1 from CA "system"; a directory holding CA "system" the way /etc/ssl/certs does
    (hashed links, and a ca-certificates.crt bundle)."""

    def __init__(self):
        self.dir = os.path.join(SCRATCH, "tls")
        os.makedirs(self.dir)
        script = """
            set -e; cd '%s'
            q() { "$@" >/dev/null 2>&1; }
            q openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=locksmith-test-system-ca -keyout system-ca-key.pem -out system-ca.pem
            q openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=locksmith-test-other-ca -keyout other-ca-key.pem -out other-ca.pem
            printf 'subjectAltName=IP:127.0.0.1\\nextendedKeyUsage=serverAuth\\n' > server.ext
            q openssl req -newkey rsa:2048 -nodes -subj /CN=server -keyout server-key.pem -out server.csr
            q openssl x509 -req -in server.csr -CA system-ca.pem -CAkey system-ca-key.pem -CAcreateserial -days 2 -extfile server.ext -out server.pem
            mkdir certs; cp system-ca.pem certs/locksmith-test-system-ca.pem; cp system-ca.pem certs/ca-certificates.crt
            q openssl rehash certs
            """ % self.dir
        subprocess.run(["bash", "-c", script], check=True)
        self.system_ca = self.dir + "/system-ca.pem"
        self.other_ca = self.dir + "/other-ca.pem"
        self.store = self.dir + "/certs"


class SystemCADirectory(unittest.TestCase):
    """In a private mount namespace whose /etc/ssl/certs holds only CA "system" (hashed, and as
    ca-certificates.crt), a server with a certificate from CA "system" verifies with no CA file
    and with CA "system" given, and is refused when another CA file is given."""

    @classmethod
    def setUpClass(cls):
        if not os.path.isdir("/etc/ssl/certs"):
            raise unittest.SkipTest("no /etc/ssl/certs here")
        probe = subprocess.run(["unshare", "-m", "mount", "--bind", SCRATCH, "/etc/ssl/certs"], capture_output=True)
        if probe.returncode != 0:
            raise unittest.SkipTest("no private mount namespace to mount over /etc/ssl/certs in (unshare -m mount --bind: %s)"
                                    % probe.stderr.decode().strip())
        cls.certs = Certificates()
        cls.etcd = harness.Etcd(tls=(cls.certs.dir + "/server.pem", cls.certs.dir + "/server-key.pem", cls.certs.system_ca))

    @classmethod
    def tearDownClass(cls):
        cls.etcd.stop()

    def in_namespace(self, *args):
        """locksmithctl with the scratch store mounted over /etc/ssl/certs, in its own namespace."""
        script = 'store=$1; shift; mount --bind "$store" /etc/ssl/certs && exec "$@"'
        r = subprocess.run(["unshare", "-m", "sh", "-c", script, "sh", self.certs.store, harness.LOCKSMITHCTL,
                            "-endpoint", self.etcd.endpoint] + list(args),
                           env=clean_env(), capture_output=True, text=True, timeout=60)
        return r.returncode, r.stdout, r.stderr

    def test_a_ca_file_limits_trust_to_that_ca(self):
        for api in ("v2", "v3"):
            with self.subTest(api=api, ca="none: the system store"):
                code, out, err = self.in_namespace("-etcd-api", api, "-group", "system-store-" + api, "status")
                self.assertEqual((code, out), (0, "Available: 1\nMax: 1\n"), err)
            with self.subTest(api=api, ca="system"):
                code, out, err = self.in_namespace("-etcd-api", api, "-etcd-cafile", self.certs.system_ca,
                                                   "-group", "system-ca-" + api, "status")
                self.assertEqual((code, out), (0, "Available: 1\nMax: 1\n"), err)
            with self.subTest(api=api, ca="other"):
                # Only CA "other" is to be trusted: the system directory must not count as well.
                code, out, err = self.in_namespace("-etcd-api", api, "-etcd-cafile", self.certs.other_ca,
                                                   "-group", "other-ca-" + api, "status")
                self.assertEqual((code, out), (1, ""), "the system's CA directory is still trusted: %s" % err)
                self.assertIn("Error initializing etcd client: no etcd endpoint answered (%s: " % self.etcd.endpoint, err)
                self.assertIn("certificate", err)


# ---- item 5: answers are bounded ----

class EndlessAnswers(unittest.TestCase):
    """A server that streams without end: the program cuts the answer off past its cap, fails
    with "larger than", and its peak memory stays under PEAK_LIMIT_MB."""

    def assertCutOff(self, run, server, seconds):
        self.assertNotEqual(run.code, 0, run)
        self.assertFalse(run.killed, run)
        self.assertIn("larger than", run.err, run)
        self.assertLess(run.peak_mb, PEAK_LIMIT_MB, run)
        self.assertLess(run.seconds, seconds, run)
        self.assertTrue(server.streams, "nothing was streamed: %r" % run)
        self.assertLess(max(server.streams), STREAM_LIMIT, "an endless answer was read to its end: %r" % run)
        self.assertEqual(server.errors, [])

    def read_endlessly(self, api, chunked):
        def respond(request):
            if api == "v2" and request.method == "GET" and request.path.startswith("/v2/keys/"):
                return Endless(chunked, b'{"action":"get","node":{"key":"/%s","value":"' % KEY.encode(), V2_HEADERS)
            if api == "v3" and request.path == "/v3/kv/range":
                return Endless(chunked, b'{"header":{"revision":"5"},"kvs":[{"key":"', [("Grpc-Metadata-Content-Type", "application/grpc")])
            return Answer(500, '{"message":"unexpected"}')
        server = FakeServer(respond)
        try:
            run = Measured([harness.LOCKSMITHCTL, "-endpoint", server.endpoint, "-etcd-api", api, "-timeout", "3s", "status"])
        finally:
            server.stop()
        self.assertEqual(run.code, 1, run)
        self.assertCutOff(run, server, 3)  # cut off, not timed out

    def test_an_endless_v2_answer_is_cut_off(self):
        for chunked in (True, False):
            with self.subTest(chunked=chunked):
                self.read_endlessly("v2", chunked)

    def test_an_endless_v3_answer_is_cut_off(self):
        for chunked in (True, False):
            with self.subTest(chunked=chunked):
                self.read_endlessly("v3", chunked)

    def test_an_endless_v2_watch_is_cut_off(self):
        # The semaphore is full: locksmith-run reads it, then watches it; the watch streams forever.
        def respond(request):
            if queue_answer(request):
                return queue_answer(request)
            if request.method == "GET" and request.path.startswith("/v2/keys/" + KEY):
                if "wait=true" in request.path:
                    return Endless(True, b'{"action":"set","node":{"key":"/%s","value":"' % KEY.encode(), V2_HEADERS)
                return v2_value(HELD)
            return v2_missing()
        server = FakeServer(respond)
        try:
            run = Measured([RUN, "--endpoint", server.endpoint, "--etcd-api", "v2", "--timeout", "4s", "--id", "me", "--", "true"])
        finally:
            server.stop()
        self.assertTrue(server.requests_to("wait=true"), "no watch was made: %r" % run)
        self.assertCutOff(run, server, 11)

    def test_an_endless_v3_watch_line_is_cut_off(self):
        # The same over v3: one message of the watch stream that never ends (no newline).
        def respond(request):
            if queue_answer(request):
                return queue_answer(request)
            if request.path == "/v3/kv/range":
                return v3_range(HELD)
            if request.path == "/v3/watch":
                return Endless(True, b'{"result":{"header":{"revision":"5"},"created":true,"events":[{"kv":{"value":"')
            return Answer(404, '{"error":"Not Found","code":5,"message":"Not Found"}')
        server = FakeServer(respond)
        try:
            run = Measured([RUN, "--endpoint", server.endpoint, "--etcd-api", "v3", "--timeout", "4s", "--id", "me", "--", "true"])
        finally:
            server.stop()
        self.assertTrue(server.requests_to("/v3/watch"), "no watch was made: %r" % run)
        self.assertCutOff(run, server, 11)


# ---- item 9: the protocol restriction cannot silently fail ----

CURLOPT_PROTOCOLS, CURLOPT_REDIR_PROTOCOLS = 181, 182
CURLOPT_PROTOCOLS_STR, CURLOPT_REDIR_PROTOCOLS_STR = 10318, 10319
CURLOPT_SSL_VERIFYPEER = 64


class ProtocolRestriction(unittest.TestCase):
    """Through the stand-in libcurl: CURL_SHIM_REJECT plays a libcurl older than 7.85, which
    refuses the *_PROTOCOLS_STR options; CURL_SHIM_LOG records every setopt and its result."""

    @classmethod
    def setUpClass(cls):
        if not os.path.exists(os.path.join(SHIM_DIR, "libcurl.so.4")):
            raise unittest.SkipTest("no stand-in libcurl in %s (make standins)" % SHIM_DIR)
        cls.etcd = harness.Etcd()

    @classmethod
    def tearDownClass(cls):
        cls.etcd.stop()

    def log(self):
        return os.path.join(SCRATCH, "shim-%s-%d.log" % (self._testMethodName, time.monotonic_ns()))

    @staticmethod
    def setopts(path, option):
        """(value, result) of every setopt of `option` in the shim's log."""
        with open(path, "rb") as f:
            text = f.read()
        return [(v.decode(errors="replace"), int(r)) for v, r in re.findall(rb"^setopt %d (\S+) (-?\d+)$" % option, text, re.M)]

    def test_an_old_libcurl_gets_the_protocol_bitmasks(self):
        log = self.log()
        code, out, err = ctl("-endpoint", self.etcd.endpoint, "-group", "old-libcurl", "status",
                             env=shim_env(log, "%d,%d" % (CURLOPT_PROTOCOLS_STR, CURLOPT_REDIR_PROTOCOLS_STR)))
        self.assertEqual((code, out), (0, "Available: 1\nMax: 1\n"), err)
        self.assertTrue(self.setopts(log, CURLOPT_PROTOCOLS_STR), "the shim saw no CURLOPT_PROTOCOLS_STR: is it in front?")
        # Every time the handle is configured (the options are set again after each reset, with
        # CURLOPT_SSL_VERIFYPEER among them), both restrictions are set as bitmasks, and taken.
        configured = len(self.setopts(log, CURLOPT_SSL_VERIFYPEER))
        for option in (CURLOPT_PROTOCOLS, CURLOPT_REDIR_PROTOCOLS):
            with self.subTest(option=option):
                seen = self.setopts(log, option)
                self.assertGreaterEqual(seen.count(("3", 0)), max(configured, 1),
                                        "option %d set %r, handle configured %d times" % (option, seen, configured))

    def test_redirects_are_restricted_too(self):
        log = self.log()
        code, out, err = ctl("-endpoint", self.etcd.endpoint, "-group", "new-libcurl", "status", env=shim_env(log))
        self.assertEqual((code, out), (0, "Available: 1\nMax: 1\n"), err)
        self.assertIn(('"http,https"', 0), self.setopts(log, CURLOPT_PROTOCOLS_STR))
        redirects = self.setopts(log, CURLOPT_REDIR_PROTOCOLS_STR) + self.setopts(log, CURLOPT_REDIR_PROTOCOLS)
        self.assertTrue(('"http,https"', 0) in redirects or ("3", 0) in redirects, "redirect protocols: %r" % redirects)

    def test_no_request_without_a_protocol_restriction(self):
        rejected = ",".join(str(o) for o in (CURLOPT_PROTOCOLS_STR, CURLOPT_REDIR_PROTOCOLS_STR, CURLOPT_PROTOCOLS, CURLOPT_REDIR_PROTOCOLS))
        listener = Listener()
        try:
            with self.subTest(program="locksmithctl"):
                log = self.log()
                code, out, err = ctl("-endpoint", listener.endpoint, "-timeout", "1s", "status", env=shim_env(log, rejected))
                self.assertEqual(listener.connections(), 0, "a request was sent: %s" % err)
                self.assertEqual((code, out), (1, ""), err)
                self.assertIn("protocol", err.lower())
            with self.subTest(program="locksmith-run"):
                log = self.log()
                run = Measured([RUN, "--endpoint", listener.endpoint, "--request-timeout", "1s", "--timeout", "2s",
                                "--id", "me", "--", "true"], env=shim_env(log, rejected))
                self.assertEqual(listener.connections(), 0, "a request was sent: %r" % run)
                self.assertEqual(run.code, 1, run)
                self.assertIn("protocol", run.err.lower())
        finally:
            listener.close()


# ---- extra A: a v3 token is sent only if it is a plain token ----

class AuthToken(unittest.TestCase):
    def test_a_token_with_line_breaks_is_never_sent(self):
        for token in ("abc\r\nX-Injected: yes", "abc\nX-Injected: yes"):
            with self.subTest(token=token):
                def respond(request):
                    if request.path == "/v3/auth/authenticate":
                        return v3_answer(token=token)
                    if request.path == "/v3/kv/range":
                        return v3_range()
                    if request.path == "/v3/kv/txn":
                        return v3_answer(succeeded=True, responses=[{"response_put": {"header": {"revision": "5"}}}])
                    return Answer(404, '{"error":"Not Found","code":5,"message":"Not Found"}')
                server = FakeServer(respond)
                try:
                    code, out, err = ctl("-endpoint", server.endpoint, "-etcd-api", "v3", "-etcd-username", "u",
                                         "-etcd-password", "p", "-timeout", "3s", "status")
                finally:
                    server.stop()
                self.assertTrue(server.requests_to("/v3/auth/authenticate"), err)
                for request in server.requests:
                    self.assertNotIn(b"x-injected", request.raw.lower(), "a request carried the injected header: %r" % request.raw)
                self.assertEqual((code, out), (1, ""), err)
                self.assertIn("token", err)
                self.assertNotIn("\r", err)
                self.assertEqual(err.count("\n"), 1, err)


# ---- extra B: endpoints with control characters ----

# A C0 control character other than the newline that ends a message: what drives a terminal.
# (DEL is refused in endpoints too, but JSON quoting leaves it as is, and terminals ignore it.)
RAW_C0 = re.compile(r"[\x00-\x09\x0b-\x1f]")


class EndpointControlCharacters(unittest.TestCase):
    BAD = ["/\x01", "/\r\nX-Injected:yes", "\x7f", "/\x1b[31m"]

    def endpoints(self, port):
        return ["http://127.0.0.1:%d%s" % (port, suffix) for suffix in self.BAD]

    def test_an_endpoint_with_control_characters_is_refused_before_any_request(self):
        listener = Listener()
        try:
            for endpoint in self.endpoints(listener.port):
                for way in ("LOCKSMITHCTL_ENDPOINT", "-endpoint"):
                    with self.subTest(endpoint=endpoint, way=way):
                        if way == "-endpoint":
                            code, out, err = ctl("-endpoint", endpoint, "-timeout", "1s", "status")
                        else:
                            code, out, err = ctl("-timeout", "1s", "status", env={"LOCKSMITHCTL_ENDPOINT": endpoint})
                        self.assertEqual(listener.connections(), 0, err)
                        self.assertEqual((code, out), (1, ""), err)
                        # Refused as a setting, not tried and failed.
                        self.assertNotIn("no etcd endpoint answered", err)
                        self.assertIn("endpoint", err.lower())
                        # The message quotes the endpoint: no raw control character reaches the terminal.
                        self.assertIsNone(RAW_C0.search(err), repr(err))
                        self.assertEqual(err.count("\n"), 1, repr(err))
        finally:
            listener.close()

    def test_debug_output_never_echoes_control_characters_of_an_endpoint(self):
        listener = Listener()
        try:
            for endpoint in self.endpoints(listener.port):
                with self.subTest(endpoint=endpoint):
                    code, out, err = ctl("-debug", "-timeout", "1s", "status", env={"LOCKSMITHCTL_ENDPOINT": endpoint})
                    self.assertEqual(listener.connections(), 0, err)
                    self.assertEqual((code, out), (1, ""), err)
                    self.assertIsNone(RAW_C0.search(err), repr(err))
        finally:
            listener.close()


if __name__ == "__main__":
    unittest.main()
