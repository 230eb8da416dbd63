"""Real services for the tests and the fleet simulator: an etcd server (Debian's etcd-server) and a private
D-Bus system bus (dbus-daemon), each on loopback or in a temporary directory, stopped and removed
when the test process ends."""
import atexit
import base64
import itertools
import json
import os
import random
import re
import select
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LOCKSMITHCTL = os.environ.get("LOCKSMITHCTL", os.path.join(ROOT, "build", "bin", "locksmithctl"))
STANDINS = os.environ.get("STANDINS", os.path.join(ROOT, "build", "standins"))
PREFIX = "coreos.com/updateengine/rebootlock"

_running = []


@atexit.register
def _stop_all():
    """Stops every process this process started and has not stopped yet: exactly those, by PID
    (someone else's etcd on the same machine is not ours)."""
    for p in list(_running):
        try:
            p.kill()
            p.wait(5)
        except Exception:
            pass


def _stop_all_and_die(sig, _frame):
    # atexit does not run when a signal ends the process (a CI timeout, kill): stop our
    # services first, then end by the same signal, so the caller sees what happened.
    _stop_all()
    signal.signal(sig, signal.SIG_DFL)
    os.kill(os.getpid(), sig)


for _sig in (signal.SIGTERM, signal.SIGHUP):
    if signal.getsignal(_sig) == signal.SIG_DFL and threading.current_thread() is threading.main_thread():
        signal.signal(_sig, _stop_all_and_die)


def free_port():
    return free_ports(1)[0]


def _ephemeral_low():
    """The lowest port the kernel gives outgoing connections (ip_local_port_range)."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_ports(n):
    """n different ports free now on every address (bound together, so that none is given twice),
    below the range the kernel picks outgoing connections' ports from: a port the kernel chose
    for a listener here goes back to that range when it is closed, and an outgoing connection
    (to etcd, between tests) could take it before the server binds it (seen: a server on
    0.0.0.0 failing with "Address already in use")."""
    low = _ephemeral_low()
    sockets = []
    try:
        if low - 10000 >= 1000:
            rng = random.SystemRandom()
            while len(sockets) < n:
                s = socket.socket()
                try:
                    s.bind(("0.0.0.0", rng.randrange(10000, low)))
                    sockets.append(s)
                except OSError:
                    s.close()
        else:
            for _ in range(n):
                sockets.append(socket.socket())
                sockets[-1].bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


# How much longer than its own bound a test waits for a state before it gives up: waiting costs
# nothing when the state comes, and on a machine busy with other work (CI beside builds, two
# cores) everything takes longer. The bounds the product promises are asserted on measured
# times, never through wait_for.
SLACK = float(os.environ.get("LOCKSMITH_TEST_SLACK", "3"))


def wait_for(predicate, timeout=10.0, step=0.02):
    """predicate()'s first true value within timeout seconds (times SLACK), else its last value."""
    deadline = time.time() + timeout * SLACK
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(step)
    return predicate()


