"""Real services for the tests and the fleet simulator: an etcd server (Debian's etcd-server) and a private
D-Bus system bus (dbus-daemon), each on loopback or in a temporary directory, stopped and removed
when the test process ends."""
import atexit
import base64
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.parse
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LOCKSMITHCTL = os.environ.get("LOCKSMITHCTL", os.path.join(ROOT, "build", "bin", "locksmithctl"))
STANDINS = os.environ.get("STANDINS", os.path.join(ROOT, "build", "standins"))
PREFIX = "coreos.com/updateengine/rebootlock"

_running = []


@atexit.register
def _stop_all():
    for p in list(_running):
        try:
            p.kill()
            p.wait(5)
        except Exception:
            pass


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_for(predicate, timeout=10.0, step=0.02):
    """predicate()'s first true value within timeout seconds, else its last value."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(step)
    return predicate()


def read(path):
    """A file's text, or "" if it does not exist."""
    try:
        with open(path) as f:
            return f.read()
    except FileNotFoundError:
        return ""


def with_terminal(argv, tty, root):
    """argv run in a private mount namespace where the terminal device tty (e.g. /dev/pts/3) is
    bind-mounted at the same path under root: how a test puts a real terminal under a node's
    root (locksmithd refuses a symbolic link in place of a terminal). Signals reach the program
    itself: unshare and sh exec it."""
    target = root + tty
    os.makedirs(os.path.dirname(target), exist_ok=True)
    if not os.path.exists(target):
        open(target, "w").close()
    return ["unshare", "-m", "sh", "-c", 'mount --bind "$1" "$2" && shift 2 && exec "$@"', "sh", tty, target] + list(argv)


def group_key(group):
    if not group:
        return PREFIX + "/semaphore"
    return PREFIX + "/groups/" + urllib.parse.quote_plus(group, safe="-_.~") + "/semaphore"


class Etcd:
    def __init__(self, port=None, prefix="locksmith-test-etcd-"):
        base = "/dev/shm" if os.access("/dev/shm", os.W_OK) else None
        self.dir = tempfile.mkdtemp(prefix=prefix, dir=base)
        self.port, peer = port or free_port(), free_port()
        self.endpoint = "http://127.0.0.1:%d" % self.port
        self.proc = subprocess.Popen(
            ["etcd", "--name", "test", "--data-dir", self.dir + "/data", "--enable-v2=true",
             "--listen-client-urls", self.endpoint, "--advertise-client-urls", self.endpoint,
             "--listen-peer-urls", "http://127.0.0.1:%d" % peer,
             "--initial-advertise-peer-urls", "http://127.0.0.1:%d" % peer,
             "--initial-cluster", "test=http://127.0.0.1:%d" % peer,
             "--log-outputs", self.dir + "/etcd.log", "--logger", "zap"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _running.append(self.proc)
        for _ in range(400):
            try:
                urllib.request.urlopen(self.endpoint + "/version", timeout=0.5).read()
                return
            except Exception:
                time.sleep(0.05)
        raise RuntimeError("etcd did not start")

    def stop(self):
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

