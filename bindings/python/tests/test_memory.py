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


def test_the_functions_programs_need_do_not_leak(tmp_path):
    conf_text = ("REBOOT_STRATEGY=best-effort\nLOCKSMITHD_REBOOT_WINDOW_START=Thu 23:00\n"
                 "LOCKSMITHD_REBOOT_WINDOW_LENGTH=1h\nLOCKSMITHD_GROUP=web\nskipped line\n")

    def body():
        locksmith.duration_format(5400 * 10**9)
        locksmith.json_quote("<a> & \"b\"")
        locksmith.default_root()
        locksmith.key_group(locksmith.group_key("prod/database"))
        locksmith.option_names()
        locksmith.record_slot(locksmith.DEFAULT_KEY, "node-1", tmp_path)
        locksmith.slot_record(tmp_path)
        with Config.parse(conf_text, "/etc/coreos/update.conf") as conf:
            conf.warnings
            with locksmith.DaemonSettings(conf, tmp_path) as d:
                d.strategy, d.window, d.window_sources, d.broadcast_delay, d.slot_wait, d.utmp, d.group, d.warnings
                with d.client() as c:
                    c.settings(), c.key, c.warnings
            with Client("http://127.0.0.1:1") as c:
                c.load_settings("LOCKSMITHPY", conf)
                c.settings()
                c.set_trace(lambda line: None)
                c.set_trace(None)
                c.cancel()
                c.cancel(False)
                c.last_seen()
                c.prepare()

    assert growth(body, 1000) < 64 * 1024


def test_listings_and_traces_do_not_leak(etcd, group):
    with Client(etcd.endpoint, group) as c:
        c.status().close()
        etcd.put("v2", locksmith.group_key(group + "-corrupt"), "not-a-semaphore")
        lines = []
        c.set_trace(lines.append)

        def body():
            for g in c.groups():
                if g.semaphore is not None:
                    g.semaphore.close()
            with c.last_seen() as s:
                s.to_json()
            del lines[:]

        assert growth(body, 300) < 128 * 1024
