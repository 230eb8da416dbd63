"""`pip install bindings/python` into a fresh virtual environment works and `import locksmith`
then loads the installed copy (with its py.typed marker). The source is copied first so that the
build (setuptools builds in the source tree) leaves this tree clean."""
import os
import shutil
import subprocess

import pytest
from conftest import BINDING

LIBRARY = os.environ["LOCKSMITH_LIBRARY"]
CHECK = """
import os, locksmith
print(locksmith.__file__)
print(locksmith.version(), locksmith.__version__)
print(os.path.exists(os.path.join(os.path.dirname(locksmith.__file__), "py.typed")))
with locksmith.Semaphore() as s:
    s.lock("installed")
    print(s.to_json())
"""


def install(tmp_path, *pip_args):
    source = tmp_path / "source"
    shutil.copytree(BINDING, source, ignore=shutil.ignore_patterns("tests", "build", "*.egg-info", ".pytest_cache", "__pycache__"))
    venv = tmp_path / "venv"
    # The system interpreter: the one the suite runs with, with Debian's setuptools and wheel.
    subprocess.run(["/usr/bin/python3", "-m", "venv", "--system-site-packages", str(venv)], check=True, timeout=120)
    python = str(venv / "bin" / "python")
    r = subprocess.run([python, "-m", "pip", "install", "--no-cache-dir", "--disable-pip-version-check", "-q",
                        *pip_args, str(source)], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["LOCKSMITH_LIBRARY"] = LIBRARY
    empty = tmp_path / "elsewhere"
    empty.mkdir()
    r = subprocess.run([python, "-c", CHECK], cwd=str(empty), env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    where, versions, typed, json = r.stdout.splitlines()
    assert where.startswith(str(venv)) and "site-packages" in where
    assert versions.split()[0] == versions.split()[1]
    assert typed == "True"
    assert json == '{"semaphore":0,"max":1,"holders":["installed"]}'


@pytest.mark.skipif(not os.path.exists("/usr/bin/python3"), reason="needs the system interpreter")
def test_pip_install_without_build_isolation(tmp_path):
    """Offline: builds with the system's setuptools (Debian's python3-setuptools)."""
    install(tmp_path, "--no-build-isolation")


@pytest.mark.network
@pytest.mark.skipif(os.environ.get("LOCKSMITH_TEST_OFFLINE") == "1", reason="LOCKSMITH_TEST_OFFLINE=1")
def test_pip_install_with_build_isolation(tmp_path):
    """The plain `pip install`: pip fetches setuptools from PyPI into an isolated build."""
    install(tmp_path)
