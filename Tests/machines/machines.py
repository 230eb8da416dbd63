"""Machines that boot real systemd: minimal Debian roots (debootstrap --variant=minbase) with the
built packages installed, each booted with `systemd-nspawn -b` on the host's network (issue 27).

    base = base_root("bookworm")             # cached under /var/cache/locksmith-machines
    fleet = Fleet(base, debs, workdir)       # the packages installed once, in a layer of their own
                                             # (debs=[]: machines without our packages, test-sysext)
    m = fleet.machine("m1")                  # an overlay: base + packages + this machine's files
    m.configure(strategy="etcd-lock", endpoint=etcd.endpoint)
    m.boot(); m.run("systemctl", "is-active", "locksmithd")
    fleet.close()                            # kills every machine and unmounts, whatever happened

Layers (overlayfs, nothing copied): the cached base root, read-only; a packages layer made once per
run (dpkg -i of the .debs in a chroot: every dependency is in the base already, so no network);
one upper directory per machine (its machine id, hostname, /etc/default/locksmithd, the test
drop-in, and whatever it writes while it runs; kept across its reboots, as a disk is).

This host's PID 1 is not systemd (the cgroup hierarchy is v1 with a v2 "unified" beside it), so
each machine's nspawn is put in a cgroup of its own in both the name=systemd and the unified
hierarchy before it starts (`--keep-unit --register=no`: there is no systemd or machined to ask).
Commands run inside through `nsenter -t LEADER -a` with a clean environment. nspawn exits with 133
when the machine asks to reboot: a watcher boots the machine again, as systemd-nspawn@.service does
(RestartForceExitStatus=133), and records when.
"""
import fcntl
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time

CACHE = os.environ.get("LOCKSMITH_MACHINES_CACHE", "/var/cache/locksmith-machines")
MIRROR = os.environ.get("LOCKSMITH_MACHINES_MIRROR", "http://deb.debian.org/debian")
# A base older than this is made again (security updates; the archive moves on).
MAX_AGE_DAYS = float(os.environ.get("LOCKSMITH_MACHINES_MAX_AGE_DAYS", "14"))
# What the packages need (liblocksmith1: libcurl4, libsystemd0; locksmith-fleetlockd: libmicrohttpd,
# gnutls, json-c; libpam-locksmith: libpam-runtime) and a booting system: systemd as init, dbus for
# logind. Installed by debootstrap, so that installing the .debs later needs no network.
# libpam-systemd registers login sessions with logind, as on any installed Debian (trixie has no
# utmp: logind's sessions are the only list of who is logged in where).
INCLUDE = ["systemd", "systemd-sysv", "dbus", "libpam-systemd", "libcurl4", "libsystemd0", "libpam-runtime",
           "libpam-modules", "libmicrohttpd12", "libjson-c5", "libgnutls30", "procps", "iproute2"]
# trixie renamed the libraries of the 64-bit time_t transition (they provide the old names).
RENAMED = {"trixie": {"libcurl4": "libcurl4t64", "libmicrohttpd12": "libmicrohttpd12t64", "libgnutls30": "libgnutls30t64"}}
# trixie's lintian checks the packages made for trixie (this host's lintian is bookworm's);
# debootstrap does not resolve the virtual perl-openssl-abi-3 its dependencies need: named here.
EXTRA = {"trixie": ["lintian", "perl-openssl-defaults"]}


def include(release):
    return [RENAMED.get(release, {}).get(p, p) for p in INCLUDE] + EXTRA.get(release, [])
# The packages installed in every machine (python3-locksmith would bring python3: not needed here).
PACKAGES = ["liblocksmith1", "locksmith", "locksmith-fleetlockd", "libpam-locksmith"]
ENV = ["env", "-i", "PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C.UTF-8", "SYSTEMD_COLORS=0", "SYSTEMD_PAGER=cat"]
CGROUP = "locksmith-machines"
REBOOT_STATUS = 133


class Skip(Exception):
    """This host cannot run machines; the message says why."""


def log(*args):
    print("  [%7.1f]" % (time.monotonic() - _t0), *args, flush=True)


_t0 = time.monotonic()


