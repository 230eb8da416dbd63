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

    /// mktime(3) with `tm_isdst = -1` guesses from the zone state of earlier calls when a wall
    /// time exists twice or not at all, so both readings are tried and chosen between here:
    /// a time that exists twice (fall-back) is its first instant; a time skipped by a
    /// spring-forward is read with the offset before the jump (02:30 becomes 03:30).
    public func unixTime(year: Int, month: Int, day: Int, hour: Int, minute: Int) -> Int64 {
        // The calendar date the fields mean once normalized (day 0, day 32, ...), zone-free.
        var utc = Glibc.tm()
        utc.tm_year = Int32(year - 1900)
        utc.tm_mon = Int32(month - 1)
        utc.tm_mday = Int32(day)
        utc.tm_hour = 12
        var noon = timegm(&utc)
        gmtime_r(&noon, &utc)

        var readings: [Int64] = []
        var matching: [Int64] = []
        for isdst in [Int32(0), 1] {
            var tm = Glibc.tm()
            tm.tm_year = utc.tm_year
            tm.tm_mon = utc.tm_mon
            tm.tm_mday = utc.tm_mday
            tm.tm_hour = Int32(hour)
            tm.tm_min = Int32(minute)
            tm.tm_isdst = isdst
            let t = mktime(&tm)
            if t == -1 { continue }  // not a valid answer here: our times have tm_sec = 0
            readings.append(Int64(t))
            let c = civil(Int64(t))
            if c.year == Int(utc.tm_year) + 1900, c.month == Int(utc.tm_mon) + 1, c.day == Int(utc.tm_mday), c.hour == hour, c.minute == minute {
                matching.append(Int64(t))
            }
        }
        if let first = matching.min() { return first }
        return readings.max() ?? Int64(noon)
    }
}