class SlowConnections:
    """n connections to a server on 127.0.0.1:port from loopback addresses 127.0.0.2, 127.0.0.3,
    ... (per_address from each, under a server's limit per address) that send a request's first
    lines and then one header line now and then, never finishing it; heavy ones send long headers
    and most of a 4 KiB body first. For locksmith-fleetlockd's tests and tools/bench/fleetlock."""

    def __init__(self, port, n, per_address=50, heavy=False):
        self.port, self.per_address, self.heavy = port, per_address, heavy
        self.sockets = [self._connect(i) for i in range(n)]
        for c in self.sockets:
            self._start(c)

    def _connect(self, i):
        c = socket.socket()
        c.bind(("127.0.0.%d" % (2 + i // self.per_address), 0))
        c.setblocking(False)
        try:
            c.connect(("127.0.0.1", self.port))
        except BlockingIOError:
            pass
        return c

    def _start(self, c):
        self.send(c, b"POST /v1/pre-reboot HTTP/1.1\r\nHost: x\r\nfleet-lock-protocol: true\r\n")
        if self.heavy:
            self.send(c, b"X-Pad: %s\r\nContent-Length: 4000\r\n\r\n%s" % (b"p" * 2500, b"b" * 3900))

    @staticmethod
    def ready(c, events):
        """Whether c is ready for events now (poll: descriptors past 1023 are fine)."""
        p = select.poll()
        p.register(c, events)
        return bool(p.poll(0))

    def send(self, c, data):
        try:
            wait_for(lambda: self.ready(c, select.POLLOUT), timeout=5)
            c.send(data)
            return True
        except OSError:
            return False

    def trickle(self):
        """One more header line on each; how many the server still took."""
        return sum(self.send(c, b"X-Slow: 1\r\n") for c in self.sockets)

    def _open(self, c):
        if not self.ready(c, select.POLLIN):
            return True
        try:
            return bool(c.recv(4096))
        except OSError:
            return False

    def open_count(self):
        """How many the server has not closed (a read that finds neither data nor end)."""
        return sum(self._open(c) for c in self.sockets)

    def reopen(self):
        """Opens again those the server closed, as a persistent attacker would; how many."""
        n = 0
        for i, c in enumerate(self.sockets):
            if not self._open(c):
                c.close()
                self.sockets[i] = self._connect(i)
                self._start(self.sockets[i])
                n += 1
        return n

    def close(self):
        for c in self.sockets:
            c.close()


def read(path):
    """A file's text, or "" if it does not exist."""
    try:
        with open(path) as f:
            return f.read()
    except FileNotFoundError:
        return ""


def in_mount_namespace(program, binds):
    """argv that runs `program` (no arguments) in a private mount namespace where each (source,
    target) file is bind-mounted: how a test puts a real terminal under a node's root
    (locksmithd refuses a symbolic link in place of a terminal). Signals reach the program
    itself: unshare and sh exec it; nothing stays mounted once it ends."""
    if not binds:
        return [program]
    script = 'p="$0"; while [ $# -gt 0 ]; do mount --bind "$1" "$2" || exit 99; shift 2; done; exec "$p"'
    return ["unshare", "-m", "--propagation", "private", "sh", "-c", script, program] + [x for b in binds for x in b]


def terminal_under(root, tty):
    """Makes the mount point for terminal device `tty` (e.g. /dev/pts/3) under root; returns the
    (source, target) pair for in_mount_namespace and the utmp line ("pts/3")."""
    line = tty[len("/dev/"):]
    target = root + "/dev/" + line
    os.makedirs(os.path.dirname(target), exist_ok=True)
    if not os.path.exists(target):
        open(target, "w").close()
    return (tty, target), line


def utmp_record(line):
    """A USER_PROCESS record of struct utmpx (x86_64 glibc, 384 bytes) for terminal `line`."""
    record = struct.pack("<hxxi32s4s32s256shhiii16s20s", 7, os.getpid(), line.encode(), b"ts/0", b"tester", b"",
                         0, 0, 0, int(time.time()), 0, b"", b"")
    assert len(record) == 384
    return record


def write_utmp(root, lines):
    """root/var/run/utmp with one user session on each terminal line."""
    os.makedirs(root + "/var/run", exist_ok=True)
    with open(root + "/var/run/utmp", "wb") as f:
        for line in lines:
            f.write(utmp_record(line))


_node_ids = itertools.count(1)


def hold_write_lock(f):
    """Takes on open file f (opened for writing) the lock a running locksmithd holds on its files
    under /run: an open-file-description write lock, which only a writer can take (unlike an
    flock). It stays until f is closed, whatever else this process opens and closes."""
    import fcntl
    import struct
    fcntl.fcntl(f.fileno(), fcntl.F_OFD_SETLK, struct.pack("hhqqi", fcntl.F_WRLCK, os.SEEK_SET, 0, 0, 0))


def make_root(root, machine_id, conf=None):
    """A machine's root directory: etc/machine-id, and etc/coreos/update.conf if conf is given."""
    os.makedirs(root + "/etc/coreos", exist_ok=True)
    with open(root + "/etc/machine-id", "w") as f:
        f.write(machine_id + "\n")
    if conf is not None:
        with open(root + "/etc/coreos/update.conf", "w") as f:
            f.write(conf)
    return root


class DaemonNode:
    """One machine for the daemon tests: a root directory (LOCKSMITH_ROOT) with a machine id, an
    sd_notify socket, terminals bind-mounted under root/dev, and its locksmithd. The daemon's
    log (stderr) goes to root/daemon.log, its stdout to root/daemon.out."""

    STATE_FILE = "/var/lib/locksmith/reboot-slot"

    def __init__(self, program, etcd_endpoint, bus_address, group, strategy="etcd-lock", env=None, conf=None,
                 id_base=0xabc000, prefix="locksmith-test-node-"):
        self.program = program
        self.id = "%032x" % (id_base + next(_node_ids))
        self.root = make_root(tempfile.mkdtemp(prefix=prefix), self.id, conf)
        self.group = group
        self.notify_path = self.root + "/notify"
        self.notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.notify.bind(self.notify_path)
        self.notify.settimeout(0.05)
        self.messages = []
        self.env = {k: v for k, v in os.environ.items()
                    if not k.startswith(("LOCKSMITH", "REBOOT_", "NOTIFY_", "JOURNAL_", "CURL_SHIM_")) and k != "LD_LIBRARY_PATH"}
        self.env.update(LOCKSMITH_ROOT=self.root, DBUS_SYSTEM_BUS_ADDRESS=bus_address, NOTIFY_SOCKET=self.notify_path,
                        LOCKSMITHD_ENDPOINT=etcd_endpoint, LOCKSMITHD_GROUP=group, LOCKSMITHD_REBOOT_BROADCAST_DELAY="1s",
                        TZ="UTC")
        if strategy is not None:
            self.env["REBOOT_STRATEGY"] = strategy
        self.env.update(env or {})
        self.proc = None
        self.log = self.root + "/daemon.log"
        self.out = self.root + "/daemon.out"
        self.binds = []

    def terminal(self, tty):
        """Makes terminal device tty (a pty slave) appear at the same path under the root when the
        daemon starts; returns its utmp line."""
        bind, line = terminal_under(self.root, tty)
        if bind not in self.binds:
            self.binds.append(bind)
        return line

    def start(self):
        self.logfile = open(self.log, "a")
        self.outfile = open(self.out, "a")
        self.proc = subprocess.Popen(in_mount_namespace(self.program, self.binds), env=self.env,
                                     stdout=self.outfile, stderr=self.logfile)
        _running.append(self.proc)
        return self

    def _reap(self, code):
        _running.remove(self.proc)
        self.proc = None
        self.logfile.close()
        self.outfile.close()
        return code

    def stop(self, sig=signal.SIGTERM, timeout=10):
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        return self._reap(self.proc.wait(timeout))

    def wait_exit(self, timeout=10):
        return self._reap(self.proc.wait(timeout))

    def drain(self):
        while True:
            try:
                self.messages.append(self.notify.recv(4096).decode())
            except (socket.timeout, BlockingIOError):
                return self.messages

    def saw(self, text):
        return any(text in m for m in self.drain())

    def state(self):
        for line in read(self.root + "/run/update-engine/coordinator.conf").splitlines():
            if line.startswith("STATE="):
                return line[6:]
        return None

    def output(self):
        return read(self.log)

    def state_file(self):
        """The reboot-slot record as a dict, or None if there is none."""
        path = self.root + self.STATE_FILE
        if not os.path.lexists(path):
            return None
        values = {}
        for line in read(path).splitlines():
            line = line.strip()
            if not line or line.startswith(("#", ";")) or "=" not in line:
                continue
            key, value = line.split("=", 1)
            value = value.strip()
            if len(value) >= 2 and value[0] == value[-1] == '"':
                value = re.sub(r'\\(["\\`$])', r"\1", value[1:-1])
            values[key.strip()] = value
        return values

    def write_state_file(self, text):
        os.makedirs(os.path.dirname(self.root + self.STATE_FILE), exist_ok=True)
        with open(self.root + self.STATE_FILE, "w") as f:
            f.write(text)

    def cleanup(self):
        if self.proc:
            self.stop(signal.SIGKILL)
        self.notify.close()
        shutil.rmtree(self.root, ignore_errors=True)


def group_key(group):
    if not group:
        return PREFIX + "/semaphore"
    return PREFIX + "/groups/" + urllib.parse.quote_plus(group, safe="-_.~") + "/semaphore"


class Etcd:
    """etcd on loopback in a temporary data dir; with tls=(cert, key, ca) it serves https with that
    certificate (ca: the file that verifies it, to see that it started; client_ca: the CA of client
    certificates when it is another). enable_v2=False: an etcd
    that serves only v3, as etcd 3.4 does by default (and 3.6 always)."""

    def __init__(self, port=None, prefix="locksmith-test-etcd-", tls=None, client_certificate=None, enable_v2=True, client_ca=None):
        base = "/dev/shm" if os.access("/dev/shm", os.W_OK) else None
        self.dir = tempfile.mkdtemp(prefix=prefix, dir=base)
        # Two different ports; a port another test took between our pick and etcd's bind (suites
        # run side by side) is picked again, with a fresh data directory.
        for attempt in range(3):
            if self._start(port, tls, client_certificate, enable_v2, client_ca, attempt):
                return
            if port or "address already in use" not in self._log():
                break
        log = self._log()
        self.stop()
        raise RuntimeError("etcd did not start: " + log)

    def _log(self):
        try:
            with open(self.dir + "/etcd.log") as f:
                return f.read()[-2000:]
        except OSError:
            return ""

    def _start(self, port, tls, client_certificate, enable_v2, client_ca, attempt):
        """Starts etcd; whether it answers."""
        if port:
            self.port, peer = port, next(p for p in iter(free_port, None) if p != port)
        else:
            self.port, peer = free_ports(2)
        self.endpoint = "%s://127.0.0.1:%d" % ("https" if tls else "http", self.port)
        data = self.dir + ("/data" if attempt == 0 else "/data%d" % attempt)
        if attempt:
            try:
                os.unlink(self.dir + "/etcd.log")
            except OSError:
                pass
        self.proc = subprocess.Popen(
            ["etcd", "--name", "test", "--data-dir", data, "--enable-v2=%s" % ("true" if enable_v2 else "false"),
             "--listen-client-urls", self.endpoint, "--advertise-client-urls", self.endpoint,
             "--listen-peer-urls", "http://127.0.0.1:%d" % peer,
             "--initial-advertise-peer-urls", "http://127.0.0.1:%d" % peer,
             "--initial-cluster", "test=http://127.0.0.1:%d" % peer,
             "--log-outputs", self.dir + "/etcd.log", "--logger", "zap"]
            + (["--cert-file", tls[0], "--key-file", tls[1]] if tls else [])
            # client_certificate=(cert, key): clients must present a certificate the CA signed
            # (this one is used to see that etcd started), or client_ca, when given (another CA
            # than the server's: Flatcar's test layout).
            + (["--client-cert-auth", "--trusted-ca-file", client_ca or tls[2]] if tls and client_certificate else []),
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _running.append(self.proc)
        context = None
        if tls:
            import ssl
            context = ssl.create_default_context(cafile=tls[2])
            context.check_hostname = False
            if client_certificate:
                context.load_cert_chain(*client_certificate)
        for _ in range(400):
            try:
                urllib.request.urlopen(self.endpoint + "/version", timeout=0.5, context=context).read()
                return True
            except Exception:
                if self.proc.poll() is not None:
                    break
                time.sleep(0.05)
        if self.proc.poll() is not None and self.proc in _running:
            _running.remove(self.proc)
        return False

    def stop(self):
        if self.proc in _running:
            self.proc.terminate()
            self.proc.wait(10)
            _running.remove(self.proc)
        shutil.rmtree(self.dir, ignore_errors=True)

    def _request(self, method, path, data=None):
        req = urllib.request.Request(self.endpoint + path, method=method, data=data)
        if data is not None and path.startswith("/v2/"):
            req.add_header("Content-Type", "application/x-www-form-urlencoded")
        try:
            with urllib.request.urlopen(req, timeout=5) as r:
                return json.loads(r.read())
        except urllib.error.HTTPError as e:
            return json.loads(e.read())

    def get(self, api, key):
        """The stored value of key, or None."""
        if api == "v2":
            answer = self._request("GET", "/v2/keys/" + urllib.parse.quote(key, safe="/$&+,:;=@"))
            return answer.get("node", {}).get("value")
        answer = self._request("POST", "/v3/kv/range", json.dumps({"key": base64.b64encode(key.encode()).decode()}).encode())
        kvs = answer.get("kvs")
        return base64.b64decode(kvs[0].get("value", "")).decode() if kvs else None

    def call(self, method, path, body=None, headers=None):
        """(HTTP status, body) of one request to this etcd; body is JSON (or None)."""
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.endpoint + path, method=method, data=data, headers=headers or {})
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()

    def enable_auth(self, api, password):
        """Turns authentication on for `api` with user root (`password`); over v2 the guest role
        then may do nothing. Returns the v2 Authorization header of root (for more set-up)."""
        if api == "v3":
            for path, body in [("/v3/auth/user/add", {"name": "root", "password": password}), ("/v3/auth/role/add", {"name": "root"}),
                               ("/v3/auth/user/grant", {"user": "root", "role": "root"}), ("/v3/auth/enable", {})]:
                status, answer = self.call("POST", path, body)
                assert status == 200, (path, answer)
            return None
        assert self.call("PUT", "/v2/auth/users/root", {"user": "root", "password": password})[0] in (200, 201)
        assert self.call("PUT", "/v2/auth/enable")[0] in (200, 201)
        auth = {"Authorization": "Basic " + base64.b64encode(("root:" + password).encode()).decode()}
        status, answer = self.call("PUT", "/v2/auth/roles/guest", {"role": "guest", "revoke": {"kv": {"read": ["/*"], "write": ["/*"]}}}, auth)
        assert status == 200, answer
        return auth

    def holders(self, api, key):
        """The holders in the semaphore document at key ([] if there is none)."""
        value = self.get(api, key)
        return (json.loads(value).get("holders") or []) if value else []

    def put(self, api, key, value):
        if api == "v2":
            self._request("PUT", "/v2/keys/" + urllib.parse.quote(key, safe="/$&+,:;=@"),
                          urllib.parse.urlencode({"value": value}).encode())
        else:
            self._request("POST", "/v3/kv/put", json.dumps({"key": base64.b64encode(key.encode()).decode(),
                                                            "value": base64.b64encode(value.encode()).decode()}).encode())


def _openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def kola_certificates(directory):
    """The certificates of kola's certgen.service: an etcd CA and a locksmith CA; etcd's server
    certificate (localhost, 127.0.0.1) from the first, locksmith's client certificate from the
    second. Returns the paths by kola's names."""
    with open(os.path.join(directory, "openssl.cnf"), "w") as f:
        f.write("[req]\ndistinguished_name=req\n[etcd_ca]\nbasicConstraints=CA:true\nkeyUsage=keyCertSign,cRLSign\n"
                "subjectKeyIdentifier=hash\n[etcd_client]\nbasicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n"
                "keyUsage=digitalSignature,keyEncipherment\n[etcd_server]\nbasicConstraints=CA:FALSE\n"
                "extendedKeyUsage=serverAuth\nkeyUsage=digitalSignature,keyEncipherment\nsubjectAltName=@sans\n"
                "[sans]\nDNS.1=localhost\nIP.1=127.0.0.1\n")
    conf = ["-config", "openssl.cnf"]
    for ca, cn in (("ca-etcd", "etcd CA"), ("ca-locksmith", "locksmith CA")):
        _openssl("req", *conf, "-x509", "-nodes", "-newkey", "rsa:2048", "-sha256", "-days", "3", "-extensions", "etcd_ca",
                 "-subj", "/CN=" + cn, "-out", ca + "-cert.pem", "-keyout", ca + "-key.pem", cwd=directory)
    for name, ca, ext, cn in (("etcd", "ca-etcd", "etcd_server", "localhost"), ("locksmith", "ca-locksmith", "etcd_client", "locksmith client")):
        _openssl("req", *conf, "-new", "-nodes", "-newkey", "rsa:2048", "-subj", "/CN=" + cn, "-out", name + ".csr",
                 "-keyout", name + "-key.pem", cwd=directory)
        _openssl("x509", "-req", "-in", name + ".csr", "-CA", ca + "-cert.pem", "-CAkey", ca + "-key.pem", "-CAcreateserial",
                 "-sha256", "-days", "3", "-extfile", "openssl.cnf", "-extensions", ext, "-out", name + "-cert.pem", cwd=directory)
    return {name: os.path.join(directory, name + ".pem") for name in
            ("ca-etcd-cert", "ca-locksmith-cert", "etcd-cert", "etcd-key", "locksmith-cert", "locksmith-key")}


def kola_etcd(certs, enable_v2=True):
    """etcd as kola starts it with kola_certificates: https with etcd's certificate, and client
    certificates required from the locksmith CA (--trusted-ca-file: not the CA of etcd's own)."""
    return Etcd(tls=(certs["etcd-cert"], certs["etcd-key"], certs["ca-etcd-cert"]),
                client_certificate=(certs["locksmith-cert"], certs["locksmith-key"]),
                client_ca=certs["ca-locksmith-cert"], enable_v2=enable_v2)


class Bus:
    """A private bus that plays the system bus: DBUS_SYSTEM_BUS_ADDRESS points programs at it."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="locksmith-test-bus-")
        config = os.path.join(self.dir, "bus.conf")
        with open(config, "w") as f:
            f.write("""<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path=%s/bus</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_destination="*" eavesdrop="true"/>
    <allow receive_sender="*"/>
    <allow eavesdrop="true"/>
  </policy>
</busconfig>
""" % self.dir)
        self.proc = subprocess.Popen(["dbus-daemon", "--config-file", config, "--nofork", "--nopidfile", "--print-address=1"],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        _running.append(self.proc)
        self.address = self.proc.stdout.readline().strip()
        if not self.address:
            raise RuntimeError("dbus-daemon did not start: " + self.proc.stderr.read())
        self.env = dict(os.environ, DBUS_SYSTEM_BUS_ADDRESS=self.address)

    def start(self, argv, **kwargs):
        """Starts a stand-in on the bus and waits for its "ready" line."""
        p = subprocess.Popen(argv, env=self.env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, **kwargs)
        _running.append(p)
        line = p.stdout.readline().strip()
        if line != "ready":
            raise RuntimeError("%s did not start" % argv[0])
        return p

    def stop_process(self, p):
        p.kill()
        p.communicate(timeout=5)
        _running.remove(p)

    def stop(self):
        self.stop_process(self.proc)
        shutil.rmtree(self.dir, ignore_errors=True)


class CountingProxy:
    """A stand-in HTTP proxy on loopback that sends every request to this machine's port named in
    it and records each request (method, path, header lines), also on a kept-alive connection;
    answers, watch streams included, are passed back as they come. `before(method, path, body)`,
    if given, runs before each request is passed on (the request waits for it): a test makes
    something happen at an exact point of a program's conversation with etcd."""

    def __init__(self, before=None):
        self.before = before
        self.server = socket.socket()
        self.server.bind(("127.0.0.1", 0))
        self.server.listen(16)
        self.url = "http://127.0.0.1:%d" % self.server.getsockname()[1]
        self.requests = []
        self.lock = threading.Lock()
        threading.Thread(target=self.accept, daemon=True).start()

    def count(self):
        with self.lock:
            return len(self.requests)

    def stop(self):
        self.server.close()

    def accept(self):
        while True:
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            threading.Thread(target=self.serve, args=(conn,), daemon=True).start()

    def serve(self, conn):
        upstream, buffer = None, b""
        try:
            while True:
                while b"\r\n\r\n" not in buffer:
                    data = conn.recv(65536)
                    if not data:
                        return
                    buffer += data
                head, buffer = buffer.split(b"\r\n\r\n", 1)
                lines = head.decode("latin-1").split("\r\n")
                method, target, version = lines[0].split(" ", 2)
                headers = [line for line in lines[1:] if not line.lower().startswith("proxy-")]
                length = sum(int(line.split(":", 1)[1]) for line in headers if line.lower().startswith("content-length:"))
                while len(buffer) < length:
                    data = conn.recv(65536)
                    if not data:
                        return
                    buffer += data
                body, buffer = buffer[:length], buffer[length:]
                url = urllib.parse.urlsplit(target)
                path = (url.path or "/") + ("?" + url.query if url.query else "")
                with self.lock:
                    self.requests.append((method, path, headers))
                if self.before:
                    self.before(method, path, body)
                if upstream is None:
                    upstream = socket.create_connection(("127.0.0.1", url.port))
                    threading.Thread(target=self.pipe, args=(upstream, conn), daemon=True).start()
                upstream.sendall(("%s %s %s\r\n" % (method, path, version)).encode("latin-1")
                                 + "".join(h + "\r\n" for h in headers).encode("latin-1") + b"\r\n" + body)
        except OSError:
            pass
        finally:
            conn.close()
            if upstream:
                upstream.close()

    @staticmethod
    def pipe(source, sink):
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                sink.sendall(data)
        except OSError:
            pass
        finally:
            try:
                sink.shutdown(socket.SHUT_WR)
            except OSError:
                pass