def preflight():
    """Raises Skip when the host lacks what the machines need."""
    if os.geteuid() != 0:
        raise Skip("machines need root (overlay mounts, cgroups, systemd-nspawn)")
    for tool in ("systemd-nspawn", "debootstrap", "nsenter", "chroot"):
        if not shutil.which(tool):
            raise Skip("%s is missing (tools/build/install-deps installs systemd-container and debootstrap)" % tool)
    # An overlay mount, tried (the module may load on first use; a container may forbid it).
    probe = tempfile.mkdtemp(prefix="locksmith-machines-probe-", dir="/var/tmp")
    try:
        try:
            _mount_overlay([probe + "/lower"], probe + "/upper", probe + "/work", probe + "/mnt")
        except (subprocess.CalledProcessError, OSError) as e:
            raise Skip("cannot mount an overlay file system here (%s)" % e)
        _umount(probe + "/mnt")
    finally:
        shutil.rmtree(probe, ignore_errors=True)
    for h in _hierarchies():
        if not os.access(h, os.W_OK):
            raise Skip("cannot make a cgroup under %s" % h)


def _hierarchies():
    """The cgroup directories a machine's nspawn is put in: the unified (v2) one, and on a v1 or
    hybrid host the name=systemd one, which systemd inside needs as well."""
    if os.path.exists("/sys/fs/cgroup/cgroup.controllers"):
        return ["/sys/fs/cgroup"]
    return [h for h in ("/sys/fs/cgroup/unified", "/sys/fs/cgroup/systemd") if os.path.isdir(h)]


def base_root(release, log_file=None):
    """The cached minimal root of `release` (a directory), made with debootstrap when missing,
    when it was made with another package list, or when older than MAX_AGE_DAYS."""
    os.makedirs(CACHE, exist_ok=True)
    # Two runs at once: one makes the base while the other waits, and a base in use (overlays
    # on it) is never made again under a run: each run holds a shared lock on it until it exits.
    lock = open(os.path.join(CACHE, release + "-base.lock"), "w")
    fcntl.flock(lock, fcntl.LOCK_SH)
    root = _fresh_base(release)
    if not root:
        fcntl.flock(lock, fcntl.LOCK_UN)
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            root = _fresh_base(release) or _make_base(release, log_file)
        except BaseException:
            lock.close()
            raise
        fcntl.flock(lock, fcntl.LOCK_SH)
    _held_locks.append(lock)
    return root


_held_locks = []


def _stamp(release):
    return "%s %s %s\n" % (release, MIRROR, ",".join(include(release)))


def _fresh_base(release):
    """The cached base of release if it is there, made with this package list and not too old."""
    root = os.path.join(CACHE, release + "-base")
    try:
        with open(root + ".stamp") as f:
            have = f.read()
        age = (time.time() - os.stat(root + ".stamp").st_mtime) / 86400
    except FileNotFoundError:
        return None
    if have == _stamp(release) and age < MAX_AGE_DAYS and os.path.isdir(root + "/usr/lib/systemd"):
        return root
    return None


def _make_base(release, log_file):
    root = os.path.join(CACHE, release + "-base")
    stamp = root + ".stamp"
    want = _stamp(release)
    new = root + ".new"
    shutil.rmtree(new, ignore_errors=True)
    log("debootstrap %s (cached afterwards in %s)" % (release, root))
    t = time.monotonic()
    out = open(log_file or os.devnull, "w")
    r = subprocess.run(["debootstrap", "--variant=minbase", "--include=" + ",".join(include(release)), release, new, MIRROR],
                       stdout=out, stderr=subprocess.STDOUT)
    if r.returncode != 0:
        shutil.rmtree(new, ignore_errors=True)
        raise Skip("debootstrap %s from %s failed (exit %d; no archive reachable?)" % (release, MIRROR, r.returncode))
    # No machine id in the base (debootstrap's would be every machine's): each machine writes its
    # own over the empty file.
    os.unlink(new + "/etc/machine-id")
    open(new + "/etc/machine-id", "w").close()
    try:
        os.unlink(new + "/var/lib/dbus/machine-id")
    except FileNotFoundError:
        pass
    # Cleaned up: the downloaded archives are not needed in every machine.
    for d in ("/var/cache/apt/archives",):
        for name in os.listdir(new + d):
            if name.endswith(".deb"):
                os.unlink(os.path.join(new + d, name))
    shutil.rmtree(root, ignore_errors=True)
    os.rename(new, root)
    with open(stamp, "w") as f:
        f.write(want)
    log("debootstrap %s took %.0f s" % (release, time.monotonic() - t))
    return root


