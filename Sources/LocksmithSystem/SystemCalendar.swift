// Local time as the C library knows it: TZ honoured (re-read on every call, so a changed TZ
// takes effect), daylight saving handled by mktime(3).
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import LocksmithCore

public struct SystemCalendar: LocalCalendar, Sendable {
    public init() {
        tzset()
    }

    public func civil(_ t: Int64) -> CivilTime {
        var seconds = time_t(t)
        var tm = Glibc.tm()
        localtime_r(&seconds, &tm)
        return CivilTime(year: Int(tm.tm_year) + 1900, month: Int(tm.tm_mon) + 1, day: Int(tm.tm_mday),
                         hour: Int(tm.tm_hour), minute: Int(tm.tm_min), second: Int(tm.tm_sec), weekday: Int(tm.tm_wday))
    }

    public func unixTime(year: Int, month: Int, day: Int, hour: Int, minute: Int) -> Int64 {
        var tm = Glibc.tm()
        tm.tm_year = Int32(year - 1900)
        tm.tm_mon = Int32(month - 1)
        tm.tm_mday = Int32(day)
        tm.tm_hour = Int32(hour)
        tm.tm_min = Int32(minute)
        tm.tm_sec = 0
        tm.tm_isdst = -1
        return Int64(mktime(&tm))
    }
}
