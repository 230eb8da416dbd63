"""The fair queue (Client.acquire, Client.queue) against a real etcd, v2 and v3: turns in the
order waiters joined, one waiter woken per release, a dead waiter's entry expiring, timeouts,
cancellation, and clients that do not queue never pushing the semaphore past max."""
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time

import pytest

import locksmith
from locksmith import Client


def wait_until(predicate, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.02)
    return predicate()


def queued(etcd, group, api):
    with Client(etcd.endpoint, group=group, api=api) as c:
        return [w.id for w in c.queue()]


def test_waiters_get_their_turns_in_the_order_they_joined(etcd, group, api):
    with Client(etcd.endpoint, group=group, api=api) as blocker:
        blocker.set_max(1)
        blocker.lock("blocker")
        turns, positions, errors = [], {}, []
        lock = threading.Lock()

        def waiter(name):
            try:
                with Client(etcd.endpoint, group=group, api=api) as c:
                    def heard(ahead):  # -1: still waiting (at the head with the semaphore full, or a heartbeat)
                        if ahead >= 0:
                            positions.setdefault(name, []).append(ahead)
                    assert c.acquire(name, timeout=60, progress=heard)
                    with lock:
                        turns.append(name)
                    time.sleep(0.05)
                    c.unlock(name)
            except Exception as e:  # reported below
                errors.append((name, e))

        names = ["w%02d" % i for i in range(8)]
        threads = []
        for i, name in enumerate(names):
            t = threading.Thread(target=waiter, args=(name,))
            t.start()
            threads.append(t)
            # The next one joins only once this one is in the queue: a known order.
            assert wait_until(lambda: len(queued(etcd, group, api)) == i + 1), queued(etcd, group, api)
        assert queued(etcd, group, api) == names
        assert [w.host for w in blocker.queue()][0]
        blocker.unlock("blocker")
        for t in threads:
            t.join(60)
        assert errors == []
        assert turns == names
        # Each waiter heard its place: i ahead when it joined, 0 at the head.
        for i, name in enumerate(names):
            assert positions[name][0] == i and positions[name][-1] == 0
            assert positions[name] == sorted(positions[name], reverse=True)
        assert queued(etcd, group, api) == []
        with blocker.status() as s:
            assert s.holders == [] and s.available == 1


def test_a_free_slot_is_taken_at_once_and_the_entry_goes(etcd, group, api):
    with Client(etcd.endpoint, group=group, api=api) as c:
        heard = []
        assert c.acquire("alone", timeout=10, progress=heard.append) is True
        assert heard == [0]
        with c.status() as s:
            assert s.holders == ["alone"]
        assert c.queue() == []
        with pytest.raises(locksmith.AlreadyHeld):
            c.acquire("alone", timeout=10)
        assert c.queue() == []


def test_a_timeout_leaves_the_queue(etcd, group, api):
    with Client(etcd.endpoint, group=group, api=api) as c:
        c.lock("holder")
        started = time.monotonic()
        assert c.acquire("late", timeout=0.5) is False
        assert 0.4 < time.monotonic() - started < 5
        assert c.queue() == []


def test_cancel_from_another_thread_ends_the_wait(etcd, group, api):
    with Client(etcd.endpoint, group=group, api=api) as c, Client(etcd.endpoint, group=group, api=api) as other:
        other.lock("holder")
        threading.Timer(0.5, c.cancel).start()
        with pytest.raises(locksmith.Cancelled):
            c.acquire("waiting", timeout=30)
        c.cancel(False)
        assert wait_until(lambda: other.queue() == [], timeout=3) == [] or other.queue() == []


WAITER = textwrap.dedent("""
    import sys
    sys.path.insert(0, sys.argv[1])
    import locksmith
    with locksmith.Client(sys.argv[2], group=sys.argv[3], api=sys.argv[4]) as c:
        c.set_option("queue-ttl", "5s")
        heard = set()
        def progress(ahead):
            # The place when it changes; "waiting" the first time it hears it still waits (at the
            # head with the semaphore full), not on every heartbeat.
            if ahead >= 0:
                print("ahead", ahead, flush=True)
            elif not heard:
                heard.add(ahead)
                print("waiting", flush=True)
        took = c.acquire(sys.argv[5], progress=progress)
        print("took" if took else "declined", flush=True)
""")


