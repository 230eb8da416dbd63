"""Threads: many clients racing for few slots through real etcd, and one client shared by threads."""
import threading
import time

import locksmith
from locksmith import Busy, Client

THREADS = 20
ROUNDS = 3
MAX = 3


def test_twenty_threads_each_with_a_client_never_exceed_max(etcd, group, api):
    with Client(etcd.endpoint, group, api=api) as admin:
        admin.set_max(MAX)
    key = locksmith.group_key(group)
    guard = threading.Lock()
    state = {"holding": 0, "most": 0, "locks": 0, "unlocks": 0, "busy": 0, "conflicts": 0, "over": []}
    errors = []
    start = threading.Barrier(THREADS)

    def worker(n):
        me = "node-%02d" % n
        try:
            with Client(etcd.endpoint, group, api=api, timeout=10) as c:
                start.wait()
                for _ in range(ROUNDS):
                    deadline = time.monotonic() + 60
                    while True:
                        try:
                            c.lock(me)
                            break
                        except Busy:
                            with guard:
                                state["busy"] += 1
                            assert time.monotonic() < deadline, me + " never got a slot"
                            c.wait(1)
                    with guard:
                        state["locks"] += 1
                        state["holding"] += 1
                        state["most"] = max(state["most"], state["holding"])
                    holders = etcd.holders(api, key)  # etcd's own view, not ours
                    if len(holders) > MAX or me not in holders:
                        with guard:
                            state["over"].append(holders)
                    time.sleep(0.01)
                    with guard:
                        state["holding"] -= 1
                    c.unlock(me)
                    with guard:
                        state["unlocks"] += 1
                with guard:
                    state["conflicts"] += c.stats.conflicts
        except BaseException as e:  # reported by the main thread
            errors.append((me, repr(e)))

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not any(t.is_alive() for t in threads), "threads still running"
    assert errors == []
    assert state["over"] == [], "etcd showed more than %d holders, or lost one" % MAX
    assert state["locks"] == state["unlocks"] == THREADS * ROUNDS
    assert 1 <= state["most"] <= MAX
    assert state["busy"] > 0  # they really contended
    with Client(etcd.endpoint, group, api=api) as c, c.status() as s:
        assert (s.available, s.max, s.holders) == (MAX, MAX, [])


def test_one_client_shared_by_threads_takes_turns(etcd, group, api):
    with Client(etcd.endpoint, group, api=api) as c:
        c.set_max(8)
        errors = []

        def worker(n):
            try:
                for r in range(5):
                    c.lock("t%d" % n)
                    with c.status() as s:
                        assert s.is_holder("t%d" % n)
                    c.unlock("t%d" % n)
                    c.stats  # also under the lock
            except BaseException as e:
                errors.append(repr(e))

        threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert errors == []
        with c.status() as s:
            assert s.holders == [] and s.available == 8


def test_a_semaphore_shared_by_threads(tmp_path):
    s = locksmith.Semaphore()
    s.set_max(1000)
    errors = []

    def worker(n):
        try:
            for i in range(50):
                s.lock("h%d-%d" % (n, i))
                assert s.is_holder("h%d-%d" % (n, i))
                s.to_json()
        except BaseException as e:
            errors.append(repr(e))

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    assert len(s.holders) == 500 and s.available == 500
    s.close()
