"""Window: the original's reboot-window cases (Tests/LocksmithCoreTests/vectors/window.tsv, Los
Angeles time), normalization, opening times, bad input."""
import datetime
import errno

import pytest
from conftest import WINDOW_VECTORS

from locksmith import InvalidArgument, Opening, OutOfRange, Window


def vectors():
    with open(WINDOW_VECTORS) as f:
        rows = [line.rstrip("\n").split("\t") for line in f if line.strip() and not line.startswith("#")]
    return [pytest.param(*row, id="%s/%s@%s" % (row[0], row[1], row[2])) for row in rows]


@pytest.mark.parametrize("start,length,now,local,expected", vectors())
def test_original_window_cases(start, length, now, local, expected):
    if expected == "error":
        with pytest.raises(InvalidArgument) as e:
            Window(start, length)
        assert e.value.errno == errno.EINVAL and isinstance(e.value, ValueError)
        assert e.value.strerror  # the library's message naming the problem
        return
    with Window(start, length) as w:
        assert w.seconds_to_start(int(now)) == int(expected)


def test_there_are_vectors_of_both_kinds():
    rows = [p.values for p in vectors()]
    assert len(rows) >= 20
    assert sum(1 for r in rows if r[4] == "error") >= 5


def test_normalized_text():
    with Window("thu 23:00", "1.5h") as w:
        assert (w.start, w.length) == ("Thu 23:00", "1h30m0s")
        assert str(w) == "Thu 23:00 1h30m0s"
        assert repr(w) == "Window('Thu 23:00', '1h30m0s')"
    with Window.parse("2:33", "45m") as w:
        assert str(w) == "02:33 45m0s"


def test_next_opening_inside_and_before():
    # Thu May 21 2015 00:00:00 PDT = 1432191600
    with Window("02:33", "10h") as w:
        inside = w.next(1432236780)  # 12:33:00, the closing edge: inside
        assert inside == Opening(1432191600 + 2 * 3600 + 33 * 60, 1432236780)
        assert isinstance(inside, tuple) and inside.end - inside.start == 36000
        after = w.next(1432236781)  # one second later: the next day's
        assert after.start == inside.start + 86400


def test_now_as_datetime_and_float_and_default():
    with Window("00:15", "10s") as w:
        aware = datetime.datetime(2015, 5, 21, 7, 0, 0, tzinfo=datetime.timezone.utc)  # 00:00 PDT
        assert w.seconds_to_start(aware) == 900
        naive_local = datetime.datetime(2015, 5, 21, 0, 0, 0)  # read as local (Los Angeles) time
        assert w.seconds_to_start(naive_local) == 900
        assert w.seconds_to_start(1432191600.9) == 900  # whole seconds, floored
        assert -10 <= w.seconds_to_start() <= 86400


def test_weekly_window_across_the_daylight_saving_change():
    # Sun Mar 8 2015: clocks jump from 02:00 to 03:00 in Los Angeles; a 02:30 start opens at 03:30 PDT.
    with Window("Sun 02:30", "1h") as w:
        saturday_noon = 1425758400  # Sat Mar 7 12:00 PST
        opening = w.next(saturday_noon)
        assert opening.start == int(datetime.datetime(2015, 3, 8, 10, 30, tzinfo=datetime.timezone.utc).timestamp())


def test_now_out_of_range():
    with Window("02:00", "1h") as w:
        with pytest.raises(OutOfRange) as e:
            w.seconds_to_start(400000000000)  # beyond the year 9999
        assert e.value.errno == errno.ERANGE and isinstance(e.value, OverflowError)
        with pytest.raises(OutOfRange):
            w.next(2**63)  # does not even fit int64_t


@pytest.mark.parametrize("start,length", [("02:00", "24h"), ("Mon 02:00", "168h"), ("02:00", ""), ("", "1h"),
                                          ("02:00", "1h\0"), ("24:00", "1h")])
def test_bad_windows(start, length):
    with pytest.raises(InvalidArgument):
        Window(start, length)


def test_use_after_close():
    w = Window("02:00", "1h")
    w.close()
    with pytest.raises(ValueError, match="closed window"):
        w.next()
    assert repr(w) == "<locksmith.Window (closed)>"


def test_a_window_in_a_named_zone():
    # 2021-03-27 12:00 UTC: the next 02:30 in Berlin does not exist; it opens at 03:30 CEST.
    with Window("02:30", "1h", zone="Europe/Berlin") as w:
        assert w.zone == "Europe/Berlin"
        assert w.next(1616846400) == Opening(1616895000, 1616898600)
        assert w.format_time(1616895000) == "Sun 2021-03-28 03:30 CEST"
        assert repr(w) == "Window('02:30', '1h0m0s', zone='Europe/Berlin')"
        w.set_zone("Asia/Kolkata")
        assert w.seconds_to_start(1609459200) == 21 * 3600  # 05:30 IST
        w.set_zone(None)
        assert w.zone is None
        assert w.format_time(1609459200) == "Thu 2020-12-31 16:00 PST"  # the tests' local time


@pytest.mark.parametrize("zone, error", [("../etc/passwd", errno.EINVAL), ("/usr/share/zoneinfo/UTC", errno.EINVAL),
                                         ("Europe/No_Such_City", errno.ENOENT)])
def test_bad_zones(zone, error):
    with Window("02:30", "1h") as w:
        with pytest.raises(OSError) as e:
            w.set_zone(zone)
        assert e.value.errno == error and zone in e.value.strerror
        assert w.zone is None
    with pytest.raises(OSError):
        Window("02:30", "1h", zone=zone)
