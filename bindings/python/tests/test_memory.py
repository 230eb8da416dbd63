"""No leaks: every malloc()ed string is freed with locksmith_free and every handle with its
_free. Measured with glibc's mallinfo2() (bytes in use on the C heap, where the library's
allocations live): thousands of rounds of every allocating call must not grow it."""
import ctypes
import gc

import pytest

import locksmith
from locksmith import Client, Config, Semaphore, Window


class MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in
                ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]


libc = ctypes.CDLL(None)
if not hasattr(libc, "mallinfo2"):
    pytest.skip("glibc without mallinfo2", allow_module_level=True)
libc.mallinfo2.restype = MallInfo2
libc.mallinfo2.argtypes = []


def heap_in_use():
    gc.collect()
    info = libc.mallinfo2()
    return info.uordblks + info.hblkhd


def growth(body, rounds):
    for _ in range(200):  # warm up caches and free lists
        body()
    before = heap_in_use()
    for _ in range(rounds):
        body()
    return heap_in_use() - before


def test_documents_windows_and_strings_do_not_leak():
    def body():
        with Semaphore.parse('{"semaphore":1,"max":4,"holders":["b","a","c"],"x":1}') as s:
            s.lock("d" * 200)
            s.to_json()
            s.holders
            s.unlock("a")
        with Window("Thu 23:00", "1h30m") as w:
            str(w)
            w.next(1432191600)
        locksmith.group_key("prod/database")
        locksmith.machine_id()
        with Config.parse("A=1\nB=2\n", "f") as c:
            c.lookup("A")
        try:
            Semaphore.parse("{bad")
        except locksmith.CorruptSemaphore:
            pass

    # A leak of one 16-byte string per round would be 80 KB here.
    assert growth(body, 5000) < 48 * 1024


def test_handles_dropped_without_close_are_freed():
    def body():
        s = Semaphore()
        s.lock("x")
        Window("02:00", "1h").start
        del s

    assert growth(body, 5000) < 48 * 1024


def test_clients_do_not_leak(etcd, group):
    def body():
        with Client(etcd.endpoint, group) as c:
            with c.status() as s:
                s.to_json()
            c.lock("leak")
            c.unlock("leak")
            c.api, c.endpoint, c.stats
        Client("http://127.0.0.1:1")  # never closed: freed by the garbage collector

    # Each client holds a libcurl handle and connection (tens of KB): 300 rounds would show it.
    assert growth(body, 300) < 256 * 1024
