// Fuzzes RebootWindow: parsing REBOOT_WINDOW_START / REBOOT_WINDOW_LENGTH and placing a moment
// relative to the window. Input: "start<TAB>length<TAB>now", now in Unix seconds (the format of
// the spec's window.tsv, whose lines are the seeds).
//
// Invariants: an accepted window's normalized text (startText, lengthText) parses back to an
// equal window, and so does the start with a lower/upper-cased day; the fields are in range and
// the length is shorter than the period; every refusal is an .invalidArgument LocksmithError.
// In UTC (a calendar computed here, no DST) `occurrence` is exactly right: the window it returns
// opens at HH:MM on the right weekday, contains now or is the next one to open, and the one
// before it has closed. In America/Los_Angeles (the system calendar, DST) it is consistent: it
// contains now or lies ahead by at most a period (plus an hour).
import Glibc
@testable import LocksmithCore

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzWindow(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let parts = fields(inputBytes(data, size), separator: UInt8(ascii: "\t"), count: 3)
    let start = String(decoding: parts[0], as: UTF8.self)
    let length = parts.count > 1 ? String(decoding: parts[1], as: UTF8.self) : ""
    let nowText = parts.count > 2 ? String(decoding: parts[2].prefix { $0 != UInt8(ascii: "\t") && $0 != 0x0a }, as: UTF8.self) : ""

    let window: RebootWindow
    do {
        window = try RebootWindow(start: start, length: length)
    } catch let error as LocksmithError {
        invariant(error.kind == .invalidArgument, "window refused with kind \(error.kind)")
        invariant(startsWithBytes(error.message, "reboot window "), "message does not name the setting: \(error.message)")
        return 0
    } catch {
        invariant(false, "not a LocksmithError: \(error)")
        return 0
    }

    let period: Int64 = window.weekday == nil ? 86_400 : 7 * 86_400
    invariant((0...23).contains(window.hour) && (0...59).contains(window.minute), "time out of range")
    invariant(window.weekday.map { (0...6).contains($0) } ?? true, "weekday out of range")
    invariant(window.length >= 0 && window.length < period * 1_000_000_000, "length \(window.length) not within the period")

    // Normalized text parses back to the same window.
    do {
        let again = try RebootWindow(start: window.startText, length: window.lengthText)
        invariant(again == window, "\(shown(window.startText)) \(shown(window.lengthText)) reads back differently")
        let lower = try RebootWindow(start: window.startText.lowercased(), length: window.lengthText)
        let upper = try RebootWindow(start: "  " + window.startText.uppercased() + "\t", length: window.lengthText)
        invariant(lower == window && upper == window, "day names are case-sensitive or blanks matter")
    } catch {
        invariant(false, "normalized text \(shown(window.startText)) \(shown(window.lengthText)) refused: \(error)")
    }

    // Where a moment stands: now from the input, else a fixed one.
    var nows: [Int64] = [1_432_191_600]
    if let n = Int64(nowText) { nows = [n, n &+ 1, n &- 1] }
    for now in nows {
        checkUTC(window, now: now, period: period)
        checkLocal(window, now: now, period: period)
    }
    return 0
}

private func checkUTC(_ window: RebootWindow, now: Int64, period: Int64) {
    let calendar = UTCCalendar()
    let occurrence: (start: Int64, end: Int64)
    do {
        occurrence = try window.occurrence(now: now, calendar: calendar)
    } catch let error as LocksmithError {
        invariant(error.kind == .outOfRange && !RebootWindow.validTimes.contains(now), "occurrence at \(now) failed: \(error.message)")
        return
    } catch {
        invariant(false, "not a LocksmithError: \(error)")
        return
    }
    invariant(RebootWindow.validTimes.contains(now), "a time outside years 1..9999 was accepted")
    let lengthSeconds = window.length / 1_000_000_000
    let (start, end) = occurrence
    invariant(end == start + lengthSeconds, "end is not start + length")
    let opens = calendar.civil(start)
    invariant(opens.hour == window.hour && opens.minute == window.minute && opens.second == 0,
              "UTC window opens at \(opens.hour):\(opens.minute):\(opens.second), not \(window.startText)")
    if let weekday = window.weekday { invariant(opens.weekday == weekday, "UTC window opens on day \(opens.weekday), not \(weekday)") }
    let inside = start <= now && (now - start) * 1_000_000_000 <= window.length
    if !inside {
        invariant(start > now && start - now <= period, "UTC: next window at \(start) for now \(now) is not the next one")
        let previous = start - period
        invariant((now - previous) * 1_000_000_000 > window.length, "UTC: now \(now) is inside the previous window at \(previous)")
    }
    let toStart = try? window.secondsToStart(now: now, calendar: calendar)
    invariant(toStart == start - now, "secondsToStart disagrees with occurrence")
}

private func checkLocal(_ window: RebootWindow, now: Int64, period: Int64) {
    guard let (start, end) = try? window.occurrence(now: now, calendar: LosAngeles.calendar) else {
        invariant(!RebootWindow.validTimes.contains(now), "local occurrence at \(now) failed")
        return
    }
    invariant(end == start + window.length / 1_000_000_000, "local end is not start + length")
    let inside = start <= now && now <= end
    invariant(inside || (start > now && start - now <= period + 3_600),
              "local: window at \(start) is neither around nor the next after \(now)")
}

enum LosAngeles {
    static let calendar: SystemCalendar = {
        setenv("TZ", "America/Los_Angeles", 1)
        return SystemCalendar()
    }()
}

/// Civil time in UTC by arithmetic alone (proleptic Gregorian), the calendar the checks trust.
struct UTCCalendar: LocalCalendar {
    func civil(_ t: Int64) -> CivilTime {
        let days = t >= 0 ? t / 86_400 : (t - 86_399) / 86_400
        let secs = t - days * 86_400
        let (y, m, d) = UTCCalendar.civilFromDays(days)
        let weekday = Int(((days % 7) + 7 + 4) % 7)  // 1970-01-01 was a Thursday
        return CivilTime(year: Int(y), month: Int(m), day: Int(d), hour: Int(secs / 3600), minute: Int(secs / 60 % 60),
                         second: Int(secs % 60), weekday: weekday)
    }

    func unixTime(year: Int, month: Int, day: Int, hour: Int, minute: Int) -> Int64 {
        UTCCalendar.daysFromCivil(Int64(year), Int64(month), 1) * 86_400 + Int64(day - 1) * 86_400 + Int64(hour * 3600 + minute * 60)
    }

    /// Days since 1970-01-01 of a date (month 1...12), by the usual era arithmetic.
    static func daysFromCivil(_ year: Int64, _ month: Int64, _ day: Int64) -> Int64 {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let mp = (month + 9) % 12
        let doy = (153 * mp + 2) / 5 + day - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146_097 + doe - 719_468
    }

    static func civilFromDays(_ z0: Int64) -> (Int64, Int64, Int64) {
        let z = z0 + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let d = doy - (153 * mp + 2) / 5 + 1
        let m = mp < 10 ? mp + 3 : mp - 9
        return (yoe + era * 400 + (m <= 2 ? 1 : 0), m, d)
    }
}
