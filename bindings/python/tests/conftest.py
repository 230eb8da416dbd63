"""Shared set-up of the binding's tests: the package from this tree (src/), the library from
$LOCKSMITH_LIBRARY (default: the tree's build/lib/liblocksmith.so.1), the time zone the window
vectors were written for, and one real etcd server per session."""
import importlib.util
import itertools
import os
import sys
import time

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
BINDING = os.path.dirname(HERE)
ROOT = os.path.dirname(os.path.dirname(BINDING))  # the locksmith-swift tree
HEADER = os.path.join(ROOT, "include", "locksmith.h")
WINDOW_VECTORS = os.path.join(ROOT, "Tests", "LocksmithCoreTests", "vectors", "window.tsv")
BUILT_LIBRARY = os.path.join(ROOT, "build", "lib", "liblocksmith.so.1")

os.environ.setdefault("LOCKSMITH_LIBRARY", BUILT_LIBRARY)
# The window vectors are Los Angeles times; tzset() so the library's localtime_r sees the zone.
os.environ["TZ"] = "America/Los_Angeles"
time.tzset()
# The client picks options up only from what the tests give it, never from the caller's shell.
for name in [n for n in os.environ if n.startswith("LOCKSMITHCTL_") or n == "LOCKSMITH_ROOT"]:
    del os.environ[name]
sys.path.insert(0, os.path.join(BINDING, "src"))

import locksmith  # noqa: E402  (after the path and the environment are set)


def _load_harness():
    spec = importlib.util.spec_from_file_location("locksmith_harness", os.path.join(ROOT, "Tests", "harness", "locksmith_harness.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


harness = _load_harness()
_counter = itertools.count()


def pytest_report_header(config):
    return "liblocksmith %s from %s" % (locksmith.version(), locksmith.library_path)


@pytest.fixture(scope="session")
def etcd():
    """A real etcd (v2 enabled) on a free loopback port, for the whole session."""
    server = harness.Etcd(prefix="locksmith-test-etcd-py-")
    yield server
    server.stop()


@pytest.fixture
def group(request):
    """A group no other test uses."""
    return "py-%s-%d-%d" % (request.node.name.split("[")[0], os.getpid(), next(_counter))


@pytest.fixture(params=["v2", "v3"])
def api(request):
    return request.param


@pytest.fixture
def root(tmp_path, monkeypatch):
    """A LOCKSMITH_ROOT with a valid /etc/machine-id."""
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "machine-id").write_text("0123456789abcdef0123456789abcdef\n")
    monkeypatch.setenv("LOCKSMITH_ROOT", str(tmp_path))
    return tmp_path
