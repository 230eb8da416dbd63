import Glibc
import Testing
@testable import LocksmithCore
import LocksmithSystem

/// The window tests run in America/Los_Angeles, the zone the original's vectors were made in.
/// They are serialized and set TZ once; no other test reads the time zone.
enum LosAngeles {
    static let calendar: SystemCalendar = {
        if String(cString: getenv("TZ") ?? strdup("")) != "America/Los_Angeles" {
            setenv("TZ", "America/Los_Angeles", 1)
        }
        return SystemCalendar()
    }()
}

struct WindowVector: CustomTestStringConvertible, Sendable {
    var start: String, length: String, now: Int64?, expected: Int64?, line: Int
    var testDescription: String { "line \(line): \"\(start)\" \"\(length)\" at \(now.map(String.init) ?? "-")" }

    static func load() throws -> [WindowVector] {
        let dir = String(#filePath).split(separator: "/", omittingEmptySubsequences: false).dropLast().joined(separator: "/")
        let bytes = try Syscalls.readFile(dir + "/vectors/window.tsv")
        var vectors: [WindowVector] = []
        for (i, line) in String(decoding: bytes, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            if line.hasPrefix("#") || line.isEmpty { continue }
            let f = line.split(separator: "\t", omittingEmptySubsequences: false).map(String.init)
            guard f.count == 5 else { continue }
            vectors.append(WindowVector(start: f[0], length: f[1], now: Int64(f[2]), expected: f[4] == "error" ? nil : Int64(f[4]), line: i + 1))
        }
        return vectors
    }
}

@Suite(.serialized) struct WindowTests {
    let calendar = LosAngeles.calendar

    @Test func vectorFileIsComplete() throws {
        let vectors = try WindowVector.load()
        #expect(vectors.count == 21)
        #expect(vectors.filter { $0.expected == nil }.count == 8)
    }

    @Test(arguments: try WindowVector.load())
    func originalVectors(_ v: WindowVector) throws {
        guard let expected = v.expected, let now = v.now else {
            #expect(throws: LocksmithError.self) { try RebootWindow(start: v.start, length: v.length) }
            return
        }
        let window = try RebootWindow(start: v.start, length: v.length)
        #expect(try window.secondsToStart(now: now, calendar: calendar) == expected)
    }

    @Test(arguments: [
        ("25:00", "1h", "hour 25 is not in 0..23"), ("23:61", "1h", "minute 61 is not in 0..59"),
        ("14", "1h", "HH:MM"), ("foo 14:00", "1h", "unknown day \"foo\""), ("sat 14:00", "1j", "unknown unit"),
        ("sat 14:00", "-1h", "negative"), ("sat 14:00 1234", "1h", "expected"), ("sat", "1h", "HH:MM"),
        ("14:00", "24h", "not shorter than the day"), ("Sun 14:00", "168h", "not shorter than the week"),
        ("", "1h", "expected"), ("14:00", "", "invalid duration"), ("1:2:3", "1h", "HH:MM"), ("-1:00", "1h", "HH:MM"),
        ("Thursday 14:00", "1h", "unknown day"),
    ])
    func errorsNameTheProblem(start: String, length: String, fragment: String) {
        do {
            _ = try RebootWindow(start: start, length: length)
            Issue.record("parsed \(start) \(length)")
        } catch let error as LocksmithError {
            #expect(error.kind == .invalidArgument)
            #expect(error.message.contains(fragment), "\(error.message)")
        } catch {
            Issue.record("\(error)")
        }
    }

    @Test func acceptsWhatTheOriginalAccepted() throws {
        let w = try RebootWindow(start: "THU  9:05", length: "167h59m")
        #expect(w.weekday == 4 && w.hour == 9 && w.minute == 5)
        #expect(w.startText == "Thu 09:05")
        #expect(w.lengthText == "167h59m0s")
        #expect(try RebootWindow(start: "00:00", length: "0").lengthText == "0s")
        #expect(try RebootWindow(start: "23:59", length: "23h59m59s").startText == "23:59")
    }

    @Test func closingEdgeIsInside() throws {
        let w = try RebootWindow(start: "00:00", length: "10s")
        let midnight: Int64 = 1_432_191_600  // Thu May 21 00:00:00 PDT 2015
        #expect(try w.secondsToStart(now: midnight + 10, calendar: calendar) == -10)
        #expect(try w.secondsToStart(now: midnight + 11, calendar: calendar) == 86_400 - 11)
        let sub = try RebootWindow(start: "00:00", length: "10.5s")
        #expect(try sub.secondsToStart(now: midnight + 10, calendar: calendar) == -10)
        #expect(try sub.secondsToStart(now: midnight + 11, calendar: calendar) > 0)
    }