def _mount_overlay(lowers, upper, work, target):
    for d in lowers + [upper, work, target]:
        os.makedirs(d, exist_ok=True)
    subprocess.run(["mount", "-t", "overlay", "overlay", "-o",
                    "lowerdir=%s,upperdir=%s,workdir=%s" % (":".join(lowers), upper, work), target], check=True)


def _umount(target):
    if os.path.ismount(target):
        if subprocess.run(["umount", target], stderr=subprocess.DEVNULL).returncode != 0:
            subprocess.run(["umount", "-l", target], stderr=subprocess.DEVNULL)


class Fleet:
    """Machines on one base with the packages in `debs` (paths of .deb files), under workdir. With
    no debs the packages layer stays empty: machines without our packages (Tests/machines/
    test-sysext puts the original locksmith in them, and ours comes as a system extension)."""

    def __init__(self, base, debs, workdir=None):
        self.base = base
        # The harness's PID in the names: remove_leftovers() tells a dead run's machines from a live one's.
        self.dir = workdir or tempfile.mkdtemp(prefix="locksmith-machines-%d-" % os.getpid(), dir="/var/tmp")
        self.machines = []
        self.mounts = []
        self.closed = False
        layer = os.path.join(self.dir, "packages")
        root = os.path.join(self.dir, "packages-root")
        try:
            _mount_overlay([base], layer, os.path.join(self.dir, "packages-work"), root)
            self.mounts.append(root)
            self.install_log = self._install(root, debs) if debs else ""
            _umount(root)
            self.mounts.remove(root)
        except BaseException:
            self.close()
            raise
        self.packages = layer

    @staticmethod
    def _install(root, debs):
        """Installs debs in root. dpkg in a chroot: no systemd runs there, so the maintainer
        scripts enable the unit (deb-systemd-helper) and start nothing, as on a machine being
        installed. The base has every dependency the packages had when INCLUDE was written; one
        added since is fetched with apt-get -f install (the Debian archive)."""
        os.makedirs(root + "/tmp/debs", exist_ok=True)
        for d in debs:
            shutil.copy(d, root + "/tmp/debs/")
        names = " ".join("/tmp/debs/" + os.path.basename(d) for d in debs)
        r = subprocess.run(["chroot", root] + ENV + ["dpkg", "-i"] + names.split(), stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True)
        out = r.stdout
        if r.returncode != 0:
            shutil.copy("/etc/resolv.conf", root + "/etc/resolv.conf")
            r = subprocess.run(["chroot", root] + ENV + ["sh", "-c", "apt-get update -qq && DEBIAN_FRONTEND=noninteractive "
                               "apt-get -f install -y -qq --no-install-recommends && apt-get clean"],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            out += r.stdout
            if r.returncode != 0:
                raise RuntimeError("the packages do not install in the base (dpkg -i, then apt-get -f install):\n" + out[-3000:])
        shutil.rmtree(root + "/tmp/debs")
        return out

    def machine(self, name):
        m = Machine(self, name)
        self.machines.append(m)
        return m

    def close(self):
        """Kills every machine, unmounts and removes everything of the run; safe to call twice."""
        if self.closed:
            return
        self.closed = True
        t = time.monotonic()
        for m in self.machines:
            m.kill()
        t1 = time.monotonic()
        for m in self.machines:
            m.remove()
        for target in self.mounts:
            _umount(target)
        for h in _hierarchies():
            try:
                os.rmdir(os.path.join(h, CGROUP, str(os.getpid())))
            except OSError:  # another fleet of this process still has machines there
                pass
        t2 = time.monotonic()
        shutil.rmtree(self.dir, ignore_errors=True)
        if os.environ.get("LOCKSMITH_MACHINES_DEBUG"):
            log("kill %.1f s, unmount %.1f s, remove %.1f s" % (t1 - t, t2 - t1, time.monotonic() - t2))


class Machine:
    """One booted (or bootable) machine: its root is base + packages + its own upper directory."""

    def __init__(self, fleet, name):
        self.fleet, self.name = fleet, name
        self.dir = os.path.join(fleet.dir, name)
        self.root = os.path.join(self.dir, "root")
        _mount_overlay([fleet.packages, fleet.base], os.path.join(self.dir, "upper"), os.path.join(self.dir, "work"), self.root)
        fleet.mounts.append(self.root)
        with open(self.root + "/etc/machine-id", "w") as f:
            f.write(subprocess.run(["systemd-id128", "new"], stdout=subprocess.PIPE, text=True, check=True).stdout)
        with open(self.root + "/etc/hostname", "w") as f:
            f.write(name + "\n")
        with open(self.root + "/etc/hosts", "w") as f:
            f.write("127.0.0.1 localhost\n127.0.1.1 %s\n" % name)
        # A persistent journal: what the daemon said before a reboot is read after it.
        os.makedirs(self.root + "/var/log/journal", exist_ok=True)
        self.cgroups = [os.path.join(h, CGROUP, str(os.getpid()), name) for h in _hierarchies()]
        self.proc = None
        self.leader = None
        self.console = open(os.path.join(self.dir, "console.log"), "ab")
        self.boots = []        # monotonic times at which the machine reached a running system
        self.reboots = []      # monotonic times at which its nspawn exited 133 (a reboot)
        self.exits = []        # other exit statuses of nspawn
        self.starts = []       # monotonic times at which nspawn was started
        self.follow_reboots = False
        self.stopping = False
        self.lock = threading.Lock()
        self.booted = threading.Event()
        self.watcher = None
        # More systemd-nspawn options for every boot of this machine (e.g. --bind-ro=...).
        self.nspawn_args = []

    # -- files, before boot -------------------------------------------------------------------
    def write(self, path, text, mode=0o644):
        full = self.root + path
        os.makedirs(os.path.dirname(full), exist_ok=True)
        with open(full, "w") as f:
            f.write(text)
        os.chmod(full, mode)

    def read(self, path):
        """A file of the machine's disk (not of its /run, a tmpfs inside: use cat), or None."""
        try:
            with open(self.root + path) as f:
                return f.read()
        except FileNotFoundError:
            return None

    def configure(self, strategy=None, endpoint=None, extra=None):
        """/etc/default/locksmithd edited as the README tells an operator: the strategy line
        changed, the endpoint line uncommented and set; plus the test-only drop-in that resets
        ConditionVirtualization=!container (and nothing else)."""
        path = "/etc/default/locksmithd"
        lines = self.read(path).splitlines()
        settings = dict(extra or {})
        if strategy:
            settings["REBOOT_STRATEGY"] = strategy
        if endpoint:
            settings["LOCKSMITHD_ENDPOINT"] = endpoint
        out = []
        for line in lines:
            key = line.lstrip("#").split("=", 1)[0]
            if "=" in line and key in settings and (not line.startswith("#") or key.isupper()):
                if settings[key] is not None:
                    out.append("%s=%s" % (key, settings[key]))
                    settings[key] = None
                continue
            out.append(line)
        out += ["%s=%s" % (k, v) for k, v in settings.items() if v is not None]
        self.write(path, "\n".join(out) + "\n")
        self.write("/etc/systemd/system/locksmithd.service.d/test-container.conf",
                   "# Tests/machines only: this machine is a container (systemd-nspawn).\n"
                   "[Unit]\nConditionVirtualization=\n")

    # -- running ------------------------------------------------------------------------------
    def _start_nspawn(self):
        for cg in self.cgroups:
            os.makedirs(cg, exist_ok=True)
        procs = " ".join("echo $$ > %s/cgroup.procs &&" % cg for cg in self.cgroups)
        argv = ["sh", "-c", "%s exec \"$@\"" % procs, "sh",
                "systemd-nspawn", "-q", "-b", "-D", self.root, "--register=no", "--keep-unit", "-M", self.name,
                "--console=passive" if _nspawn_version() >= 242 else "--console=read-only"] + self.nspawn_args
        self.console.write(("\n==== boot %d at %.1f\n" % (len(self.starts) + 1, time.monotonic() - _t0)).encode())
        self.console.flush()
        self.leader = None
        self.booted.clear()
        self.starts.append(time.monotonic())
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=self.console, stderr=subprocess.STDOUT,
                                     start_new_session=True)

    def boot(self, timeout=120):
        """Starts the machine and waits until systemd inside says the system is up (running or
        degraded); returns the seconds that took. A watcher boots it again whenever it reboots."""
        with self.lock:
            self._start_nspawn()
            proc = self.proc
        if not self.watcher:
            self.watcher = threading.Thread(target=self._watch, daemon=True)
            self.watcher.start()
        return self._wait_up(proc, timeout)

    def _find_leader(self, proc):
        """PID of the machine's init (nspawn's child that became systemd), or None."""
        try:
            with open("/proc/%d/task/%d/children" % (proc.pid, proc.pid)) as f:
                kids = f.read().split()
        except OSError:
            return None
        for k in kids:
            try:
                with open("/proc/%s/comm" % k) as f:
                    if f.read().strip() == "systemd":
                        return int(k)
            except OSError:
                pass
        return None

    def _wait_up(self, proc, timeout):
        t0 = time.monotonic()
        deadline = t0 + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError("%s: systemd-nspawn exited %s while booting; console:\n%s" % (self.name, proc.returncode, self.console_tail()))
            leader = self._find_leader(proc)
            if leader:
                r = subprocess.run(["nsenter", "-t", str(leader), "-a"] + ENV + ["timeout", "%d" % max(1, deadline - time.monotonic()),
                                   "systemctl", "is-system-running", "--wait"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
                state = r.stdout.strip().splitlines()[-1] if r.stdout.strip() else ""
                if state in ("running", "degraded"):
                    with self.lock:
                        if self.proc is proc:
                            self.leader = leader
                            self.boots.append(time.monotonic())
                            self.booted.set()
                    self.state_at_boot = state
                    return time.monotonic() - t0
            time.sleep(0.1)
        raise RuntimeError("%s did not come up within %d s; console:\n%s" % (self.name, timeout, self.console_tail()))

    def _watch(self):
        """Boots the machine again when it reboots (nspawn's 133), as systemd-nspawn@.service does."""
        while True:
            with self.lock:
                proc = self.proc
            status = proc.wait()
            with self.lock:
                if self.stopping or proc is not self.proc:
                    return
                self.leader = None
                self.booted.clear()
                if status == REBOOT_STATUS:
                    self.reboots.append(time.monotonic())
                else:
                    self.exits.append(status)
                    return
                if not self.follow_reboots:
                    return
                self._start_nspawn()
                proc = self.proc
            try:
                self._wait_up(proc, 120)
            except RuntimeError as e:
                log(str(e))
                return

    def wait_booted(self, timeout=120):
        return self.booted.wait(timeout)

    def run(self, *argv, timeout=60, check=False, input=None):
        """(exit status, output) of argv run inside the machine (all its namespaces, a clean
        environment)."""
        with self.lock:
            leader = self.leader
        if not leader:
            return 255, "%s is not running" % self.name
        r = subprocess.run(["nsenter", "-t", str(leader), "-a"] + ENV + list(argv), stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True, timeout=timeout, input=input)
        if check and r.returncode != 0:
            raise RuntimeError("%s: %s exited %d:\n%s" % (self.name, " ".join(argv), r.returncode, r.stdout))
        return r.returncode, r.stdout

    def cat(self, path):
        """A file as the running machine sees it (its /run included), or None."""
        status, out = self.run("cat", path)
        return out if status == 0 else None

    def sh(self, script, **kw):
        return self.run("sh", "-c", script, **kw)

    def unit(self, name="locksmithd", props="ActiveState,SubState,Result,NRestarts"):
        """The unit's properties as a dict (systemctl show)."""
        _, out = self.run("systemctl", "show", "-p", props, name)
        return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)

    def journal(self, unit="locksmithd", lines=40, boot="0", only_unit=False):
        """The unit's journal lines of a boot (0 this one, -1 the one before): what its processes
        logged, what systemd logged about it, and (unless only_unit) what a process calling
        itself `unit` logged: a short-lived helper can exit before journald has read its cgroup,
        and its lines then lack _SYSTEMD_UNIT, which `journalctl -u` filters on."""
        matches = ["_SYSTEMD_UNIT=%s.service" % unit, "+", "UNIT=%s.service" % unit]
        if not only_unit:
            matches += ["+", "SYSLOG_IDENTIFIER=%s" % unit]
        return self.run("journalctl", "-b", boot, "--no-pager", "-o", "short-precise", "-n", str(lines), *matches)[1]

    def console_tail(self, n=30):
        try:
            with open(os.path.join(self.dir, "console.log"), "rb") as f:
                return "\n".join(f.read().decode(errors="replace").splitlines()[-n:])
        except OSError:
            return ""

    def kill(self):
        """Stops the machine at once (SIGKILL to everything in its cgroups) and waits for nspawn."""
        with self.lock:
            self.stopping = True
            proc = self.proc
        for cg in self.cgroups:
            for _ in range(50):
                pids = _cgroup_pids(cg)
                if not pids:
                    break
                for pid in pids:
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                time.sleep(0.05)
        if proc:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                pass
        if self.watcher:
            self.watcher.join(5)

    def remove(self):
        for cg in self.cgroups:
            for d, _, _ in sorted(os.walk(cg), key=lambda w: -len(w[0])):
                try:
                    os.rmdir(d)
                except OSError:
                    pass
        self.console.close()
        # nspawn leaves its propagation directory; the machine's own mounts die with it.
        _umount(self.root)


def _cgroup_pids(cg):
    pids = []
    for d, _, files in os.walk(cg):
        if "cgroup.procs" in files:
            try:
                with open(os.path.join(d, "cgroup.procs")) as f:
                    pids += [int(p) for p in f.read().split()]
            except OSError:
                pass
    return pids


_version = None


def _nspawn_version():
    global _version
    if _version is None:
        out = subprocess.run(["systemd-nspawn", "--version"], stdout=subprocess.PIPE, text=True).stdout
        try:
            _version = int(out.split()[1])
        except (IndexError, ValueError):
            _version = 0
    return _version


def _alive(pid):
    try:
        os.kill(int(pid), 0)
        return True
    except (ProcessLookupError, ValueError):
        return False
    except PermissionError:
        return True


def remove_leftovers():
    """Machines of an earlier run whose harness died without cleaning up (SIGKILL): their
    processes killed, their overlays unmounted, their cgroups and directories removed. Runs whose
    harness is alive (another one at the same time) are left alone."""
    dead = []
    for h in _hierarchies():
        top = os.path.join(h, CGROUP)
        for run in (os.listdir(top) if os.path.isdir(top) else []):
            if not _alive(run):
                dead.append(os.path.join(top, run))
                for pid in _cgroup_pids(os.path.join(top, run)):
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
    time.sleep(0.2)

    def dead_run(path):
        name = os.path.basename(path.split("/var/tmp/", 1)[1].split("/", 1)[0])
        parts = name.split("-")
        return name.startswith("locksmith-machines-") and len(parts) > 2 and not _alive(parts[2])
    with open("/proc/self/mounts") as f:
        targets = [line.split()[1] for line in f if line.split()[1].startswith("/var/tmp/locksmith-machines-")]
    for t in sorted((t for t in targets if dead_run(t)), key=len, reverse=True):
        _umount(t)
    for d in os.listdir("/var/tmp"):
        if d.startswith("locksmith-machines-") and dead_run("/var/tmp/" + d):
            with open("/proc/self/mounts") as f:
                if "/var/tmp/%s/" % d not in f.read():
                    shutil.rmtree("/var/tmp/" + d, ignore_errors=True)
    for top in dead:
        for d, _, _ in sorted(os.walk(top), key=lambda w: -len(w[0])):
            try:
                os.rmdir(d)
            except OSError:
                pass
