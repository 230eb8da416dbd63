// The reboot window rules: parsing REBOOT_WINDOW_START / REBOOT_WINDOW_LENGTH, and where a given
// moment stands relative to the window, in local wall-clock time.
//
// A window opens every day (start "HH:MM") or every week (start "Day HH:MM", weeks begin on
// Sunday) at that wall-clock time and stays open for `length`, the closing edge included. On a
// day when clocks change, the window still opens at HH:MM local time; a start that does not exist
// that day (skipped by a spring-forward) opens at the same offset after the jump, as mktime(3)
// normalizes it.

/// A local time broken down into calendar fields.
public struct CivilTime: Sendable, Equatable {
    public var year: Int
    public var month: Int  // 1...12
    public var day: Int  // 1...31
    public var hour: Int
    public var minute: Int
    public var second: Int
    public var weekday: Int  // 0 = Sunday

    public init(year: Int, month: Int, day: Int, hour: Int, minute: Int, second: Int, weekday: Int) {
        (self.year, self.month, self.day, self.hour, self.minute, self.second, self.weekday) =
            (year, month, day, hour, minute, second, weekday)
    }
}

/// Converts between Unix seconds and local civil time. The system's (TZ-honouring) one lives in
/// LocksmithSystem; the rules here stay free of I/O.
public protocol LocalCalendar {
    /// The local civil time of Unix time `t`.
    func civil(_ t: Int64) -> CivilTime
    /// The Unix time of a local wall-clock time; `day` may run outside the month and is normalized.
    func unixTime(year: Int, month: Int, day: Int, hour: Int, minute: Int) -> Int64
}

/// A recurring reboot window.
public struct RebootWindow: Sendable, Equatable {
    /// Unix times the window arithmetic accepts: years 1 to 9999.
    public static let validTimes: ClosedRange<Int64> = -62_135_596_800...253_402_300_799

    private static let dayNames = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"]
    private static let dayNanoseconds: Int64 = 86_400 * 1_000_000_000

    /// Day of the week the window opens on (0 = Sunday), or nil for a daily window.
    public let weekday: Int?
    public let hour: Int
    public let minute: Int
    /// How long the window stays open, in nanoseconds.
    public let length: Int64

    /// Parses a start ("HH:MM" or "Day HH:MM", day names Sun..Sat in any case) and a length in
    /// Go duration syntax. Throws `.invalidArgument` naming the part that is wrong.
    public init(start: String, length lengthText: String) throws {
        let fields = start.split(whereSeparator: { $0.isWhitespace })
        let timeField: Substring
        switch fields.count {
        case 1:
            weekday = nil
            timeField = fields[0]
        case 2:
            guard let day = RebootWindow.dayNames.firstIndex(of: fields[0].lowercased()) else {
                throw RebootWindow.badStart(start, "unknown day \(JSONText.quoted(String(fields[0]))) (use Sun, Mon, Tue, Wed, Thu, Fri or Sat)")
            }
            weekday = day
            timeField = fields[1]
        default:
            throw RebootWindow.badStart(start, "expected \"HH:MM\" or \"Day HH:MM\"")
        }
        let parts = timeField.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 2, let h = RebootWindow.number(parts[0]), let m = RebootWindow.number(parts[1]) else {
            throw RebootWindow.badStart(start, "expected a time of day as HH:MM")
        }
        guard h <= 23 else { throw RebootWindow.badStart(start, "hour \(h) is not in 0..23") }
        guard m <= 59 else { throw RebootWindow.badStart(start, "minute \(m) is not in 0..59") }
        hour = h
        minute = m

        let nanoseconds: Int64
        do {
            nanoseconds = try GoDuration.parse(lengthText)
        } catch let error as LocksmithError {
            throw LocksmithError(.invalidArgument, "reboot window length: \(error.message)", option: "length")
        }
        if nanoseconds < 0 {
            throw LocksmithError(.invalidArgument, "reboot window length \(JSONText.quoted(lengthText)) is negative", option: "length")
        }
        let period = weekday == nil ? RebootWindow.dayNanoseconds : 7 * RebootWindow.dayNanoseconds
        if nanoseconds >= period {
            throw LocksmithError(.invalidArgument, "reboot window length \(JSONText.quoted(lengthText)) is not shorter than the \(weekday == nil ? "day" : "week") it repeats in", option: "length")
        }
        length = nanoseconds
    }

    /// The start as written in configuration, normalized: "Thu 23:00", "02:33".
    public var startText: String {
        let time = (hour < 10 ? "0" : "") + "\(hour):" + (minute < 10 ? "0" : "") + "\(minute)"
        guard let weekday else { return time }
        let name = RebootWindow.dayNames[weekday]
        return name.prefix(1).uppercased() + name.dropFirst() + " " + time
    }

    /// The length in Go duration syntax ("1h30m0s").
    public var lengthText: String { GoDuration.format(length) }

    /// Seconds from `now` until the window opens; <= 0 inside a window (minus how far into it).
    public func secondsToStart(now: Int64, calendar: some LocalCalendar) throws -> Int64 {
        let current = try occurrence(now: now, calendar: calendar)
        return current.start - now
    }

    /// The window that contains `now` (closing edge included), or else the next one to open.
    /// Times are Unix seconds; `end` is the start plus the length in whole seconds.
    public func occurrence(now: Int64, calendar: some LocalCalendar) throws -> (start: Int64, end: Int64) {
        guard RebootWindow.validTimes.contains(now) else {
            throw LocksmithError(.outOfRange, "time \(now) is outside the years 1 to 9999")
        }
        let today = calendar.civil(now)
        let period = weekday == nil ? 1 : 7
        func opening(_ dayOffset: Int) -> Int64 {
            calendar.unixTime(year: today.year, month: today.month, day: today.day + dayOffset, hour: hour, minute: minute)
        }
        // The latest opening at or before now: this period's, or else the one before.
        var offset = weekday.map { $0 - today.weekday } ?? 0
        var previous = opening(offset)
        for _ in 0..<3 where previous > now {
            offset -= period
            previous = opening(offset)
        }
        let lengthSeconds = length / 1_000_000_000
        if previous <= now, (now - previous) * 1_000_000_000 <= length {
            return (previous, previous + lengthSeconds)
        }
        var next = opening(offset + period)
        for _ in 0..<3 where next <= now {
            offset += period
            next = opening(offset + period)
        }
        return (next, next + lengthSeconds)
    }

    private static func number(_ text: Substring) -> Int? {
        guard !text.isEmpty, text.count <= 4, text.allSatisfy({ $0.isASCII && $0.isNumber }) else { return nil }
        return Int(text)
    }

    private static func badStart(_ start: String, _ why: String) -> LocksmithError {
        LocksmithError(.invalidArgument, "reboot window start \(JSONText.quoted(start)): \(why)", option: "start")
    }
}
