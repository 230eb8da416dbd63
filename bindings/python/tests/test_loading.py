"""Finding the library: $LOCKSMITH_LIBRARY first, else liblocksmith.so.1 through the dynamic
loader; clear ImportErrors that say how to fix it. Each case imports the package in a fresh
interpreter."""
import os
import subprocess
import sys

from conftest import BINDING

SRC = os.path.join(BINDING, "src")
LIBRARY = os.environ["LOCKSMITH_LIBRARY"]


def run(code, **env):
    clean = {k: v for k, v in os.environ.items() if k not in ("LOCKSMITH_LIBRARY", "LD_LIBRARY_PATH")}
    clean.update(env, PYTHONPATH=SRC)
    return subprocess.run([sys.executable, "-c", code], env=clean, capture_output=True, text=True, timeout=60)


def test_the_environment_variable_names_the_library():
    r = run("import locksmith; print(locksmith.library_path, locksmith.version())", LOCKSMITH_LIBRARY=LIBRARY)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == [LIBRARY, locksmith_version()]


def locksmith_version():
    import locksmith
    return locksmith.version()


def test_the_dynamic_loader_finds_the_soname():
    r = run("import locksmith; print(locksmith.library_path)", LD_LIBRARY_PATH=os.path.dirname(LIBRARY))
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "liblocksmith.so.1"


def test_a_bad_path_in_the_variable_is_an_import_error_naming_it():
    r = run("import locksmith", LOCKSMITH_LIBRARY="/nonexistent/liblocksmith.so.1")
    assert r.returncode != 0
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith("ImportError: cannot load liblocksmith from LOCKSMITH_LIBRARY=/nonexistent/liblocksmith.so.1")
    assert "unset it" in last


def test_a_library_that_is_not_liblocksmith():
    r = run("import locksmith", LOCKSMITH_LIBRARY="libc.so.6")
    assert r.returncode != 0
    assert "libc.so.6 has no function locksmith_version" in r.stderr


def test_no_library_anywhere_says_how_to_fix_it():
    # Hide any installed copy: the loader and find_library both come up empty.
    code = """
import ctypes, ctypes.util
real = ctypes.CDLL
def cdll(name, *a, **k):
    if name and "locksmith" in name:
        raise OSError(name + ": cannot open shared object file: No such file or directory")
    return real(name, *a, **k)
ctypes.CDLL = cdll
ctypes.util.find_library = lambda name: None
try:
    import locksmith
except ImportError as e:
    print(e)
"""
    r = run(code)
    assert r.returncode == 0, r.stderr
    message = r.stdout.strip()
    assert message.startswith("cannot find liblocksmith.so.1: install liblocksmith")
    assert "set LOCKSMITH_LIBRARY to the path of liblocksmith.so.1" in message


def test_another_abi_is_refused():
    code = """
import ctypes, ctypes.util
real = ctypes.CDLL
def cdll(name, *a, **k):
    if name and "locksmith" in name:
        raise OSError(name + ": cannot open shared object file")
    return real(name, *a, **k)
ctypes.CDLL = cdll
ctypes.util.find_library = lambda name: "liblocksmith.so.2"
try:
    import locksmith
except ImportError as e:
    print(e)
"""
    r = run(code)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("found liblocksmith.so.2, but this binding needs liblocksmith.so.1 (ABI 1)")


def test_a_library_older_than_the_binding_is_refused():
    # A liblocksmith.so.1 with LOCKSMITH_1 only: the first LOCKSMITH_2 function in the header's
    # order (by object: this node's functions come before the configuration's) is missing.
    code = """
import ctypes
real = ctypes.CDLL
class Old:
    def __init__(self, library):
        self._library = library
    def __getattr__(self, name):
        if name in ("locksmith_config_load_at", "locksmith_machine_id_at", "locksmith_client_new_with_flags",
                    "locksmith_client_set_deadline", "locksmith_client_read"):
            raise AttributeError(name)
        return getattr(self._library, name)
ctypes.CDLL = lambda name, *a, **k: Old(real(name, *a, **k)) if name and "locksmith" in name else real(name, *a, **k)
try:
    import locksmith
except ImportError as e:
    print(e)
"""
    r = run(code, LOCKSMITH_LIBRARY=LIBRARY)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("%s has no function locksmith_machine_id_at: it is older than this binding" % LIBRARY)