    @Test func occurrenceGivesCurrentOrNext() throws {
        let w = try RebootWindow(start: "Thu 23:00", length: "1h30m")
        let thursdayMidnight: Int64 = 1_432_191_600
        let next = try w.occurrence(now: thursdayMidnight, calendar: calendar)
        #expect(next.start == thursdayMidnight + 23 * 3600 && next.end == next.start + 5400)
        let inside = try w.occurrence(now: thursdayMidnight + 24 * 3600, calendar: calendar)
        #expect(inside.start == next.start)
        let after = try w.occurrence(now: next.end + 1, calendar: calendar)
        #expect(after.start == next.start + 7 * 86_400)
        #expect(throws: LocksmithError.self) { try w.occurrence(now: Int64.max, calendar: calendar) }
    }

    /// Clocks jump forward at 02:00 on Sun Mar 8 2015 in Los Angeles.
    @Test func springForward() throws {
        let w = try RebootWindow(start: "02:30", length: "1h")
        let saturdayNoon: Int64 = 1_425_758_400  // Sat Mar 7 12:00 PST
        let sat = try w.occurrence(now: saturdayNoon - 12 * 3600, calendar: calendar)
        #expect(calendar.civil(sat.start).hour == 2 && calendar.civil(sat.start).day == 7)
        // 02:30 does not exist on the 8th: the window opens at 03:30 PDT, one hour "late".
        let sun = try w.occurrence(now: saturdayNoon, calendar: calendar)
        let c = calendar.civil(sun.start)
        #expect(c.day == 8 && c.hour == 3 && c.minute == 30)
        #expect(sun.start - sat.start == 24 * 3600)
        // From Monday on it is 02:30 PDT again, 23 hours after Sunday's 02:30 PST would have been.
        let mon = try w.occurrence(now: sun.end + 1, calendar: calendar)
        let m = calendar.civil(mon.start)
        #expect(m.day == 9 && m.hour == 2 && m.minute == 30)
    }

    /// Clocks fall back at 02:00 on Sun Nov 1 2015: that day has 25 hours.
    @Test func fallBack() throws {
        let w = try RebootWindow(start: "23:00", length: "30m")
        let oct31Noon: Int64 = 1_446_318_000  // Sat Oct 31 12:00 PDT
        let sat = try w.occurrence(now: oct31Noon, calendar: calendar)
        let sun = try w.occurrence(now: sat.end + 1, calendar: calendar)
        #expect(calendar.civil(sat.start).hour == 23 && calendar.civil(sun.start).hour == 23)
        #expect(calendar.civil(sun.start).day == 1)
        #expect(sun.start - sat.start == 25 * 3600)

        let weekly = try RebootWindow(start: "Sun 04:00", length: "1h")
        let opening = try weekly.occurrence(now: oct31Noon, calendar: calendar)
        #expect(opening.start == 1_446_379_200)  // Sun Nov 1 04:00 PST
        #expect(try weekly.secondsToStart(now: opening.start + 3600, calendar: calendar) == -3600)
    }

    /// 01:30 happens twice on Nov 1 2015 (PDT, then PST): the window opens at the first, and
    /// the answer does not depend on what was computed before.
    @Test func ambiguousStartOpensAtTheFirst() throws {
        let w = try RebootWindow(start: "Sun 01:30", length: "10m")
        let before: Int64 = 1_446_318_000  // Sat Oct 31 12:00 PDT
        #expect(try w.occurrence(now: before, calendar: calendar).start == 1_446_366_600)  // 08:30 UTC
        _ = calendar.unixTime(year: 2015, month: 11, day: 1, hour: 9, minute: 0)  // PST state
        #expect(try w.occurrence(now: before, calendar: calendar).start == 1_446_366_600)
        _ = calendar.unixTime(year: 2015, month: 3, day: 8, hour: 2, minute: 30)
        #expect(calendar.unixTime(year: 2015, month: 3, day: 8, hour: 2, minute: 30) == 1_425_810_600)  // 03:30 PDT
        #expect(calendar.unixTime(year: 2015, month: 2, day: 29, hour: 0, minute: 0) == 1_425_196_800)  // = Mar 1
    }

    @Test func secondsToStartAgreesWithOccurrenceEverywhere() throws {
        let w = try RebootWindow(start: "Sat 23:05", length: "11h")
        var t: Int64 = 1_431_846_001
        for _ in 0..<400 {
            let s = try w.secondsToStart(now: t, calendar: calendar)
            let o = try w.occurrence(now: t, calendar: calendar)
            #expect(s == o.start - t)
            #expect(s > 0 || t <= o.end)
            #expect(s <= 7 * 86_400)
            t += 3_607
        }
    }
}