def test_a_killed_waiter_holds_up_those_behind_it_only_until_its_entry_expires(etcd, group, api):
    src = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "src")
    with Client(etcd.endpoint, group=group, api=api) as c:
        c.lock("holder")
        first = subprocess.Popen([sys.executable, "-c", WAITER, src, etcd.endpoint, group, api, "doomed"],
                                 stdout=subprocess.PIPE, text=True)
        # At the head, the semaphore full: it waits (v3 read the semaphore as it joined and makes
        # no attempt; v2 hears 0 before one).
        said = [first.stdout.readline().strip()]
        if said[0] == "ahead 0":
            said.append(first.stdout.readline().strip())
        assert said[-1] == "waiting", said
        second = subprocess.Popen([sys.executable, "-c", WAITER, src, etcd.endpoint, group, api, "patient"],
                                  stdout=subprocess.PIPE, text=True)
        try:
            assert second.stdout.readline().split() == ["ahead", "1"]
            first.send_signal(signal.SIGKILL)
            first.wait()
            killed = time.monotonic()
            c.unlock("holder")
            lines = []
            while not lines or lines[-1] != "took":
                lines.append(second.stdout.readline().strip())
            # (A heartbeat while the dead entry runs out may say "waiting" first.)
            assert [line for line in lines[:-1] if line != "waiting"] == ["ahead 0"], lines
            waited = time.monotonic() - killed
            assert waited < 5 + 3, waited  # the dead entry's queue-ttl, and a little
            assert second.wait(10) == 0
            with c.status() as s:
                assert s.holders == ["patient"]
        finally:
            for p in (first, second):
                if p.poll() is None:
                    p.kill()
                    p.wait()


def test_clients_that_do_not_queue_never_exceed_max(etcd, group, api):
    """Direct lock() calls (as the original makes) race the queue's head for freed slots; the
    semaphore stays within max and every waiter still gets a turn."""
    with Client(etcd.endpoint, group=group, api=api) as c:
        c.set_max(2)
        done, errors = [], []

        def waiter(name):
            try:
                with Client(etcd.endpoint, group=group, api=api) as w:
                    assert w.acquire(name, timeout=60)
                    time.sleep(0.05)
                    w.unlock(name)
                    done.append(name)
            except Exception as e:
                errors.append((name, e))

        def jumper():
            with Client(etcd.endpoint, group=group, api=api) as j:
                for i in range(20):
                    try:
                        j.lock("jumper")
                        time.sleep(0.02)
                        j.unlock("jumper")
                    except locksmith.Busy:
                        time.sleep(0.01)

        threads = [threading.Thread(target=waiter, args=("q%d" % i,)) for i in range(6)] + [threading.Thread(target=jumper)]
        for t in threads:
            t.start()
        peak = 0
        while any(t.is_alive() for t in threads):
            with c.status() as s:
                assert s.available >= 0 and len(s.holders) <= 2
                peak = max(peak, len(s.holders))
            time.sleep(0.01)
        assert errors == []
        assert sorted(done) == ["q%d" % i for i in range(6)]
        assert peak >= 1


def test_queue_ttl_option():
    with Client("http://127.0.0.1:9") as c:
        c.set_option("queue-ttl", "10s")
        assert [s.value for s in c.settings() if s.name == "queue-ttl"] == ["10s"]
        for bad in ("1s", "2h", "soon"):
            with pytest.raises(locksmith.InvalidArgument):
                c.set_option("queue-ttl", bad)


def test_progress_may_decline_at_the_head(etcd, group, api):
    with Client(etcd.endpoint, group=group, api=api) as c:
        seen = []
        assert c.acquire("polite", timeout=10, progress=lambda ahead: seen.append(ahead) or False) is False
        assert seen == [0]
        with c.status() as s:
            assert s.holders == []
        assert c.queue() == []
