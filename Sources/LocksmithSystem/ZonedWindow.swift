// A reboot window with the clock it is read by: the local time zone (TZ, as the C library knows
// it), or a named IANA zone (LOCKSMITHD_REBOOT_WINDOW_TZ) read from its zone file.
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import LocksmithCore

public struct ZonedWindow: Sendable {
    public var window: RebootWindow
    /// nil: local time.
    public var zone: ZoneCalendar?

    public init(_ window: RebootWindow, zone: ZoneCalendar? = nil) {
        self.window = window
        self.zone = zone
    }

    /// Seconds from `now` until the window opens: > 0 before it, <= 0 inside it.
    public func secondsToStart(now: Int64) throws -> Int64 {
        if let zone { return try window.secondsToStart(now: now, calendar: zone) }
        return try window.secondsToStart(now: now, calendar: SystemCalendar())
    }

    /// The window that contains `now`, or else the next one.
    public func occurrence(now: Int64) throws -> (start: Int64, end: Int64) {
        if let zone { return try window.occurrence(now: now, calendar: zone) }
        return try window.occurrence(now: now, calendar: SystemCalendar())
    }

    /// `t` on the window's clock, for people: "Thu 2026-11-26 23:00 CET".
    public func format(_ t: Int64) -> String {
        guard let zone else { return LocalTime.format(t) }
        let c = zone.civil(t)
        let days = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"]
        func two(_ n: Int) -> String { n < 10 ? "0\(n)" : "\(n)" }
        let year = c.year >= 0 && c.year < 1000 ? String(repeating: "0", count: 4 - "\(c.year)".count) + "\(c.year)" : "\(c.year)"
        return "\(days[((c.weekday % 7) + 7) % 7]) \(year)-\(two(c.month))-\(two(c.day)) \(two(c.hour)):\(two(c.minute)) \(zone.utcOffset(at: t).abbreviation)"
    }
}

/// Times for people on the process's clock: the one formatting rule of the library and the
/// programs (locksmith_time_format, locksmith_window_format_time in local time).
public enum LocalTime {
    /// The form people read: "Thu 2026-11-26 23:00 CET".
    public static let defaultFormat = "%a %Y-%m-%d %H:%M %Z"

    /// `t` (Unix seconds) by strftime(3) `format`, in the local time zone (TZ) or in UTC; the number
    /// itself when the C library cannot convert it, or the result would be longer than 255 bytes.
    public static func format(_ t: Int64, _ format: String = defaultFormat, utc: Bool = false) -> String {
        var seconds = time_t(t)
        var tm = tm()
        guard (utc ? gmtime_r(&seconds, &tm) : localtime_r(&seconds, &tm)) != nil else { return "\(t)" }
        var buffer = [CChar](repeating: 0, count: 256)
        let n = strftime(&buffer, buffer.count, format, &tm)
        guard n > 0 || format.isEmpty else { return "\(t)" }
        return String(decoding: buffer.prefix(n).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
